"""Outgoing e-mail: rendered from templates, stored in the outbox table in the
transaction that causes it, sent by a job after commit.

Each e-mail is a directory ``templates/email/<notice>/`` with ``subject.txt``
and ``body.txt`` (Jinja, plain text, translated with ``_()`` like pages).
SMTP settings come from the environment (``MAIL_SERVER``, ``MAIL_PORT``,
``MAIL_USERNAME``, ``MAIL_PASSWORD``, ``MAIL_USE_TLS``, ``MAIL_FROM``). Without
``MAIL_SERVER`` the message is written to the Maildir ``MAIL_OUTBOX_DIR`` when
set (``make run`` sets it and shows it at ``/dev/mail``), else only its
recipient and subject are logged (never its body, which may hold a token
link). Production refuses to start without ``MAIL_SERVER``.
"""
from __future__ import annotations

import mailbox
import re
import smtplib
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate, make_msgid

from flask import current_app, has_request_context, render_template
from flask_babel import force_locale

from marketplace.i18n import current_language, supported
from marketplace.notifications.outbox import add_mail


def recipient_language(preferred: str | None, acted_in: str | None = None) -> str:
    """The language of an e-mail: the recipient's account preference when it is
    offered, else ``acted_in`` (``User.last_language``, the language of the last
    page where they acted), else the current page's language (an e-mail sent
    while the person acts, e.g. at sign-up), else the first offered locale
    (English) in a job."""
    chosen = supported(preferred) or supported(acted_in)
    if chosen:
        return chosen
    if has_request_context():
        return current_language()
    return current_app.config["SUPPORTED_LOCALES"][0]


def language_of(person) -> str:
    """:func:`recipient_language` for an account (a ``User``): its preferred
    language, else the language of the last page where it acted."""
    return recipient_language(person.preferred_language, person.last_language)


def render(notice: str, language: str | None = None, **context) -> tuple[str, str]:
    """``(subject, body)`` of the e-mail ``notice`` rendered with ``context`` in
    ``language`` (a locale code), or the current locale when None. Raises
    ``jinja2.TemplateNotFound`` for an unknown notice."""
    with force_locale(language or current_language()):
        subject = render_template(f"email/{notice}/subject.txt", **context)
        body = render_template(f"email/{notice}/body.txt", **context)
    return subject.strip(), body


def send(notice: str, to: str, *, language: str | None = None, headers: dict[str, str] | None = None,
         **context) -> None:
    """Render the e-mail ``notice`` (:func:`render`) now, in ``language`` (see
    :func:`recipient_language`; None: the page's language), and send it to
    ``to`` once the current transaction commits. ``headers`` are extra header
    fields the message carries (only those of :data:`EXTRA_HEADERS`, e.g.
    :func:`unsubscribe_headers`); they are stored with it in the outbox."""
    subject, body = render(notice, language, **context)
    if headers:
        queue_mail(to, subject, body, headers=headers)
    else:
        queue_mail(to, subject, body)


def queue_mail(to: str, subject: str, body: str, *, headers: dict[str, str] | None = None) -> None:
    """Store a plain-text e-mail in the outbox table in the current transaction;
    it is sent after commit by a job that carries the row's id only, and by the
    periodic pass while it still waits (:mod:`marketplace.notifications.outbox`).
    ``headers``: extra header fields (see :data:`EXTRA_HEADERS`). Raises
    ``ValueError`` for a header not in :data:`EXTRA_HEADERS`."""
    add_mail(to, subject, body, headers=checked_headers(headers))


# The header fields a queued e-mail may add to From, To, Subject, Date and
# Message-ID: RFC 2369's List-Unsubscribe and RFC 8058's one-click
# List-Unsubscribe-Post. Nothing else, so no caller can set From or Bcc.
EXTRA_HEADERS = ("List-Unsubscribe", "List-Unsubscribe-Post")

# What each may hold: one http(s) URL in angle brackets, printable ASCII without
# spaces or brackets, short enough for one header line (RFC 5322: 998 characters);
# and RFC 8058's one fixed value. Anything else (a line break of any kind — Python's
# e-mail package splits on \x0b, \x85, U+2028 … too —, a control or non-ASCII
# character, which would go out as an RFC 2047 encoded word no mail provider reads
# here) is refused when the mail is queued, not ten times at delivery.
_EXTRA_VALUES = {
    "List-Unsubscribe": re.compile(r"<https?://[!-;=?-~]{1,950}>"),
    "List-Unsubscribe-Post": re.compile(r"List-Unsubscribe=One-Click"),
}


def checked_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    """``headers`` when every name is in :data:`EXTRA_HEADERS` and its value is
    what that field may hold (``<http(s)://…>`` of printable ASCII, at most 950
    characters between the brackets; exactly ``List-Unsubscribe=One-Click``),
    else ``ValueError``; None for none."""
    if not headers:
        return None
    for name, value in headers.items():
        if name not in EXTRA_HEADERS:
            raise ValueError(f"an e-mail may not set the header {name!r}")
        if not isinstance(value, str) or not _EXTRA_VALUES[name].fullmatch(value):
            raise ValueError(f"the header {name!r} must be one line of its own form")
    return dict(headers)


class _MailPolicy(EmailPolicy):
    """The default policy, except that the extra header fields are written as they
    are, on one line: folding cannot break a URL, so the default policy turns a link
    longer than a line (any real unfollow link) into RFC 2047 encoded words, which
    mail providers do not decode in ``List-Unsubscribe``. Their values are checked
    printable ASCII under 998 characters (:func:`checked_headers`)."""

    def fold(self, name, value):
        if name in EXTRA_HEADERS:
            return f"{name}: {value}{self.linesep}"
        return super().fold(name, value)

    def fold_binary(self, name, value):
        if name in EXTRA_HEADERS:
            return self.fold(name, value).encode("ascii")
        return super().fold_binary(name, value)


MAIL_POLICY = _MailPolicy()  # otherwise email.policy.default


def unsubscribe_headers(url: str) -> dict[str, str]:
    """The header fields of a notice that one request stops (RFC 2369, RFC 8058):
    ``{"List-Unsubscribe": "<url>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}``.
    ``url`` is an absolute https (or, locally, http) link whose POST, without a
    session or CSRF token, does the unsubscribing and whose GET only asks to confirm."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def deliver(to: str, subject: str, body: str, *, message_id: str | None = None,
            headers: dict[str, str] | None = None) -> None:
    """Hand one message to the SMTP server (or, without ``MAIL_SERVER``, the local
    outbox ``MAIL_OUTBOX_DIR``, or a line in the log without the body). ``message_id`` (``<…@…>``) is the
    message's ``Message-ID``, the same on every retry of one outbox row; a new
    one is made without it. ``headers``: extra header fields (:data:`EXTRA_HEADERS`).
    Raises ``smtplib.SMTPException``, ``ValueError`` for a header not allowed, and
    ``OSError`` when the outbox cannot be written."""
    config = current_app.config
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id or make_msgid(domain="backlog-commons.local")
    for name, value in (checked_headers(headers) or {}).items():
        message[name] = value
    message.set_content(body)
    if not config.get("MAIL_SERVER") and config.get("MAIL_OUTBOX_DIR"):
        # A Maildir: each message its own file, written atomically (tmp/ then new/).
        mailbox.Maildir(config["MAIL_OUTBOX_DIR"], create=True).add(message)
        current_app.logger.info("e-mail to %s written to the local outbox: %s", to, subject)
        return
    if not config.get("MAIL_SERVER"):
        # Never the body: it may hold a verification, reset or invitation link,
        # and logs are kept, shipped and read by more people than the mailbox.
        current_app.logger.warning("e-mail to %s not sent (no MAIL_SERVER, no MAIL_OUTBOX_DIR): %s; its body is "
                                   "not logged — set MAIL_OUTBOX_DIR to read it locally", to, subject)
        return
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
        smtp.send_message(message)
