"""Random sequences of pledges, payments, refunds and expiries keep every ledger invariant.

After each step: ``flask ledger check`` finds nothing, and per currency the
money that funders paid in is exactly what is held plus what was refunded.
"""
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
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
    ),
    max_size=25,
)


def conservation_holds() -> bool:
    for currency in CURRENCIES:
        paid_in = -ledger.balance(ledger.account(AccountKind.funder_payments), currency)
        held = sum(p.held_minor for p in pledges_of(currency))
        refunded = ledger.balance(ledger.account(AccountKind.refunds), currency)
        lost = ledger.balance(ledger.account(AccountKind.disputes), currency)
        if paid_in != held + refunded + lost:
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
@given(steps=operations)
def test_any_sequence_keeps_the_ledger_balanced(session, steps):
    savepoint = session.begin_nested()
    try:
        funder = User(display_name="Funder")
        funder.set_email("property@example.org")
        session.add(funder)
        session.flush()
        items = session.scalars(select(BacklogItem).order_by(BacklogItem.id).limit(2)).all()
        made: list[int] = []
        for step in steps:
            kind = step[0]
            if kind == "pledge":
                _, which, currency, amount, days = step
                pledge = pledges.create(items[which], funder.id, Money(amount, currency), rail=Rail.card,
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
            session.flush()
            assert check() == [], step
            assert conservation_holds(), step
            for pledge_id in made:
                pledge = session.get(Pledge, pledge_id)
                assert 0 <= pledge.refunded_minor <= pledge.amount_minor
    finally:
        savepoint.rollback()
