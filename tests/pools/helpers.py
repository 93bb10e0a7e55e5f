"""Shared helpers of the pool tests: two member projects (SDG 3 and SDG 4),
each with a maintainer, items in them, funders and a sponsor."""
from __future__ import annotations

from datetime import timedelta

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository
from marketplace.ledger import service as ledger
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, Rail
from marketplace.pools import service as pools
from marketplace.pools.models import MatchingPool, PoolKind
from marketplace.projects.models import MemberProject, ProjectMaintainer, ProjectSdg, RegistryStatus
from marketplace.timeutil import utcnow


def person(email: str, *, admin: bool = False, verified: bool = True) -> User:
    user = User(display_name=email.split("@")[0], is_admin=admin, email_verified_at=utcnow() if verified else None)
    user.set_email(email)
    db.session.add(user)
    db.session.flush()
    return user


class PoolWorld:
    """Project "health" (SDG 3) and "school" (SDG 4), a maintainer each, an admin and a sponsor."""

    def __init__(self, prefix: str = "pw"):
        now = utcnow()
        self.prefix = prefix
        self.admin = person(f"{prefix}-admin@example.org", admin=True)
        self.sponsor = person(f"{prefix}-sponsor@example.org")
        self.projects, self.repos = {}, {}
        for sdg, slug in ((3, "health"), (4, "school")):
            project = MemberProject(slug=f"{prefix}-{slug}", name=slug.title(), registry_status=RegistryStatus.active,
                                    admitted_at=now)
            repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner=prefix, name=slug,
                              path_key=f"{prefix}/{slug}", url=f"https://github.com/{prefix}/{slug}")
            db.session.add_all([project, repo, ProjectSdg(project=project, sdg=sdg)])
            db.session.flush()
            maintainer = person(f"{prefix}-{slug}-maintainer@example.org")
            db.session.add(ProjectMaintainer(project_id=project.id, user_id=maintainer.id, granted_by="test"))
            self.projects[sdg], self.repos[sdg] = project, repo
        self._number = 0
        db.session.flush()

    def item(self, sdg: int = 3) -> BacklogItem:
        self._number += 1
        now = utcnow()
        n = self._number
        row = BacklogItem(repository=self.repos[sdg], forge_host="github.com", forge_id=900000 + n + sdg * 1000,
                          number=n, title=f"Item {n}", state=ItemState.open,
                          html_url=f"https://github.com/{self.prefix}/x/issues/{n}",
                          forge_created_at=now, forge_updated_at=now)
        db.session.add(row)
        db.session.flush()
        return row

    def pool(self, budget: int, **options) -> MatchingPool:
        now = utcnow()
        options.setdefault("starts_at", now - timedelta(hours=1))
        options.setdefault("ends_at", now + timedelta(days=30))
        pool = pools.create_pool(self.sponsor, name=options.pop("name", "Health match"), currency="USD",
                                 budget_minor=budget, **options)
        assert pools.confirm_budget(pool.id, Money(budget, "USD"), reference="SPONSOR-1",
                                    received_on=now.date(), actor=self.admin)
        return pool

    def round(self, budget: int, **options) -> MatchingPool:
        options.setdefault("name", "Round")
        return self.pool(budget, kind=PoolKind.quadratic, **options)

    def pledge(self, funder: User, item: BacklogItem, amount: int, *, rail: Rail = Rail.card) -> Pledge:
        pledge = pledges.create(item, funder.id, Money(amount, "USD"), rail=rail, actor="test")
        pledge.payment_intent_id = f"pi_pool_{pledge.id}"
        assert pledges.mark_received(pledge.id, Money(amount, "USD"), actor="test")
        return pledge


def escrow(item: BacklogItem) -> int:
    return ledger.balance(ledger.account(AccountKind.item_escrow, item_id=item.id), "USD")


def held(pool: MatchingPool) -> int:
    return pools.pool_balance(pool)
