"""Accounts: sign-up, verification, passwords, forge identities. Services flush, never commit."""
from __future__ import annotations

from flask import has_request_context
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from marketplace.accounts.models import (
    ForgeIdentity,
    ImplementorProfile,
    User,
    email_key,
)
from marketplace.accounts.tokens import (
    InvalidToken,
    make_email_token,
    make_reset_token,
    read_email_token,
)
from marketplace.audit import service as audit
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.i18n import current_language
from marketplace.notifications import mail
from marketplace.notifications.links import url_for_public
from marketplace.timeutil import utcnow


class AccountError(DomainError):
    """A request about an account that cannot be done (a bad or spent link, an address
    or forge account held by another account); the message is for the person."""

    status = 400


_DUMMY_HASH = generate_password_hash("a password nobody has", method="scrypt")


def user_by_email(email: str) -> User | None:
    """The account of ``email``, compared by its NFKC, case-folded key."""
    return db.session.scalar(select(User).where(User.email_key == email_key(email)))


def authenticate(email: str, password: str) -> User | None:
    """The account when the password is right. Takes as long for unknown addresses
    (a hash is checked either way), so timing does not tell who has an account."""
    user = user_by_email(email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if user.check_password(password) else None


def create_account(email: str, password: str, display_name: str, *, funder: bool, implementor: bool) -> User | None:
    """A new unverified account; the verification link is mailed after commit.

    When the address has an account already, nothing is created and its
    owner gets a note instead, so that the answer does not tell a stranger
    who has an account. Returns the new account or None.
    """
    email = email.strip()
    existing = user_by_email(email)
    if existing is not None:
        # The password is hashed on this path too (and thrown away): the scrypt
        # hash is most of a sign-up's time, so skipping it told a stranger
        # which addresses have an account (36 ms against 378 ms).
        User().set_password(password)
        mail.send("account_exists", existing.email, language=mail.language_of(existing),
                  user=existing, link=url_for_public("accounts.reset_request"))
        return None
    user = User(display_name=display_name.strip(), is_funder=funder, is_implementor=implementor,
                last_language=current_language() if has_request_context() else None)
    user.set_email(email)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    send_verification(user, email)
    audit.record("user.signed_up", "user_account", user.id, actor=f"user:{user.id}", actor_user_id=user.id)
    return user


def send_verification(user: User, email: str) -> None:
    """Mail ``email`` a link that confirms it for ``user`` (valid 48 hours, once), after commit."""
    mail.send("account_verify", email, language=mail.language_of(user), user=user,
              link=url_for_public("accounts.verify", token=make_email_token(user, email)))


def verify_email(token: str) -> User:
    """Apply an e-mail token: verifies the address, or completes a change of address.

    Raises :class:`AccountError` for an invalid or expired token, or an address
    taken by another account meanwhile.
    """
    try:
        user_id, email, version = read_email_token(token)
    except InvalidToken:
        raise AccountError(_("This link is not valid or has expired. Ask for a new one.")) from None
    user = db.session.get(User, user_id)
    if user is None or version != user.email_token_version:
        # Stale: the address changed, or a newer change was asked for, since it was sent.
        raise AccountError(_("This link is not valid or has expired. Ask for a new one."))
    holder = user_by_email(email)
    if holder is not None and holder.id != user.id:
        raise AccountError(_("This e-mail address belongs to another account."))
    if user.email_key != email_key(email):
        audit.record("user.email_changed", "user_account", user.id, actor=f"user:{user.id}", actor_user_id=user.id,
                     details={"from": user.email, "to": email})
        user.set_email(email)
    user.email_verified_at = utcnow()
    user.email_token_version += 1  # each link works once
    db.session.flush()
    return user


def request_password_reset(email: str) -> None:
    """Mail a reset link if the address has an account; says nothing either
    way, and does the same work (a token, the e-mail rendered) either way."""
    user = user_by_email(email)
    if user is None:
        # The same work as for an account, short of storing and sending: a
        # token made and the e-mail rendered, so timing does not tell.
        stranger = User(id=0, display_name="", password_hash=_DUMMY_HASH)
        mail.render("password_reset", user=stranger,
                    link=url_for_public("accounts.reset_password", token=make_reset_token(stranger)))
        return
    mail.send("password_reset", user.email, language=mail.language_of(user), user=user,
              link=url_for_public("accounts.reset_password", token=make_reset_token(user)))


def set_password(user: User, password: str, *, reason: str) -> None:
    """Store a new password and end every session of the account (the caller signs this one in again)."""
    user.set_password(password)
    user.session_version += 1
    db.session.flush()
    audit.record(f"user.password_{reason}", "user_account", user.id, actor=f"user:{user.id}", actor_user_id=user.id)


def request_email_change(user: User, new_email: str) -> None:
    """Mail a confirmation link to the new address; the change happens when it is opened."""
    new_email = new_email.strip()
    holder = user_by_email(new_email)
    if holder is not None and holder.id != user.id:
        raise AccountError(_("This e-mail address belongs to another account."))
    user.email_token_version += 1  # an earlier pending change no longer applies
    db.session.flush()
    send_verification(user, new_email)


def link_identity(user: User, *, forge: str, host: str, forge_user_id: int, login: str) -> ForgeIdentity:
    """Record that ``user`` proved control of the forge account ``forge_user_id``.

    Matched by the forge's numeric id, never the handle: a renamed handle
    updates the login; a newcomer who takes an old handle has another id.
    Raises :class:`AccountError` when another account holds the identity.
    """
    identity = db.session.scalar(select(ForgeIdentity).where(
        ForgeIdentity.host == host, ForgeIdentity.forge_user_id == forge_user_id))
    if identity is not None and identity.user_id != user.id:
        raise AccountError(_("This %(forge)s account is already connected to another Backlog Commons account.",
                             forge=forge.capitalize()))
    if identity is None:
        identity = ForgeIdentity(user=user, forge=forge, host=host, forge_user_id=forge_user_id, login=login)
        db.session.add(identity)
        action = "identity.connected"
    else:
        action = "identity.refreshed"
        identity.login = login
        identity.verified_at = utcnow()
    db.session.flush()
    audit.record(action, "forge_identity", identity.id, actor=f"user:{user.id}", actor_user_id=user.id,
                 details={"host": host, "forge_user_id": forge_user_id, "login": login})
    return identity


# --- what the account pages change ----------------------------------------------------

def record_sign_in(user: User) -> None:
    """Audit that ``user`` signed in (``user.login``)."""
    audit.record("user.login", "user_account", user.id, actor=f"user:{user.id}", actor_user_id=user.id)


def sign_out_everywhere(user: User) -> None:
    """End every session of the account (a copy of an older cookie signs nobody in); audited as ``user.logout``."""
    user.session_version += 1
    audit.record("user.logout", "user_account", user.id, actor=f"user:{user.id}", actor_user_id=user.id)


def reset_password(user: User, password: str) -> None:
    """A new password from a reset link: like :func:`set_password`, and the address
    counts as confirmed (opening a link mailed to it proves it)."""
    set_password(user, password, reason="reset")
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()


def set_roles(user: User, *, display_name: str, funder: bool, implementor: bool) -> None:
    """Change the person's shown name (stripped) and roles; audited as ``user.roles_changed``."""
    user.display_name = display_name.strip()
    user.is_funder = funder
    user.is_implementor = implementor
    audit.record("user.roles_changed", "user_account", user.id, actor=f"user:{user.id}", actor_user_id=user.id,
                 details={"funder": user.is_funder, "implementor": user.is_implementor})


def set_language(user: User, code: str) -> None:
    """Remember ``code`` (an offered locale, checked by the caller) as the
    person's language for pages and e-mails; audited as ``user.language_changed``."""
    if user.preferred_language == code:
        return
    user.preferred_language = code
    audit.record("user.language_changed", "user_account", user.id, actor=f"user:{user.id}", actor_user_id=user.id,
                 details={"language": code})


def save_profile(user: User, *, country: str | None, organisation_id: int | None, skills: list[str],
                 languages: list[str], bio: str, public_earnings: bool) -> ImplementorProfile:
    """Create or update the person's implementor profile (``country`` ISO 3166-1 alpha-2
    or None; the caller checks the organisation is one of theirs); audited as ``profile.updated``."""
    row = db.session.get(ImplementorProfile, user.id)
    if row is None:
        row = ImplementorProfile(user_id=user.id)
        db.session.add(row)
    row.country = country or None
    row.organisation_id = organisation_id
    row.skills = skills
    row.languages = languages
    row.bio = bio
    row.public_earnings = public_earnings
    audit.record("profile.updated", "implementor_profile", user.id, actor=f"user:{user.id}", actor_user_id=user.id)
    return row


def remove_identity(identity: ForgeIdentity, *, user: User) -> None:
    """Disconnect a forge identity of ``user`` (the caller checks it is theirs); audited as ``identity.removed``."""
    audit.record("identity.removed", "forge_identity", identity.id, actor=f"user:{user.id}", actor_user_id=user.id)
    db.session.delete(identity)


def identities_of(user_id: int) -> list[ForgeIdentity]:
    """The person's verified forge identities, oldest first."""
    return list(db.session.scalars(
        select(ForgeIdentity).where(ForgeIdentity.user_id == user_id).order_by(ForgeIdentity.id)))
