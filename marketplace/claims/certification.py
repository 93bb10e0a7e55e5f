"""Certifications: only certified recipients are paid.

Global certification is granted by an admin (after the commons' training);
project-level certification by a maintainer of that project. Granting one
releases the payouts that waited for it.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import or_, select

from marketplace.accounts.models import User
from marketplace.accounts.service import user_by_email
from marketplace.audit import service as audit
from marketplace.claims import signals
from marketplace.claims.models import Certification
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.notifications import notices
from marketplace.timeutil import utcnow

DEFAULT_VALIDITY = timedelta(days=2 * 365)
MAX_NOTE = 2000


class CertificationError(DomainError):
    """A certification that cannot be granted; the message is for the person."""


def is_certified(user_id: int, project_id: int | None, at: datetime | None = None) -> bool:
    """Whether ``user_id`` holds, at ``at`` (UTC, default now), a valid global
    certification or one for ``project_id``."""
    at = at or utcnow()
    scope = Certification.project_id.is_(None)
    if project_id is not None:
        scope = or_(scope, Certification.project_id == project_id)
    return db.session.scalar(select(Certification.id).where(
        Certification.user_id == user_id, scope, Certification.revoked_at.is_(None),
        Certification.issued_at <= at, Certification.expires_at > at).limit(1)) is not None


def grant(user: User, *, issuer: User, project_id: int | None, expires_at: datetime | None = None,
          note: str = "") -> Certification:
    """Certify ``user`` (globally when ``project_id`` is None) until ``expires_at`` (UTC; default two years).

    Who may issue which is checked by the views (admin: global; maintainer:
    their project). Raises :class:`CertificationError` for an expiry in the
    past, an over-long note, or an issuer certifying themselves (another
    maintainer or an admin does). Payouts waiting for this person go ahead.
    """
    if user.id == issuer.id:
        raise CertificationError(_("You cannot certify yourself: another maintainer or an admin does."))
    now = utcnow()
    expires_at = expires_at or now + DEFAULT_VALIDITY
    if expires_at <= now:
        raise CertificationError(_("The expiry must be in the future."))
    if len(note or "") > MAX_NOTE:
        raise CertificationError(_("The note may have at most %(most)d characters.", most=MAX_NOTE))
    cert = Certification(user_id=user.id, project_id=project_id, issued_by_id=issuer.id, issued_at=now,
                         expires_at=expires_at, note=(note or "").strip())
    db.session.add(cert)
    db.session.flush()
    audit.record("certification.granted", "certification", cert.id, actor=f"user:{issuer.id}",
                 actor_user_id=issuer.id, details={"user": user.id, "project": project_id,
                                                   "expires_at": expires_at.isoformat()})
    notices.certification_granted(cert.id)
    signals.certified.send(cert)  # the payouts waiting for this person go ahead
    return cert


def revoke(cert: Certification, *, actor: User) -> None:
    """End a certification now (payouts not yet executed wait again)."""
    if cert.revoked_at is None:
        cert.revoked_at = utcnow()
        db.session.flush()
        audit.record("certification.revoked", "certification", cert.id, actor=f"user:{actor.id}",
                     actor_user_id=actor.id)


def of_user(user_id: int) -> list[Certification]:
    """Every certification of a person, newest first (for the profile)."""
    return list(db.session.scalars(select(Certification).where(Certification.user_id == user_id)
                                   .order_by(Certification.issued_at.desc(), Certification.id.desc())))


def default_expiry() -> date:
    """The "valid until" date a new certification form proposes: today (UTC) plus the default validity."""
    return (utcnow() + DEFAULT_VALIDITY).date()


def grant_by_email(email: str, *, issuer: User, project_id: int | None, valid_until: date,
                   note: str = "") -> Certification:
    """Certify the implementor whose account uses ``email`` (globally when ``project_id``
    is None) until the end of the UTC day ``valid_until``. Raises
    :class:`CertificationError` when no implementor account uses the address, and
    as :func:`grant` does."""
    person = user_by_email(email)
    if person is None or not person.is_implementor:
        raise CertificationError(_("No implementor account uses that e-mail address."))
    expires_at = datetime.combine(valid_until + timedelta(days=1), time.min)
    return grant(person, issuer=issuer, project_id=project_id, expires_at=expires_at, note=note or "")
