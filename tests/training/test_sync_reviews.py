"""When a review webhook was missed, the periodic sync fetches the reviews of the
pull/merge requests of training claims (GitHub ``GET …/pulls/{number}/reviews``,
GitLab ``GET …/merge_requests/:iid/approvals``) from the local forge over HTTP and
records them as the webhook does: the same review from both paths is recorded once."""
from __future__ import annotations

from sqlalchemy import select

from jobs.sync import sync_repository
from marketplace.accounts.models import ForgeIdentity
from marketplace.backlog.models import BacklogItem, PullRequest
from marketplace.claims.models import ClaimState
from marketplace.payouts.models import PayoutState
from marketplace.training import queries
from marketplace.training import service as training
from marketplace.training.models import MentorReview, ReviewVerdict
from tests.conftest import make_repository
from tests.training.helpers import M1_GITHUB_ID, M2_GITHUB_ID, T_GITHUB_ID
from tests.webhooks.test_gitlab_webhooks import _gitlab_issue, _gitlab_mr


def _review(review_id: int, reviewer_id: int, state: str, submitted_at: str, body: str = "") -> dict:
    """An element of GitHub's ``GET /repos/{owner}/{repo}/pulls/{number}/reviews``."""
    return {"id": review_id, "node_id": f"PRR_{review_id}", "user": {"login": f"user{reviewer_id}", "id": reviewer_id},
            "body": body, "state": state, "submitted_at": submitted_at, "commit_id": "a" * 40,
            "author_association": "MEMBER"}


def _shares(payout):
    return [(s.recipient_id, s.amount_minor) for s in payout.shares]


def _reviews(session, claim_id):
    return sorted((r.external_id, r.verdict, r.source, r.mentor_id, r.note) for r in session.scalars(
        select(MentorReview).where(MentorReview.claim_id == claim_id)))


def _github_world(world, session, github_forge, *, merged: bool = True):
    """T's training claim on X (50.00 USD), mentored by M1; T's pull request #10 merged (or open)."""
    x = world.training_item(1, escrow=5000)
    claim = world.mentored(x, world.m1)
    if merged:
        world.merge(10, x)
    else:
        world.pull(10, f"Fixes #{x.number}", author_id=T_GITHUB_ID, merged=False, state="open")
    repo = x.repository
    github_forge.repos[(repo.owner, repo.name)] = {
        "id": repo.forge_id, "default_branch": "master", "issues": [], "pulls": [],
        "reviews": {10: [
            _review(71, M1_GITHUB_ID, "CHANGES_REQUESTED", "2019-05-15T16:00:00Z", "Add a test."),
            _review(72, 999_999, "APPROVED", "2019-05-15T16:30:00Z"),  # not the mentor
            _review(73, M1_GITHUB_ID, "COMMENTED", "2019-05-15T16:40:00Z", "Nice."),  # no verdict
            _review(74, M1_GITHUB_ID, "APPROVED", "2019-05-15T17:00:00Z", "Good now."),
            _review(75, M2_GITHUB_ID, "APPROVED", "2019-05-15T17:10:00Z"),  # a mentor, not this claim's
        ]},
    }
    session.commit()
    assert world.payouts_of(x) == []
    return x, claim, repo


def test_sync_records_the_mentors_missed_github_reviews_and_proposes_the_payout(world, session, github_forge):
    x, claim, repo = _github_world(world, session, github_forge)
    sync_repository(repo.id)
    assert [r.path for r in github_forge.received if r.path.endswith("/reviews")] == [
        f"/repos/{repo.owner}/{repo.name}/pulls/10/reviews"]
    assert _reviews(session, claim.id) == [
        (f"github.com:review:71:claim:{claim.id}", ReviewVerdict.changes_requested, "github", world.m1.id,
         "Add a test."),
        (f"github.com:review:74:claim:{claim.id}", ReviewVerdict.approved, "github", world.m1.id, "Good now."),
    ]
    assert queries.standing_verdict(claim.id, world.m1.id) is ReviewVerdict.approved
    [payout] = world.payouts_of(x)
    assert payout.state is PayoutState.proposed
    assert (payout.gross_minor, payout.fee_minor, _shares(payout)) == (5000, 500, [(world.trainee.id, 3600),
                                                                                   (world.m1.id, 900)])
    session.refresh(claim)
    assert claim.state is ClaimState.completed
    # The webhook of review 74 arrives late, then sync runs again: nothing more is recorded or proposed.
    world.review_on_github(10, x, reviewer_id=M1_GITHUB_ID, state="approved", review_id=74,
                           submitted_at="2019-05-15T17:00:00Z", merged=True)
    sync_repository(repo.id)
    assert len(_reviews(session, claim.id)) == 2
    assert [p.id for p in world.payouts_of(x)] == [payout.id]


def test_a_review_the_webhook_brought_is_not_recorded_again_by_sync(world, session, github_forge):
    x, claim, repo = _github_world(world, session, github_forge, merged=False)
    world.review_on_github(10, x, reviewer_id=M1_GITHUB_ID, state="changes_requested", review_id=71,
                           submitted_at="2019-05-15T16:00:00Z", merged=False)
    session.commit()
    sync_repository(repo.id)
    # 71 came by webhook and stays one row; the approval the webhook missed (74) is added.
    assert [(external_id, verdict) for external_id, verdict, *_ in _reviews(session, claim.id)] == [
        (f"github.com:review:71:claim:{claim.id}", ReviewVerdict.changes_requested),
        (f"github.com:review:74:claim:{claim.id}", ReviewVerdict.approved),
    ]
    assert queries.standing_verdict(claim.id, world.m1.id) is ReviewVerdict.approved
    assert world.payouts_of(x) == []  # not merged yet
    sync_repository(repo.id)
    assert len(_reviews(session, claim.id)) == 2
    # The merge now proposes the payout at once: the mentor's approval is in.
    world.merge(10, x)
    [payout] = world.payouts_of(x)
    assert _shares(payout) == [(world.trainee.id, 3600), (world.m1.id, 900)]


def test_sync_asks_no_reviews_without_a_mentored_training_claim(world, session, github_forge):
    x = world.training_item(1, escrow=5000)
    world.request(x)  # requested: no mentor yet
    world.pull(10, "Fixes #1", author_id=T_GITHUB_ID, merged=False, state="open")
    repo = x.repository
    github_forge.repos[(repo.owner, repo.name)] = {"id": repo.forge_id, "default_branch": "master", "issues": [],
                                                   "pulls": [], "reviews": {10: []}}
    session.commit()
    sync_repository(repo.id)
    assert [r.path for r in github_forge.received if "/reviews" in r.path] == []


MENTOR_GITLAB_ID, TRAINEE_GITLAB_ID = 777001, 9  # 9: the author of _gitlab_mr's merge requests


def test_sync_records_a_missed_gitlab_approval_once(world, session, gitlab_forge):
    repo = make_repository("health", "records", host="gitlab.example.org", project_slug=world.project.slug)
    forge_repo = {"id": 4242, "default_branch": "main", "issues": [_gitlab_issue(7, "2026-02-01T00:00:00.000Z")],
                  "pulls": []}
    gitlab_forge.repos[("health", "records")] = forge_repo
    sync_repository(repo.id, full=True)
    item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id))
    session.add_all([ForgeIdentity(user_id=world.trainee.id, forge="gitlab", host="gitlab.example.org",
                                   forge_user_id=TRAINEE_GITLAB_ID, login="dev"),
                     ForgeIdentity(user_id=world.m1.id, forge="gitlab", host="gitlab.example.org",
                                   forge_user_id=MENTOR_GITLAB_ID, login="mentor")])
    training.mark_item(item, True, maintainer=world.maintainer)
    world.fund(item, 5000)
    claim = world.mentored(item, world.m1)
    session.commit()
    # The merge request merges and the mentor approves it; neither hook reaches us.
    forge_repo["pulls"] = [_gitlab_mr(40, "2026-02-03T00:00:00.000Z", description="Closes #7")]
    forge_repo["approvals"] = {40: {
        "id": 70_040, "iid": 40, "project_id": 4242, "state": "merged", "updated_at": "2026-02-03T00:00:00.000Z",
        "approved": True, "approvals_required": 0, "approvals_left": 0,
        "approved_by": [{"user": {"id": MENTOR_GITLAB_ID, "username": "mentor", "name": "Mentor"},
                         "approved_at": "2026-02-02T12:00:00.000Z"},
                        {"user": {"id": 31337, "username": "someone", "name": "Someone"}}]}}
    sync_repository(repo.id, full=True)
    assert "/api/v4/projects/4242/merge_requests/40/approvals" in [r.path for r in gitlab_forge.received]
    pull = session.scalar(select(PullRequest).where(PullRequest.repository_id == repo.id, PullRequest.number == 40))
    assert _reviews(session, claim.id) == [
        (f"gitlab.example.org:approval:{pull.forge_id}:{MENTOR_GITLAB_ID}:2026-02-02T12:00:00:claim:{claim.id}",
         ReviewVerdict.approved, "gitlab", world.m1.id, "")]
    [payout] = world.payouts_of(item)
    assert _shares(payout) == [(world.trainee.id, 3600), (world.m1.id, 900)]
    # Sync again, then the approval hook arrives late (what the webhook records): still one review.
    sync_repository(repo.id, full=True)
    late = training.record_forge_review(pull, reviewer_forge_id=MENTOR_GITLAB_ID, verdict=ReviewVerdict.approved,
                                        note="", external_id="gitlab.example.org:delivery:991",
                                        submitted_at=None)
    assert late == []
    assert len(_reviews(session, claim.id)) == 1
    assert [p.id for p in world.payouts_of(item)] == [payout.id]


def _gitlab_claim(world, session, gitlab_forge):
    """T's training claim on #7 of a GitLab repository, mentored by M1; T's merge request !40 closes it (open)."""
    repo = make_repository("health", "records", host="gitlab.example.org", project_slug=world.project.slug)
    forge_repo = {"id": 4242, "default_branch": "main", "issues": [_gitlab_issue(7, "2026-02-01T00:00:00.000Z")],
                  "pulls": []}
    gitlab_forge.repos[("health", "records")] = forge_repo
    sync_repository(repo.id, full=True)
    item = session.scalar(select(BacklogItem).where(BacklogItem.repository_id == repo.id))
    session.add_all([ForgeIdentity(user_id=world.trainee.id, forge="gitlab", host="gitlab.example.org",
                                   forge_user_id=TRAINEE_GITLAB_ID, login="dev"),
                     ForgeIdentity(user_id=world.m1.id, forge="gitlab", host="gitlab.example.org",
                                   forge_user_id=MENTOR_GITLAB_ID, login="mentor")])
    training.mark_item(item, True, maintainer=world.maintainer)
    claim = world.mentored(item, world.m1)
    forge_repo["pulls"] = [_gitlab_mr(40, "2026-02-03T00:00:00.000Z", description="Closes #7", state="opened")]
    forge_repo["approvals"] = {40: {"id": 70_040, "iid": 40, "project_id": 4242, "updated_at":
                                    "2026-02-03T00:00:00.000Z", "approved_by": []}}
    session.commit()
    sync_repository(repo.id, full=True)
    pull = session.scalar(select(PullRequest).where(PullRequest.repository_id == repo.id, PullRequest.number == 40))
    return claim, pull, forge_repo, repo


def _hook(pull, delivery: int, verdict: ReviewVerdict, at: str) -> list[int]:
    """What the merge request hook records for the mentor's approval (or its withdrawal) at ``at``."""
    from datetime import datetime

    return training.record_forge_review(
        pull, reviewer_forge_id=MENTOR_GITLAB_ID, verdict=verdict,
        note="" if verdict is ReviewVerdict.approved else "The approval was withdrawn on GitLab.",
        external_id=f"gitlab.example.org:delivery:{delivery}", submitted_at=datetime.fromisoformat(at))


def test_gitlab_approval_hooks_out_of_order_leave_the_verdict_gitlab_ended_with(world, session, gitlab_forge):
    """The mentor approves (10:00), withdraws (11:00) and approves again (12:00);
    GitLab delivers the hooks 10:00, 12:00, 11:00 (a retried delivery): each is
    its own event and is recorded, and the standing verdict is the 12:00 approval."""
    claim, pull, _forge_repo, _repo = _gitlab_claim(world, session, gitlab_forge)
    assert len(_hook(pull, 1, ReviewVerdict.approved, "2026-02-04T10:00:00")) == 1
    assert len(_hook(pull, 3, ReviewVerdict.approved, "2026-02-04T12:00:00")) == 1
    assert len(_hook(pull, 2, ReviewVerdict.changes_requested, "2026-02-04T11:00:00")) == 1
    assert [(r.verdict, r.submitted_at.hour) for r in queries.reviews_of(claim.id)] == [
        (ReviewVerdict.approved, 10), (ReviewVerdict.changes_requested, 11), (ReviewVerdict.approved, 12)]
    assert queries.standing_verdict(claim.id, world.m1.id) is ReviewVerdict.approved


def test_a_gitlab_approval_sync_saw_first_is_not_recorded_again_by_its_hook(world, session, gitlab_forge):
    """Sync sees the mentor's approval of 10:00 standing; its hook arrives after: one review.
    The withdrawal hook then records the withdrawal; sync, seeing no approval, records nothing."""
    claim, pull, forge_repo, repo = _gitlab_claim(world, session, gitlab_forge)
    forge_repo["approvals"][40]["approved_by"] = [
        {"user": {"id": MENTOR_GITLAB_ID, "username": "mentor"}, "approved_at": "2026-02-04T10:00:00.000Z"}]
    sync_repository(repo.id, full=True)
    assert _hook(pull, 1, ReviewVerdict.approved, "2026-02-04T10:00:01") == []
    assert len(_hook(pull, 2, ReviewVerdict.changes_requested, "2026-02-04T11:00:00")) == 1
    forge_repo["approvals"][40]["approved_by"] = []
    sync_repository(repo.id, full=True)
    assert [(r.verdict, r.submitted_at.hour) for r in queries.reviews_of(claim.id)] == [
        (ReviewVerdict.approved, 10), (ReviewVerdict.changes_requested, 11)]
    assert queries.standing_verdict(claim.id, world.m1.id) is ReviewVerdict.changes_requested
