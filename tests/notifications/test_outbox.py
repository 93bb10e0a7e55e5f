"""The outbox (issue 23): e-mails and notices are rows written in the
transaction that causes them, sent after commit by a job that carries the
row's id only, and by a periodic pass while they still wait — so nothing is
lost while Redis is down, and nothing is sent twice when two workers race."""
from __future__ import annotations

import mailbox
import threading
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import select

from jobs.notifications import send_outbox_message, send_waiting_outbox
from marketplace.accounts.models import User
from marketplace.claims.models import Certification
from marketplace.extensions import db
from marketplace.notifications import outbox, sending
from marketplace.notifications.models import OutboxKind, OutboxMessage, OutboxState
from marketplace.tasks import pending_jobs
from marketplace.timeutil import utcnow
from tests.accounts.helpers import PASSWORD, csrf


def _rows(session, recipient: str) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == recipient)
                                .order_by(OutboxMessage.id)))


def _signup(client, email: str):
    return client.post("/signup", data={"display_name": "Ama", "email": email, "password": PASSWORD,
                                        "is_funder": "y", "csrf_token": csrf(client, "/signup")})


def _maildir(app) -> mailbox.Maildir:
    return mailbox.Maildir(app.config["MAIL_OUTBOX_DIR"], create=True)


def test_a_mail_is_a_row_in_the_same_transaction_and_its_job_carries_only_the_id(app, session):
    with session.begin_nested() as savepoint:
        row = outbox.add_mail("ama@example.org", "Hello", "Open https://example.org/verify/secret-token")
        assert pending_jobs(session)[-1].func == "jobs.notifications.send_outbox_message"
        assert pending_jobs(session)[-1].args == (row.id,)
        savepoint.rollback()
    # Rolled back with the change that caused it: no row is left to send.
    assert _rows(session, "ama@example.org") == []


def test_the_job_payload_in_redis_holds_the_row_id_not_the_address_or_the_link(client, session, rq_redis):
    assert _signup(client, "payload@example.org").status_code == 303
    [row] = _rows(session, "payload@example.org")
    assert row.state is OutboxState.waiting and "/verify/" in row.body
    [job] = Queue("notifications", connection=rq_redis).jobs
    assert (job.func_name, job.args, job.kwargs) == ("jobs.notifications.send_outbox_message", (row.id,), {})
    stored = b"".join(rq_redis.dump(key) or b"" for key in rq_redis.keys("*"))
    assert b"payload@example.org" not in stored and b"/verify/" not in stored


def test_mail_queued_while_redis_is_down_is_sent_by_the_periodic_pass(client, session, maildir_app):
    maildir_app.config["REDIS_URL"] = "redis://127.0.0.1:9/0"  # nothing listens on port 9
    maildir_app.extensions.pop("redis", None)
    try:
        assert _signup(client, "lost@example.org").status_code == 303
    finally:
        maildir_app.config["REDIS_URL"] = None
        maildir_app.extensions.pop("redis", None)
    [row] = _rows(session, "lost@example.org")
    assert row.state is OutboxState.waiting and len(_maildir(maildir_app)) == 0
    assert send_waiting_outbox().get("sent", 0) >= 1
    session.refresh(row)
    assert (row.state, row.sent_count, row.body) == (OutboxState.sent, 1, None)  # the link is erased once sent
    [message] = list(_maildir(maildir_app))
    assert message["To"] == "lost@example.org"
    assert message["Message-ID"] == f"<outbox-{row.id}.0@backlog-commons.local>"
    # A second pass, or the job arriving late, sends nothing more.
    assert send_outbox_message(row.id) == "already sent"
    send_waiting_outbox()
    assert len(_maildir(maildir_app)) == 1


def test_without_redis_the_job_sends_the_row_right_after_commit(client, session, maildir_app):
    assert _signup(client, "inprocess@example.org").status_code == 303
    [row] = _rows(session, "inprocess@example.org")
    assert row.state is OutboxState.sent
    assert [m["To"] for m in _maildir(maildir_app)] == ["inprocess@example.org"]


def test_a_refused_mail_waits_with_a_doubling_back_off_then_fails_after_ten_tries(app, session):
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=9)  # an SMTP server that refuses connections
    try:
        row = outbox.add_mail("refused@example.org", "Hello", "Body")
        session.commit()  # the in-process job tries once and records the failure
        session.refresh(row)
        assert (row.state, row.attempts) == (OutboxState.waiting, 1)
        assert row.last_error.startswith("ConnectionRefusedError")
        first_wait = row.next_attempt_at - utcnow()
        assert timedelta(seconds=55) < first_wait <= timedelta(seconds=60)
        assert row.id not in outbox.waiting_ids()  # not due before its back-off
        for attempt in range(2, sending.MAX_ATTEMPTS + 1):
            row.next_attempt_at = utcnow() - timedelta(seconds=1)
            session.flush()
            assert send_waiting_outbox().get("error") == 1
            session.refresh(row)
            assert row.attempts == attempt
        assert row.state is OutboxState.failed and row.id not in outbox.waiting_ids(utcnow() + timedelta(days=1))
        assert send_outbox_message(row.id) == "already failed"
    finally:
        app.config.update(MAIL_SERVER=None, MAIL_PORT=25)


def test_a_notice_is_composed_when_sent_and_goes_through_the_outbox(session, maildir_app):
    from marketplace.notifications import notices

    person = User(display_name="Kofi", email_verified_at=utcnow())
    person.set_email("kofi-notice@example.org")
    session.add(person)
    session.flush()
    cert = Certification(user=person, issued_by=person, expires_at=utcnow() + timedelta(days=365))
    session.add(cert)
    session.flush()
    notices.certification_granted(cert.id)
    [row] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == OutboxKind.notice,
                                                        OutboxMessage.object_id == cert.id))
    assert (row.notice_subject, row.notice_kind, row.recipient, row.body) == ("certification", "granted", None, None)
    assert send_outbox_message(row.id) == "sent"
    assert [m["To"] for m in _maildir(maildir_app)] == ["kofi-notice@example.org"]


def _waiting_mail(to: str) -> int:
    """A committed waiting row, written without queueing its job (as if Redis had been down)."""
    row = OutboxMessage(kind=OutboxKind.mail, recipient=to, subject="Race", body="Body")
    db.session.add(row)
    db.session.commit()
    return row.id


@pytest.mark.postgres
def test_a_row_locked_by_one_postgres_session_is_skipped_by_another_and_sent_once(race_app):
    with race_app.app_context():
        message_id = _waiting_mail("race@example.org")
        db.session.remove()
    first = race_app.app_context()
    first.push()
    try:
        # Worker A holds the row lock and has handed the mail over, not yet committed.
        assert sending.send(message_id) == "sent"
        with race_app.app_context():
            # Worker B, in its own PostgreSQL session, skips the locked row at once.
            assert send_outbox_message(message_id) == "busy"
            db.session.remove()
        db.session.commit()
        db.session.remove()
    finally:
        first.pop()
    with race_app.app_context():
        # After A's commit, B finds it sent and sends nothing.
        assert send_outbox_message(message_id) == "already sent"
        assert db.session.get(OutboxMessage, message_id).sent_count == 1
        db.session.remove()
    assert [m["To"] for m in _maildir(race_app)] == ["race@example.org"]


@pytest.mark.postgres
def test_two_workers_passing_over_the_same_waiting_rows_at_once_send_each_once(race_app):
    with race_app.app_context():
        ids = [_waiting_mail(f"r{n}@example.org") for n in range(30)]
        db.session.remove()
    barrier = threading.Barrier(2)
    outcomes: list[dict] = []

    def worker():
        with race_app.app_context():
            barrier.wait()
            outcomes.append(send_waiting_outbox())
            db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = sorted(m["To"] for m in _maildir(race_app))
    assert sent == sorted(f"r{n}@example.org" for n in range(30))
    assert sum(o.get("sent", 0) for o in outcomes) == 30
    with race_app.app_context():
        states = set(db.session.scalars(select(OutboxMessage.state).where(OutboxMessage.id.in_(ids))))
        assert states == {OutboxState.sent}
        db.session.remove()
