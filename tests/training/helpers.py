"""The training tests' world: project P (Codertocat/Hello-World, USD, fee 10%)
with a maintainer, two certified mentors and an uncertified trainee T."""
from __future__ import annotations

from datetime import timedelta

from marketplace.backlog.models import BacklogItem
from marketplace.claims import service as claims
from marketplace.claims.models import Claim
from marketplace.timeutil import utcnow
from marketplace.training import service as training
from marketplace.training.models import ReviewVerdict
from tests.payouts.helpers import World
from tests.webhooks.helpers import payload, post_github

T_GITHUB_ID, M1_GITHUB_ID, M2_GITHUB_ID = 5001, 5002, 5003


class TrainingWorld(World):
    """World plus: P requires 3 training merges and 2 mentors; M1 and M2 are certified mentors; T is not certified."""

    def __init__(self, session, client):
        super().__init__(session, client)
        self.maintainer.is_implementor = True
        training.set_rule(self.project, merges_required=3, mentors_required=2, trainee_percent=80,
                          maintainer=self.maintainer)
        self.m1 = self.implementor("m1@example.org", M1_GITHUB_ID)
        self.m2 = self.implementor("m2@example.org", M2_GITHUB_ID)
        for mentor in (self.m1, self.m2):
            training.name_mentor(self.project, mentor, maintainer=self.maintainer)
        self.trainee = self.implementor("t@example.org", T_GITHUB_ID, certified=False, country="KE")
        session.flush()

    def training_item(self, number: int, *, escrow: int | None = None) -> BacklogItem:
        item = self.issue(number)
        training.mark_item(item, True, maintainer=self.maintainer)
        if escrow:
            self.fund(item, escrow)
        return item

    def request(self, item: BacklogItem, user=None) -> Claim:
        return claims.request_claim(item, user or self.trainee, plan="I will fix it with tests.", estimate_days=5,
                                    deadline=utcnow().date() + timedelta(days=10))

    def mentored(self, item: BacklogItem, mentor) -> Claim:
        """T claims ``item`` and ``mentor`` approves the claim."""
        claim = self.request(item)
        training.approve_as_mentor(claim, mentor=mentor, note="Good plan; start with the tests.")
        return claim

    def approve_change(self, claim: Claim, mentor) -> None:
        training.review(claim, mentor=mentor, verdict=ReviewVerdict.approved, note="Looks good.")

    def merge(self, number: int, item: BacklogItem, author_id: int = T_GITHUB_ID) -> None:
        self.pull(number, f"Fixes #{item.number}", author_id=author_id, merged=True)

    def review_on_github(self, pull_number: int, item: BacklogItem, *, reviewer_id: int, state: str,
                         review_id: int, submitted_at: str, merged: bool, delivery_id: str | None = None):
        """A signed ``pull_request_review`` delivery of T's pull request ``pull_number`` closing ``item``."""
        data = payload("github/webhooks/pull_request/closed.unmerged.json")
        pr = data["pull_request"]
        pr.update(number=pull_number, id=880000 + pull_number, body=f"Fixes #{item.number}",
                  state="closed" if merged else "open",
                  html_url=f"https://github.com/Codertocat/Hello-World/pull/{pull_number}")
        pr.pop("merged", None)  # a review event's pull request has no "merged" flag
        pr["merged_at"] = "2019-05-15T15:20:40Z" if merged else None
        if not merged:
            pr["closed_at"] = None
        pr["user"]["id"], pr["user"]["login"] = T_GITHUB_ID, "trainee"
        body = {"action": "submitted", "repository": data["repository"], "pull_request": pr,
                "sender": data["sender"],
                "review": {"id": review_id, "user": {"login": f"mentor{reviewer_id}", "id": reviewer_id},
                           "state": state, "body": "Reviewed on GitHub.", "submitted_at": submitted_at}}
        response = post_github(self.client, "pull_request_review", body, delivery_id=delivery_id)
        assert response.status_code == 202
        return response
