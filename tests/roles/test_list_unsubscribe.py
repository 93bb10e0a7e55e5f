"""A follower's notices carry RFC 2369 ``List-Unsubscribe`` and RFC 8058
``List-Unsubscribe-Post`` headers naming the signed unfollow link; the headers
survive the outbox, and the link's one-click POST unfollows without a session
or a CSRF token while its GET changes nothing."""
from __future__ import annotations

import mailbox

import pytest
from sqlalchemy import select

from marketplace.notifications import mail, outbox, sending
from marketplace.notifications.models import OutboxState
from marketplace.roles import service as roles
from marketplace.roles.models import ItemFollow
from tests.roles.helpers import last_id, mails


def _followed_solved_item(world, session, number: int):
    item = world.issue(number)
    watcher = world.user("watcher@example.org")
    roles.follow(item, watcher)
    ama = world.implementor("ama@example.org", github_id=9900 + number % 100)
    world.claim(item, ama)
    world.fund(item, 3000)
    return item, watcher


@pytest.fixture
def held_outbox(app, tmp_path, monkeypatch):
    """No send job is queued for a new outbox row (as when Redis is down), so each row
    waits until the test sends it, into a Maildir in ``tmp_path``; yields the Maildir."""
    monkeypatch.setattr(outbox, "enqueue", lambda *args, **kwargs: None)
    app.config["MAIL_OUTBOX_DIR"] = str(tmp_path / "mail")
    yield mailbox.Maildir(app.config["MAIL_OUTBOX_DIR"], create=True)
    app.config["MAIL_OUTBOX_DIR"] = None


def test_the_solved_notice_carries_the_one_click_unfollow_headers_through_the_outbox(app, world, session,
                                                                                    held_outbox):
    item, watcher = _followed_solved_item(world, session, 871)
    before = last_id(session)
    world.pull(1871, "Fixes #871", author_id=9971, merged=True)
    [row] = mails(session, before, "watcher@example.org")
    token = roles.unfollow_token(item.id, watcher.id)
    link = app.config["PUBLIC_URL"].rstrip("/") + f"/unfollow/{token}"
    assert row.state is OutboxState.waiting
    assert row.headers == {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert f"To stop, open: {link}" in row.body  # the same link as in the body
    assert sending.send(row.id) == "sent"
    [message] = list(held_outbox)
    assert (message["To"], message["Subject"]) == ("watcher@example.org", '"Issue 871" is solved')
    assert message["List-Unsubscribe"] == f"<{link}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Sent: neither the body nor the header keeps the signed link in the database.
    assert (row.state, row.body, row.figures, row.headers) == (OutboxState.sent, None, None, {})


def test_the_paid_notice_to_a_follower_carries_the_headers_and_a_funder_notice_does_not(world, session,
                                                                                       held_outbox):
    from marketplace.payouts import service as payouts
    from tests.payouts.helpers import AFTER_WINDOW

    item, watcher = _followed_solved_item(world, session, 872)
    kwame_id = world.implementor("kwame@example.org", github_id=9872).id
    world.pull(1872, "Fixes #872", author_id=9872, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(kwame_id, 1)])
    before = last_id(session)
    assert payouts.execute(payout.id, payout.execute_after + AFTER_WINDOW)
    [paid] = mails(session, before, "watcher@example.org")
    [funder_mail] = mails(session, before, "funder@example.org")
    link = roles.unfollow_link(session.scalar(select(ItemFollow).where(ItemFollow.item_id == item.id)))
    assert paid.subject == '"Issue 872" was paid'
    assert paid.headers == {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert (funder_mail.headers, funder_mail.figures) == ({}, None)
    assert sending.send(funder_mail.id) == "sent"
    [message] = list(held_outbox)
    assert message["To"] == "funder@example.org" and message["List-Unsubscribe"] is None


def test_the_one_click_post_unfollows_without_session_or_csrf_and_get_does_not(app, world, session):
    item, watcher = _followed_solved_item(world, session, 873)
    session.commit()
    path = f"/unfollow/{roles.unfollow_token(item.id, watcher.id)}"
    mailer = app.test_client()  # the mail provider: no cookie, no CSRF token, RFC 8058's body
    assert mailer.get(path).status_code == 200
    assert mailer.head(path).status_code == 200
    assert roles.is_following(item.id, watcher.id)  # a scanner's GET or HEAD changes nothing
    answer = mailer.post(path, data="List-Unsubscribe=One-Click",
                         content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 200
    assert not roles.is_following(item.id, watcher.id)
    assert mailer.post(path, data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded").status_code == 200  # again: still 200
    other = roles.unfollow_token(item.id, watcher.id + 1)
    assert mailer.post(f"/unfollow/{other[:-2]}xx", data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded").status_code == 404


def test_only_the_list_unsubscribe_headers_may_be_added_to_an_e_mail(app):
    with app.app_context():
        assert mail.unsubscribe_headers("https://commons.example.org/unfollow/abc") == {
            "List-Unsubscribe": "<https://commons.example.org/unfollow/abc>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        with pytest.raises(ValueError):
            mail.checked_headers({"Bcc": "someone@example.org"})
        with pytest.raises(ValueError):
            mail.checked_headers({"List-Unsubscribe": "<https://x.example/>\r\nBcc: someone@example.org"})
        assert mail.checked_headers({}) is None
