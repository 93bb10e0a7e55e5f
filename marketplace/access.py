"""Who may do what, in one place: the signed-in actor, the admin gate, the
project-manager gate and the lookups that answer 404.

Views import these; services never do (a service takes the actor as an
argument and checks its own rules)."""
from __future__ import annotations

from functools import wraps

from flask import abort, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.extensions import db
from marketplace.projects.models import MemberProject
from marketplace.projects.service import may_manage


def current_actor() -> User:
    """The signed-in user as a plain ``User`` row (not Flask-Login's proxy).

    Only call it behind a sign-in check: for an anonymous visitor it returns
    the anonymous user object, which has no ``id``."""
    return current_user._get_current_object()


def sign_in_first():
    """The answer that sends an anonymous visitor to sign in and back here (303)."""
    return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))


def admin_required(view):
    """Decorator: anonymous visitors are sent to sign in; signed-in non-admins get 403."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.is_authenticated:
            return sign_in_first()
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


def refuse_unless_manager(project: MemberProject, *, back: str):
    """None for maintainers of ``project`` and admins; otherwise the answer to
    send: anonymous visitors sign in (then land on ``back``), others get 403."""
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.login", next=back))
    if not may_manage(current_user, project):
        abort(403)
    return None


def project_or_404(slug: str) -> MemberProject:
    """The member project with this slug; 404 when there is none."""
    row = db.session.scalar(select(MemberProject).where(MemberProject.slug == slug))
    if row is None:
        abort(404)
    return row
