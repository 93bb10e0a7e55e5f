"""Notification jobs (queue ``notifications``)."""
from marketplace.mail import deliver


def send_email(to: str, subject: str, body: str) -> None:
    """Send one e-mail; RQ retries it on an SMTP error."""
    deliver(to, subject, body)


def send_notice(subject: str, kind: str, object_id: int) -> int:
    """Compose a notice now (figures from the ledger as it is) and send it; returns the e-mails sent."""
    from marketplace.notices import compose

    mails = compose(subject, kind, object_id)
    for to, title, body in mails:
        deliver(to, title, body)
    return len(mails)
