"""The living comment's web address is stored and shown on the item page for
both forges: GitHub answers it (``html_url``); a GitLab note's is the issue's
``web_url`` + ``#note_<id>`` (the Notes API answers none)."""
from __future__ import annotations

import pytest

from marketplace.backlog.service import upsert_issue
from marketplace.forges.types import ForgeIssue
from marketplace.presence import item_section
from marketplace.presence import service as presence
from marketplace.presence.service import refresh_item
from marketplace.timeutil import utcnow
from tests.conftest import make_repository
from tests.presence.helpers import comments, row, turn_on

GITLAB_ISSUE = "https://gitlab.example.org/gitlab-org/gitlab-test/-/issues/17"


def _gitlab_item(world, session, gitlab_forge):
    repo = make_repository("gitlab-org", "gitlab-test", host="gitlab.example.org", forge_id=5)
    gitlab_forge.repos[("gitlab-org", "gitlab-test")] = {"id": 5, "default_branch": "main", "issues": [],
                                                          "pulls": []}
    item = upsert_issue(repo, ForgeIssue(
        forge_id=92, number=17, title="Export the register", body=None, state="open", state_reason=None,
        labels=[], author_login=None, author_forge_id=None, html_url=GITLAB_ISSUE, comments_count=0,
        locked=False, created_at=utcnow(), updated_at=utcnow(), closed_at=None)).row
    presence.set_presence(repo, True, actor=world.maintainer, gitlab_token="glpat-secret-token-9")
    session.commit()
    return item


def test_a_gitlab_note_url_is_the_issue_web_url_with_the_note_anchor_and_is_shown(world, session, client,
                                                                                  gitlab_forge):
    item = _gitlab_item(world, session, gitlab_forge)
    world.fund(item, 4000)
    session.commit()  # the refresh job posts the note
    [note] = gitlab_forge.all_comments()
    stored = row(session, item)
    assert stored.comment_id == note["id"]
    assert stored.comment_url == f"{GITLAB_ISSUE}#note_{note['id']}"
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    note_url = f"{GITLAB_ISSUE}#note_{note['id']}"
    assert f'<a href="{note_url}">The bounty\'s comment on the issue</a>' in page


def test_a_gitlab_comment_stored_without_its_url_is_shown_with_the_built_one(world, session, client,
                                                                           gitlab_forge):
    item = _gitlab_item(world, session, gitlab_forge)
    world.fund(item, 4000)
    session.commit()
    stored = row(session, item)
    stored.comment_url = None  # posted by the release that did not store a GitLab note's address
    session.commit()
    assert refresh_item(item.id) == "current"
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert f'href="{GITLAB_ISSUE}#note_{stored.comment_id}"' in page


def test_a_github_comment_url_is_the_one_github_answered_and_an_adopted_one_is_built(world, session, client,
                                                                                    github_forge):
    item = world.issue(311)
    turn_on(world)
    world.fund(item, 5000)
    session.commit()
    [comment] = comments(github_forge, 311)
    assert row(session, item).comment_url == comment["html_url"]
    assert f'<a href="{comment["html_url"]}">' in client.get(f"/items/{item.id}").get_data(as_text=True)

    lost = world.issue(312)
    github_forge.lose_answer.append("/repos/Codertocat/Hello-World/issues/312/comments")
    world.fund(lost, 5000)
    session.commit()
    assert refresh_item(lost.id) == "written"  # the retry adopts the marked comment
    [adopted] = comments(github_forge, 312)
    assert row(session, lost).comment_url == (
        f"https://github.com/Codertocat/Hello-World/issues/312#issuecomment-{adopted['id']}")


def test_an_item_without_a_living_comment_shows_no_link_and_reads_nothing_more(app, world, session):
    item = world.issue(313)
    with app.test_request_context(f"/items/{item.id}"):
        assert item_section.section(item, probed={"comment": False})["comment_url"] is None
        assert item_section.section(item)["comment_url"] is None


ISSUE_321 = "https://github.com/Codertocat/Hello-World/issues/321"


@pytest.mark.parametrize("answered", [
    "javascript:alert(document.cookie)//" + ISSUE_321 + "#issuecomment-1",
    "https://evil.example/Codertocat/Hello-World/issues/321#issuecomment-1",  # another host
    "https://github.com/someone/phish/issues/1#issuecomment-1",  # another repository on the forge's host
    "https://github.com/Codertocat/Hello-World/issues/3210#issuecomment-1",  # another issue
    ISSUE_321 + "@evil.example/#issuecomment-1",
    ISSUE_321 + "#issuecomment-1 onclick=x",
    "//evil.example/x",
    12345,
    {"href": ISSUE_321},
    None,
])
def test_a_comment_address_the_forge_answers_off_the_issue_page_is_not_stored_nor_linked(
        world, session, client, github_forge, answered):
    item = world.issue(321)
    assert item.html_url == ISSUE_321
    turn_on(world)
    github_forge.fail("/repos/Codertocat/Hello-World/issues/321/comments", 201, method="POST",
                      body={"id": 80_000_321, "body": "", "html_url": answered})
    world.fund(item, 5000)
    session.commit()  # the refresh job posts the comment
    built = f"{ISSUE_321}#issuecomment-80000321"
    assert (row(session, item).comment_id, row(session, item).comment_url) == (80_000_321, built)
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert f'<a href="{built}">The bounty\'s comment on the issue</a>' in page


def test_a_hostile_comment_address_stored_before_is_not_linked(world, session, client, github_forge):
    item = world.issue(322)
    turn_on(world)
    world.fund(item, 5000)
    session.commit()
    stored = row(session, item)
    assert stored.comment_url == f"https://github.com/Codertocat/Hello-World/issues/322#issuecomment-{stored.comment_id}"
    stored.comment_url = "https://evil.example/phish"  # stored by the release that trusted any https answer
    session.commit()
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert "evil.example" not in page
    assert (f'<a href="https://github.com/Codertocat/Hello-World/issues/322#issuecomment-{stored.comment_id}">'
            in page)
