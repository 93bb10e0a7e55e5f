"""`flask ledger check` finds pool money that its rows do not explain."""
import pytest

from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.pools import service as pools
from tests.pools.helpers import person


@pytest.mark.ledger_tampered
def test_pool_money_moved_into_escrow_without_a_match_is_reported(pw):
    pool = pw.pool(10000)
    item = pw.item(3)
    pw.pledge(person("f@example.org"), item, 1000)  # matched 1000: sound so far
    assert check() == []
    ledger.post("tampered", "tampered-1", [
        ledger.Line(pools.pool_account(pool), Money(-2000, "USD")),
        ledger.Line(ledger.account(AccountKind.item_escrow, item_id=item.id), Money(2000, "USD")),
    ])
    rules = {(v.rule, v.subject, v.amount) for v in check()}
    assert ("pool money in differs from matched + returned + held", str(pool.id), 2000) in rules
    assert ("escrow differs from held pledges", str(item.id), 2000) in rules


@pytest.mark.ledger_tampered
def test_a_pool_overdrawn_in_the_ledger_is_reported(pw):
    pool = pw.pool(1000)
    ledger.post("tampered", "tampered-2", [
        ledger.Line(pools.pool_account(pool), Money(-1500, "USD")),
        ledger.Line(ledger.account(AccountKind.commons_funds), Money(1500, "USD")),
    ])
    assert ("pool holds a negative amount", str(pool.id), -500) in {(v.rule, v.subject, v.amount) for v in check()}


@pytest.mark.ledger_tampered
def test_a_card_refund_marked_succeeded_without_its_ledger_entries_is_reported(pw, client, stripe_api):
    from marketplace.extensions import db
    from marketplace.pools import rails
    from marketplace.pools.models import PoolRefund, PoolRefundState
    from tests.pools.test_pool_card import end, funded_by_card

    pool, _paid = funded_by_card(pw, client, stripe_api, budget=20000)
    end(pool)
    rails.return_due()
    assert check() == []
    row = db.session.query(PoolRefund).one()
    # A refund that the ledger shows booked, recorded as failed without giving its money back.
    row.state = PoolRefundState.failed
    db.session.flush()
    rules = {(v.rule, v.subject, v.amount) for v in check()}
    assert ("pool card refund differs from its ledger entries", str(row.id), -20000) in rules
