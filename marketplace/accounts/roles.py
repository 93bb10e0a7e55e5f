"""The admin role (the fiscal host): granted and withdrawn explicitly, audited,
and never withdrawn from the last admin. Services flush, never commit."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.audit import service as audit
from marketplace.errors import DomainError
from marketplace.extensions import db


class RoleError(DomainError):
    """A role change that cannot be done; the message is for the admin."""


def grant_admin(person: User, *, actor: str, actor_user_id: int | None = None) -> bool:
    """Make ``person`` an admin. True when it changed; False when they were one
    already (nothing is recorded then). Records ``user.admin_granted``."""
    if person.is_admin:
        return False
    person.is_admin = True
    db.session.flush()
    audit.record("user.admin_granted", "user_account", person.id, actor=actor, actor_user_id=actor_user_id)
    return True


def withdraw_admin(person: User, *, actor: str, actor_user_id: int | None = None) -> bool:
    """Withdraw the admin role from ``person``. True when it changed; False when
    they were not an admin. Records ``user.admin_withdrawn``.

    Raises :class:`RoleError` (409) when ``person`` is the last admin.

    Race: two admins withdrawing the two last admins at once. Every admin row is
    locked (``FOR UPDATE``, in id order so two callers cannot deadlock) before
    they are counted; the second caller waits for the first to commit, and
    PostgreSQL then re-reads the locked rows against ``is_admin`` — the one the
    first caller withdrew drops out, so the second counts one admin and refuses.
    """
    if not person.is_admin:
        return False
    admins = db.session.scalars(
        select(User.id).where(User.is_admin.is_(True)).order_by(User.id).with_for_update()).all()
    # The row may have changed while we waited for the lock: it is re-read above.
    db.session.refresh(person, attribute_names=["is_admin"])
    if person.id not in admins:
        return False
    if len(admins) <= 1:
        raise RoleError(_("%(name)s is the last admin: name another admin first.", name=person.display_name))
    person.is_admin = False
    db.session.flush()
    audit.record("user.admin_withdrawn", "user_account", person.id, actor=actor, actor_user_id=actor_user_id)
    return True
