"""Pledges: held once however often the money is confirmed, refunded exactly, expired back to funders."""
import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from marketplace.accounts.models import User
from marketplace.audit.models import AuditEvent
from marketplace.backlog.models import BacklogItem, ItemFunding
from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger import summary as ledger_summary
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from marketplace.money import Money
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.timeutil import utcnow


def funder(session) -> User:
    user = User(display_name="Funder")
    user.set_email("funder@example.org")
    session.add(user)
    session.flush()
    return user


def item(session) -> BacklogItem:
    return session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))


def escrow(item_id: int, currency: str = "USD") -> int:
    return ledger.balance(ledger.account(AccountKind.item_escrow, item_id=item_id), currency)


def held_pledge(session, amount: int, currency: str = "USD", **kwargs) -> Pledge:
    pledge = pledges.create(item(session), funder(session).id, Money(amount, currency), rail=Rail.card,
                            actor="test", **kwargs)
    pledge.payment_intent_id = f"pi_test_{pledge.id}"
    assert pledges.mark_received(pledge.id, Money(amount, currency), actor="test")
    return pledge


@pytest.fixture
def stripe_api(app):
    """Refunds of card pledges go to Stripe: a local stand-in answers."""
    from marketplace.standins.stripe import LocalStripe

    server = LocalStripe()
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url)
    yield server
    app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
    server.stop()


def test_pending_money_is_shown_apart_and_held_once_it_arrives(session):
    the_item = item(session)
    pledge = pledges.create(the_item, funder(session).id, Money(5000, "USD"), rail=Rail.card, actor="test")
    funding = session.get(ItemFunding, (the_item.id, "USD"))
    assert (funding.pending_minor, funding.held_minor) == (5000, 0)
    assert pledges.mark_received(pledge.id, Money(5000, "USD"), actor="webhook") is True
    # The same confirmation again (a redelivered event, the success page): nothing more.
    assert pledges.mark_received(pledge.id, Money(5000, "USD"), actor="success page") is False
    session.refresh(funding)
    assert (funding.pending_minor, funding.held_minor) == (0, 5000)
    assert escrow(the_item.id) == 5000
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
    assert check() == []


def test_a_confirmation_for_another_amount_holds_nothing(session):
    pledge = pledges.create(item(session), funder(session).id, Money(5000, "USD"), rail=Rail.card, actor="test")
    with pytest.raises(pledges.PledgeError, match=r"\$5.00 arrived, \$50.00 was pledged"):
        pledges.mark_received(pledge.id, Money(500, "USD"), actor="test")
    assert pledge.state is PledgeState.pending and escrow(pledge.item_id) == 0


def test_states_only_move_forward(session):
    pledge = held_pledge(session, 5000)
    assert pledges.transition(pledge.id, PledgeState.processing) is False
    assert pledges.transition(pledge.id, PledgeState.cancelled) is False
    assert session.get(Pledge, pledge.id).state is PledgeState.held


def test_refunds_by_their_own_ids_are_exact_and_counted_once(session):
    pledge = held_pledge(session, 10000)
    assert pledges.refund(pledge.id, 3000, refund_id="re_1", actor="stripe") is True
    assert pledges.refund(pledge.id, 2000, refund_id="re_2", actor="dashboard") is True
    assert pledges.refund(pledge.id, 3000, refund_id="re_1", actor="stripe again") is False
    pledge = session.get(Pledge, pledge.id)
    assert (pledge.refunded_minor, pledge.state) == (5000, PledgeState.partially_refunded)
    assert escrow(pledge.item_id) == 5000
    assert ledger.balance(ledger.account(AccountKind.refunds), "USD") == 5000
    assert check() == []


def test_more_than_is_held_cannot_be_refunded(session):
    pledge = held_pledge(session, 2500)
    with pytest.raises(pledges.PledgeError, match=r"holds \$25\.00; \$25\.01 cannot be refunded"):
        pledges.refund(pledge.id, 2501, refund_id="too-much", actor="admin")
    assert escrow(pledge.item_id) == 2500


def test_after_a_partial_refund_more_than_is_still_held_is_refused_by_the_domain(session):
    pledge = held_pledge(session, 10000)
    assert pledges.refund(pledge.id, 6000, refund_id="re_part", actor="admin") is True
    # 4001 is within the pledge's amount but over what it still holds: a PledgeError, not the
    # database's refund_within_amount constraint.
    with pytest.raises(pledges.PledgeError, match=r"holds \$40\.00; \$40\.01 cannot be refunded"):
        pledges.refund(pledge.id, 4001, refund_id="re_over", actor="admin")
    pledge = session.get(Pledge, pledge.id)
    assert (pledge.state, pledge.refunded_minor, escrow(pledge.item_id)) == (PledgeState.partially_refunded, 6000, 4000)
    assert pledges.refund(pledge.id, 4000, refund_id="re_rest", actor="admin") is True
    assert (pledge.state, pledge.refunded_minor, escrow(pledge.item_id)) == (PledgeState.refunded, 10000, 0)
    with pytest.raises(pledges.PledgeError, match="holds no money to refund"):
        pledges.refund(pledge.id, 1, refund_id="re_after", actor="admin")


def test_a_zero_refund_is_refused(session):
    pledge = held_pledge(session, 2500)
    with pytest.raises(pledges.PledgeError, match=r"holds \$25\.00; \$0\.00 cannot be refunded"):
        pledges.refund(pledge.id, 0, refund_id="re_zero", actor="admin")


def test_a_pledge_is_due_for_refund_exactly_at_its_expiry(session, stripe_api):
    expiry = (utcnow() + timedelta(days=30)).replace(microsecond=0)
    pledge = held_pledge(session, 2500, expires_at=expiry)
    assert pledges.refund_expired(expiry - timedelta(microseconds=1)) == []
    assert pledges.refund_expired(expiry) == [pledge.id]
    assert session.get(Pledge, pledge.id).state is PledgeState.refunded


def test_an_expired_pledge_goes_back_to_its_funder_never_to_the_platform(session, stripe_api):
    pledge = held_pledge(session, 2500, expires_at=utcnow() + timedelta(days=365))
    assert pledges.refund_expired(utcnow() + timedelta(days=364)) == []
    assert pledges.refund_expired(utcnow() + timedelta(days=366)) == [pledge.id]
    assert pledges.refund_expired(utcnow() + timedelta(days=367)) == []  # once
    pledge = session.get(Pledge, pledge.id)
    assert (pledge.state, pledge.refunded_minor) == (PledgeState.refunded, 2500)
    assert escrow(pledge.item_id) == 0
    assert ledger.balance(ledger.account(AccountKind.platform_fees), "USD") == 0
    assert [(r[1], r[2]["amount"]) for r in stripe_api.requests if r[1] == "/v1/refunds"] == [("/v1/refunds", "2500")]
    assert check() == []


@pytest.mark.ledger_tampered
def test_check_finds_escrow_that_no_pledge_explains(session):
    pledge = held_pledge(session, 2500)
    session.execute(
        Pledge.__table__.update().where(Pledge.id == pledge.id).values(refunded_minor=500))
    found = {(v.rule, v.subject, v.amount) for v in check()}
    assert ("escrow differs from held pledges", str(pledge.item_id), 500) in found


@pytest.mark.postgres
def test_two_sessions_racing_refunds_of_one_pledge_refund_once(app):
    """A self-service refund and an admin's refund of the whole pledge at the same
    moment, in two real database sessions: exactly one refund."""
    with app.app_context():
        user = User(display_name="Racer")
        user.set_email("racer@example.org")
        db.session.add(user)
        db.session.flush()
        the_item = db.session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))
        pledge = pledges.create(the_item, user.id, Money(4000, "USD"), rail=Rail.card, actor="test")
        pledges.mark_received(pledge.id, Money(4000, "USD"), actor="test")
        db.session.commit()
        pledge_id, item_id, user_id = pledge.id, the_item.id, user.id
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes = []

    def attempt(refund_id):
        with app.app_context():
            barrier.wait()
            try:
                outcomes.append(pledges.refund(pledge_id, 4000, refund_id=refund_id, actor=refund_id))
                db.session.commit()
            except pledges.PledgeError:
                db.session.rollback()
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(name,)) for name in ("self-service", "admin")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(map(str, outcomes)) == ["True", "refused"]
        with app.app_context():
            assert db.session.get(Pledge, pledge_id).refunded_minor == 4000
            assert ledger.balance(ledger.account(AccountKind.refunds), "USD") == 4000
            assert check() == []
    finally:
        with app.app_context():
            ids = db.session.scalars(select(LedgerTransaction.id)).all()
            db.session.execute(delete(LedgerEntry).where(LedgerEntry.transaction_id.in_(ids)))
            db.session.execute(delete(LedgerTransaction))
            db.session.execute(delete(Pledge).where(Pledge.id == pledge_id))
            db.session.execute(delete(ItemFunding).where(ItemFunding.item_id == item_id))
            db.session.execute(delete(LedgerAccount))
            db.session.execute(delete(AuditEvent).where(AuditEvent.object_type == "pledge"))
            db.session.execute(delete(User).where(User.id == user_id))
            ledger_summary.refresh()  # this test committed for real: the stored totals follow
            db.session.commit()


def test_an_item_closed_as_not_planned_refunds_its_funders_after_the_window(session, stripe_api):
    from marketplace.backlog.models import ItemState

    first = held_pledge(session, 4000)
    other = User(display_name="Second funder")
    other.set_email("second@example.org")
    session.add(other)
    session.flush()
    second = pledges.create(item(session), other.id, Money(2000, "USD"), rail=Rail.card, actor="test")
    second.payment_intent_id = f"pi_test_{second.id}"
    pledges.mark_received(second.id, Money(2000, "USD"), actor="test")
    the_item = item(session)
    the_item.state, the_item.state_reason = ItemState.closed, "not_planned"
    the_item.forge_closed_at = utcnow()
    session.flush()
    assert pledges.refund_not_planned(utcnow() + timedelta(days=13)) == []  # within the window
    assert pledges.refund_not_planned(utcnow() + timedelta(days=15)) == [first.id, second.id]
    assert [session.get(Pledge, p.id).refunded_minor for p in (first, second)] == [4000, 2000]
    assert escrow(the_item.id) == 0
    assert ledger.balance(ledger.account(AccountKind.platform_fees), "USD") == 0
    assert check() == []
