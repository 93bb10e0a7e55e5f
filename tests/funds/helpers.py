"""Shared helpers of the fund tests: the payouts' world (a member project with
a 10% fee, a maintainer, an admin) and subscribers paying by card through the
local Stripe stand-in, its events delivered signed to our webhook."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.funds import rails
from marketplace.funds import service as funds
from marketplace.funds.models import FundSubscription, ProjectFund, SubscriptionRail
from marketplace.ledger import service as ledger
from marketplace.ledger.models import AccountKind
from marketplace.notifications.models import OutboxMessage
from marketplace.webhooks.models import WebhookDelivery
from tests.payments.test_stripe_events import post_event
from tests.payouts.helpers import World


class FundWorld(World):
    """The payouts' world plus the project's USD fund and card subscriptions through the stand-in."""

    def __init__(self, session, client, stripe):
        super().__init__(session, client)
        self.stripe = stripe
        self.fund = funds.fund_of(self.project, "USD")
        self._events = 0

    def subscribe(self, person, amount: int, *, show_name: bool = True) -> FundSubscription:
        """A card subscription, its Checkout paid at the stand-in; no event delivered yet."""
        sub = funds.subscribe(self.fund, person, amount, rail=SubscriptionRail.card, show_name=show_name)
        rails.start_checkout(sub, success_url="http://localhost/thanks", cancel_url="http://localhost/back")
        self.session.flush()
        self.stripe.pay(sub.checkout_session_id)
        return sub

    def first_events(self, sub: FundSubscription) -> list[tuple[str, dict]]:
        """What Stripe sends once the subscriber paid the Checkout (session, subscription, first invoice)."""
        return self.stripe.subscription_events(self.stripe.sessions[sub.checkout_session_id])

    def stripe_subscription(self, sub: FundSubscription) -> str:
        return self.stripe.sessions[sub.checkout_session_id]["subscription"]

    def deliver(self, event_type: str, obj: dict, event_id: str | None = None):
        """POST one signed event to the webhook (processed at once, in process); returns its delivery."""
        self._events += 1
        event_id = event_id or f"evt_fund_{self._events}"
        assert post_event(self.client, event_type, obj, event_id).status_code in (200, 202)
        return self.session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == event_id))

    def start(self, sub: FundSubscription) -> None:
        for event_type, obj in self.first_events(sub):
            self.deliver(event_type, obj)

    def bill(self, sub: FundSubscription, *, fail: bool = False) -> dict | None:
        """Stripe's next monthly invoice of the subscription, delivered; None when Stripe makes none."""
        invoice = self.stripe.bill(self.stripe_subscription(sub), fail=fail, send=False)
        if invoice is not None:
            self.deliver("invoice.payment_failed" if fail else "invoice.paid", invoice)
        return invoice


def fund_balance(fund: ProjectFund) -> int:
    return funds.fund_balance(fund)


def escrow(item_id: int) -> int:
    return ledger.balance(ledger.account(AccountKind.item_escrow, item_id=item_id), "USD")


def mails_to(session, email: str) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == email)
                                .order_by(OutboxMessage.id)))
