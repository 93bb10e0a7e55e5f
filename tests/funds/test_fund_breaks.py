"""Project funds attacked as the outside world would (breaker pass): a close
written by another worker while an allotment is being decided, Stripe taking
an invoice's money back (refund, lost chargeback) before and after the fund
allotted it, malformed and hostile events and forms, attribution rounding
with many subscribers, and strangers acting on a subscription. ``flask
ledger check`` runs after each test (the ``session`` fixture)."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.funds import service as funds
from marketplace.funds.models import Allotment, AllotmentAttribution, SubscriptionRail, SubscriptionState
from marketplace.ledger.check import check
from marketplace.money import Money
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import DeliveryStatus
from tests.funds.helpers import escrow, fund_balance


def _bank(fw, amounts, prefix="b"):
    subs = []
    for n, amount in enumerate(amounts):
        sub = funds.subscribe(fw.fund, fw.user(f"{prefix}{n}@example.org"), amount,
                              rail=SubscriptionRail.bank_transfer)
        assert funds.record_transfer(sub.id, Money(amount, "USD"), reference=f"{prefix}-{n}",
                                     received_on=utcnow().date(), actor=fw.admin)
        subs.append(sub)
    return subs


def test_an_allotment_decided_on_an_item_another_worker_just_closed_is_refused(fw, session):
    """The maintainer's request loaded the item open; the forge's close was
    written (by another worker) before the allotment took its locks: the
    allotment reads the item again under its row lock and is refused."""
    _bank(fw, [3000])
    item = fw.issue(401)
    assert item.state is ItemState.open
    session.execute(update(BacklogItem).where(BacklogItem.id == item.id)
                    .values(state=ItemState.closed).execution_options(synchronize_session=False))
    assert item.state is ItemState.open  # what the request still has in hand
    with pytest.raises(funds.FundError, match="takes no new money"):
        funds.allot(fw.fund.id, item, 1000, reason="stale", maintainer=fw.maintainer)
    assert (fund_balance(fw.fund), escrow(item.id)) == (3000, 0)
