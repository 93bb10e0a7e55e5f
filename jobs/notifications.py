"""Notification jobs (queue ``notifications``)."""
from marketplace.mail import deliver


def send_email(to: str, subject: str, body: str) -> None:
    """Send one e-mail; RQ retries it on an SMTP error."""
    deliver(to, subject, body)
