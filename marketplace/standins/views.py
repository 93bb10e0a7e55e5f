"""The development pages (``/dev``), registered only when the stand-ins run:
the stand-ins' addresses, the schedule with a button that runs what is due,
and the mail outbox (``/dev/mail``) with each e-mail's links clickable."""
from __future__ import annotations

import email
import email.policy
import mailbox
import re
from email.utils import parsedate_to_datetime

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from markupsafe import Markup, escape

from marketplace.accounts.roles import grant_admin
from marketplace.extensions import db
from marketplace.scheduling.models import ScheduleRun
from marketplace.scheduling.service import run_due, schedule

bp = Blueprint("dev", __name__, url_prefix="/dev", template_folder="templates")

_URL = re.compile(r"https?://[^\s<>\"']+")


def _outbox() -> mailbox.Maildir:
    # Parsed with the modern policy: headers decoded, ``get_content()`` for the text.
    return mailbox.Maildir(current_app.config["MAIL_OUTBOX_DIR"], create=True,
                           factory=lambda file: email.message_from_binary_file(file, policy=email.policy.default))


def _body_html(body: str) -> Markup:
    """``body`` (plain text) escaped, with each http(s) address made a link."""
    parts, last = [], 0
    for match in _URL.finditer(body):
        url = match.group(0).rstrip(".,;:)")
        parts.append(escape(body[last:match.start()]))
        parts.append(Markup('<a href="{0}">{0}</a>').format(url))
        last = match.start() + len(url)
    parts.append(escape(body[last:]))
    return Markup("").join(parts)


def _summary(key: str, message: email.message.EmailMessage) -> dict:
    date = message.get("Date")
    return {"key": key, "to": str(message.get("To", "")), "subject": str(message.get("Subject", "")),
            "sent_at": parsedate_to_datetime(date).replace(tzinfo=None) if date else None}


@bp.get("/")
def index():
    """The stand-ins, the schedule and its last runs."""
    runs = {run.name: run for run in db.session.scalars(db.select(ScheduleRun))}
    return render_template("dev/index.html", links=current_app.config["STANDINS"],
                           entries=[(entry, runs.get(entry.name)) for entry in schedule()], form=FlaskForm())


@bp.post("/run-due")
def run_due_now():
    """Run every scheduled job that is due now (as ``flask jobs run-due``)."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    ran = run_due()
    flash(_("Ran %(count)s due jobs.", count=len(ran)) if ran else _("Nothing was due."))
    return redirect(url_for("dev.index"), code=303)


@bp.post("/make-me-admin")
@login_required
def make_me_admin():
    """Make the signed-in person an admin of this local site (stand-ins only:
    the walk-through needs a fiscal host and a maintainer, with no command line)."""
    if not FlaskForm().validate_on_submit():
        abort(400)
    grant_admin(current_user, actor="dev:make-me-admin", actor_user_id=current_user.id)
    db.session.commit()
    flash(_("You are an admin of this local site. Name yourself a maintainer of a project on the admin pages."))
    return redirect(url_for("admin.index"), code=303)


@bp.get("/mail")
def mail():
    """Every e-mail written to the local outbox, newest first."""
    box = _outbox()
    messages = sorted((_summary(key, message) for key, message in box.iteritems()),
                      key=lambda m: (m["sent_at"] is not None, m["sent_at"]), reverse=True)
    return render_template("dev/mail.html", messages=messages)


@bp.get("/mail/<key>")
def message(key: str):
    """One e-mail of the outbox, its links clickable. 404 for an unknown key."""
    box = _outbox()
    try:
        found = box[key]
    except (KeyError, ValueError):
        abort(404)
    part = found.get_body(preferencelist=("plain",))
    return render_template("dev/message.html", message=_summary(key, found),
                           body=_body_html(part.get_content() if part is not None else ""))


def register(app) -> None:
    """Add the /dev pages and the stand-in banner to ``app`` (only when the stand-ins run)."""
    app.register_blueprint(bp)

    @app.context_processor
    def standin_banner() -> dict:
        return {"standins": app.config.get("STANDINS") or {}}
