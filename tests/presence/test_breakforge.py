"""Adversarial cases of forge presence (issue 22): comments as the outside world
sends them (hidden, reordered, from bots), hostile badge labels, a forge that
refuses for good, and two living-comment jobs racing on one item."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.claims.models import Claim, ClaimState
from marketplace.forges.http import ForgeError, Unavailable
from marketplace.presence import badges
from marketplace.presence import service as presence
from marketplace.presence.commands import is_gitlab_bot, parse_command
from marketplace.presence.models import ForgeCommand
from marketplace.timeutil import utcnow
from tests.presence.helpers import REPO, actions, comments, row, turn_on
from tests.presence.test_commands import comment_payload
from tests.webhooks.helpers import post_github


def _claims(session, item) -> list[Claim]:
    return list(session.scalars(select(Claim).where(Claim.item_id == item.id).order_by(Claim.id)))


@pytest.fixture
def funded(world, session):
    item = world.issue(601)
    turn_on(world)
    world.fund(item, 8000)
    session.commit()
    return item


# --- reading commands -----------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "<!--\n/claim\n-->",
    "Thanks for the template.\n<!-- maintainers only:\n/claim my plan\n-->\nLooks good.",
    "<!-- /claim -->",
    "<!-- a\nb -->\n<!--\n/unclaim\n-->",
])
def test_a_command_inside_an_html_comment_the_forge_does_not_show_is_not_a_command(body):
    assert parse_command(body) is None


def test_a_command_after_a_closed_html_comment_counts():
    command = parse_command("<!--\nhidden /unclaim\n-->\n/claim my plan")
    assert (command.name, command.plan) == ("claim", "my plan")


def test_a_date_in_the_plan_below_the_command_is_plan_text_not_the_deadline():
    command = parse_command("/claim\nI will port the fix of the 2024-03-01 release.")
    assert command.deadline is None and command.bad_date is None
    assert command.plan == "I will port the fix of the 2024-03-01 release."
    on_line = parse_command("/claim 2027-01-31 port the fix\nof the 2024-03-01 release")
    assert (on_line.deadline.isoformat(), on_line.plan) == ("2027-01-31", "port the fix of the 2024-03-01 release")


def test_a_plan_dated_below_the_command_makes_the_claim_with_the_default_deadline(
        world, session, github_forge, funded):
    world.implementor("ama@example.org", github_id=6101)
    body = "/claim\nI will backport what the 2024-03-01 release did."
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9601, body=body, user_id=6101, login="ama"))
    [claim] = _claims(session, funded)
    assert claim.deadline == utcnow().date() + timedelta(days=14)


@pytest.mark.parametrize("username, bot", [
    ("project_42_bot_1a2b3c4d5e6f7a8b", True), ("group_7_bot", True), ("support-bot", True), ("ghost", True),
    ("user1", False), ("robot-lover", False), ("project_manager", False), (None, False)])
def test_gitlab_bot_accounts_are_known_by_their_usernames(username, bot):
    assert is_gitlab_bot(username) is bot


# --- deliveries in any order ----------------------------------------------------------------------

def test_claim_then_unclaim_delivered_in_reverse_leaves_no_claim(world, session, github_forge, funded):
    world.implementor("ama@example.org", github_id=6102)
    # The commenter wrote /claim (comment 9610) then /unclaim (9611); the forge delivers 9611 first.
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9611, body="/unclaim", user_id=6102, login="ama"))
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9610, body="/claim plan", user_id=6102, login="ama"))
    assert _claims(session, funded) == []
    late = session.scalar(select(ForgeCommand).where(ForgeCommand.comment_id == 9610))
    assert late.outcome == "superseded"
    assert "@ama's `/claim` was not applied: a later comment of theirs" in comments(github_forge, 601)[0]["body"]


def test_an_old_comment_edited_to_add_a_claim_after_a_later_unclaim_asks_for_a_new_comment(
        world, session, github_forge, funded):
    world.implementor("ama@example.org", github_id=6106)
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9641, body="/unclaim", user_id=6106, login="ama"))
    edited = comment_payload(funded, comment_id=9640, body="I can help.\n/claim plan", user_id=6106, login="ama",
                             action="edited")
    post_github(world.client, "issue_comment", edited)
    assert _claims(session, funded) == []
    assert "write it in a new comment" in comments(github_forge, 601)[0]["body"]
    # A new comment runs.
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9642, body="/claim plan", user_id=6106, login="ama"))
    assert len(_claims(session, funded)) == 1


def test_unclaim_delivered_after_a_later_claim_does_not_withdraw_it(world, session, github_forge, funded):
    ama = world.implementor("ama@example.org", github_id=6103)
    # /unclaim (9620) written before /claim (9621), delivered after it.
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9621, body="/claim plan", user_id=6103, login="ama"))
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9620, body="/unclaim", user_id=6103, login="ama"))
    [claim] = _claims(session, funded)
    assert (claim.claimant_id, claim.state) == (ama.id, ClaimState.requested)


def test_another_commenters_later_comment_does_not_supersede(world, session, github_forge, funded):
    world.implementor("ama@example.org", github_id=6104)
    world.implementor("kofi@example.org", github_id=6105)
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9631, body="/unclaim", user_id=6105, login="kofi"))
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9630, body="/claim plan", user_id=6104, login="ama"))
    assert len(_claims(session, funded)) == 1


# --- badges ---------------------------------------------------------------------------------------

def test_bidirectional_controls_in_a_badge_label_are_dropped(world, session, funded):
    svg = badges.render_badge("\u202ebounty\u202c \u2066x\u2069", "$80", "#2c7a3f")
    assert not any(ch in svg for ch in "\u202e\u202c\u2066\u2069")
    assert "<title>bounty x: $80</title>" in svg
    answer = world.client.get(f"/items/{funded.id}/badge.svg?label=%E2%80%AE001%24+ytnuob")
    assert answer.status_code == 200 and "\u202e" not in answer.get_data(as_text=True)
    assert "001$ ytnuob" in answer.get_data(as_text=True)


# --- the forge refusing for good ------------------------------------------------------------------

class _Refusing:
    """A writer whose edits the forge refuses with ``error``; reads find nothing."""

    def __init__(self, error: Exception):
        self.error = error

    def list_comments(self, repo, number):
        return [(1, "someone else's comment")]

    def post_comment(self, repo, number, body):
        raise self.error

    def edit_comment(self, repo, number, comment_id, body):
        raise self.error

    def set_label(self, *args):
        raise self.error

    def close(self):
        pass


def test_a_410_gone_is_recorded_as_failed_not_retried_forever(world, session, github_forge, funded, monkeypatch):
    world.fund(funded, 1000)
    session.commit()
    monkeypatch.setattr(presence, "writer_for", lambda repo, setting: _Refusing(
        ForgeError("410 from the forge: Issues are disabled for this repo")))
    world.fund(funded, 1000)
    session.commit()
    assert presence.refresh_item(funded.id) == "failed"
    assert actions(session, funded)[-1] == "failed"
    assert "410" in row(session, funded).last_error


def test_an_outage_still_raises_for_the_jobs_retries(world, session, github_forge, funded, monkeypatch):
    monkeypatch.setattr(presence, "writer_for", lambda repo, setting: _Refusing(Unavailable("500 from the forge")))
    world.fund(funded, 1000)
    with pytest.raises(Unavailable):
        presence.refresh_item(funded.id)


# --- two jobs on one item -------------------------------------------------------------------------

def test_a_slow_job_never_writes_an_older_state_over_a_newer_one(world, session, github_forge, funded,
                                                                   monkeypatch):
    """Job A reads the state ($80), then waits for the item's lock while $40 more is
    committed and job B writes $120; A, once it has the lock, must not write $80."""
    old = presence.bounty_state(funded)
    world.fund(funded, 4000)
    session.commit()  # job B: the comment shows $120
    assert "$120" in comments(github_forge, 601)[0]["body"]
    real, reads = presence.bounty_state, []

    def read_before_the_lock_is_old(item):
        reads.append(item.id)
        return old if len(reads) == 1 else real(item)

    monkeypatch.setattr(presence, "bounty_state", read_before_the_lock_is_old)
    assert presence.refresh_item(funded.id) == "current"
    [living] = comments(github_forge, 601)
    assert "$120" in living["body"] and "$80" not in living["body"]


# --- a commenter imitating our comment ------------------------------------------------------------

def test_a_comment_carrying_a_guessed_marker_is_not_adopted_as_ours(world, session, github_forge):
    item = world.issue(602)
    turn_on(world)
    session.commit()
    # Before the item is funded, someone writes what our marker would look like without its tag.
    planted = {"id": 60_000_001, "body": f"<!-- backlog-commons:item:{item.id} -->\nThis is mine.",
               "html_url": "https://github.com/x/y/issues/602#issuecomment-60000001"}
    github_forge.comments.setdefault((REPO, "602"), []).append(planted)
    world.fund(item, 5000)
    session.commit()
    theirs, ours = comments(github_forge, 602)
    assert theirs["body"].endswith("This is mine.")  # not overwritten
    assert presence.marker(item.id) in ours["body"] and "$50" in ours["body"]
    assert row(session, item).comment_id == ours["id"]
    assert "adopt_comment" not in actions(session, item)


# --- bizarre deadlines and identities -------------------------------------------------------------

@pytest.mark.parametrize("when, says", [
    ("2026-02-30", "2026-02-30 is not a date"),
    ("past", "has passed or is today"),
    ("today", "has passed or is today"),
    ("3026-01-01", "The deadline must be between today and one year from today."),
])
def test_a_bizarre_deadline_is_refused_with_a_reason_that_fits(world, session, github_forge, funded, when, says):
    world.implementor("ama@example.org", github_id=6107)
    day = {"past": (utcnow().date() - timedelta(days=3)).isoformat(),
           "today": utcnow().date().isoformat()}.get(when, when)
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9650, body=f"/claim {day} plan", user_id=6107, login="ama"))
    assert _claims(session, funded) == []
    assert says in comments(github_forge, 601)[0]["body"]


def test_a_forge_id_linked_on_another_host_is_not_the_commenter(world, session, github_forge, funded):
    from marketplace.accounts.models import ForgeIdentity

    ama = world.user("ama@example.org", implementor=True)
    session.add(ForgeIdentity(user_id=ama.id, forge="github", host="github.example.com", forge_user_id=6108,
                              login="ama"))
    session.commit()
    post_github(world.client, "issue_comment",
                comment_payload(funded, comment_id=9660, body="/claim plan", user_id=6108, login="ama"))
    assert _claims(session, funded) == []
    command = session.scalar(select(ForgeCommand).where(ForgeCommand.comment_id == 9660))
    assert command.outcome == "unlinked"


def test_a_gitlab_project_bots_note_runs_nothing(world, session, gitlab_forge):
    from marketplace.accounts.models import ForgeIdentity
    from marketplace.backlog.service import upsert_issue
    from marketplace.forges.types import ForgeIssue
    from tests.conftest import make_repository
    from tests.webhooks.helpers import payload, post_gitlab

    repo = make_repository("gitlab-org", "gitlab-test", host="gitlab.example.org", forge_id=5)
    gitlab_forge.repos[("gitlab-org", "gitlab-test")] = {"id": 5, "default_branch": "main", "issues": [],
                                                          "pulls": []}
    item = upsert_issue(repo, ForgeIssue(
        forge_id=92, number=17, title="test_issue", body=None, state="open", state_reason=None, labels=[],
        author_login=None, author_forge_id=None, html_url="https://gitlab.example.org/gitlab-org/gitlab-test/-/issues/17",
        comments_count=0, locked=False, created_at=utcnow(), updated_at=utcnow(), closed_at=None)).row
    presence.set_presence(repo, True, actor=world.maintainer, gitlab_token="glpat-secret-token-9")
    bot = world.user("bot@example.org", implementor=True)  # a bot account someone linked
    session.add(ForgeIdentity(user_id=bot.id, forge="gitlab", host="gitlab.example.org", forge_user_id=42,
                              login="project_5_bot_0a1b2c3d"))
    session.commit()
    data = payload("gitlab/webhooks/note/issue.docs-example.json")
    data["project"].update(web_url="https://gitlab.example.org/gitlab-org/gitlab-test", visibility_level=20)
    data["user"]["username"] = "project_5_bot_0a1b2c3d"
    data["object_attributes"].update(note="/claim a plan")
    post_gitlab(world.client, "Note Hook", data)
    assert _claims(session, item) == []
    assert session.scalar(select(ForgeCommand.id)) is None


def test_a_badge_hidden_after_it_was_fetched_is_not_answered_304(world, session, funded):
    from marketplace.backlog.models import BacklogItem

    first = world.client.get(f"/items/{funded.id}/badge.svg")
    etag = first.headers["ETag"]
    session.get(BacklogItem, funded.id).hidden = True
    session.commit()
    again = world.client.get(f"/items/{funded.id}/badge.svg", headers={"If-None-Match": etag})
    assert again.status_code == 404
