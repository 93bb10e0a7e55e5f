"""Notification jobs (queue ``notifications``)."""
from marketplace.mail import deliver


def send_email(to: str, subject: str, body: str) -> None:
    """Send one e-mail; RQ retries it on an SMTP error."""
    deliver(to, subject, body)


def send_notice(subject: str, kind: str, object_id: int, figures: dict | None = None) -> int:
    """Compose a notice now and send it; returns the e-mails sent. ``figures``
    are the money figures taken from the ledger when it was queued (claims)."""
    from marketplace.notices import compose

    mails = compose(subject, kind, object_id, figures)
    for to, title, body in mails:
        deliver(to, title, body)
    return len(mails)
