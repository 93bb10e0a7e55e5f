"""Representative API data on top of the seeded registry and issues: a paid-out
item (pledge released, payout paid by the manual rail), a funded item with an
anonymous pledge partly refunded and another pledge awaiting payment, a funding
goal, an item deleted on the forge (410), and a funded matching pool (made
after the pledges: it matches none of them)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from marketplace.funds import service as funds
from marketplace.funds.models import SubscriptionRail
from marketplace.money import Money
from marketplace.payouts import service as payouts
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Rail
from marketplace.pools import service as pools
from marketplace.timeutil import utcnow
from tests.payouts.helpers import AFTER_WINDOW, World


@dataclass(frozen=True)
class ApiData:
    """Ids of the rows the API tests read."""

    paid_item: int
    funded_item: int
    deleted_item: int
    project: str
    pool: int


@pytest.fixture
def api_data(session, client) -> ApiData:
    world = World(session, client)
    ama = world.implementor("ama@example.org", github_id=7007)
    payouts.choose_manual_rail(ama.id, "Bank: 12-34-56 00012345")
    paid = world.issue(301)
    world.fund(paid, 10000)
    world.claim(paid, ama)
    world.pull(1301, "Fixes #301", author_id=7007, merged=True)
    [payout] = world.payouts_of(paid)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    payouts.record_manual_payout(payout.shares[0].id, reference="BANK-301", paid_on=utcnow().date(),
                                 admin=world.admin)

    funded = world.issue(302)
    funded.funding_goal_minor, funded.funding_goal_currency = 50000, "USD"
    shown = world.fund(funded, 2500)
    shown.show_name = True
    anonymous = world.fund(funded, 4000, "EUR")
    pledges.refund(anonymous.id, 1000, refund_id="re_api_test", actor="test")
    pledges.create(funded, world.funder.id, Money(700, "USD"), rail=Rail.card, actor="test")

    deleted = world.issue(303)
    deleted.deleted_at, deleted.hidden = utcnow(), True
    now = utcnow()
    pool = pools.create_pool(world.user("api-sponsor@example.org"), name="API pool", currency="USD", budget_minor=20000,
                             starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=30),
                             cap_per_pledge_minor=5000, sdgs=[3])
    pools.confirm_budget(pool.id, Money(20000, "USD"), reference="API-POOL", received_on=now.date(), actor=world.admin)
    # The project's fund: a named and an anonymous subscriber (tests/funds covers its allotments).
    fund = funds.fund_of(world.project, "USD")
    for email, amount, shown in (("api-sub-a@example.org", 2000, True), ("api-sub-b@example.org", 1000, False)):
        sub = funds.subscribe(fund, world.user(email), amount, rail=SubscriptionRail.bank_transfer, show_name=shown)
        funds.record_transfer(sub.id, Money(amount, "USD"), reference=f"API-{email}", received_on=now.date(),
                              actor=world.admin)
    session.flush()
    return ApiData(paid_item=paid.id, funded_item=funded.id, deleted_item=deleted.id, project=world.project.slug,
                   pool=pool.id)
