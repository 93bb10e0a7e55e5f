"""A year (2026) of activity for the report tests, on the payout tests' World:
an organisation funds five items, another funder shares one, a refund, two
payouts to certified implementors in Kenya and India, a pledge in EUR. Every
transaction is dated by moving its ``created_at`` to the day it stands for."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from marketplace.ledger.models import LedgerTransaction
from marketplace.money import Money
from marketplace.organisations import service as organisations
from marketplace.payouts import service as payouts
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, Rail
from marketplace.timeutil import utcnow
from tests.payouts.helpers import AFTER_WINDOW


class Year:
    """The activity; attributes name its rows."""

    def __init__(self, world):
        self.world, s = world, world.session
        self.org = organisations.create("Acme Foundation", kind="funder", country="CH", owner=world.funder)
        self.other = world.user("other-funder@example.org")
        self.ama = world.implementor("ama@example.org", github_id=9101, country="KE")
        self.bo = world.implementor("bo@example.org", github_id=9102, country="IN")
        self.items = {n: world.issue(n) for n in (901, 902, 903, 904, 905)}
        self.a = self.dated(datetime(2026, 1, 10), lambda: self.org_pledge(901, 10000))
        self.d_org = self.dated(datetime(2026, 1, 20), lambda: self.org_pledge(904, 6000))
        self.d_other = self.dated(datetime(2026, 1, 21), lambda: self.person_pledge(904, 4000))
        self.b = self.dated(datetime(2026, 2, 5), lambda: self.org_pledge(902, 5000))
        self.c = self.dated(datetime(2026, 2, 6), lambda: self.org_pledge(903, 3000))
        self.dated(datetime(2026, 3, 1),
                   lambda: pledges.refund(self.b.id, 1000, refund_id="re_year_1", actor="test"))
        self.payout_a = self.dated(datetime(2026, 4, 15), lambda: self.paid(901, self.ama, 1901))
        self.payout_d = self.dated(datetime(2026, 5, 20), lambda: self.paid(904, self.bo, 1904))
        self.e = self.dated(datetime(2026, 6, 1), lambda: self.org_pledge(905, 2000, "EUR"))
        s.flush()

    def dated(self, when: datetime, action):
        """Run ``action``; the ledger transactions it posted are dated ``when``."""
        s = self.world.session
        before = s.scalar(select(func.coalesce(func.max(LedgerTransaction.id), 0)))
        result = action()
        s.flush()
        s.execute(update(LedgerTransaction).where(LedgerTransaction.id > before).values(created_at=when))
        s.expire_all()
        return result

    def org_pledge(self, number: int, amount: int, currency: str = "USD") -> Pledge:
        pledge = pledges.create(self.items[number], self.world.funder.id, Money(amount, currency), rail=Rail.card,
                                actor="test")
        pledge.organisation_id = self.org.id
        pledge.payment_intent_id = f"pi_year_{pledge.id}"
        assert pledges.mark_received(pledge.id, Money(amount, currency), actor="test")
        return pledge

    def person_pledge(self, number: int, amount: int) -> Pledge:
        pledge = pledges.create(self.items[number], self.other.id, Money(amount, "USD"), rail=Rail.card,
                                actor="test")
        pledge.payment_intent_id = f"pi_year_{pledge.id}"
        assert pledges.mark_received(pledge.id, Money(amount, "USD"), actor="test")
        return pledge

    def paid(self, number: int, implementor, pull_number: int):
        world, item = self.world, self.items[number]
        world.claim(item, implementor)
        github_id = 9101 if implementor is self.ama else 9102
        world.pull(pull_number, f"Fixes #{number}", author_id=github_id, merged=True)
        [payout] = world.payouts_of(item)
        world.approve(payout, [(implementor.id, 1)])
        assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
        return payout
