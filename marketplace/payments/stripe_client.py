"""The one place that talks to Stripe's API (through the official ``stripe`` library).

``STRIPE_API_KEY`` authenticates; ``STRIPE_API_BASE`` points the library at
another server (a local one in tests and the demo); ``STRIPE_TIMEOUT_SECONDS``
(seconds, default 30) bounds the connect and each read of one HTTP attempt; ``STRIPE_PLATFORM_COUNTRY`` (default
"US") is the platform's country, for Connect accounts.

Errors: :class:`PaymentsUnavailable` means nothing is known (not configured,
unreachable, timed out, 5xx, 429): retry later with the same idempotency key.
:class:`PaymentRefused` is Stripe's definite no to a payment request (a
``card_error`` or ``invalid_request_error``): tell the person, in plain words.
The Connect functions raise :class:`TransferRefused` when Stripe answered and
refused; repeating the same request will not help.
"""
from __future__ import annotations

import stripe
from flask import current_app

from marketplace.money import Money, stripe_amount


class PaymentsUnavailable(RuntimeError):
    """Card payments are not configured, or Stripe could not be reached."""


class PaymentRefused(RuntimeError):
    """Stripe answered a payment request and refused it: a ``card_error`` or an
    ``invalid_request_error`` (``amount_too_small``, ``parameter_invalid_integer``…).
    A definite answer: the same request will be refused again. ``code`` is
    Stripe's error code (or the error type), ``message`` Stripe's own words
    (its ``user_message`` when it gives one).
    """

    def __init__(self, code: str | None, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status


class TransferRefused(RuntimeError):
    """Stripe answered a Connect request with a 4xx refusal (not 409 or 429).

    ``code`` is Stripe's error code (``insufficient_capabilities_for_transfer``,
    ``balance_insufficient``, ``resource_missing``…), or the error type when
    Stripe gives no code (``idempotency_error``).
    """

    def __init__(self, code: str | None, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.status = status  # HTTP status of Stripe's answer

    @property
    def key_spent(self) -> bool:
        """Stripe processed the request under its idempotency key and refused it
        (400, 402, 404), so it made nothing and will replay this refusal for the
        key. 401/403 come before the key is looked at; an idempotency_error
        means the key's first request may have made something."""
        return self.status in (400, 402, 404) and self.code != "idempotency_error"


def configured() -> bool:
    """Whether Stripe's API can be asked at all (``STRIPE_API_KEY`` is set)."""
    return bool(current_app.config.get("STRIPE_API_KEY"))


def client() -> stripe.StripeClient:
    """The app's one Stripe client (built on first use, kept in ``app.extensions``).

    Built from ``STRIPE_API_KEY``, ``STRIPE_API_BASE`` (a local stand-in),
    ``STRIPE_TIMEOUT_SECONDS`` and ``STRIPE_API_VERSION``; a new one is built
    only when one of those changes. Raises :class:`PaymentsUnavailable` when no
    key is set."""
    config = current_app.config
    if not config.get("STRIPE_API_KEY"):
        raise PaymentsUnavailable("STRIPE_API_KEY is not set")
    settings = (config["STRIPE_API_KEY"], config.get("STRIPE_API_BASE"),
                float(config.get("STRIPE_TIMEOUT_SECONDS") or 30), config.get("STRIPE_API_VERSION"))
    cached = current_app.extensions.get("stripe_client")
    if cached is not None and cached[0] == settings:
        return cached[1]
    key, base, timeout, version = settings
    # The library retries a timed-out or dropped attempt (twice) with the same
    # idempotency key, so Stripe acts on the request at most once.
    made = stripe.StripeClient(key, base_addresses={"api": base} if base else None, max_network_retries=2,
                               http_client=stripe.RequestsClient(timeout=timeout), stripe_version=version)
    current_app.extensions["stripe_client"] = (settings, made)
    return made


def create_checkout_session(pledge_id: int, money: Money, *, item_title: str, success_url: str,
                            cancel_url: str, locale: str = "auto") -> tuple[str, str]:
    """A Stripe Checkout Session for one pledge: (session id, URL to send the funder to).

    ``POST /v1/checkout/sessions`` with an idempotency key made from the
    pledge id, so a retry or a double click creates one session. Metadata
    and ``client_reference_id`` name the pledge. Raises
    :class:`PaymentRefused` when Stripe answers with a refusal (e.g.
    ``amount_too_small``), :class:`PaymentsUnavailable` when it cannot be
    reached or answers 429/5xx.
    """
    return _checkout(money, product=f"Pledge to: {item_title}", reference=str(pledge_id),
                     metadata={"pledge_id": str(pledge_id)}, idempotency_key=f"pledge-{pledge_id}-checkout",
                     success_url=success_url, cancel_url=cancel_url, locale=locale)


def create_pool_checkout_session(pool_id: int, attempt: int, money: Money, *, pool_name: str, success_url: str,
                                 cancel_url: str, locale: str = "auto") -> tuple[str, str]:
    """A Stripe Checkout Session for a matching pool's budget: (session id, URL).

    The same request as a pledge's (:func:`create_checkout_session`), naming
    the pool instead: ``metadata`` / ``payment_intent_data.metadata``
    ``{"pool_id": …}`` and ``client_reference_id`` ``pool-<id>``. The
    idempotency key is made from the pool id and ``attempt`` (how many of its
    Checkouts expired unpaid), so a double click makes one session and a new
    Checkout after an expired one makes a new one. Same errors.
    """
    return _checkout(money, product=f"Matching pool: {pool_name}", reference=f"pool-{pool_id}",
                     metadata={"pool_id": str(pool_id)}, idempotency_key=f"pool-{pool_id}-checkout-{attempt}",
                     success_url=success_url, cancel_url=cancel_url, locale=locale)


def _checkout(money: Money, *, product: str, reference: str, metadata: dict, idempotency_key: str,
              success_url: str, cancel_url: str, locale: str) -> tuple[str, str]:
    params = {
        "mode": "payment",
        "line_items": [{
            "quantity": 1,
            "price_data": {
                "currency": money.currency.lower(),
                "unit_amount": stripe_amount(money),
                "product_data": {"name": product[:250]},
            },
        }],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": reference,
        "metadata": dict(metadata),
        "payment_intent_data": {"metadata": dict(metadata)},
        "locale": locale,
    }
    try:
        session = client().v1.checkout.sessions.create(params, {"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise _payment_error(exc) from None
    return session.id, session.url


def _payment_error(exc: stripe.StripeError) -> Exception:
    """:class:`PaymentRefused` for Stripe's definite refusals (a ``card_error``,
    or an ``invalid_request_error`` answered with a 4xx other than 409 and
    429); :class:`PaymentsUnavailable` for everything that means "try again
    later": no answer (connection error, timeout), 409, 429, 5xx, or Stripe's
    ``api_error``. (Stripe docs: "Error handling", "Error codes".)
    """
    status = exc.http_status
    error_type = exc.error.type if exc.error else None
    definite = isinstance(exc, (stripe.CardError, stripe.InvalidRequestError)) or error_type in (
        "card_error", "invalid_request_error")
    if definite and status is not None and 400 <= status < 500 and status not in (409, 429):
        return PaymentRefused(exc.code or error_type, exc.user_message or
                              (exc.error.message if exc.error and exc.error.message else str(exc)), status)
    return PaymentsUnavailable(str(exc))


def retrieve_checkout_session(session_id: str) -> dict:
    """``GET /v1/checkout/sessions/{id}`` as a plain dict."""
    try:
        return client().v1.checkout.sessions.retrieve(session_id).to_dict()
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None


def expire_checkout_session(session_id: str) -> dict:
    """``POST /v1/checkout/sessions/{id}/expire``: nobody can pay the session any more.

    Returns the session as a dict: ``status`` ``expired`` when it is now
    closed, ``complete`` when the funder paid first (Stripe refuses to expire a
    complete session: the session is read back then). Stripe sends
    ``checkout.session.expired`` afterwards. Raises :class:`PaymentsUnavailable`.
    (Stripe docs: "Expire a Checkout Session".)
    """
    try:
        return client().v1.checkout.sessions.expire(session_id).to_dict()
    except stripe.InvalidRequestError:
        # Only an open session can be expired: it is complete or expired already.
        return retrieve_checkout_session(session_id)
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None


def retrieve_payment_intent(payment_intent_id: str) -> dict:
    """``GET /v1/payment_intents/{id}?expand[]=latest_charge`` as a plain dict:
    its ``metadata`` (``pledge_id``), ``status`` and its latest charge
    (``amount_refunded``, ``refunds``, ``disputed``). Raises :class:`PaymentsUnavailable`."""
    try:
        return client().v1.payment_intents.retrieve(payment_intent_id, {"expand": ["latest_charge"]}).to_dict()
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None


def list_disputes(payment_intent_id: str) -> list[dict]:
    """``GET /v1/disputes?payment_intent=…``: the disputes of a payment (up to 100).
    Raises :class:`PaymentsUnavailable`."""
    try:
        page = client().v1.disputes.list({"payment_intent": payment_intent_id, "limit": 100})
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None
    return [dispute.to_dict() for dispute in page.data]


def create_refund(payment_intent_id: str, money: Money, *, idempotency_key: str, pledge_id: int | None = None,
                  metadata: dict | None = None) -> str:
    """``POST /v1/refunds`` for part or all of a payment; returns the refund id.

    The idempotency key comes from our own refund request, so a retry creates
    one refund. ``pledge_id`` (or ``metadata``, e.g. ``{"pool_id": …}``) goes
    into the refund's metadata, so that its later events (``refund.failed``)
    name what it refunds. Raises :class:`PaymentsUnavailable`.
    """
    params = {"payment_intent": payment_intent_id, "amount": stripe_amount(money)}
    if pledge_id is not None:
        params["metadata"] = {"pledge_id": str(pledge_id)}
    elif metadata:
        params["metadata"] = {str(key): str(value) for key, value in metadata.items()}
    try:
        refund = client().v1.refunds.create(params, {"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None
    return refund.id


def list_refunds(payment_intent_id: str) -> list[dict]:
    """``GET /v1/refunds?payment_intent=…``: every refund of a payment, newest first (up to 100)."""
    try:
        page = client().v1.refunds.list({"payment_intent": payment_intent_id, "limit": 100})
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None
    return [refund.to_dict() for refund in page.data]


# Stripe Connect (Express accounts) for paying contributors.


def _connect_error(exc: stripe.StripeError) -> Exception:
    """:class:`TransferRefused` when Stripe answered and refused, else :class:`PaymentsUnavailable`.

    409 (the same idempotency key is still in flight) and 429 (rate limited)
    are not refusals: the request may succeed later with the same key.
    """
    status = exc.http_status
    if status is not None and 400 <= status < 500 and status not in (409, 429):
        code = exc.code or (exc.error.type if exc.error else None)
        return TransferRefused(code, exc.user_message or str(exc), status)
    return PaymentsUnavailable(str(exc))


def create_connected_account(user_id: int, *, country: str, email: str | None,
                             company_name: str | None = None) -> str:
    """``POST /v1/accounts``: an Express account that can receive transfers; returns its id.

    ``company_name``: set for an implementor firm (issue 20), whose account is
    the company's: ``business_type=company`` and ``company[name]`` (Stripe API
    "Create an account": ``business_type``, ``company.name``), so Stripe's
    onboarding asks for the company's registration, not a person's identity.

    ``country`` is ISO 3166-1 alpha-2. When it differs from
    ``STRIPE_PLATFORM_COUNTRY`` the account is created under the ``recipient``
    service agreement, which Stripe requires for cross-border payouts (Stripe
    docs: "Service agreement types", "Cross-border payouts"). The idempotency
    key is made from the user id, so repeated calls give one account. Raises
    :class:`TransferRefused` or :class:`PaymentsUnavailable`.
    """
    country = country.upper()
    params: dict = {
        "type": "express",
        "country": country,
        "capabilities": {"transfers": {"requested": True}},
        "metadata": {"user_id": str(user_id)},
    }
    if email:
        params["email"] = email
    if company_name:
        params["business_type"] = "company"
        params["company"] = {"name": company_name}
    if country != current_app.config.get("STRIPE_PLATFORM_COUNTRY", "US").upper():
        params["tos_acceptance"] = {"service_agreement": "recipient"}
    try:
        account = client().v1.accounts.create(params, {"idempotency_key": f"user-{user_id}-connect-account"})
    except stripe.StripeError as exc:
        raise _connect_error(exc) from None
    return account.id


def create_account_link(account_id: str, *, refresh_url: str, return_url: str) -> str:
    """``POST /v1/account_links`` (type ``account_onboarding``): the URL of Stripe's onboarding.

    The link is short-lived and single-use: make one each time the person
    asks. Stripe sends them to ``refresh_url`` when it has expired and to
    ``return_url`` when they leave the flow (not proof of completion: read
    the account). Raises :class:`TransferRefused` or :class:`PaymentsUnavailable`.
    """
    params = {"account": account_id, "type": "account_onboarding", "refresh_url": refresh_url,
              "return_url": return_url}
    try:
        return client().v1.account_links.create(params).url
    except stripe.StripeError as exc:
        raise _connect_error(exc) from None


def retrieve_account(account_id: str) -> dict:
    """``GET /v1/accounts/{id}`` as a plain dict (read it with :mod:`marketplace.payments.connect`).

    Raises :class:`TransferRefused` (``resource_missing``) or :class:`PaymentsUnavailable`.
    """
    try:
        return client().v1.accounts.retrieve(account_id).to_dict()
    except stripe.StripeError as exc:
        raise _connect_error(exc) from None


def create_transfer(money: Money, destination: str, *, idempotency_key: str, transfer_group: str | None = None,
                    metadata: dict | None = None) -> dict:
    """``POST /v1/transfers``: move ``money`` from the platform balance to a connected account.

    Returns the transfer as a dict (``amount`` in Stripe's units: read it with
    :func:`marketplace.money.from_stripe_amount`). ``idempotency_key`` must
    come from our own payout row: a retry with the same key and parameters
    returns the same transfer. Raises :class:`TransferRefused` (e.g.
    ``insufficient_capabilities_for_transfer``, ``balance_insufficient``):
    no transfer was made, and Stripe replays that refusal for the same key
    (for 24 hours), so a later attempt needs a new key (say, with an attempt
    number). Raises :class:`PaymentsUnavailable` when nothing is known: the
    transfer may exist, so retry with the same key, never a new one.
    (Stripe docs: "Idempotent requests", "Create a transfer".)
    """
    params: dict = {"amount": stripe_amount(money), "currency": money.currency.lower(), "destination": destination}
    if transfer_group:
        params["transfer_group"] = transfer_group
    if metadata:
        params["metadata"] = {str(key): str(value) for key, value in metadata.items()}
    try:
        return client().v1.transfers.create(params, {"idempotency_key": idempotency_key}).to_dict()
    except stripe.StripeError as exc:
        raise _connect_error(exc) from None


def list_transfers(transfer_group: str) -> list[dict]:
    """``GET /v1/transfers?transfer_group=…``: the transfers made for one group
    (the commons uses one group per payout), newest first, up to 100.
    Raises :class:`PaymentsUnavailable` or :class:`TransferRefused`."""
    try:
        page = client().v1.transfers.list({"transfer_group": transfer_group, "limit": 100})
    except stripe.StripeError as exc:
        raise _connect_error(exc) from None
    return [transfer.to_dict() for transfer in page.data]


def create_transfer_reversal(transfer_id: str, money: Money, *, idempotency_key: str,
                             metadata: dict | None = None) -> dict:
    """``POST /v1/transfers/{id}/reversals``: take ``money`` (in the transfer's currency) back.

    ``metadata`` is kept on the reversal (the commons marks its own, to
    tell them from reversals made elsewhere). Returns the
    ``transfer_reversal`` as a dict. Same idempotency rule and errors as
    :func:`create_transfer`.
    """
    params = {"amount": stripe_amount(money)}
    if metadata:
        params["metadata"] = metadata
    try:
        reversal = client().v1.transfers.reversals.create(transfer_id, params, {"idempotency_key": idempotency_key})
    except stripe.StripeError as exc:
        raise _connect_error(exc) from None
    return reversal.to_dict()


# Stripe Billing, for the monthly subscriptions to project funds (issue 18).


def create_subscription_checkout_session(fund_subscription_id: int, money: Money, *, product: str,
                                         success_url: str, cancel_url: str, locale: str = "auto") -> tuple[str, str]:
    """A Stripe Checkout Session in subscription mode: ``money`` every month
    (``price_data.recurring.interval`` ``month``); returns (session id, URL).

    ``metadata``, ``subscription_data.metadata`` (so every invoice and
    subscription event carries it) and ``client_reference_id``
    (``fund-sub-<id>``) name our subscription. The idempotency key is made from
    its id, so a double click makes one session. Raises
    :class:`PaymentRefused` or :class:`PaymentsUnavailable` (see
    :func:`create_checkout_session`). (Stripe docs: "Build a subscriptions
    integration", "Create a Checkout Session".)"""
    metadata = {"fund_subscription_id": str(fund_subscription_id)}
    params = {
        "mode": "subscription",
        "line_items": [{
            "quantity": 1,
            "price_data": {
                "currency": money.currency.lower(),
                "unit_amount": stripe_amount(money),
                "recurring": {"interval": "month"},
                "product_data": {"name": product[:250]},
            },
        }],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": f"fund-sub-{fund_subscription_id}",
        "metadata": dict(metadata),
        "subscription_data": {"metadata": dict(metadata)},
        "locale": locale,
    }
    try:
        session = client().v1.checkout.sessions.create(
            params, {"idempotency_key": f"fund-sub-{fund_subscription_id}-checkout"})
    except stripe.StripeError as exc:
        raise _payment_error(exc) from None
    return session.id, session.url


def retrieve_subscription(subscription_id: str) -> dict:
    """``GET /v1/subscriptions/{id}`` as a plain dict (``status``,
    ``pause_collection``, ``metadata``). Raises :class:`PaymentsUnavailable`."""
    try:
        return client().v1.subscriptions.retrieve(subscription_id).to_dict()
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None


def pause_subscription(subscription_id: str, paused: bool) -> dict:
    """``POST /v1/subscriptions/{id}``: ``pause_collection[behavior]=void`` (no
    invoice is charged while paused) or, to resume, ``pause_collection`` unset.
    Returns the subscription. Raises :class:`PaymentsUnavailable`. (Stripe docs:
    "Pause payment collection".)"""
    params = {"pause_collection": {"behavior": "void"}} if paused else {"pause_collection": ""}
    try:
        return client().v1.subscriptions.update(subscription_id, params).to_dict()
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None


def cancel_subscription(subscription_id: str) -> dict:
    """``DELETE /v1/subscriptions/{id}``: no more invoices, now. Stripe sends
    ``customer.subscription.deleted``. A subscription already canceled is read
    back. Returns it. Raises :class:`PaymentsUnavailable`."""
    try:
        return client().v1.subscriptions.cancel(subscription_id).to_dict()
    except stripe.InvalidRequestError:
        return retrieve_subscription(subscription_id)
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None
