"""Signing in and out. Sign-up, e-mail verification and resets come with the accounts issue."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user
from sqlalchemy import func, select

from marketplace.accounts.forms import LoginForm
from marketplace.accounts.models import User
from marketplace.audit import service as audit
from marketplace.extensions import db

bp = Blueprint("accounts", __name__)


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path of this site (``/…``, not ``//…`` or ``/\\…``), else None."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(ch) < 32 for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with e-mail and password; follows ``next`` only to paths of this site."""
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = db.session.scalar(select(User).where(func.lower(User.email) == form.email.data.strip().lower()))
        if user is not None and user.check_password(form.password.data):
            login_user(user)
            audit.record("user.login", "user_account", user.id, actor=f"user:{user.id}", actor_user_id=user.id)
            db.session.commit()
            return redirect(safe_next(request.args.get("next")) or url_for("backlog.index"))
        error = _("The e-mail address or the password is not right.")
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/login.html", form=form, error=error), status


@bp.post("/logout")
@login_required
def logout():
    """Sign out (POST with the CSRF token)."""
    logout_user()
    return redirect(url_for("backlog.index"))
