"""Random sequences of pledges, payments, refunds, expiries, disputes,
payouts (with splits), manual payments and refunds after payout keep every
ledger invariant.

After each step: ``flask ledger check`` finds nothing; per currency the money
funders paid in is exactly what is held, refunded, lost, and what executed
payouts took out of escrow; and what executed payouts took out of escrow is
exactly the fees, what recipients are owed and what they were paid.
"""
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem
from marketplace.claims import certification
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.payouts import after_payout
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutPledge, PayoutRail, PayoutShare, ShareState
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.timeutil import utcnow

CURRENCIES = ("USD", "JPY", "KES")
operations = st.lists(
    st.one_of(
        st.tuples(st.just("pledge"), st.integers(0, 1), st.sampled_from(CURRENCIES), st.integers(1, 10**7),
                  st.integers(1, 400)),
        st.tuples(st.just("pay"), st.integers(0, 30)),
        st.tuples(st.just("pay_wrong_amount"), st.integers(0, 30)),
        st.tuples(st.just("refund"), st.integers(0, 30), st.integers(1, 10**7), st.text("abc", min_size=1, max_size=2)),
        st.tuples(st.just("fail"), st.integers(0, 30)),
        st.tuples(st.just("expire"), st.integers(0, 500)),
        st.tuples(st.just("dispute"), st.integers(0, 30)),
        st.tuples(st.just("dispute_won"), st.integers(0, 30)),
        st.tuples(st.just("dispute_lost"), st.integers(0, 30), st.integers(1, 10**7)),
        st.tuples(st.just("payout"), st.integers(0, 30), st.lists(st.integers(1, 5), min_size=1, max_size=2)),
        st.tuples(st.just("pay_manual"), st.integers(0, 30)),
        st.tuples(st.just("refund_after_payout"), st.integers(0, 30), st.integers(1, 10**7)),
    ),
    max_size=30,
)


def conservation_holds(recipients) -> bool:
    from marketplace.extensions import db
    from marketplace.payouts.models import Payout, PayoutPledge, PayoutState

    executed = (PayoutState.executing, PayoutState.paid, PayoutState.failed)
    for currency in CURRENCIES:
        paid_in = -ledger.balance(ledger.account(AccountKind.funder_payments), currency)
        held = sum(p.held_minor for p in pledges_of(currency))
        refunded = ledger.balance(ledger.account(AccountKind.refunds), currency)
        lost = ledger.balance(ledger.account(AccountKind.disputes), currency)
        covered_by_commons = -ledger.balance(ledger.account(AccountKind.commons_funds), currency)
        advanced = -sum(ledger.balance(ledger.account(AccountKind.contributor_receivable, user_id=u), currency)
                        for u in recipients)
        fees = ledger.balance(ledger.account(AccountKind.platform_fees), currency)
        owed = sum(ledger.balance(ledger.account(AccountKind.contributor_payable, user_id=u), currency)
                   for u in recipients)
        paid = ledger.balance(ledger.account(AccountKind.payouts_paid), currency)
        payouts = db.session.scalars(select(Payout).where(Payout.currency == currency,
                                                          Payout.state.in_(executed))).all()
        released = sum(p.gross_minor for p in payouts)
        covered = sum(db.session.scalars(select(PayoutPledge.amount_minor).where(
            PayoutPledge.payout_id.in_([p.id for p in payouts])))) if payouts else 0
        # Money that left after payout (refunds and losses) came from the commons or is owed back.
        if paid_in != held + refunded + lost + released - covered_by_commons - advanced:
            return False
        if released != fees + owed + paid or released != covered:
            return False
    return True


def pledges_of(currency):
    from marketplace.extensions import db

    return db.session.scalars(select(Pledge).where(Pledge.currency == currency)).all()


# PostgreSQL only for now: on SQLite, one example in a few hundred leaves state
# behind after its savepoint is rolled back (under investigation), which makes
# the next example's totals differ.
@pytest.mark.postgres
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(received=st.lists(st.tuples(st.integers(0, 1), st.sampled_from(CURRENCIES), st.integers(1, 10**7)),
                        min_size=1, max_size=4),
       steps=operations)
def test_any_sequence_keeps_the_ledger_balanced(session, received, steps):
    savepoint = session.begin_nested()
    try:
        funder = User(display_name="Funder")
        funder.set_email("property@example.org")
        session.add(funder)
        session.flush()
        items = session.scalars(select(BacklogItem).order_by(BacklogItem.id).limit(2)).all()
        maintainer = User(display_name="Maintainer", is_admin=True)
        maintainer.set_email("property-maintainer@example.org")
        recipients = []
        for n in range(2):
            person = User(display_name=f"Recipient {n}", is_implementor=True)
            person.set_email(f"property-recipient-{n}@example.org")
            recipients.append(person)
        session.add_all([maintainer, *recipients])
        session.flush()
        for person in recipients:
            certification.grant(person, issuer=maintainer, project_id=None)
            session.add(PayoutAccount(user_id=person.id, rail=PayoutRail.manual))
        recipient_ids = [person.id for person in recipients]
        made: list[int] = []
        for which, currency, amount in received:  # money already in escrow when the steps start
            pledge = pledges.create(items[which], funder.id, Money(amount, currency), rail=Rail.bank_transfer,
                                    actor="property")
            pledges.mark_received(pledge.id, Money(amount, currency), actor="property")
            made.append(pledge.id)
        for step in steps:
            kind = step[0]
            if kind == "pledge":
                _, which, currency, amount, days = step
                pledge = pledges.create(items[which], funder.id, Money(amount, currency), rail=Rail.bank_transfer,
                                        expires_at=utcnow() + timedelta(days=days), actor="property")
                made.append(pledge.id)
            elif made and kind in ("pay", "pay_wrong_amount"):
                pledge = session.get(Pledge, made[step[1] % len(made)])
                amount = pledge.amount_minor + (1 if kind == "pay_wrong_amount" else 0)
                try:
                    pledges.mark_received(pledge.id, Money(amount, pledge.currency), actor="property")
                except pledges.PledgeError:
                    assert kind == "pay_wrong_amount"
            elif made and kind == "refund":
                _, index, amount, refund_id = step
                try:
                    pledges.refund(made[index % len(made)], amount, refund_id=refund_id, actor="property")
                except pledges.PledgeError:
                    pass
            elif made and kind == "fail":
                pledge_id = made[step[1] % len(made)]
                if pledges.transition(pledge_id, PledgeState.failed):
                    pledges.release_pending(pledge_id)
            elif kind == "expire":
                pledges.refund_expired(utcnow() + timedelta(days=step[1]))
            elif made and kind == "dispute":
                pledge_id = made[step[1] % len(made)]
                if pledges.transition(pledge_id, PledgeState.disputed):
                    payouts.on_pledge_disputed(pledge_id)
            elif made and kind == "dispute_won":
                pledge = session.get(Pledge, made[step[1] % len(made)])
                target = PledgeState.partially_refunded if pledge.refunded_minor else PledgeState.held
                if pledge.state is PledgeState.disputed and pledges.transition(pledge.id, target):
                    payouts.on_dispute_closed(pledge.id, won=True)
            elif made and kind == "dispute_lost":
                _, index, amount = step
                pledge = session.get(Pledge, made[index % len(made)])
                if pledge.state is PledgeState.disputed:
                    pledges.refund(pledge.id, min(amount, pledge.held_minor), refund_id=f"dp-{pledge.id}",
                                   actor="property", to=AccountKind.disputes)
                    payouts.on_dispute_closed(pledge.id, won=False)
                elif pledge.state is PledgeState.released:
                    if after_payout.record_loss_after_payout(pledge.id, amount, dispute_id=f"dp-{pledge.id}"):
                        event("dispute lost after payout")
            elif made and kind == "payout":
                # The work on the item of one of the pledges is done.
                _, index, weights = step
                pledge = session.get(Pledge, made[index % len(made)])
                payouts.propose(pledge.item, reason="closed_completed")
                payout = payouts.open_payout(pledge.item_id, pledge.currency)
                if payout is not None:
                    try:
                        payouts.approve(payout.id, maintainer=maintainer,
                                        recipients=list(zip(recipient_ids, weights)))
                    except payouts.PayoutError:
                        pass
                    else:
                        if payouts.execute(payout.id, utcnow() + timedelta(days=8)):
                            event("payout executed")
            elif kind == "pay_manual":
                waiting = session.scalars(select(PayoutShare).where(
                    PayoutShare.state == ShareState.awaiting_manual_payout).order_by(PayoutShare.id)).all()
                if waiting:
                    share = waiting[step[1] % len(waiting)]
                    payouts.record_manual_payout(share.id, reference=f"ref-{share.id}", paid_on=utcnow().date(),
                                                 admin=maintainer)
                    event("share paid by hand")
            elif made and kind == "refund_after_payout":
                _, index, amount = step
                pledge = session.get(Pledge, made[index % len(made)])
                share = session.scalar(select(PayoutShare).join(PayoutPledge, PayoutPledge.payout_id
                                                                == PayoutShare.payout_id)
                                       .where(PayoutPledge.pledge_id == pledge.id,
                                              PayoutShare.state == ShareState.paid).limit(1))
                if pledge.state is PledgeState.released and share is not None:
                    try:
                        after_payout.refund_after_payout(pledge.id, amount, path="receivable", share_id=share.id,
                                                    admin=maintainer, offline_reference=f"back-{pledge.id}-{amount}")
                        event("refund after payout")
                    except payouts.PayoutError:
                        pass
            session.flush()
            assert check() == [], step
            assert conservation_holds(recipient_ids), step
            for pledge_id in made:
                pledge = session.get(Pledge, pledge_id)
                assert 0 <= pledge.refunded_minor <= pledge.amount_minor
    finally:
        savepoint.rollback()
