"""/claim and /unclaim typed in issue comments (GitHub issue_comment, GitLab
Note Hook), run once, as the site's form would (issue 22)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import ForgeIdentity
from marketplace.backlog.service import upsert_issue
from marketplace.claims.models import Claim, ClaimState
from marketplace.forges.types import ForgeIssue
from marketplace.presence import service as presence
from marketplace.presence.commands import parse_command
from marketplace.presence.models import ForgeCommand, RepositoryPresence
from marketplace.presence.secrets import decrypt_token
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import DeliveryStatus, WebhookDelivery
from marketplace.webhooks.service import process
from tests.conftest import make_repository
from tests.presence.helpers import comments, turn_on
from tests.webhooks.helpers import payload, post_github, post_gitlab

# --- reading commands -----------------------------------------------------------------------------


def test_a_command_with_a_plan_and_a_deadline_is_read():
    command = parse_command("Thanks!\n\n/claim by 2027-01-31 I will add the export\nwith tests.")
    assert (command.name, command.plan, command.deadline.isoformat()) == (
        "claim", "I will add the export with tests.", "2027-01-31")
    assert parse_command("/unclaim").name == "unclaim"
    assert parse_command("/claim").plan == "" and parse_command("/claim").deadline is None
    assert parse_command("/claim 2027-02-30 plan").bad_date == "2027-02-30"


@pytest.mark.parametrize("body", [
    "```\n/claim\n```",
    "~~~markdown\n/claim my plan\n~~~",
    "Type this:\n\n    /claim my plan",
    "> /claim\n\nI agree with the above.",
    "Write `/claim` in a comment to claim it.",
    "Please /claim this",
])
def test_commands_in_code_blocks_quotes_or_mid_sentence_are_not_commands(body):
    assert parse_command(body) is None


def test_a_command_after_a_closed_code_block_counts():
    assert parse_command("```\n/unclaim\n```\n/claim fix").name == "claim"


# --- GitHub ---------------------------------------------------------------------------------------

def comment_payload(item, *, comment_id: int, body: str, user_id: int, login: str,
                    action: str = "created") -> dict:
    data = payload(f"github/webhooks/issue_comment/{action}.json")
    data["issue"].update(id=item.forge_id, number=item.number, title=item.title, html_url=item.html_url)
    data["comment"].update(id=comment_id, body=body)
    data["comment"]["user"].update(id=user_id, login=login)
    return data


def deadline(days: int = 20) -> str:
    return (utcnow().date() + timedelta(days=days)).isoformat()


@pytest.fixture
def funded(world, session):
    item = world.issue(501)
    turn_on(world)
    world.fund(item, 8000)
    session.commit()
    return item


def claims_on(session, item) -> list[Claim]:
    return list(session.scalars(select(Claim).where(Claim.item_id == item.id).order_by(Claim.id)))


def test_claim_by_a_linked_commenter_makes_the_claim_request_and_the_comment_answers(
        world, session, github_forge, funded):
    ama = world.implementor("ama@example.org", github_id=5101)
    body = f"/claim by {deadline()} Add the CSV export, with tests."
    assert post_github(world.client, "issue_comment",
                       comment_payload(funded, comment_id=9001, body=body, user_id=5101, login="ama")
                       ).status_code == 202
    [claim] = claims_on(session, funded)
    assert (claim.claimant_id, claim.state, claim.plan) == (ama.id, ClaimState.requested,
                                                           "Add the CSV export, with tests.")
    assert (claim.deadline.isoformat(), claim.estimate_days) == (deadline(), 20)
    [living] = comments(github_forge, 501)
    assert f"Latest command: @ama asked to claim this item (deadline {deadline()})" in living["body"]
    command = session.scalar(select(ForgeCommand).where(ForgeCommand.comment_id == 9001))
    assert (command.outcome, command.user_id, command.claim_id) == ("requested", ama.id, claim.id)


def test_the_same_rules_as_the_form_refuse_a_claim_and_the_comment_says_why(world, session, github_forge, funded):
    world.user("not-implementor@example.org", github_id=5102)  # no implementor role
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9002, body="/claim", user_id=5102, login="nora"))
    assert claims_on(session, funded) == []
    [living] = comments(github_forge, 501)
    assert "@nora's `/claim` was not applied: Only implementors can claim items." in living["body"]
    far = (utcnow().date() + timedelta(days=400)).isoformat()
    world.implementor("ama@example.org", github_id=5103)
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9003, body=f"/claim {far} plan", user_id=5103, login="ama"))
    assert claims_on(session, funded) == []
    assert "The deadline must be between today and one year from today." in comments(github_forge, 501)[0]["body"]


def test_an_edited_comment_a_redelivery_and_a_replay_do_not_run_the_command_twice(
        world, session, github_forge, funded):
    world.implementor("ama@example.org", github_id=5104)
    data = comment_payload(funded, comment_id=9004, body="/claim my plan", user_id=5104, login="ama")
    post_github(world.client, "issue_comment", data, delivery_id="d-9004")
    assert len(claims_on(session, funded)) == 1
    # GitHub delivers the same delivery again: stored once, nothing runs.
    assert post_github(world.client, "issue_comment", data, delivery_id="d-9004").status_code == 200
    # An admin replays the delivery: the comment's command ran already.
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "d-9004"))
    assert process(delivery.id, replay=True) == "ignored"
    # The commenter edits the comment (same comment id).
    edited = comment_payload(funded, comment_id=9004, body="/claim my better plan", user_id=5104, login="ama",
                             action="edited")
    post_github(world.client, "issue_comment", edited, delivery_id="d-9004-edit")
    edit = session.scalar(select(WebhookDelivery).where(WebhookDelivery.delivery_id == "d-9004-edit"))
    assert edit.status is DeliveryStatus.ignored and "ran already" in edit.outcome
    [claim] = claims_on(session, funded)
    assert claim.plan == "my plan"


def test_unclaim_withdraws_the_commenters_own_claim_only(world, session, github_forge, funded):
    ama = world.implementor("ama@example.org", github_id=5105)
    world.implementor("kofi@example.org", github_id=5106)
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9005, body="/claim plan", user_id=5105, login="ama"))
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9006, body="/unclaim", user_id=5106, login="kofi"))
    [claim] = claims_on(session, funded)
    assert claim.state is ClaimState.requested
    assert "@kofi has no open claim on this item to withdraw." in comments(github_forge, 501)[0]["body"]
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9007, body="Sorry, no time.\n/unclaim", user_id=5105,
                                login="ama"))
    session.refresh(claim)
    assert (claim.claimant_id, claim.state) == (ama.id, ClaimState.withdrawn)
    assert "@ama withdrew their claim" in comments(github_forge, 501)[0]["body"]


def test_an_unlinked_commenter_gets_one_reply_explaining_how_to_link(world, session, github_forge, funded):
    for comment_id in (9008, 9009):
        post_github(world.client, "issue_comment",
                    comment_payload(funded, comment_id=comment_id, body="/claim", user_id=777, login="stranger"))
    assert claims_on(session, funded) == []
    replies = [c for c in comments(github_forge, 501) if "backlog-commons:reply:" in c["body"]]
    assert len(replies) == 1
    assert "@stranger, your `/claim` could not be applied" in replies[0]["body"]
    assert "http://localhost/account" in replies[0]["body"]
    outcomes = session.scalars(select(ForgeCommand.outcome).where(ForgeCommand.author_forge_id == 777)
                               .order_by(ForgeCommand.id)).all()
    assert outcomes == ["unlinked", "unlinked_again"]
    # The reply job retried: the marker finds the reply, nothing more is posted.
    first = session.scalar(select(ForgeCommand).where(ForgeCommand.comment_id == 9008))
    first.reply_comment_id = None
    session.commit()
    assert presence.reply_unlinked(first.id) == "posted"
    assert len([c for c in comments(github_forge, 501) if "backlog-commons:reply:" in c["body"]]) == 1


def test_commands_in_code_blocks_or_quotes_and_our_own_comments_run_nothing(world, session, github_forge, funded):
    world.implementor("ama@example.org", github_id=5110)
    for comment_id, body in ((9010, "```\n/claim\n```"), (9011, "> /claim\nquoted"),
                             (9012, presence.marker(funded.id) + "\n/claim")):
        post_github(world.client, "issue_comment",
                    comment_payload(funded, comment_id=comment_id, body=body, user_id=5110, login="ama"))
    assert claims_on(session, funded) == []
    assert session.scalar(select(func.count()).select_from(ForgeCommand)) == 0


def test_only_comments_on_the_issues_of_an_opted_in_repository_count(world, session, github_forge):
    item = world.issue(502)
    world.implementor("ama@example.org", github_id=5111)
    # Not opted in: the command is not run.
    post_github(world.client, "issue_comment",
                comment_payload(item, comment_id=9013, body="/claim plan", user_id=5111, login="ama"))
    assert claims_on(session, item) == []
    turn_on(world)
    # An issue of another repository, delivered with this repository: no item of this repository.
    other = make_repository("other-org", "other-repo")
    stray = upsert_issue(other, ForgeIssue(
        forge_id=8_800_001, number=77, title="Elsewhere", body=None, state="open", state_reason=None, labels=[],
        author_login=None, author_forge_id=None, html_url="https://github.com/other-org/other-repo/issues/77",
        comments_count=0, locked=False, created_at=utcnow(), updated_at=utcnow(), closed_at=None)).row
    session.commit()
    post_github(world.client, "issue_comment",
                comment_payload(stray, comment_id=9014, body="/claim plan", user_id=5111, login="ama"))
    assert claims_on(session, stray) == []
    post_github(world.client, "issue_comment",
                comment_payload(item, comment_id=9015, body="/claim plan", user_id=5111, login="ama"))
    assert len(claims_on(session, item)) == 1


# --- GitLab ---------------------------------------------------------------------------------------

def test_gitlab_note_claims_with_the_token_stored_encrypted(world, session, gitlab_forge):
    repo = make_repository("gitlab-org", "gitlab-test", host="gitlab.example.org", forge_id=5)
    gitlab_forge.repos[("gitlab-org", "gitlab-test")] = {"id": 5, "default_branch": "main", "issues": [],
                                                          "pulls": []}
    item = upsert_issue(repo, ForgeIssue(
        forge_id=92, number=17, title="test_issue", body=None, state="open", state_reason=None, labels=[],
        author_login=None, author_forge_id=None, html_url="https://gitlab.example.org/gitlab-org/gitlab-test/-/issues/17",
        comments_count=0, locked=False, created_at=utcnow(), updated_at=utcnow(), closed_at=None)).row
    with pytest.raises(presence.PresenceError):
        presence.set_presence(repo, True, actor=world.maintainer)  # no token yet
    presence.set_presence(repo, True, actor=world.maintainer, gitlab_token="glpat-secret-token-1")
    session.commit()
    stored = session.scalar(select(RepositoryPresence).where(RepositoryPresence.repository_id == repo.id))
    assert "glpat" not in stored.gitlab_token_encrypted
    assert decrypt_token(stored.gitlab_token_encrypted) == "glpat-secret-token-1"
    ama = world.user("ama@example.org", implementor=True)
    session.add(ForgeIdentity(user_id=ama.id, forge="gitlab", host="gitlab.example.org", forge_user_id=42,
                              login="user1"))
    session.commit()
    data = payload("gitlab/webhooks/note/issue.docs-example.json")
    data["project"].update(web_url="https://gitlab.example.org/gitlab-org/gitlab-test", visibility_level=20)
    data["object_attributes"].update(note=f"/claim {deadline(30)} I know this code.")
    assert post_gitlab(world.client, "Note Hook", data).status_code == 202
    [claim] = claims_on(session, item)
    assert (claim.claimant_id, claim.plan, claim.estimate_days) == (ama.id, "I know this code.", 30)
    [note] = gitlab_forge.comments[("5", "17")]
    assert "@user1 asked to claim this item" in note["body"]
    written = [r for r in gitlab_forge.writes() if r.method == "POST"]
    assert written and all(r.headers.get("PRIVATE-TOKEN") == "glpat-secret-token-1" for r in written)
    # The same note edited (GitLab's "update" action) does not run again.
    data["object_attributes"].update(action="update", note="/unclaim")
    post_gitlab(world.client, "Note Hook", data)
    assert claims_on(session, item)[0].state is ClaimState.requested


def test_a_gitlab_token_that_no_longer_decrypts_is_recorded_as_failed_and_nothing_is_sent(
        app, world, session, gitlab_forge):
    from cryptography.fernet import Fernet

    from jobs.presence import refresh_item
    from marketplace.presence.models import ForgeWrite

    repo = make_repository("gitlab-org", "gitlab-test", host="gitlab.example.org", forge_id=5)
    gitlab_forge.repos[("gitlab-org", "gitlab-test")] = {"id": 5, "default_branch": "main", "issues": [],
                                                          "pulls": []}
    item = upsert_issue(repo, ForgeIssue(
        forge_id=93, number=18, title="t", body=None, state="open", state_reason=None, labels=[],
        author_login=None, author_forge_id=None, html_url="https://gitlab.example.org/gitlab-org/gitlab-test/-/issues/18",
        comments_count=0, locked=False, created_at=utcnow(), updated_at=utcnow(), closed_at=None)).row
    presence.set_presence(repo, True, actor=world.maintainer, gitlab_token="glpat-secret-token-2")
    session.commit()
    app.config["FORGE_TOKEN_KEY"] = Fernet.generate_key().decode()  # the key was changed
    try:
        world.fund(item, 3000)
        session.commit()
        assert refresh_item(item.id) == "failed"
    finally:
        app.config.pop("FORGE_TOKEN_KEY")
    assert gitlab_forge.writes() == []
    outcomes = session.scalars(select(ForgeWrite.outcome).where(ForgeWrite.item_id == item.id)).all()
    assert outcomes and all("cannot be decrypted" in o for o in outcomes)
