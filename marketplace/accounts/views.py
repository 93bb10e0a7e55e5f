"""Accounts: sign up, verify, sign in and out, reset and change password and
e-mail, roles, implementor profile, forge identities (OAuth), organisations."""
from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from marketplace.accounts import oauth
from marketplace.accounts import service as accounts
from marketplace.accounts.forms import (
    EmailChangeForm,
    LoginForm,
    MemberForm,
    OrganisationForm,
    PasswordChangeForm,
    ProfileForm,
    ResetForm,
    ResetRequestForm,
    RolesForm,
    SignupForm,
    as_choices,
    country_choices,
)
from marketplace.accounts.models import (
    ForgeIdentity,
    ImplementorProfile,
    Organisation,
    OrganisationMember,
    User,
)
from marketplace.accounts.tokens import InvalidToken, read_reset_token
from marketplace.audit import service as audit
from marketplace.extensions import db, limiter
from marketplace.markdown import render_markdown
from marketplace.notifications.links import url_for_public
from marketplace.timeutil import utcnow

bp = Blueprint("accounts", __name__)


def _auth_limit() -> str:
    return current_app.config["RATELIMIT_AUTH"]


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path of this site, else None.

    Refuses absolute URLs, scheme-relative ``//host``, backslash tricks,
    control characters (``/%09/host`` arrives decoded as a tab) and anything
    a browser could read as another origin.
    """
    if not target:
        return None
    # Checked as given and once more percent-decoded: some browsers and
    # proxies decode again, and "/%09/host" must not become "//host".
    for candidate in (target, unquote(target)):
        if not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
            return None
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in candidate) or "\\" in candidate:
            return None
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return None
    return target


def _actor() -> str:
    return f"user:{current_user.id}"


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def signup():
    """Create an account; a verification link is mailed."""
    form = SignupForm()
    if form.validate_on_submit():
        try:
            accounts.create_account(form.email.data, form.password.data, form.display_name.data,
                                    funder=form.is_funder.data, implementor=form.is_implementor.data)
            db.session.commit()
        except IntegrityError:
            # The same address signed up at the same moment: one account, one answer.
            db.session.rollback()
        # The same answer whether the address was new or not.
        flash(_("We sent a message to %(email)s. Open the link in it to confirm your address, then sign in.",
                email=form.email.data.strip()))
        return redirect(url_for("accounts.login"))
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/signup.html", form=form, error=None), status


@bp.get("/verify/<token>")
def verify(token: str):
    """Open the link from the verification e-mail."""
    try:
        user = accounts.verify_email(token)
    except accounts.AccountError as exc:
        return render_template("errors/error.html", status=400, message=str(exc)), 400
    db.session.commit()
    flash(_("Your e-mail address %(email)s is confirmed.", email=user.email))
    return redirect(url_for("accounts.settings") if current_user.is_authenticated else url_for("accounts.login"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def login():
    """Sign in with e-mail and password; follows ``next`` only to paths of this site."""
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            session.clear()  # a fresh session: nothing from before sign-in carries over
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
    """Sign out (POST with the CSRF token). Ends the account's sessions on every
    device: a copy of the cookie taken before no longer signs anyone in."""
    user = current_user._get_current_object()
    user.session_version += 1
    audit.record("user.logout", "user_account", user.id, actor=_actor(), actor_user_id=user.id)
    db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("backlog.index"))


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def reset_request():
    """Ask for a password reset link (the answer is the same whether the address exists or not)."""
    form = ResetRequestForm()
    if form.validate_on_submit():
        accounts.request_password_reset(form.email.data)
        db.session.commit()
        flash(_("If an account uses that address, a link to reset its password is on its way."))
        return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_request.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/reset/<token>", methods=["GET", "POST"])
@limiter.limit(_auth_limit, methods=["POST"])
def reset_password(token: str):
    """Choose a new password from a reset link (single use, one hour)."""
    try:
        user = read_reset_token(token, lambda user_id: db.session.get(User, user_id))
    except InvalidToken:
        return render_template("errors/error.html", status=400,
                               message=_("This link is not valid, was used already, or has expired.")), 400
    form = ResetForm()
    if form.validate_on_submit():
        accounts.set_password(user, form.password.data, reason="reset")
        if user.email_verified_at is None:
            # Opening a link mailed to the address proves it, too.
            from marketplace.timeutil import utcnow

            user.email_verified_at = utcnow()
        db.session.commit()
        session.clear()
        login_user(user)
        flash(_("Your password is changed. Other sessions were signed out."))
        return redirect(url_for("accounts.settings"))
    return render_template("accounts/reset.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/account", methods=["GET", "POST"])
@login_required
def settings():
    """Name, roles, e-mail and password."""
    roles = RolesForm(prefix="roles", obj=current_user)
    password = PasswordChangeForm(prefix="password")
    email = EmailChangeForm(prefix="email")
    error = None
    if request.method == "POST":
        which = request.form.get("form")
        if which == "roles" and roles.validate_on_submit():
            current_user.display_name = roles.display_name.data.strip()
            current_user.is_funder = roles.is_funder.data
            current_user.is_implementor = roles.is_implementor.data
            audit.record("user.roles_changed", "user_account", current_user.id, actor=_actor(),
                         actor_user_id=current_user.id,
                         details={"funder": current_user.is_funder, "implementor": current_user.is_implementor})
            db.session.commit()
            flash(_("Saved."))
            return redirect(url_for("accounts.settings"))
        if which == "password" and password.validate_on_submit():
            if not current_user.check_password(password.current.data):
                error = _("The current password is not right.")
            else:
                user = current_user._get_current_object()
                accounts.set_password(user, password.password.data, reason="changed")
                db.session.commit()
                login_user(user)  # this session continues; the others end
                flash(_("Your password is changed. Other sessions were signed out."))
                return redirect(url_for("accounts.settings"))
        if which == "email" and email.validate_on_submit():
            if not current_user.check_password(email.current.data):
                error = _("The current password is not right.")
            else:
                try:
                    accounts.request_email_change(current_user, email.email.data)
                except accounts.AccountError as exc:
                    error = str(exc)
                else:
                    db.session.commit()
                    flash(_("Open the link we sent to %(email)s to finish the change.", email=email.email.data))
                    return redirect(url_for("accounts.settings"))
        if error is None:
            error = _("Please correct the marked fields.")
    identities = db.session.scalars(
        select(ForgeIdentity).where(ForgeIdentity.user_id == current_user.id).order_by(ForgeIdentity.id)).all()
    invitations = db.session.scalars(
        select(Organisation).join(OrganisationMember).where(
            OrganisationMember.user_id == current_user.id, OrganisationMember.accepted_at.is_(None))).all()
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/settings.html", roles=roles, password=password, email=email, error=error,
                           identities=identities, providers=_configured_providers(),
                           invitations=invitations), status


def _configured_providers() -> list[str]:
    return [p for p in oauth.PROVIDERS if oauth.provider_settings(p)["client_id"]]


def _user_organisations(user_id: int) -> list[Organisation]:
    return list(db.session.scalars(
        select(Organisation).join(OrganisationMember).where(
            OrganisationMember.user_id == user_id, OrganisationMember.accepted_at.is_not(None))
        .order_by(Organisation.name)))


@bp.route("/account/profile", methods=["GET", "POST"])
@login_required
def profile():
    """The implementor profile: country, organisation, skills, languages, bio."""
    row = db.session.get(ImplementorProfile, current_user.id)
    form = ProfileForm(obj=row)
    form.country.choices = as_choices(country_choices())
    organisations = [o for o in _user_organisations(current_user.id) if o.kind == "implementor"]
    form.organisation_id.choices = as_choices([("", _("None"))] + [(str(o.id), o.name) for o in organisations])
    if request.method == "GET" and row is not None:
        form.skills.data = ", ".join(row.skills)
        form.languages.data = ", ".join(row.languages)
        form.organisation_id.data = str(row.organisation_id or "")
        form.country.data = row.country or ""
    if form.validate_on_submit():
        if row is None:
            row = ImplementorProfile(user_id=current_user.id)
            db.session.add(row)
        row.country = form.country.data or None
        row.organisation_id = int(form.organisation_id.data) if form.organisation_id.data.isdigit() else None
        row.skills = [s.strip() for s in (form.skills.data or "").split(",") if s.strip()]
        row.languages = [s.strip() for s in (form.languages.data or "").split(",") if s.strip()]
        row.bio = form.bio.data or ""
        row.public_earnings = form.public_earnings.data
        audit.record("profile.updated", "implementor_profile", current_user.id, actor=_actor(),
                     actor_user_id=current_user.id)
        db.session.commit()
        flash(_("Your profile is saved."))
        return redirect(url_for("accounts.person", user_id=current_user.id))
    return render_template("accounts/profile.html", form=form), 400 if request.method == "POST" else 200


@bp.get("/people/<id:user_id>")
def person(user_id: int):
    """A public profile: name, country, skills, languages, bio, verified forge identities."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    row = db.session.get(ImplementorProfile, user.id)
    identities = db.session.scalars(
        select(ForgeIdentity).where(ForgeIdentity.user_id == user.id).order_by(ForgeIdentity.id)).all()
    country = None
    if row is not None and row.country:
        country = dict(country_choices()).get(row.country, row.country)
    from marketplace.claims.certification import of_user
    from marketplace.payouts.views import paid_totals

    certifications = [cert for cert in of_user(user.id) if cert.revoked_at is None]
    return render_template("accounts/person.html", person=user, profile=row, identities=identities,
                           country=country, bio_html=render_markdown(row.bio if row else ""),
                           certifications=certifications, now=utcnow(),
                           earnings=paid_totals(user.id) if row is not None and row.public_earnings else None)


@bp.post("/connect/<provider>")
@login_required
def connect(provider: str):
    """Start connecting a forge account: redirect to the provider with a fresh state."""
    if provider not in _configured_providers():
        abort(404)
    if not current_user.email_verified:
        # A forge identity earns payouts: only the confirmed owner of the address attaches one.
        flash(_("Confirm your e-mail address first (open the link we sent), then connect."))
        return redirect(url_for("accounts.settings"))
    url = oauth.authorization_url(provider, current_user.id, _callback_url(provider))
    db.session.commit()
    return redirect(url)


def _callback_url(provider: str) -> str:
    return url_for_public("accounts.connect_callback", provider=provider)


@bp.get("/connect/<provider>/callback")
@login_required
def connect_callback(provider: str):
    """The provider sends the person back here with ``code`` and ``state``."""
    if provider not in _configured_providers():
        abort(404)
    try:
        oauth.consume_state(provider, request.args.get("state"), current_user.id)
    except oauth.OAuthError:
        db.session.rollback()
        return render_template("errors/error.html", status=400, message=_(
            "This sign-in with the forge was not started here, was used already, or took too long. "
            "Please start again from your account page.")), 400
    db.session.commit()  # the state is spent whatever happens next
    code = request.args.get("code")
    if not code or len(code) > 500:
        return render_template("errors/error.html", status=400, message=_("The forge sent no authorisation.")), 400
    try:
        forge_id, login = oauth.fetch_identity(provider, code, _callback_url(provider))
        identity = accounts.link_identity(current_user, forge=provider,
                                          host=oauth.provider_settings(provider)["host"],
                                          forge_user_id=forge_id, login=login)
    except IntegrityError:
        # Another account connected the same forge account at the same moment.
        db.session.rollback()
        return render_template("errors/error.html", status=400, message=_(
            "This %(forge)s account is already connected to another Backlog Commons account.",
            forge=provider.capitalize())), 400
    except oauth.OAuthError:
        return render_template("errors/error.html", status=400,
                               message=_("The forge did not confirm who you are. Please try again.")), 400
    except accounts.AccountError as exc:
        db.session.rollback()
        return render_template("errors/error.html", status=400, message=str(exc)), 400
    try:
        db.session.commit()
    except IntegrityError:
        # Another account connected the same forge account at the same moment.
        db.session.rollback()
        return render_template("errors/error.html", status=400, message=_(
            "This %(forge)s account is already connected to another Backlog Commons account.",
            forge=provider.capitalize())), 400
    flash(_("Your %(forge)s account %(login)s is connected.", forge=provider.capitalize(), login=identity.login))
    return redirect(url_for("accounts.settings"))


@bp.post("/account/identities/<id:identity_id>/remove")
@login_required
def remove_identity(identity_id: int):
    identity = db.session.get(ForgeIdentity, identity_id)
    if identity is None or identity.user_id != current_user.id:
        abort(404)
    audit.record("identity.removed", "forge_identity", identity.id, actor=_actor(), actor_user_id=current_user.id)
    db.session.delete(identity)
    db.session.commit()
    flash(_("The connection is removed."))
    return redirect(url_for("accounts.settings"))


RESERVED_SLUGS = frozenset({"new"})  # paths of their own under /organisations/


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "organisation"
    candidate, n = slug, 1
    while candidate in RESERVED_SLUGS or db.session.scalar(select(Organisation.id).where(Organisation.slug == candidate)):
        n += 1
        candidate = f"{slug}-{n}"
    return candidate


@bp.route("/organisations/new", methods=["GET", "POST"])
@login_required
def new_organisation():
    """Create a funder organisation or an implementor firm; its creator owns it."""
    form = OrganisationForm()
    form.country.choices = as_choices(country_choices())
    if form.validate_on_submit():
        org = Organisation(slug=_slugify(form.name.data), name=form.name.data.strip(), kind=form.kind.data,
                           country=form.country.data or None, owner_id=current_user.id)
        org.members.append(OrganisationMember(user_id=current_user.id, role="owner", accepted_at=utcnow()))
        db.session.add(org)
        db.session.flush()
        audit.record("organisation.created", "organisation", org.id, actor=_actor(), actor_user_id=current_user.id)
        db.session.commit()
        return redirect(url_for("accounts.organisation", slug=org.slug))
    return render_template("accounts/organisation_new.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/organisations/<slug>", methods=["GET", "POST"])
def organisation(slug: str):
    """An organisation and its members; its owner invites members by e-mail, who accept."""
    org = db.session.scalar(select(Organisation).where(Organisation.slug == slug))
    if org is None:
        abort(404)
    form = MemberForm()
    is_owner = current_user.is_authenticated and current_user.id == org.owner_id
    if request.method == "POST":
        if not current_user.is_authenticated:
            return redirect(url_for("accounts.login", next=request.path))
        if not is_owner:
            abort(403)
        if form.validate_on_submit():
            person = accounts.user_by_email(form.email.data)
            if person is not None and not any(m.user_id == person.id for m in org.members):
                org.members.append(OrganisationMember(user_id=person.id, role="member"))
                audit.record("organisation.member_invited", "organisation", org.id, actor=_actor(),
                             actor_user_id=current_user.id, details={"user": person.id})
                db.session.commit()
            # The same answer either way: the page does not tell who has an account.
            flash(_("If an account uses %(email)s, it is invited; it joins once it accepts.",
                    email=form.email.data))
            return redirect(url_for("accounts.organisation", slug=org.slug))
    return render_template("accounts/organisation.html", org=org, form=form, is_owner=is_owner)


@bp.post("/organisations/<slug>/accept")
@login_required
def accept_membership(slug: str):
    """Accept an invitation to an organisation (shown on the account page)."""
    org = db.session.scalar(select(Organisation).where(Organisation.slug == slug))
    row = next((m for m in org.members if m.user_id == current_user.id), None) if org else None
    if row is None:
        abort(404)
    if row.accepted_at is None:
        row.accepted_at = utcnow()
        audit.record("organisation.member_joined", "organisation", org.id, actor=_actor(),
                     actor_user_id=current_user.id)
        db.session.commit()
    flash(_("You are a member of %(name)s.", name=org.name))
    return redirect(url_for("accounts.organisation", slug=org.slug))
