"""Organisations (a funder organisation or an implementor firm): creating one,
inviting members by e-mail, accepting an invitation, and the reads pages need.

The rows live in ``marketplace.accounts.models`` (tables ``organisation`` and
``organisation_member``). Functions flush, never commit: the caller commits."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.accounts.models import Organisation, OrganisationMember, User
from marketplace.accounts.service import user_by_email
from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.slugs import slugify
from marketplace.timeutil import utcnow

RESERVED_SLUGS = frozenset({"new"})  # paths of their own under /organisations/
KINDS = ("funder", "implementor")


def slug_for(name: str) -> str:
    """A free slug for a new organisation named ``name`` (:func:`marketplace.slugs.slugify`:
    Latin letters without accents, other scripts kept, digits and dashes), at most
    80 characters before a ``-2``, ``-3``… suffix that makes it unique
    ("organisation" when nothing of the name is left)."""
    slug = slugify(name, max_length=80, fallback="organisation")
    candidate, n = slug, 1
    while candidate in RESERVED_SLUGS or db.session.scalar(
            select(Organisation.id).where(Organisation.slug == candidate)):
        n += 1
        candidate = f"{slug}-{n}"
    return candidate


def by_slug(slug: str) -> Organisation | None:
    """The organisation with this slug, or None."""
    return db.session.scalar(select(Organisation).where(Organisation.slug == slug))


def create(name: str, *, kind: str, country: str | None, owner: User) -> Organisation:
    """A new organisation of ``kind`` (``funder`` or ``implementor``) owned by ``owner``,
    who is its first (accepted) member; ``country`` an ISO 3166-1 alpha-2 code or None.
    Audited as ``organisation.created``."""
    org = Organisation(slug=slug_for(name), name=name.strip(), kind=kind, country=country or None,
                       owner_id=owner.id)
    org.members.append(OrganisationMember(user_id=owner.id, role="owner", accepted_at=utcnow()))
    db.session.add(org)
    db.session.flush()
    audit.record("organisation.created", "organisation", org.id, actor=f"user:{owner.id}", actor_user_id=owner.id)
    return org


def invite(org: Organisation, email: str, *, inviter: User) -> bool:
    """Invite the account that uses ``email`` to ``org`` (it joins once it accepts).
    True when an invitation was recorded; False when no account uses the address or
    its holder is in the organisation already (callers answer the same either way,
    so the page does not tell who has an account). The caller checks that
    ``inviter`` owns ``org``."""
    person = user_by_email(email)
    if person is None or any(m.user_id == person.id for m in org.members):
        return False
    org.members.append(OrganisationMember(user_id=person.id, role="member"))
    audit.record("organisation.member_invited", "organisation", org.id, actor=f"user:{inviter.id}",
                 actor_user_id=inviter.id, details={"user": person.id})
    return True


def membership(org: Organisation, user_id: int) -> OrganisationMember | None:
    """The person's row in ``org`` (invited or accepted), or None."""
    return next((m for m in org.members if m.user_id == user_id), None)


def accept(row: OrganisationMember, *, user: User) -> None:
    """``user`` accepts their invitation ``row``; accepting twice changes nothing.
    Audited as ``organisation.member_joined``."""
    if row.accepted_at is not None:
        return
    row.accepted_at = utcnow()
    audit.record("organisation.member_joined", "organisation", row.organisation_id, actor=f"user:{user.id}",
                 actor_user_id=user.id)


def organisations_of(user_id: int, *, kind: str | None = None) -> list[Organisation]:
    """The organisations the person belongs to (accepted), of ``kind`` when given, by name."""
    query = select(Organisation).join(OrganisationMember).where(
        OrganisationMember.user_id == user_id, OrganisationMember.accepted_at.is_not(None))
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    return list(db.session.scalars(query.order_by(Organisation.name)))


def invitations_for(user_id: int) -> list[Organisation]:
    """The organisations that invited the person and wait for their answer."""
    return list(db.session.scalars(
        select(Organisation).join(OrganisationMember).where(
            OrganisationMember.user_id == user_id, OrganisationMember.accepted_at.is_(None))))
