"""The one place that talks to Stripe's API (through the official ``stripe`` library).

``STRIPE_API_KEY`` authenticates; ``STRIPE_API_BASE`` points the library at
another server (a local one in tests and the demo).
"""
from __future__ import annotations

import stripe
from flask import current_app

from marketplace.money import Money, stripe_amount


class PaymentsUnavailable(RuntimeError):
    """Card payments are not configured, or Stripe could not be reached."""


def client() -> stripe.StripeClient:
    config = current_app.config
    if not config.get("STRIPE_API_KEY"):
        raise PaymentsUnavailable("STRIPE_API_KEY is not set")
    base = {"api": config["STRIPE_API_BASE"]} if config.get("STRIPE_API_BASE") else None
    return stripe.StripeClient(config["STRIPE_API_KEY"], base_addresses=base, max_network_retries=2)


def create_checkout_session(pledge_id: int, money: Money, *, item_title: str, success_url: str,
                            cancel_url: str, locale: str = "auto") -> tuple[str, str]:
    """A Stripe Checkout Session for one pledge: (session id, URL to send the funder to).

    ``POST /v1/checkout/sessions`` with an idempotency key made from the
    pledge id, so a retry or a double click creates one session. Metadata
    and ``client_reference_id`` name the pledge. Raises
    :class:`PaymentsUnavailable` when Stripe refuses or cannot be reached.
    """
    params = {
        "mode": "payment",
        "line_items": [{
            "quantity": 1,
            "price_data": {
                "currency": money.currency.lower(),
                "unit_amount": stripe_amount(money),
                "product_data": {"name": f"Pledge to: {item_title}"[:250]},
            },
        }],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": str(pledge_id),
        "metadata": {"pledge_id": str(pledge_id)},
        "payment_intent_data": {"metadata": {"pledge_id": str(pledge_id)}},
        "locale": locale,
    }
    try:
        session = client().v1.checkout.sessions.create(params, {"idempotency_key": f"pledge-{pledge_id}-checkout"})
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None
    return session.id, session.url


def retrieve_checkout_session(session_id: str) -> dict:
    """``GET /v1/checkout/sessions/{id}`` as a plain dict."""
    try:
        return client().v1.checkout.sessions.retrieve(session_id).to_dict()
    except stripe.StripeError as exc:
        raise PaymentsUnavailable(str(exc)) from None


def create_refund(payment_intent_id: str, money: Money, *, idempotency_key: str) -> str:
    """``POST /v1/refunds`` for part or all of a payment; returns the refund id.

    The idempotency key comes from our own refund request, so a retry creates
    one refund. Raises :class:`PaymentsUnavailable`.
    """
    params = {"payment_intent": payment_intent_id, "amount": stripe_amount(money)}
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
