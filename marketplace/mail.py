"""Outgoing e-mail: composed in a request, sent by a job after commit.

SMTP settings come from the environment (``MAIL_SERVER``, ``MAIL_PORT``,
``MAIL_USERNAME``, ``MAIL_PASSWORD``, ``MAIL_USE_TLS``, ``MAIL_FROM``). Without
``MAIL_SERVER`` (the embedded default) the message is written to the log.
"""
from __future__ import annotations

import smtplib
from email.message import EmailMessage

from flask import current_app

from jobs.queue import enqueue_after_commit
from marketplace.extensions import db


def queue_mail(to: str, subject: str, body: str) -> None:
    """Send a plain-text e-mail once the current transaction commits."""
    from jobs.notifications import send_email

    enqueue_after_commit(db.session, send_email, to, subject, body, queue="notifications", timeout=60,
                         retries=3, retry_intervals=[30, 300, 1800])


def deliver(to: str, subject: str, body: str) -> None:
    """Hand one message to the SMTP server (or the log). Raises ``smtplib.SMTPException``."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    if not config.get("MAIL_SERVER"):
        # Plain text, not the MIME form: a link must be copyable from the log.
        current_app.logger.info("e-mail not sent (no MAIL_SERVER set)\nTo: %s\nSubject: %s\n\n%s", to, subject, body)
        return
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
        smtp.send_message(message)
