"""The double-entry ledger: balanced, idempotent postings and the invariant check."""
import threading

import pytest
from sqlalchemy import delete, func, select, text

from marketplace.backlog.models import BacklogItem, ItemFunding
from marketplace.extensions import db
from marketplace.ledger import service as ledger
from marketplace.ledger import summary as ledger_summary
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from marketplace.money import Money

PLEDGE_RULES = {"escrow differs from held pledges", "received differs from pledges received",
                "refunds and losses differ from pledges refunded"}


def ledger_only(violations):
    """These tests post ledger lines with no pledge behind them, on purpose."""
    return [v for v in violations if v.rule not in PLEDGE_RULES]


def an_item(session) -> BacklogItem:
    return session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))


# A pledge id no real row takes: the browser tests commit real pledges (ids from 1) to the
# test database, and the same idempotency key would make this posting theirs.
KEY = "pledge:2000000001:received"


def receive(item, amount: int, currency: str = "USD", key: str = KEY):
    """A funder's payment arrives and is held in the item's escrow."""
    return ledger.post("pledge_received", key, [
        ledger.Line(ledger.account(AccountKind.funder_payments), Money(-amount, currency)),
        ledger.Line(ledger.account(AccountKind.item_escrow, item_id=item.id), Money(amount, currency)),
    ])


@pytest.mark.ledger_tampered
def test_a_payment_is_held_in_the_items_escrow_and_shown_as_its_bounty(session):
    item = an_item(session)
    transaction, created = receive(item, 5000)
    assert created and [e.amount_minor for e in transaction.entries] == [-5000, 5000]
    escrow = ledger.account(AccountKind.item_escrow, item_id=item.id)
    assert ledger.balance(escrow, "USD") == 5000
    assert ledger.balance(ledger.account(AccountKind.funder_payments), "USD") == -5000
    assert session.get(ItemFunding, (item.id, "USD")).held_minor == 5000
    assert ledger_only(check()) == []


@pytest.mark.ledger_tampered
def test_the_same_event_posted_twice_counts_once(session):
    item = an_item(session)
    first, created = receive(item, 5000)
    again, created_again = receive(item, 5000)
    assert created and not created_again and again.id == first.id
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
    assert session.get(ItemFunding, (item.id, "USD")).held_minor == 5000


def test_unbalanced_or_empty_postings_are_refused_and_change_nothing(session):
    item = an_item(session)
    funder = ledger.account(AccountKind.funder_payments)
    escrow = ledger.account(AccountKind.item_escrow, item_id=item.id)
    with pytest.raises(ledger.UnbalancedTransaction, match="USD"):
        ledger.post("x", "bad:1", [ledger.Line(funder, Money(5000, "USD")), ledger.Line(escrow, Money(-4999, "USD"))])
    with pytest.raises(ledger.UnbalancedTransaction):
        # Balanced in total, but across two currencies: each must balance.
        ledger.post("x", "bad:2", [ledger.Line(funder, Money(100, "USD")), ledger.Line(escrow, Money(-100, "EUR"))])
    with pytest.raises(ledger.UnbalancedTransaction):
        ledger.post("x", "bad:3", [])
    assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 0


def test_a_zero_line_is_refused_even_in_a_balanced_posting(session):
    item = an_item(session)
    funder = ledger.account(AccountKind.funder_payments)
    escrow = ledger.account(AccountKind.item_escrow, item_id=item.id)
    fees = ledger.account(AccountKind.platform_fees)
    with pytest.raises(ledger.UnbalancedTransaction, match="a ledger line of zero"):
        ledger.post("x", "zero:1", [ledger.Line(funder, Money(-5000, "USD")), ledger.Line(escrow, Money(5000, "USD")),
                                    ledger.Line(fees, Money(0, "USD"))])
    with pytest.raises(ledger.UnbalancedTransaction, match="a ledger line of zero"):
        ledger.post("x", "zero:2", [ledger.Line(funder, Money(0, "USD")), ledger.Line(escrow, Money(0, "USD"))])
    assert session.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0


@pytest.mark.ledger_tampered
def test_check_names_each_violated_invariant(session):
    item = an_item(session)
    receive(item, 5000)
    transaction = session.scalars(select(LedgerTransaction)).one()
    escrow = ledger.account(AccountKind.item_escrow, item_id=item.id)
    # Tampering that only direct SQL could do: an entry breaking the balance,
    # and a cached bounty that no longer matches the entries.
    session.execute(text("INSERT INTO ledger_entry (transaction_id, account_id, currency, amount_minor) "
                         "VALUES (:t, :a, 'USD', -7000)"), {"t": transaction.id, "a": escrow.id})
    session.execute(text("UPDATE item_funding SET held_minor = 4000 WHERE item_id = :i"), {"i": item.id})
    found = {(v.rule, v.subject, v.currency, v.amount) for v in check()}
    assert found == {
        ("unbalanced transaction", str(transaction.id), "USD", -7000),
        ("negative escrow", str(item.id), "USD", -2000),
        ("bounty differs from escrow", str(item.id), "USD", 6000),
        ("escrow differs from held pledges", str(item.id), "USD", -2000),
        ("received differs from pledges received", "all pledges", "USD", 5000),
    }


@pytest.mark.ledger_tampered
def test_ledger_check_command(runner, session):
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 0 and "ledger ok" in result.output
    item = an_item(session)
    receive(item, 5000)  # no pledge behind it: also "escrow differs from held pledges"
    session.execute(text("UPDATE item_funding SET held_minor = 1 WHERE item_id = :i"), {"i": item.id})
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 1
    assert f"bounty differs from escrow: {item.id} USD -4999" in result.output


@pytest.mark.postgres
def test_two_sessions_posting_one_event_at_once_record_it_once(app):
    """Real commits in two threads (two connections); the unique key decides."""
    barrier = threading.Barrier(2)
    outcomes = []
    key = "race:pledge:received"
    with app.app_context():
        item_id = an_item(db.session).id
        ledger.account(AccountKind.funder_payments)
        ledger.account(AccountKind.item_escrow, item_id=item_id)
        db.session.commit()
        db.session.remove()

    def worker():
        with app.app_context():
            item = db.session.get(BacklogItem, item_id)
            barrier.wait()
            _, created = receive(item, 2500, key=key)
            db.session.commit()
            outcomes.append(created)
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        with app.app_context():
            assert sorted(outcomes) == [False, True]
            assert db.session.scalar(select(func.count()).select_from(LedgerTransaction).where(
                LedgerTransaction.idempotency_key == key)) == 1
            assert db.session.get(ItemFunding, (item_id, "USD")).held_minor == 2500
            assert ledger_only(check()) == []
    finally:
        with app.app_context():
            ids = db.session.scalars(select(LedgerTransaction.id).where(LedgerTransaction.idempotency_key == key)).all()
            db.session.execute(delete(LedgerEntry).where(LedgerEntry.transaction_id.in_(ids)))
            db.session.execute(delete(LedgerTransaction).where(LedgerTransaction.id.in_(ids)))
            db.session.execute(delete(ItemFunding).where(ItemFunding.item_id == item_id))
            db.session.execute(delete(LedgerAccount))
            ledger_summary.refresh()  # this test committed for real: the stored totals follow
            db.session.commit()
