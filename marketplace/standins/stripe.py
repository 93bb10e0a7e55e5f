"""A local stand-in for the parts of Stripe's API the commons uses, for the demo
and the tests (started by ``make run``: :mod:`marketplace.standins.serve`). Never used in production.

It answers ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}``,
``POST /v1/checkout/sessions/{id}/expire``, ``GET /v1/payment_intents/{id}``
(``expand[]=latest_charge``), ``GET /v1/charges/{id}``, ``POST /v1/refunds``,
``GET /v1/refunds`` and ``GET /v1/disputes`` in Stripe's object shapes, and
serves a page at each session's ``url`` with a "Pay" button: paying marks the
session paid (a pledge's, or a matching pool's budget: the stand-in carries
whatever ``metadata`` names), sends ``checkout.session.completed`` to the webhook URL signed
exactly as Stripe signs (``Stripe-Signature: t=…,v1=HMAC-SHA256``), and sends
the browser to the session's ``success_url``. As in Stripe, the session keeps
``client_reference_id`` and ``metadata``; paying creates a PaymentIntent with
``payment_intent_data.metadata`` and a charge that carries the
PaymentIntent's id and metadata; a refund updates the charge's
``amount_refunded`` and refund list. ``/dashboard`` lists sessions and
refunds with the buttons of what Stripe does by itself: let a session
expire (``checkout.session.expired``), make a refund fail
(``refund.failed``, e.g. an expired card). :meth:`LocalStripe.dispute` opens
and closes disputes.

Billing (project funds' monthly subscriptions): a session created with
``mode=subscription`` (``price_data[recurring][interval]=month``) makes, when
paid, a customer, a subscription carrying ``subscription_data[metadata]``
and its first invoice, paid; the page sends ``checkout.session.completed``,
``customer.subscription.created`` and ``invoice.paid``.
:meth:`LocalStripe.bill` makes the next month's invoice (paid, or failed:
``invoice.payment_failed``); a paused or canceled subscription gets none.
``GET /v1/subscriptions/{id}``, ``POST /v1/subscriptions/{id}``
(``pause_collection[behavior]=void``, or ``pause_collection=`` to resume:
``customer.subscription.updated``), ``DELETE /v1/subscriptions/{id}``
(``customer.subscription.deleted``) and ``GET /v1/invoices/{id}`` answer in
Stripe's shapes (API version 2024-06-20: an invoice names its
``subscription``, ``subscription_details.metadata`` and ``payment_intent``).
The dashboard bills each live subscription, paid or failed.

Connect: ``POST /v1/accounts``, ``GET /v1/accounts/{id}``, ``POST
/v1/account_links``, ``POST /v1/transfers``, ``GET /v1/transfers/{id}`` and
``POST /v1/transfers/{id}/reversals``. An account link's ``url`` serves a
"Complete onboarding" page: completing it activates the account's
``transfers`` capability, sends ``account.updated`` and sends the browser to
the link's ``return_url``. These endpoints keep Stripe's v1 idempotency rules:
the first response for an ``Idempotency-Key`` (success or refusal) is saved
and replayed for the same parameters; other parameters get a 400
``idempotency_error``; a request missing a required parameter is not saved.
Set ``drop_next_transfer_response`` to have the next new transfer created but
its response lost (the client times out); ``forget_idempotency_keys()`` does
what Stripe does after 24 hours.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import html
import json
import re
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from marketplace.standins.base import StandInServer, read_state, write_state

_TRANSFER = re.compile(r"/v1/transfers/([^/]+)")
_REVERSALS = re.compile(r"/v1/transfers/([^/]+)/reversals")
_EXPIRE = re.compile(r"/v1/checkout/sessions/([^/]+)/expire")
_SUBSCRIPTION = re.compile(r"/v1/subscriptions/([^/]+)")


class Refused(Exception):
    """A Stripe error answer: ``status`` and the ``{"error": …}`` body."""

    def __init__(self, status: int, code: str | None, message: str, param: str | None = None,
                 error_type: str = "invalid_request_error"):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": error_type, "code": code, "message": message, "param": param}}


def _nested(form: dict, name: str) -> dict:
    """``{"k": v}`` from form fields ``name[k]=v`` (Stripe's form encoding of a hash)."""
    prefix = f"{name}["
    return {key[len(prefix):-1]: value for key, value in form.items()
            if key.startswith(prefix) and key.endswith("]") and "][" not in key[len(prefix):]}


def page(title: str, body: str) -> str:
    """A stand-in page: ``title`` (plain text) and ``body`` (HTML), labelled as a local stand-in."""
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)} · local stand-in for Stripe</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem;"
            "line-height:1.5}.standin{background:#fff3cd;color:#3d2e00;border:1px solid #8a6d00;padding:.5rem}"
            "button{font-size:1rem;padding:.4rem 1rem}</style></head><body>"
            "<p class=standin role=note><strong>Local stand-in for Stripe.</strong> "
            "No money moves; nothing leaves this computer.</p>"
            f"<main><h1>{html.escape(title)}</h1>{body}</main></body></html>")


def _amount(minor: int, currency: str) -> str:
    """``3000, "usd"`` → ``"30.00 USD"`` (zero-decimal currencies such as JPY have no decimals)."""
    exponent = 0 if currency.lower() in ZERO_DECIMAL else 2
    whole = f"{minor / 10 ** exponent:.{exponent}f}" if exponent else str(minor)
    return f"{whole} {currency.upper()}"


# Stripe's zero-decimal currencies among those the commons may accept.
ZERO_DECIMAL = frozenset({"jpy", "krw", "vnd", "xaf", "xof", "ugx", "rwf", "bif", "clp", "gnf", "kmf", "mga",
                          "pyg", "vuv", "xpf", "djf"})


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header for ``payload`` (Stripe's scheme v1)."""
    timestamp = timestamp or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class LocalStripe(StandInServer):
    """The server; ``url`` is its base address. Everything lives in memory."""

    # What a restart keeps when ``state_path`` is given (the objects, not the test switches).
    STATE = ("sessions", "payment_intents", "intent_metadata", "charges", "disputes", "refunds",
             "by_idempotency_key", "accounts", "account_links", "transfers", "saved_responses",
             "subscriptions", "invoices", "subscription_metadata")

    def __init__(self, host: str = "127.0.0.1", port: int = 0, webhook_url: str | None = None,
                 webhook_secret: str | None = None, state_path: str | None = None):
        self.sessions: dict[str, dict] = {}
        self.payment_intents: dict[str, dict] = {}
        self.intent_metadata: dict[str, dict] = {}  # payment_intent_data.metadata, by session id
        self.charges: dict[str, dict] = {}
        self.disputes: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict, dict]] = []  # method, path, form, headers
        self.webhook_url, self.webhook_secret = webhook_url, webhook_secret
        self.accounts: dict[str, dict] = {}
        self.account_links: dict[str, dict] = {}  # the latest link of each account, by account id
        self.transfers: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}  # Billing
        self.invoices: dict[str, dict] = {}
        self.subscription_metadata: dict[str, dict] = {}  # subscription_data.metadata, by session id
        # Idempotency-Key -> (path, form, status, body) of the first request (Connect endpoints).
        self.saved_responses: dict[str, tuple[str, dict, int, dict]] = {}
        # Currency (lower case) -> smallest ``unit_amount`` a Checkout Session takes; below it
        # Stripe answers 400 ``amount_too_small`` (as it does for amounts under its minimum charge).
        self.checkout_minimums: dict[str, int] = {}
        self.drop_next_transfer_response = False
        # Called with each new transfer after it is made and before its answer is sent
        # (a test kills the worker there, as a crash between Stripe and our commit).
        self.on_transfer_made = None
        self.drop_response_seconds = 2.0  # longer than the client's timeout in the tests
        self._lock = threading.Lock()
        self._event_numbers = iter(range(1, 10**9))
        self.state_path = state_path
        if state_path:
            self._load()
        self._serve(host, port, self._handler())

    def _load(self) -> None:
        saved = read_state(self.state_path)
        for name in self.STATE:
            getattr(self, name).update(saved.get(name, {}))
        self._event_numbers = iter(range(saved.get("next_event", 1), 10**9))

    def save(self) -> None:
        """Write the objects to ``state_path`` (atomically: a temporary file renamed), so that
        ``make run`` restarted still knows its Checkout Sessions, accounts and transfers."""
        if not self.state_path:
            return
        with self._lock:
            state = {name: getattr(self, name) for name in self.STATE}
            state["next_event"] = next(self._event_numbers)
            self._event_numbers = iter(range(state["next_event"] + 1, 10**9))
            write_state(self.state_path, state)

    def wait(self) -> None:
        self._thread.join()

    def pay(self, session_id: str, payment_status: str = "paid") -> dict:
        """What happens on Stripe's page: the funder pays. Returns the session.

        Creates the PaymentIntent (with ``payment_intent_data.metadata``) and
        its charge (carrying the PaymentIntent's id and metadata, as Stripe's
        charges do); ``payment_status`` ``unpaid`` leaves both processing
        (an asynchronous method such as SEPA debit).
        """
        session = self.sessions[session_id]
        if session.get("mode") == "subscription":
            return self._pay_subscription(session)
        if session.get("payment_intent") is None:
            number = len(self.payment_intents) + 1
            intent_id, charge_id = f"pi_local_{number:04d}", f"ch_local_{number:04d}"
            settled = payment_status == "paid"
            metadata = dict(self.intent_metadata.get(session_id, {}))
            self.charges[charge_id] = {
                "id": charge_id, "object": "charge", "amount": session["amount_total"],
                "amount_captured": session["amount_total"] if settled else 0, "amount_refunded": 0,
                "currency": session["currency"], "payment_intent": intent_id, "metadata": metadata,
                "paid": settled, "captured": settled, "status": "succeeded" if settled else "pending",
                "refunded": False, "disputed": False, "created": int(time.time()), "livemode": False,
                "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                            "url": f"/v1/charges/{charge_id}/refunds"},
            }
            self.payment_intents[intent_id] = {
                "id": intent_id, "object": "payment_intent", "amount": session["amount_total"],
                "amount_received": session["amount_total"] if settled else 0, "currency": session["currency"],
                "metadata": metadata, "status": "succeeded" if settled else "processing",
                "latest_charge": charge_id, "created": int(time.time()), "livemode": False,
            }
            session["payment_intent"] = intent_id
        session.update(payment_status=payment_status, status="complete")
        return copy.deepcopy(session)

    def _payment(self, amount: int, currency: str, metadata: dict, paid: bool) -> str:
        """A PaymentIntent and its charge (paid, or declined); returns the PaymentIntent id."""
        number = len(self.payment_intents) + 1
        intent_id, charge_id = f"pi_local_{number:04d}", f"ch_local_{number:04d}"
        self.charges[charge_id] = {
            "id": charge_id, "object": "charge", "amount": amount, "amount_captured": amount if paid else 0,
            "amount_refunded": 0, "currency": currency, "payment_intent": intent_id, "metadata": dict(metadata),
            "paid": paid, "captured": paid, "status": "succeeded" if paid else "failed", "refunded": False,
            "disputed": False, "created": int(time.time()), "livemode": False,
            "failure_code": None if paid else "card_declined",
            "refunds": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                        "url": f"/v1/charges/{charge_id}/refunds"},
        }
        self.payment_intents[intent_id] = {
            "id": intent_id, "object": "payment_intent", "amount": amount, "amount_received": amount if paid else 0,
            "currency": currency, "metadata": dict(metadata),
            "status": "succeeded" if paid else "requires_payment_method", "latest_charge": charge_id,
            "created": int(time.time()), "livemode": False,
        }
        return intent_id

    def _pay_subscription(self, session: dict) -> dict:
        """Checkout in subscription mode paid: a customer, the subscription and its first invoice, paid."""
        if session.get("subscription") is None:
            number = len(self.subscriptions) + 1
            sub_id, customer = f"sub_local_{number:04d}", f"cus_local_{number:04d}"
            now = int(time.time())
            self.subscriptions[sub_id] = {
                "id": sub_id, "object": "subscription", "status": "active", "customer": customer,
                "metadata": dict(self.subscription_metadata.get(session["id"], {})), "pause_collection": None,
                "currency": session["currency"], "created": now, "current_period_start": now,
                "current_period_end": now + 30 * 24 * 3600, "canceled_at": None, "livemode": False,
                "items": {"object": "list", "data": [{"id": f"si_local_{number:04d}", "object": "subscription_item",
                                                      "price": {"unit_amount": session["amount_total"],
                                                                "currency": session["currency"],
                                                                "recurring": {"interval": "month"}}}]},
            }
            session.update(subscription=sub_id, customer=customer)
            self._invoice(self.subscriptions[sub_id], paid=True, reason="subscription_create")
        session.update(payment_status="paid", status="complete")
        return copy.deepcopy(session)

    def _invoice(self, sub: dict, *, paid: bool, reason: str) -> dict:
        price = sub["items"]["data"][0]["price"]
        amount, currency = price["unit_amount"], price["currency"]
        number = len(self.invoices) + 1
        invoice_id = f"in_local_{number:04d}"
        intent = self._payment(amount, currency, {}, paid)
        # As Stripe's (API 2024-06-20): an invoice's PaymentIntent and charge name the invoice.
        self.payment_intents[intent]["invoice"] = f"in_local_{number:04d}"
        self.charges[self.payment_intents[intent]["latest_charge"]]["invoice"] = f"in_local_{number:04d}"
        self.invoices[invoice_id] = {
            "id": invoice_id, "object": "invoice", "customer": sub["customer"], "subscription": sub["id"],
            "subscription_details": {"metadata": dict(sub["metadata"])}, "billing_reason": reason,
            "amount_due": amount, "amount_paid": amount if paid else 0,
            "amount_remaining": 0 if paid else amount, "currency": currency, "payment_intent": intent,
            "status": "paid" if paid else "open", "paid": paid, "attempted": True, "attempt_count": 1,
            "created": int(time.time()), "livemode": False, "metadata": {},
        }
        return self.invoices[invoice_id]

    def subscription_events(self, session: dict) -> list[tuple[str, dict]]:
        """What Stripe sends after a Checkout in subscription mode is paid (in this order here; any order there)."""
        sub = self.subscriptions[session["subscription"]]
        invoice = next(i for i in self.invoices.values() if i["subscription"] == sub["id"])
        return [("checkout.session.completed", copy.deepcopy(session)),
                ("customer.subscription.created", copy.deepcopy(sub)),
                ("invoice.paid", copy.deepcopy(invoice))]

    def bill(self, subscription_id: str, *, fail: bool = False, send: bool = True) -> dict | None:
        """The next month's invoice of a subscription: paid (``invoice.paid``) or
        the card declined (``invoice.payment_failed``). A paused or canceled
        subscription gets none (returns None). Returns the invoice."""
        sub = self.subscriptions[subscription_id]
        if sub["status"] != "active" or sub.get("pause_collection"):
            return None
        invoice = copy.deepcopy(self._invoice(sub, paid=not fail, reason="subscription_cycle"))
        if send and self.webhook_url:
            self.send_event("invoice.payment_failed" if fail else "invoice.paid", invoice)
        return invoice

    def update_subscription(self, subscription_id: str, form: dict, raw: dict) -> dict:
        """``POST /v1/subscriptions/{id}``: pause (``pause_collection[behavior]``) or resume (``pause_collection=``)."""
        sub = self.subscriptions[subscription_id]
        previous = {"pause_collection": copy.deepcopy(sub["pause_collection"])}
        if form.get("pause_collection[behavior]"):
            sub["pause_collection"] = {"behavior": form["pause_collection[behavior]"], "resumes_at": None}
        elif "pause_collection" in raw:
            sub["pause_collection"] = None
        if self.webhook_url and previous["pause_collection"] != sub["pause_collection"]:
            self.send_event("customer.subscription.updated", copy.deepcopy(sub), previous_attributes=previous)
        return sub

    def cancel_subscription(self, subscription_id: str) -> dict:
        """``DELETE /v1/subscriptions/{id}``: canceled now (``customer.subscription.deleted``)."""
        sub = self.subscriptions[subscription_id]
        if sub["status"] == "canceled":
            raise Refused(400, "resource_missing", f"No such subscription: '{subscription_id}'", "id")
        sub.update(status="canceled", canceled_at=int(time.time()))
        if self.webhook_url:
            self.send_event("customer.subscription.deleted", copy.deepcopy(sub))
        return sub

    def settle(self, session_id: str) -> dict:
        """An asynchronous payment of the session succeeds. Returns the session."""
        session = self.sessions[session_id]
        intent = self.payment_intents[session["payment_intent"]]
        charge = self.charges[intent["latest_charge"]]
        intent.update(status="succeeded", amount_received=intent["amount"])
        charge.update(paid=True, captured=True, status="succeeded", amount_captured=charge["amount"])
        session["payment_status"] = "paid"
        return copy.deepcopy(session)

    def expire(self, session_id: str) -> dict:
        """The session expires unpaid (after 24 h in Stripe, or when asked). Returns the session."""
        self.sessions[session_id].update(status="expired")
        return copy.deepcopy(self.sessions[session_id])

    def charge_of(self, payment_intent_id: str) -> dict:
        """The latest charge of a PaymentIntent (a copy)."""
        return copy.deepcopy(self.charges[self.payment_intents[payment_intent_id]["latest_charge"]])

    def intent_with_charge(self, payment_intent_id: str) -> dict:
        """The PaymentIntent with ``latest_charge`` expanded."""
        intent = copy.deepcopy(self.payment_intents[payment_intent_id])
        intent["latest_charge"] = self.charge_of(payment_intent_id)
        return intent

    def fail_refund(self, refund_id: str, reason: str = "expired_or_canceled_card") -> dict:
        """A refund fails after it was made (the card was closed): its amount is
        no longer refunded on the charge. Returns the refund."""
        refund = next(r for r in self.refunds.values() if r["id"] == refund_id)
        if refund["status"] != "failed":
            refund.update(status="failed", failure_reason=reason)
            charge = self.charges.get(refund.get("charge") or "")
            if charge is not None:
                charge["amount_refunded"] -= refund["amount"]
                charge["refunded"] = False
                for listed in charge["refunds"]["data"]:
                    if listed["id"] == refund_id:
                        listed.update(status="failed", failure_reason=reason)
        return copy.deepcopy(refund)

    def dispute(self, payment_intent_id: str, status: str = "needs_response", amount: int | None = None) -> dict:
        """A chargeback on the payment, opened or moved to ``status`` (``won``, ``lost``). Returns the dispute."""
        charge = self.charges[self.payment_intents[payment_intent_id]["latest_charge"]]
        dispute_id = f"dp_local_{charge['id'][9:]}"
        dispute = self.disputes.setdefault(dispute_id, {
            "id": dispute_id, "object": "dispute", "amount": amount or charge["amount"] - charge["amount_refunded"],
            "currency": charge["currency"], "charge": charge["id"], "payment_intent": payment_intent_id,
            "created": int(time.time()), "livemode": False, "metadata": {}, "reason": "fraudulent"})
        dispute["status"] = status
        charge["disputed"] = True
        return copy.deepcopy(dispute)

    def send_event(self, event_type: str, obj: dict, previous_attributes: dict | None = None) -> int:
        """POST a signed event to the webhook URL; returns the HTTP status."""
        # The counter keeps two events sent in the same millisecond apart (webhooks are stored by event id).
        data = {"object": obj} if previous_attributes is None else {"object": obj,
                                                                    "previous_attributes": previous_attributes}
        event = {"id": f"evt_local_{int(time.time() * 1000)}_{next(self._event_numbers)}", "object": "event",
                 "type": event_type, "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
                 "pending_webhooks": 1, "data": data, "request": {"id": None, "idempotency_key": None}}
        payload = json.dumps(event)
        request = urllib.request.Request(self.webhook_url, data=payload.encode(), method="POST", headers={
            "Content-Type": "application/json", "Stripe-Signature": sign(payload, self.webhook_secret)})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    def create_session(self, form: dict, key: str | None) -> dict:
        if key and key in self.by_idempotency_key:
            return self.sessions[self.by_idempotency_key[key]]
        session_id = f"cs_test_local_{len(self.sessions) + 1:04d}"
        self.sessions[session_id] = {
            "id": session_id, "object": "checkout.session", "mode": form.get("mode") or "payment", "status": "open",
            "payment_status": "unpaid", "url": f"{self.url}/pay/{session_id}",
            "amount_total": int(form["line_items[0][price_data][unit_amount]"]),
            "currency": form["line_items[0][price_data][currency]"],
            "client_reference_id": form.get("client_reference_id"),
            "metadata": _nested(form, "metadata"),
            "success_url": form.get("success_url"), "cancel_url": form.get("cancel_url"),
            # As in Stripe, the PaymentIntent is made when the funder pays.
            "payment_intent": None, "livemode": False,
            "expires_at": int(time.time()) + 24 * 3600,
        }
        self.intent_metadata[session_id] = _nested(form, "payment_intent_data[metadata]")
        if form.get("mode") == "subscription":
            self.sessions[session_id].update(subscription=None, customer=None)
            self.subscription_metadata[session_id] = _nested(form, "subscription_data[metadata]")
        if key:
            self.by_idempotency_key[key] = session_id
        return self.sessions[session_id]

    def create_refund(self, form: dict, key: str | None) -> dict:
        if key and key in self.refunds:
            return self.refunds[key]
        intent = self.payment_intents.get(form["payment_intent"])
        charge = self.charges.get(intent["latest_charge"]) if intent else None
        refund = {"id": f"re_test_{len(self.refunds) + 1:04d}", "object": "refund", "amount": int(form["amount"]),
                  "payment_intent": form["payment_intent"], "status": "succeeded",
                  "currency": charge["currency"] if charge else "usd", "charge": charge["id"] if charge else None,
                  "metadata": _nested(form, "metadata"), "created": int(time.time()), "failure_reason": None}
        self.refunds[key or refund["id"]] = refund
        if charge is not None:
            charge["amount_refunded"] += refund["amount"]
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            charge["refunds"]["data"].insert(0, copy.deepcopy(refund))
            charge["refunds"]["total_count"] += 1
        return refund

    def dashboard(self) -> str:
        """The demo's stand-in for Stripe's dashboard: what Stripe does without the funder."""
        rows = []
        for session in self.sessions.values():
            button = (f"<form method=post action='/dashboard/expire/{html.escape(session['id'])}'>"
                      f"<button>Let it expire</button></form>" if session["status"] == "open" else "")
            rows.append(f"<li>{html.escape(session['id'])}: {html.escape(session['status'])} "
                        f"{html.escape(_amount(session['amount_total'], session['currency']))}{button}</li>")
        for refund in self.refunds.values():
            button = (f"<form method=post action='/dashboard/fail-refund/{html.escape(refund['id'])}'>"
                      f"<button>Make this refund fail (card closed)</button></form>"
                      if refund["status"] != "failed" else "")
            rows.append(f"<li>{html.escape(refund['id'])}: refund of "
                        f"{html.escape(_amount(refund['amount'], refund['currency']))}, "
                        f"{html.escape(refund['status'])}{button}</li>")
        for sub in self.subscriptions.values():
            price = sub["items"]["data"][0]["price"]
            buttons = ""
            if sub["status"] == "active" and not sub.get("pause_collection"):
                buttons = (f"<form method=post action='/dashboard/bill/{html.escape(sub['id'])}'>"
                           f"<button>Bill next month</button></form>"
                           f"<form method=post action='/dashboard/bill-fail/{html.escape(sub['id'])}'>"
                           f"<button>Bill next month: card declined</button></form>")
            state = "paused" if sub.get("pause_collection") else sub["status"]
            rows.append(f"<li>{html.escape(sub['id'])}: subscription of "
                        f"{html.escape(_amount(price['unit_amount'], price['currency']))} a month, "
                        f"{html.escape(state)}{buttons}</li>")
        return page("Local Stripe dashboard", "<p>What Stripe does without the funder: a Checkout that "
                    "expires, a refund the card's bank refuses, a subscription's monthly invoice.</p><ul>"
                    + "".join(rows) + "</ul>")

    # Connect

    def once(self, key: str | None, path: str, form: dict, create) -> tuple[int, dict, bool]:
        """Run ``create(form)`` under Stripe's v1 idempotency rules: (status, body, replayed).

        ``create`` returns the object or raises :class:`Refused`; both answers
        are saved under ``key`` and replayed for the same path and form.
        """
        with self._lock:
            if key and key in self.saved_responses:
                first_path, first_form, status, body = self.saved_responses[key]
                if (first_path, first_form) != (path, form):
                    return 400, Refused(400, None, (
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different "
                        "request."), error_type="idempotency_error").body, False
                return status, copy.deepcopy(body), True
            try:
                status, body = 200, copy.deepcopy(create(form))
            except Refused as refused:
                status, body = refused.status, refused.body
            if key:
                self.saved_responses[key] = (path, dict(form), status, copy.deepcopy(body))
            return status, body, False

    def forget_idempotency_keys(self) -> None:
        """What Stripe does 24 hours after a request: its idempotency key is
        forgotten, so the same key makes a new object."""
        with self._lock:
            self.saved_responses.clear()
            # Refunds are kept by their key until then: from now on, only by their own id.
            self.refunds = {refund["id"]: refund for refund in self.refunds.values()}

    def create_account(self, form: dict) -> dict:
        """``POST /v1/accounts``: a new account that cannot receive transfers until onboarded."""
        account_id = f"acct_local_{len(self.accounts) + 1:04d}"
        requested = [key.split("[")[1][:-1] for key, value in form.items()
                     if key.startswith("capabilities[") and key.endswith("][requested]") and value == "true"]
        due = ["business_type", "external_account", "individual.first_name", "individual.last_name",
               "tos_acceptance.date", "tos_acceptance.ip"]
        self.accounts[account_id] = {
            "id": account_id, "object": "account", "type": form.get("type", "express"),
            "country": form.get("country", "US"), "email": form.get("email"), "created": int(time.time()),
            "default_currency": "usd" if form.get("country", "US") == "US" else None,
            "business_type": form.get("business_type"), "capabilities": {name: "inactive" for name in requested},
            "company": {"name": form["company[name]"]} if "company[name]" in form else None,
            "charges_enabled": False, "payouts_enabled": False, "details_submitted": False,
            "controller": {"type": "application"}, "metadata": _nested(form, "metadata"),
            "external_accounts": {"object": "list", "data": [], "has_more": False,
                                  "url": f"/v1/accounts/{account_id}/external_accounts"},
            "requirements": {"alternatives": [], "current_deadline": None, "currently_due": list(due),
                             "disabled_reason": "requirements.past_due", "errors": [], "eventually_due": list(due),
                             "past_due": list(due), "pending_verification": []},
            "tos_acceptance": {"date": None, "ip": None, "user_agent": None,
                               "service_agreement": form.get("tos_acceptance[service_agreement]", "full")},
            "livemode": False,
        }
        return self.accounts[account_id]

    def _account(self, account_id: str, param: str = "account") -> dict:
        if account_id not in self.accounts:
            raise Refused(400, "resource_missing", f"No such account: '{account_id}'", param)
        return self.accounts[account_id]

    def create_account_link(self, form: dict) -> dict:
        """``POST /v1/account_links``: the onboarding page of this server for the account."""
        account = self._account(form["account"])
        now = int(time.time())
        link = {"object": "account_link", "created": now, "expires_at": now + 300,
                "url": f"{self.url}/onboard/{account['id']}"}
        self.account_links[account["id"]] = dict(link, refresh_url=form.get("refresh_url"),
                                                 return_url=form.get("return_url"), type=form.get("type"))
        return link

    def activate(self, account_id: str) -> dict:
        """What Stripe's onboarding does when the person finishes: transfers become active. Returns the account."""
        account = self.accounts[account_id]
        account["capabilities"]["transfers"] = "active"
        account.update(payouts_enabled=True, details_submitted=True)
        account["requirements"].update(currently_due=[], past_due=[], eventually_due=[], disabled_reason=None)
        account["tos_acceptance"].update(date=int(time.time()), ip="127.0.0.1")
        return copy.deepcopy(account)

    def deactivate(self, account_id: str) -> dict:
        """Stripe needs more information: transfers become inactive. Returns the account."""
        account = self.accounts[account_id]
        account["capabilities"]["transfers"] = "inactive"
        account["payouts_enabled"] = False
        account["requirements"].update(currently_due=["external_account"], past_due=["external_account"],
                                       eventually_due=["external_account"], disabled_reason="requirements.past_due")
        return copy.deepcopy(account)

    def create_transfer(self, form: dict) -> dict:
        """``POST /v1/transfers`` to an account whose ``transfers`` capability is active."""
        account = self._account(form["destination"], "destination")
        if account["capabilities"].get("transfers") != "active":
            raise Refused(400, "insufficient_capabilities_for_transfer", (
                "Your destination account needs to have at least one of the following capabilities enabled: "
                "transfers, crypto_transfers, legacy_payments"), "destination")
        number = len(self.transfers) + 1
        transfer_id = f"tr_local_{number:04d}"
        self.transfers[transfer_id] = {
            "id": transfer_id, "object": "transfer", "amount": int(form["amount"]), "amount_reversed": 0,
            "currency": form["currency"], "destination": account["id"], "created": int(time.time()),
            "balance_transaction": f"txn_local_tr_{number:04d}", "destination_payment": f"py_local_{number:04d}",
            "description": form.get("description"), "livemode": False, "metadata": _nested(form, "metadata"),
            "reversals": {"object": "list", "data": [], "has_more": False, "total_count": 0,
                          "url": f"/v1/transfers/{transfer_id}/reversals"},
            "reversed": False, "source_transaction": None, "source_type": "card",
            "transfer_group": form.get("transfer_group"),
        }
        return self.transfers[transfer_id]

    def create_reversal(self, transfer_id: str, form: dict) -> dict:
        """``POST /v1/transfers/{id}/reversals``: part or all of what is left (``amount`` omitted: all)."""
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            raise Refused(404, "resource_missing", f"No such transfer: '{transfer_id}'", "id")
        left = transfer["amount"] - transfer["amount_reversed"]
        amount = int(form.get("amount", left))
        if amount <= 0 or amount > left:
            raise Refused(400, "amount_too_large", (
                f"Refund amount ({amount}) is greater than the unreversed amount on the transfer ({left})"), "amount")
        reversals = transfer["reversals"]
        reversal = {"id": f"trr_local_{transfer_id[9:]}_{reversals['total_count'] + 1}", "object": "transfer_reversal",
                    "amount": amount, "currency": transfer["currency"], "transfer": transfer_id,
                    "created": int(time.time()), "balance_transaction": None, "destination_payment_refund": None,
                    "metadata": _nested(form, "metadata"), "source_refund": None}
        reversals["data"].insert(0, reversal)
        reversals["total_count"] += 1
        transfer["amount_reversed"] += amount
        transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
        return reversal

    def _handler(self):
        stripe_server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict | str, content_type: str = "application/json",
                       headers: dict | None = None):
                raw = (json.dumps(body) if content_type == "application/json" else body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _see_other(self, target: str) -> None:
                self.send_response(303)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _once(self, key: str | None, path: str, form: dict, required: tuple[str, ...], create) -> None:
                missing = [name for name in required if not form.get(name)]
                if missing:  # fails validation: Stripe saves nothing under the key
                    refused = Refused(400, "parameter_missing", f"Missing required param: {missing[0]}.", missing[0])
                    return self._reply(refused.status, refused.body)
                status, body, replayed = stripe_server.once(key, path, form, create)
                if status == 200 and not replayed and path == "/v1/transfers" and stripe_server.on_transfer_made:
                    stripe_server.on_transfer_made(body)
                if status == 200 and not replayed and path == "/v1/transfers" and \
                        stripe_server.drop_next_transfer_response:
                    # Stripe made the transfer; the answer is lost on the way back (no response, then closed).
                    stripe_server.drop_next_transfer_response = False
                    time.sleep(stripe_server.drop_response_seconds)
                    self.close_connection = True
                    return None
                return self._reply(status, body, headers={"Idempotent-Replayed": "true"} if replayed else None)

            def _connect(self, path: str, form: dict, key: str | None) -> bool:
                """Answer a Connect API request; False when ``path`` is not one."""
                if path == "/v1/accounts":
                    self._once(key, path, form, ("type",), stripe_server.create_account)
                elif path == "/v1/account_links":
                    self._once(key, path, form, ("account", "type"), stripe_server.create_account_link)
                elif path == "/v1/transfers":
                    self._once(key, path, form, ("amount", "currency", "destination"), stripe_server.create_transfer)
                elif match := _REVERSALS.fullmatch(path):
                    self._once(key, path, form, (), lambda f: stripe_server.create_reversal(match[1], f))
                elif path.startswith("/onboard/") and path[9:] in stripe_server.accounts:
                    account_id = path[9:]
                    account = stripe_server.activate(account_id)
                    if stripe_server.webhook_url:
                        stripe_server.send_event("account.updated", account, previous_attributes={
                            "capabilities": {"transfers": "inactive"}, "payouts_enabled": False})
                    link = stripe_server.account_links.get(account_id) or {}
                    self.send_response(303)
                    self.send_header("Location", link.get("return_url") or "/")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    return False
                return True

            def do_POST(self):  # noqa: N802
                try:
                    self._post()
                finally:
                    stripe_server.save()

            def _post(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                form = {k: v[-1] for k, v in parse_qs(body).items()}
                raw = parse_qs(body, keep_blank_values=True)
                path = urlsplit(self.path).path
                stripe_server.requests.append(("POST", path, form, dict(self.headers)))
                key = self.headers.get("Idempotency-Key")
                if path == "/v1/checkout/sessions":
                    currency = form.get("line_items[0][price_data][currency]", "")
                    amount = int(form.get("line_items[0][price_data][unit_amount]") or 0)
                    if amount < stripe_server.checkout_minimums.get(currency, 0):
                        refused = Refused(400, "amount_too_small", (
                            "The Checkout Session's total amount due must add up to at least "
                            f"{stripe_server.checkout_minimums[currency]} {currency}."),
                            "line_items[0][price_data][unit_amount]")
                        return self._reply(refused.status, refused.body)
                    return self._reply(200, stripe_server.create_session(form, key))
                if path == "/v1/refunds":
                    return self._reply(200, stripe_server.create_refund(form, key))
                if (match := _EXPIRE.fullmatch(path)) and match[1] in stripe_server.sessions:
                    if stripe_server.sessions[match[1]]["status"] != "open":
                        refused = Refused(400, "checkout_session_not_open", "Only Checkout Sessions with a status "
                                          "in [\"open\"] can be expired.")
                        return self._reply(refused.status, refused.body)
                    session = stripe_server.expire(match[1])
                    if stripe_server.webhook_url:
                        stripe_server.send_event("checkout.session.expired", session)
                    return self._reply(200, session)
                if self._connect(path, form, key):
                    return None
                if path.startswith("/dashboard/expire/") and path[18:] in stripe_server.sessions:
                    session = stripe_server.sessions[path[18:]]
                    if session["status"] == "open":
                        expired = stripe_server.expire(session["id"])
                        if stripe_server.webhook_url:
                            stripe_server.send_event("checkout.session.expired", expired)
                    return self._see_other("/dashboard")
                if path.startswith("/dashboard/fail-refund/") and \
                        path[23:] in {refund["id"] for refund in stripe_server.refunds.values()}:
                    refund = stripe_server.fail_refund(path[23:])
                    if stripe_server.webhook_url:
                        stripe_server.send_event("refund.failed", refund)
                    return self._see_other("/dashboard")
                if (match := _SUBSCRIPTION.fullmatch(path)) and match[1] in stripe_server.subscriptions:
                    return self._reply(200, stripe_server.update_subscription(match[1], form, raw))
                for prefix, fail in (("/dashboard/bill/", False), ("/dashboard/bill-fail/", True)):
                    if path.startswith(prefix) and path[len(prefix):] in stripe_server.subscriptions:
                        stripe_server.bill(path[len(prefix):], fail=fail)
                        return self._see_other("/dashboard")
                if path.startswith("/pay/") and path[5:] in stripe_server.sessions:
                    session = stripe_server.pay(path[5:])
                    if stripe_server.webhook_url and session.get("mode") == "subscription":
                        for event_type, obj in stripe_server.subscription_events(session):
                            stripe_server.send_event(event_type, obj)
                    elif stripe_server.webhook_url:
                        stripe_server.send_event("checkout.session.completed", session)
                    return self._see_other(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
                return self._reply(404, {"error": {"message": "Unrecognized request URL",
                                                   "type": "invalid_request_error"}})

            def do_DELETE(self):  # noqa: N802
                try:
                    path = urlsplit(self.path).path
                    stripe_server.requests.append(("DELETE", path, {}, dict(self.headers)))
                    match = _SUBSCRIPTION.fullmatch(path)
                    if not match or match[1] not in stripe_server.subscriptions:
                        refused = Refused(404, "resource_missing", "No such subscription", "id")
                        return self._reply(refused.status, refused.body)
                    try:
                        return self._reply(200, stripe_server.cancel_subscription(match[1]))
                    except Refused as refused:
                        return self._reply(refused.status, refused.body)
                finally:
                    stripe_server.save()

            def do_GET(self):  # noqa: N802
                split = urlsplit(self.path)
                path = split.path
                stripe_server.requests.append(("GET", path, {}, dict(self.headers)))
                tail = path.rsplit("/", 1)[-1]
                if path == "/v1/refunds":
                    intent = parse_qs(split.query).get("payment_intent", [""])[0]
                    data = [r for r in stripe_server.refunds.values() if r["payment_intent"] == intent]
                    return self._reply(200, {"object": "list", "data": data, "has_more": False, "url": "/v1/refunds"})
                if path.startswith("/v1/checkout/sessions/") and tail in stripe_server.sessions:
                    return self._reply(200, stripe_server.sessions[tail])
                if path.startswith("/v1/payment_intents/") and tail in stripe_server.payment_intents:
                    expand = [v for k, vs in parse_qs(split.query).items() if k.startswith("expand") for v in vs]
                    return self._reply(200, stripe_server.intent_with_charge(tail) if "latest_charge" in expand
                                       else stripe_server.payment_intents[tail])
                if path.startswith("/v1/charges/") and tail in stripe_server.charges:
                    return self._reply(200, stripe_server.charges[tail])
                if path == "/v1/disputes":
                    intent = parse_qs(split.query).get("payment_intent", [""])[0]
                    data = [d for d in stripe_server.disputes.values() if d["payment_intent"] == intent]
                    return self._reply(200, {"object": "list", "data": data, "has_more": False, "url": "/v1/disputes"})
                if path == "/dashboard":
                    return self._reply(200, stripe_server.dashboard(), "text/html; charset=utf-8")
                if path.startswith("/v1/subscriptions/") and tail in stripe_server.subscriptions:
                    return self._reply(200, stripe_server.subscriptions[tail])
                if path.startswith("/v1/invoices/") and tail in stripe_server.invoices:
                    return self._reply(200, stripe_server.invoices[tail])
                if path.startswith("/pay/") and tail in stripe_server.sessions:
                    session = stripe_server.sessions[tail]
                    amount = _amount(session["amount_total"], session["currency"])
                    cancel = session.get("cancel_url")
                    back = f"<p><a href='{html.escape(cancel)}'>Back without paying</a></p>" if cancel else ""
                    body = (f"<p>Pay <strong>{html.escape(amount)}</strong> by card.</p>"
                            f"<form method=post><button>Pay {html.escape(amount)}</button></form>{back}")
                    if session["status"] != "open":
                        body = f"<p>This Checkout is {html.escape(session['status'])}.</p>{back}"
                    return self._reply(200, page("Checkout", body), "text/html; charset=utf-8")
                if path.startswith("/v1/accounts/") and tail in stripe_server.accounts:
                    return self._reply(200, stripe_server.accounts[tail])
                if path == "/v1/transfers":
                    group = parse_qs(split.query).get("transfer_group", [None])[0]
                    data = [t for t in stripe_server.transfers.values()
                            if group is None or t.get("transfer_group") == group]
                    data = sorted(data, key=lambda t: t["id"], reverse=True)
                    return self._reply(200, {"object": "list", "data": data,
                                             "has_more": False, "url": "/v1/transfers"})
                if _TRANSFER.fullmatch(path) and tail in stripe_server.transfers:
                    return self._reply(200, stripe_server.transfers[tail])
                if path.startswith("/onboard/") and tail in stripe_server.accounts:
                    body = (f"<p>Account {html.escape(tail)}: Stripe would ask here for the recipient's "
                            f"identity and bank account.</p>"
                            f"<form method=post><button>Complete onboarding</button></form>")
                    return self._reply(200, page("Payout onboarding", body), "text/html; charset=utf-8")
                if path.startswith(("/v1/accounts/", "/v1/transfers/", "/v1/payment_intents/", "/v1/charges/",
                                    "/v1/checkout/sessions/")):
                    return self._reply(404, Refused(404, "resource_missing", f"No such object: '{tail}'", "id").body)
                return self._reply(404, {"error": {"message": "No such object", "type": "invalid_request_error"}})

            def log_message(self, *args):
                pass

        return Handler
