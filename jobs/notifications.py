"""Notification jobs (queue ``notifications``): send outbox rows by id.

Payloads carry the outbox row's id only (never an address, a message or a
link). A failed try is recorded on the row and raised; the periodic pass
:func:`send_waiting_outbox` tries it again after its back-off, so RQ itself
does not retry.
"""
from marketplace.extensions import db
from marketplace.notifications.mail import deliver
from marketplace.notifications.notices import compose
from marketplace.notifications.outbox import waiting_ids
from marketplace.notifications.sending import record_failure, send
from marketplace.tasks import job

RETRIES = 3
RETRY_INTERVALS = (30, 300, 1800)  # seconds


@job(queue="notifications", timeout=60)
def send_outbox_message(message_id: int) -> str:
    """Send one outbox row if it still waits (see
    :func:`marketplace.notifications.sending.send`); returns the outcome. On
    an error the try is recorded on the row in its own commit and the error
    is raised."""
    try:
        outcome = send(message_id)
    except Exception as exc:
        _record(message_id, exc)
        raise
    db.session.commit()
    return outcome


def _record(message_id: int, exc: BaseException) -> None:
    db.session.rollback()  # releases the row lock; record_failure takes it again
    record_failure(message_id, exc)
    db.session.commit()


@job(queue="notifications", timeout=600)
def send_waiting_outbox() -> dict:
    """Cron: send every outbox row still waiting whose next try is due (its
    job was lost — Redis down — or its last try failed), each in its own
    commit, at most 200 a pass. Returns the count per outcome
    (``{"sent": 3, "error": 1}``)."""
    counts: dict[str, int] = {}
    for message_id in waiting_ids():
        try:
            outcome = send(message_id)
            db.session.commit()
        except Exception as exc:
            _record(message_id, exc)
            outcome = "error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


# Jobs queued by the release before the outbox carried the message itself; they
# are kept so that a queue drained after an upgrade still sends them. Nothing
# queues them any more.
@job(queue="notifications", timeout=60, retries=RETRIES, retry_intervals=RETRY_INTERVALS)
def send_email(to: str, subject: str, body: str) -> None:
    """Legacy: send one e-mail given in the payload. Raises ``smtplib.SMTPException`` (RQ retries)."""
    deliver(to, subject, body)


@job(queue="notifications", timeout=60, retries=RETRIES, retry_intervals=RETRY_INTERVALS)
def send_notice(subject: str, kind: str, object_id: int, figures: dict | None = None) -> int:
    """Legacy: compose a notice now and send it; returns the e-mails sent."""
    mails = compose(subject, kind, object_id, figures)
    for to, title, body in mails:
        deliver(to, title, body)
    return len(mails)
