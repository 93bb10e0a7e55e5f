"""Random sequences on a project fund — subscribers' money arriving (invoices
twice, transfers), allotments (refused past the balance), returns to the fund
(closed without the work, expiry), payouts of allotted items (the usual fee),
Stripe taking an invoice's money back (refund, lost chargeback: from the
subscriber's own part of the fund, the commons covering what was allotted),
pledges beside the allotments, and the project leaving (pro rata returns) —
keep every ledger invariant (issue 18).

After each step: ``flask ledger check`` finds nothing; the fund's money in
is exactly what it holds, what is allotted (in escrow or paid out), what went
back to subscribers, what the fiscal host kept and what Stripe took back from it; while the fund is open,
the subscriptions' parts are never negative and add up to its balance; each
allotment's attribution adds up to it; and a payout's fee and shares add up
to the allotted money it took.
"""
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.claims import certification
from marketplace.funds import service as funds
from marketplace.funds.models import Allotment, AllotmentState, FundReceipt, FundState, SubscriptionRail
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind, LedgerEntry, LedgerTransaction
from marketplace.money import Money
from marketplace.payouts import service as payouts
from marketplace.payouts.models import Payout, PayoutAccount, PayoutRail, PayoutState
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Rail
from marketplace.projects.models import ProjectMaintainer
from marketplace.timeutil import utcnow

operations = st.lists(
    st.one_of(
        st.tuples(st.just("receive"), st.integers(0, 2), st.integers(1, 10**6), st.integers(0, 3)),
        # A share of what the fund holds, in percent (above 100: more than it holds, refused).
        st.tuples(st.just("allot"), st.integers(0, 1), st.integers(1, 110)),
        st.tuples(st.just("pledge"), st.integers(0, 1), st.integers(1, 10**5)),
        st.tuples(st.just("return"), st.integers(0, 1)),
        st.tuples(st.just("expire"), st.integers(0, 400)),
        st.tuples(st.just("payout"), st.integers(0, 1), st.lists(st.integers(1, 5), min_size=1, max_size=2)),
        st.tuples(st.just("close")),
        # Stripe takes back a share (percent; above 100: more than the invoice, capped) of a subscriber's latest money.
        st.tuples(st.just("take_back"), st.integers(0, 2), st.integers(1, 120)),
    ),
    max_size=25,
)


def fund_holds_together(fund) -> bool:
    from marketplace.extensions import db

    paid_in = -ledger.balance(ledger.account(AccountKind.subscriber_payments, fund_id=fund.id), "USD")
    held = funds.fund_balance(fund)
    returned = ledger.balance(ledger.account(AccountKind.subscriber_returns, fund_id=fund.id), "USD")
    kept = ledger.balance(ledger.account(AccountKind.fund_kept, fund_id=fund.id), "USD")
    allotted = int(db.session.scalar(select(func.coalesce(func.sum(Allotment.amount_minor), 0)).where(
        Allotment.fund_id == fund.id, Allotment.state.in_([AllotmentState.held, AllotmentState.released]))))
    receipts = int(db.session.scalar(select(func.coalesce(func.sum(FundReceipt.amount_minor), 0)).where(
        FundReceipt.fund_id == fund.id)))
    taken_back = int(db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
                                        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
                                        .where(LedgerEntry.account_id == ledger.account(
                                            AccountKind.subscriber_refunds, fund_id=fund.id).id,
                                            LedgerTransaction.kind == "fund_taken_back")))
    refunded = int(db.session.scalar(select(func.coalesce(func.sum(FundReceipt.refunded_minor), 0)).where(
        FundReceipt.fund_id == fund.id)))
    if paid_in != receipts or paid_in != held + allotted + returned + kept + taken_back or held < 0 \
            or refunded > receipts:
        return False
    for allotment in db.session.scalars(select(Allotment).where(Allotment.fund_id == fund.id)):
        if sum(a.amount_minor for a in allotment.attributions) != allotment.amount_minor:
            return False
    if fund.state is FundState.open:
        parts = funds.subscription_parts(fund)
        if any(part < 0 for part in parts.values()) or sum(parts.values()) != held:
            return False
    for payout in db.session.scalars(select(Payout).where(Payout.state.in_(
            [PayoutState.executing, PayoutState.paid, PayoutState.failed]))):
        if payout.fee_minor + sum(s.amount_minor for s in payout.shares) != payout.gross_minor:
            return False
    return True


@pytest.mark.postgres
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(received=st.lists(st.integers(1, 10**6), min_size=1, max_size=3), steps=operations)
def test_any_sequence_on_a_fund_keeps_the_ledger_balanced(session, received, steps):
    savepoint = session.begin_nested()
    try:
        takes_money = (BacklogItem.state == ItemState.open, BacklogItem.hidden.is_(False),
                       BacklogItem.solved_by_id.is_(None), BacklogItem.deleted_at.is_(None),
                       BacklogItem.private_reason.is_(None))
        repository_id = session.scalar(select(BacklogItem.repository_id).where(*takes_money)
                                       .group_by(BacklogItem.repository_id).having(func.count() >= 2)
                                       .order_by(BacklogItem.repository_id).limit(1))
        items = session.scalars(select(BacklogItem).where(BacklogItem.repository_id == repository_id, *takes_money)
                                .order_by(BacklogItem.id).limit(2)).all()
        assert not any(item.work_done for item in items)
        project = items[0].repository.project
        people = []
        for role in ("maintainer", "admin", "funder", "sub0", "sub1", "sub2", "rec0", "rec1"):
            person = User(display_name=role, is_admin=role == "admin", is_implementor=role.startswith("rec"))
            person.set_email(f"fund-property-{role}@example.org")
            people.append(person)
        session.add_all(people)
        session.flush()
        maintainer, admin, funder, *rest = people
        subscribers, recipients = rest[:3], rest[3:]
        session.add(ProjectMaintainer(project_id=project.id, user_id=maintainer.id, granted_by="property"))
        for person in recipients:
            certification.grant(person, issuer=admin, project_id=None)
            session.add(PayoutAccount(user_id=person.id, rail=PayoutRail.manual))
        fund = funds.fund_of(project, "USD")
        subs = [funds.subscribe(fund, person, 1000, rail=SubscriptionRail.bank_transfer) for person in subscribers]
        for which, amount in enumerate(received):  # money in the fund when the steps start
            funds.receive(subs[which].id, f"transfer:{subs[which].id}:first", Money(amount, "USD"), actor="property")
        for step in steps:
            kind = step[0]
            if kind == "receive":
                _, which, amount, month = step
                # A month's money, recorded once per reference (the same reference twice counts once).
                funds.receive(subs[which].id, f"transfer:{subs[which].id}:M{month}", Money(amount, "USD"),
                              actor="property")
            elif kind == "allot":
                _, which, percent = step
                amount = max(1, funds.fund_balance(fund) * percent // 100)
                try:
                    funds.allot(fund.id, items[which], amount, reason="property", maintainer=maintainer)
                    event("allotted")
                except funds.FundError:
                    assert amount > funds.fund_balance(fund) or fund.state is FundState.closed
            elif kind == "pledge":
                _, which, amount = step
                pledge = pledges.create(items[which], funder.id, Money(amount, "USD"), rail=Rail.bank_transfer,
                                        actor="property")
                pledges.mark_received(pledge.id, Money(amount, "USD"), actor="property")
            elif kind == "return":
                if funds.return_item_allotments(items[step[1]], why="property"):
                    event("returned to the fund")
            elif kind == "expire":
                funds.return_expired(utcnow() + timedelta(days=step[1]))
            elif kind == "payout":
                _, which, weights = step
                for payout in payouts.propose(items[which], reason="closed_completed"):
                    try:
                        payouts.approve(payout.id, maintainer=maintainer,
                                        recipients=list(zip([r.id for r in recipients], weights)))
                    except payouts.PayoutError:
                        continue
                    if payouts.execute(payout.id, utcnow() + timedelta(days=8)) and \
                            funds.held_allotments(items[which].id, "USD") == [] and session.scalar(
                                select(Allotment.id).where(Allotment.payout_id == payout.id).limit(1)):
                        event("allotment paid out")
            elif kind == "close":
                for row in funds.close_fund(fund.id, actor=admin):
                    funds.record_return(row.id, reference=f"BACK-{row.id}", actor=admin)
                    event("returned to a subscriber")
            elif kind == "take_back":
                _, which, percent = step
                receipt = session.scalar(select(FundReceipt).where(FundReceipt.subscription_id == subs[which].id)
                                         .order_by(FundReceipt.id.desc()).limit(1))
                if receipt is not None and funds.take_back(
                        receipt.id, f"refund:property-{len(session.new)}-{receipt.id}-{receipt.refunded_minor}",
                        max(1, receipt.amount_minor * percent // 100), why="property"):
                    event("taken back by Stripe")
            session.flush()
            assert check() == [], step
            assert fund_holds_together(fund), step
    finally:
        savepoint.rollback()
