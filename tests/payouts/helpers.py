"""Shared helpers of the payout tests: a member project with a 10% fee and
its people, driven by signed recorded GitHub webhooks."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from marketplace.accounts.models import ForgeIdentity, ImplementorProfile, User
from marketplace.backlog.models import BacklogItem
from marketplace.backlog.service import find_item
from marketplace.claims import certification
from marketplace.claims import service as claims
from marketplace.claims.models import Claim
from marketplace.ledger import service as ledger
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.payouts import service as payouts
from marketplace.payouts.models import Payout
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, Rail
from marketplace.projects.models import ProjectMaintainer
from marketplace.timeutil import utcnow
from tests.conftest import make_repository
from tests.webhooks.helpers import payload, post_github

AFTER_WINDOW = timedelta(days=8)  # past the default 7-day dispute window


class World:
    """Codertocat/Hello-World in a member project with a 10% fee, a maintainer and a funder."""

    def __init__(self, session, client):
        self.session, self.client = session, client
        self.repo = make_repository("Codertocat", "Hello-World")
        self.project = self.repo.project
        self.project.fee_rate_bps = 1000
        self.maintainer = self.user("maintainer@example.org")
        session.add(ProjectMaintainer(project_id=self.project.id, user_id=self.maintainer.id, granted_by="test"))
        self.admin = self.user("admin@example.org", admin=True)
        self.funder = self.user("funder@example.org")
        session.flush()

    def user(self, email, *, admin=False, implementor=False, github_id=None, country=None) -> User:
        user = User(display_name=email.split("@")[0], is_admin=admin, is_implementor=implementor,
                    email_verified_at=utcnow())
        user.set_email(email)
        self.session.add(user)
        self.session.flush()
        if github_id is not None:
            self.session.add(ForgeIdentity(user_id=user.id, forge="github", host="github.com",
                                           forge_user_id=github_id, login=email.split("@")[0]))
        if country is not None:
            self.session.add(ImplementorProfile(user_id=user.id, country=country))
        self.session.flush()
        return user

    def implementor(self, email, github_id, *, certified=True, country=None) -> User:
        user = self.user(email, implementor=True, github_id=github_id, country=country)
        if certified:
            certification.grant(user, issuer=self.admin, project_id=None, note="training 2026")
        return user

    def issue(self, number: int) -> BacklogItem:
        body = payload("github/webhooks/issues/opened.json")
        body["issue"].update(number=number, id=700000 + number, title=f"Issue {number}",
                             html_url=f"https://github.com/Codertocat/Hello-World/issues/{number}")
        assert post_github(self.client, "issues", body).status_code == 202
        return find_item("github.com", 700000 + number)

    def fund(self, item: BacklogItem, amount: int, currency: str = "USD") -> Pledge:
        pledge = pledges.create(item, self.funder.id, Money(amount, currency), rail=Rail.card, actor="test")
        pledge.payment_intent_id = f"pi_test_{pledge.id}"
        assert pledges.mark_received(pledge.id, Money(amount, currency), actor="test")
        return pledge

    def claim(self, item: BacklogItem, user: User) -> Claim:
        claim = claims.request_claim(item, user, plan="Fix it with tests.", estimate_days=5,
                                     deadline=utcnow().date() + timedelta(days=10))
        claims.approve(claim, maintainer=self.maintainer)
        return claim

    def pull(self, number: int, body: str, *, author_id: int, merged: bool, state: str = "closed"):
        data = payload("github/webhooks/pull_request/closed.unmerged.json")
        pr = data["pull_request"]
        pr.update(number=number, id=880000 + number, body=body, merged=merged, state=state,
                  html_url=f"https://github.com/Codertocat/Hello-World/pull/{number}")
        pr["merged_at"] = "2019-05-15T15:20:40Z" if merged else None
        pr["user"]["id"] = author_id
        pr["user"]["login"] = f"author{author_id}"
        assert post_github(self.client, "pull_request", data).status_code == 202

    def payouts_of(self, item: BacklogItem) -> list[Payout]:
        return list(self.session.scalars(select(Payout).where(Payout.item_id == item.id).order_by(Payout.id)))

    def approve(self, payout: Payout, recipients) -> Payout:
        return payouts.approve(payout.id, maintainer=self.maintainer, recipients=recipients)


def escrow(item_id: int) -> int:
    return ledger.balance(ledger.account(AccountKind.item_escrow, item_id=item_id), "USD")


def balance(kind: AccountKind, **owner) -> int:
    return ledger.balance(ledger.account(kind, **owner), "USD")


