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


@pytest.fixture
def raw_smtp(app):
    """A real SMTP server (aiosmtpd) on a free port; yields the raw bytes of each message it takes,
    as a mail provider reads them (no decoding of RFC 2047 encoded words)."""
    import socket

    from aiosmtpd.controller import Controller

    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, smtp_session, envelope):  # noqa: N802
            received.append(envelope.original_content)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    yield received
    app.config.update(MAIL_SERVER=None, MAIL_PORT=25)
    controller.stop()


def test_a_long_unfollow_link_goes_over_smtp_as_one_plain_header_line(app, raw_smtp):
    link = "https://backlog-commons.example.org/unfollow/" + "WzEyMzQ1LDY3ODkwXQ.abcdefghijklmnopqrstuvwxyz0"
    with app.app_context():
        mail.deliver("watcher@example.org", "« Réparer l'export » est résolu : " + "é" * 80, "Body",
                     message_id="<outbox-1.0@backlog-commons.local>", headers=mail.unsubscribe_headers(link))
    [raw] = raw_smtp
    head = raw.split(b"\r\n\r\n")[0].split(b"\r\n")
    # Every other field is still folded to 78 characters (a French subject in encoded words).
    assert [len(line) > 78 for line in head] == [line.startswith(b"List-Unsubscribe: ") for line in head]
    assert f"\r\nList-Unsubscribe: <{link}>\r\n".encode() in raw
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw


@pytest.mark.parametrize("name, value", [
    ("List-Unsubscribe", "<https://x.example/u>\x0bBcc: someone@example.org"),  # line breaks Python also splits on
    ("List-Unsubscribe", "<https://x.example/u>\x85Bcc: someone@example.org"),
    ("List-Unsubscribe", "<https://x.example/u>\u2028Bcc: someone@example.org"),
    ("List-Unsubscribe", "<https://x.example/u>\n"),
    ("List-Unsubscribe", "<https://exämple.org/u>"),  # non-ASCII: sent as an encoded word no provider reads
    ("List-Unsubscribe", "<https://x.example/u\x00>"),
    ("List-Unsubscribe", "<https://x.example/u>\tBcc: someone@example.org"),
    ("List-Unsubscribe", "<javascript:alert(1)>"),
    ("List-Unsubscribe", "https://x.example/u"),  # no angle brackets
    ("List-Unsubscribe", "<https://x.example/" + "u" * 1000 + ">"),  # longer than a header line may be
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click; Bcc=someone@example.org"),
    ("List-Unsubscribe-Post", "list-unsubscribe=one-click"),
    ("list-unsubscribe", "<https://x.example/u>"),
    ("List-Unsubscribe:", "<https://x.example/u>"),
    ("Reply-To", "someone@example.org"),
])
def test_an_extra_header_that_is_not_one_plain_unsubscribe_line_is_refused_when_queued(app, session, name, value):
    before = last_id(session)
    with app.app_context(), pytest.raises(ValueError):
        mail.queue_mail("watcher@example.org", "Solved", "Body", headers={name: value})
    assert mails(session, before) == []  # nothing waits in the outbox to fail ten times at delivery


def test_a_row_sent_then_rolled_back_by_a_crash_is_sent_again_with_its_headers_and_no_other_mail_gets_them(
        app, world, session, held_outbox):
    item, watcher = _followed_solved_item(world, session, 874)
    before = last_id(session)
    world.pull(1874, "Fixes #874", author_id=9974, merged=True)
    [row] = mails(session, before, "watcher@example.org")
    headers = row.headers
    plain = outbox.add_mail("other@example.org", "Hello", "No list here")
    with session.begin_nested() as savepoint:
        assert sending.send(row.id) == "sent"
        savepoint.rollback()  # the worker died after the SMTP server took it, before its commit
    session.refresh(row)
    assert (row.state, row.headers) == (OutboxState.waiting, headers)
    assert sending.send(plain.id) == "sent"
    assert sending.send(row.id) == "sent"
    messages = sorted(held_outbox, key=lambda m: (m["To"], m["Message-ID"]))
    assert [(m["To"], m["Message-ID"], m["List-Unsubscribe"], m["List-Unsubscribe-Post"]) for m in messages] == [
        ("other@example.org", f"<outbox-{plain.id}.0@backlog-commons.local>", None, None),
        ("watcher@example.org", f"<outbox-{row.id}.0@backlog-commons.local>", headers["List-Unsubscribe"],
         "List-Unsubscribe=One-Click"),
        ("watcher@example.org", f"<outbox-{row.id}.0@backlog-commons.local>", headers["List-Unsubscribe"],
         "List-Unsubscribe=One-Click"),
    ]
    assert (row.state, row.body, row.figures) == (OutboxState.sent, None, None)


def test_the_one_click_post_unfollows_only_its_own_follow_whatever_its_body(app, world, session):
    item, watcher = _followed_solved_item(world, session, 875)
    other = world.user("other-watcher@example.org")
    roles.follow(item, other)
    session.commit()
    mailer = app.test_client()
    path = f"/unfollow/{roles.unfollow_token(item.id, watcher.id)}"
    assert mailer.open(path, method="OPTIONS").status_code == 200
    assert mailer.put(path).status_code == 405
    assert roles.is_following(item.id, watcher.id)
    answer = mailer.post(path, data={"csrf_token": "forged", "user_id": str(other.id), "item_id": "1"})
    assert answer.status_code == 200
    assert (roles.is_following(item.id, watcher.id), roles.is_following(item.id, other.id)) == (False, True)
    # Following again, the old e-mail's link still stops it (the link names the item and the person, nothing else).
    roles.follow(item, watcher)
    session.commit()
    assert mailer.post(path, data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded").status_code == 200
    assert (roles.is_following(item.id, watcher.id), roles.is_following(item.id, other.id)) == (False, True)


def test_the_unfollow_link_of_an_item_gone_answers_and_changes_nothing(app, world, session):
    _item, watcher = _followed_solved_item(world, session, 876)
    session.commit()
    path = f"/unfollow/{roles.unfollow_token(987654, watcher.id)}"  # well signed, no such item
    mailer = app.test_client()
    assert mailer.get(path).status_code == 200
    assert mailer.post(path, data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded").status_code == 200
    assert roles.is_following(_item.id, watcher.id)
