"""People with an account. Minimal until the accounts issue adds sign-up."""
from __future__ import annotations

import unicodedata
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from marketplace.extensions import db
from marketplace.timeutil import utcnow


def email_key(email: str) -> str:
    """The lookup form of an address: Unicode NFKC, then case-folded.

    Computed in Python, never by the database: PostgreSQL's lower() and
    Python's disagree on letters such as "İ", and NFC/NFD spellings of one
    address must be one account.
    """
    return unicodedata.normalize("NFKC", email.strip()).casefold()


class User(UserMixin, db.Model):
    """A person. Roles: funder and implementor (chosen by the person), maintainer
    (per member project, :class:`~marketplace.projects.models.ProjectMaintainer`)
    and admin (the fiscal host). One person can hold several."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored as typed; looked up by email_key (see ``email_key``), which is unique.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    email_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    email_verified_at: Mapped[datetime | None]
    # Bumped by every change of address requested or made: e-mail links
    # issued before carry the old number and no longer work.
    email_token_version: Mapped[int] = mapped_column(default=1)
    display_name: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(default=False)
    is_funder: Mapped[bool] = mapped_column(default=False)
    is_implementor: Mapped[bool] = mapped_column(default=False)
    # Part of the session id: changing it (password change, reset) signs out
    # every other session of the account.
    session_version: Mapped[int] = mapped_column(default=1)
    # Werkzeug's scrypt hash; None for an account that cannot sign in with a password.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The language chosen in the footer while signed in ("fr", "es", "pt", "en"),
    # used for pages and e-mails; None: no choice made (Accept-Language decides).
    preferred_language: Mapped[str | None] = mapped_column(String(16))
    # The language of the last page where the person acted (signed up, or sent a
    # form while signed in): e-mails use it when no language was chosen.
    last_language: Mapped[str | None] = mapped_column(String(16))

    def set_email(self, email: str) -> None:
        """Set the address and its lookup key together."""
        self.email = email
        self.email_key = email_key(email)

    def get_id(self) -> str:
        """Flask-Login session id: the account and its session version."""
        return f"{self.id}:{self.session_version}"

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def has_public_page(self) -> bool:
        """True for people who chose to offer paid work (an implementor
        profile): only they have a public page at ``/people/<id>``; funders
        and maintainers who are not implementors are not listed (issue 23)."""
        return bool(self.is_implementor)

    def set_password(self, password: str) -> None:
        """Store a scrypt hash of ``password`` (never the password)."""
        self.password_hash = generate_password_hash(password, method="scrypt")

    def check_password(self, password: str) -> bool:
        """True when ``password`` matches; constant-time comparison by Werkzeug."""
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)


class ForgeIdentity(db.Model):
    """A forge account proved by OAuth: the forge's numeric user id, never the handle.

    One forge identity belongs to one account: unique by (host, forge user id).
    The handle is refreshed at each connection; a rename keeps the link.
    """

    __tablename__ = "forge_identity"
    __table_args__ = (UniqueConstraint("host", "forge_user_id", name="uq_forge_identity_host_forge_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    forge: Mapped[str] = mapped_column(String(20))  # github | gitlab
    host: Mapped[str] = mapped_column(String(255))
    forge_user_id: Mapped[int] = mapped_column(BigInteger)
    login: Mapped[str] = mapped_column(String(255))
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(backref="forge_identities")


class OAuthState(db.Model):
    """An OAuth ``state`` we issued: single-use, bound to one browser session, expiring."""

    __tablename__ = "oauth_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the state
    session_binding: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Organisation(db.Model):
    """A funder organisation or an implementor firm, with an owner and members."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # funder | implementor
    country: Mapped[str | None] = mapped_column(String(2))
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Issue 20, a firm paid as a firm: the account that receives the firm's
    # payouts (its own payout account, certification and ledger payable; it
    # cannot sign in), made by its owners; and the name on remittance advice.
    payee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"), unique=True)
    legal_name: Mapped[str | None] = mapped_column(String(200))

    owner: Mapped[User] = relationship(foreign_keys=[owner_id])
    payee: Mapped[User | None] = relationship(foreign_keys=[payee_id])
    members: Mapped[list["OrganisationMember"]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan", order_by="OrganisationMember.id"
    )


class OrganisationMember(db.Model):
    """A person in an organisation (the owner is a member too)."""

    __tablename__ = "organisation_member"
    __table_args__ = (UniqueConstraint("organisation_id", "user_id", name="uq_organisation_member_org_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default="member")  # owner | member
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None until the person accepts: nobody is enrolled without saying yes.
    accepted_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class ImplementorProfile(db.Model):
    """What an implementor shows: country (ISO 3166-1 alpha-2), skills, languages, bio."""

    __tablename__ = "implementor_profile"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    country: Mapped[str | None] = mapped_column(String(2))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id", ondelete="SET NULL"))
    skills: Mapped[list] = mapped_column(JSON, default=list)
    languages: Mapped[list] = mapped_column(JSON, default=list)
    bio: Mapped[str] = mapped_column(Text, default="")
    public_earnings: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(backref=db.backref("profile", uselist=False))
    organisation: Mapped[Organisation | None] = relationship()
