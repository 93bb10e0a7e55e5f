"""Notification jobs (queue ``notifications``); RQ retries them on an SMTP error."""
from marketplace.notifications.mail import deliver
from marketplace.notifications.notices import compose
from marketplace.tasks import job

RETRIES = 3
RETRY_INTERVALS = (30, 300, 1800)  # seconds


@job(queue="notifications", timeout=60, retries=RETRIES, retry_intervals=RETRY_INTERVALS)
def send_email(to: str, subject: str, body: str) -> None:
    """Send one e-mail. Raises ``smtplib.SMTPException`` (RQ retries)."""
    deliver(to, subject, body)


@job(queue="notifications", timeout=60, retries=RETRIES, retry_intervals=RETRY_INTERVALS)
def send_notice(subject: str, kind: str, object_id: int, figures: dict | None = None) -> int:
    """Compose a notice now and send it; returns the e-mails sent. ``figures``
    are the money figures taken from the ledger when it was queued (claims)."""
    mails = compose(subject, kind, object_id, figures)
    for to, title, body in mails:
        deliver(to, title, body)
    return len(mails)
