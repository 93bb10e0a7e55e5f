"""Issue 18's scenario with its exact values (USD, fee 10%): two monthly
subscribers by card through Stripe Billing (the local stand-in, its events
delivered signed to the webhook), two allotments, a close as not planned, a
failed invoice, a cancellation, and a payout through the usual path."""
from sqlalchemy import select

from marketplace.funds import rails
from marketplace.funds import service as funds
from marketplace.funds.models import Allotment, AllotmentState, SubscriptionState
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.payouts import service as payouts
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import DeliveryStatus
from tests.funds.helpers import escrow, fund_balance, mails_to
from tests.payouts.helpers import AFTER_WINDOW, balance
from tests.payouts.test_payout_followups import _issue_event


def attribution(allotment: Allotment) -> list[int]:
    return [a.amount_minor for a in allotment.attributions]


def test_the_issue_18_scenario_funds_allots_returns_and_pays_out_exactly(fw, session, runner):
    a, b = fw.user("a@example.org"), fw.user("b@example.org")
    # 1. A 20.00/month and B 10.00/month; month 1's invoices paid → fund 30.00.
    sub_a, sub_b = fw.subscribe(a, 2000), fw.subscribe(b, 1000)
    fw.start(sub_a)
    fw.start(sub_b)
    assert (sub_a.state, sub_b.state) == (SubscriptionState.active, SubscriptionState.active)
    assert fund_balance(fw.fund) == 3000
    # 2. The maintainer allots 25.00 to X → fund 5.00; X escrow 25.00, attributed A 16.67, B 8.33.
    x = fw.issue(181)
    first = funds.allot(fw.fund.id, x, 2500, reason="Offline sync first", maintainer=fw.maintainer)
    assert (fund_balance(fw.fund), escrow(x.id)) == (500, 2500)
    assert [(p.subscription_id, p.amount_minor) for p in first.attributions] == [(sub_a.id, 1667), (sub_b.id, 833)]
    # 3. Month 2: A's invoice fails (nothing moves, A told); B's is paid → fund 15.00.
    failed = fw.bill(sub_a, fail=True)
    assert failed["status"] == "open" and fund_balance(fw.fund) == 500
    told = mails_to(session, "a@example.org")
    assert len(told) == 1 and "could not be charged" in told[0].subject
    fw.bill(sub_b)
    assert fund_balance(fw.fund) == 1500
    # 4. X is closed as not planned → 25.00 back to the fund → fund 40.00.
    _issue_event(fw, x, state="closed", reason="not_planned", when="2030-01-03T00:00:00Z")
    session.refresh(first)
    assert (first.state, escrow(x.id), fund_balance(fw.fund)) == (AllotmentState.returned, 0, 4000)
    assert funds.subscription_parts(fw.fund) == {sub_a.id: 2000, sub_b.id: 2000}
    # 5. A cancels; month 3: B paid → fund 50.00; A receives no invoice.
    rails.cancel(sub_a.id, person=a)
    deleted = fw.stripe.subscriptions[fw.stripe_subscription(sub_a)]
    assert deleted["status"] == "canceled"
    fw.deliver("customer.subscription.deleted", deleted)
    session.refresh(sub_a)
    assert sub_a.state is SubscriptionState.ended
    assert fw.bill(sub_a) is None
    fw.bill(sub_b)
    assert fund_balance(fw.fund) == 5000
    # 6. The maintainer allots 50.00 to Y; Y is solved by a merged PR; the payout of
    #    50.00 is approved and executed → fee 5.00, recipient 45.00; fund 0; ledger check ok.
    y = fw.issue(182)
    second = funds.allot(fw.fund.id, y, 5000, reason="The export everyone asks for", maintainer=fw.maintainer)
    assert attribution(second) == [2000, 3000]
    ama = fw.implementor("ama@example.org", github_id=8118)
    fw.claim(y, ama)
    fw.pull(1182, "Fixes #182", author_id=8118, merged=True)
    [payout] = fw.payouts_of(y)
    assert payout.gross_minor == 5000
    fw.approve(payout, [(ama.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    session.refresh(second)
    assert (payout.gross_minor, payout.fee_minor, payout.shares[0].amount_minor) == (5000, 500, 4500)
    assert (second.state, second.payout_id) == (AllotmentState.released, payout.id)
    assert balance(AccountKind.platform_fees) == 500
    assert (fund_balance(fw.fund), escrow(y.id)) == (0, 0)
    assert check() == []
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 0, result.output
    # Every delivery was applied; none waits.
    from marketplace.webhooks.models import WebhookDelivery

    statuses = set(session.scalars(select(WebhookDelivery.status).where(WebhookDelivery.source == "stripe")))
    assert statuses == {DeliveryStatus.processed}
