"""Accounts: sign up, verify, sign in and out, reset and change password and
e-mail, roles, implementor profile, forge identities (OAuth), organisations."""
from __future__ import annotations

from urllib.parse import unquote, urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy.exc import IntegrityError

from marketplace.access import current_actor
from marketplace.accounts import backoff, oauth
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
from marketplace.accounts.models import ForgeIdentity, ImplementorProfile, User
from marketplace.accounts.tokens import InvalidToken, read_reset_token
from marketplace.claims.certification import of_user
from marketplace.extensions import db, limiter
from marketplace.forms import which_form
from marketplace.i18n import remember_language, supported
from marketplace.markdown import render_markdown
from marketplace.notifications.links import url_for_public
from marketplace.organisations import service as organisations
from marketplace.payouts.queries import paid_totals
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
        return redirect(url_for("accounts.login"), code=303)  # See Other: the form was sent
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/signup.html", form=form, error=None), status


@bp.get("/verify/<token>")
def verify(token: str):
    """Open the link from the verification e-mail."""
    user = accounts.verify_email(token)  # an AccountError: the error page (400)
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
        # Wrong passwords for one address slow further attempts for it, from any
        # client address (marketplace.accounts.backoff); the owner's own browser
        # counts apart, so a stranger's guesses never keep them out.
        key = backoff.key_for(form.email.data, request.cookies.get(backoff.DEVICE_COOKIE))
        wait = backoff.wait_seconds(key)
        if wait:
            error = _("Too many wrong passwords were typed for this address, so this attempt was not checked. "
                      "Try again in %(when)s.", when=_seconds_in_words(wait))
            response = make_response(render_template("accounts/login.html", form=form, error=error), 429)
            response.headers["Retry-After"] = str(wait)
            return response
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            backoff.clear(key)
            session.clear()  # a fresh session: nothing from before sign-in carries over
            login_user(user)
            accounts.record_sign_in(user)
            db.session.commit()
            response = redirect(safe_next(request.args.get("next")) or url_for("backlog.index"))
            response.set_cookie(backoff.DEVICE_COOKIE, backoff.device_cookie_for(form.email.data),
                                max_age=backoff.DEVICE_COOKIE_DAYS * 86400, path=url_for("accounts.login"),
                                secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")), httponly=True,
                                samesite="Lax")
            return response
        backoff.record_failure(key)
        error = _("The e-mail address or the password is not right.")
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/login.html", form=form, error=error), status


def _seconds_in_words(seconds: int) -> str:
    """``seconds`` as "N seconds" under two minutes, else whole minutes rounded up."""
    if seconds < 120:
        return ngettext("%(num)d second", "%(num)d seconds", seconds)
    return ngettext("%(num)d minute", "%(num)d minutes", -(-seconds // 60))


@bp.post("/language")
def set_language():
    """The footer's language choice: remembered in the ``lang`` cookie and, for a
    signed-in person, as the account's language (pages and e-mails). Goes back
    to ``next`` (a path of this site) or the backlog; an unknown language: 400."""
    code = supported(request.form.get("lang"))
    if code is None:
        abort(400)
    if current_user.is_authenticated:
        accounts.set_language(current_actor(), code)
        db.session.commit()
    response = redirect(safe_next(request.form.get("next")) or url_for("backlog.index"), code=303)
    return remember_language(response, code)


@bp.post("/logout")
@login_required
def logout():
    """Sign out (POST with the CSRF token). Ends the account's sessions on every
    device: a copy of the cookie taken before no longer signs anyone in."""
    accounts.sign_out_everywhere(current_actor())
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
        accounts.reset_password(user, form.password.data)
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
        which = which_form("roles", "password", "email")
        if which == "roles" and roles.validate_on_submit():
            accounts.set_roles(current_actor(), display_name=roles.display_name.data,
                               funder=roles.is_funder.data, implementor=roles.is_implementor.data)
            db.session.commit()
            flash(_("Saved."))
            return redirect(url_for("accounts.settings"))
        if which == "password" and password.validate_on_submit():
            if not current_user.check_password(password.current.data):
                error = _("The current password is not right.")
            else:
                user = current_actor()
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
                    accounts.request_email_change(current_actor(), email.email.data)
                except accounts.AccountError as exc:
                    error = str(exc)
                else:
                    db.session.commit()
                    flash(_("Open the link we sent to %(email)s to finish the change.", email=email.email.data))
                    return redirect(url_for("accounts.settings"))
        if error is None:
            error = _("Please correct the marked fields.")
    identities = accounts.identities_of(current_user.id)
    invitations = organisations.invitations_for(current_user.id)
    status = 400 if request.method == "POST" else 200
    return render_template("accounts/settings.html", roles=roles, password=password, email=email, error=error,
                           identities=identities, providers=_configured_providers(),
                           invitations=invitations), status


def _configured_providers() -> list[str]:
    return [p for p in oauth.PROVIDERS if oauth.provider_settings(p)["client_id"]]


@bp.route("/account/profile", methods=["GET", "POST"])
@login_required
def profile():
    """The implementor profile: country, organisation, skills, languages, bio."""
    row = db.session.get(ImplementorProfile, current_user.id)
    form = ProfileForm(obj=row)
    form.country.choices = as_choices(country_choices())
    firms = organisations.organisations_of(current_user.id, kind="implementor")
    form.organisation_id.choices = as_choices([("", _("None"))] + [(str(o.id), o.name) for o in firms])
    if request.method == "GET" and row is not None:
        form.skills.data = ", ".join(row.skills)
        form.languages.data = ", ".join(row.languages)
        form.organisation_id.data = str(row.organisation_id or "")
        form.country.data = row.country or ""
    if form.validate_on_submit():
        accounts.save_profile(
            current_actor(), country=form.country.data or None,
            organisation_id=int(form.organisation_id.data) if form.organisation_id.data.isdigit() else None,
            skills=_list_of(form.skills.data), languages=_list_of(form.languages.data),
            bio=form.bio.data or "", public_earnings=form.public_earnings.data)
        db.session.commit()
        flash(_("Your profile is saved."))
        return redirect(url_for("accounts.person", user_id=current_user.id))
    return render_template("accounts/profile.html", form=form), 400 if request.method == "POST" else 200


def _list_of(text: str | None) -> list[str]:
    """The comma-separated entries of ``text``, stripped, empty ones left out."""
    return [s.strip() for s in (text or "").split(",") if s.strip()]


@bp.get("/people/<id:user_id>")
def person(user_id: int):
    """A public profile: name, country, skills, languages, bio, verified forge
    identities. Only implementors have one (:attr:`User.has_public_page`);
    for anyone else it answers 404, as for no account, except to the person
    themselves and to admins."""
    user = db.session.get(User, user_id)
    viewer = current_user if current_user.is_authenticated else None
    if user is None or not (user.has_public_page or (viewer is not None and (viewer.id == user.id
                                                                               or viewer.is_admin))):
        abort(404)
    row = db.session.get(ImplementorProfile, user.id)
    identities = accounts.identities_of(user.id)
    country = None
    if row is not None and row.country:
        country = dict(country_choices()).get(row.country, row.country)
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
        identity = accounts.link_identity(current_actor(), forge=provider,
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
    # An AccountError (the identity belongs to another account) goes to the error page (400).
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
    accounts.remove_identity(identity, user=current_actor())
    db.session.commit()
    flash(_("The connection is removed."))
    return redirect(url_for("accounts.settings"))


@bp.route("/organisations/new", methods=["GET", "POST"])
@login_required
def new_organisation():
    """Create a funder organisation or an implementor firm; its creator owns it."""
    form = OrganisationForm()
    form.country.choices = as_choices(country_choices())
    if form.validate_on_submit():
        org = organisations.create(form.name.data, kind=form.kind.data, country=form.country.data or None,
                                   owner=current_actor())
        db.session.commit()
        return redirect(url_for("accounts.organisation", slug=org.slug))
    return render_template("accounts/organisation_new.html", form=form), 400 if request.method == "POST" else 200


@bp.route("/organisations/<slug>", methods=["GET", "POST"])
def organisation(slug: str):
    """An organisation and its members; its owner invites members by e-mail, who accept."""
    org = organisations.by_slug(slug)
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
            if organisations.invite(org, form.email.data, inviter=current_actor()):
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
    org = organisations.by_slug(slug)
    row = organisations.membership(org, current_user.id) if org else None
    if row is None:
        abort(404)
    organisations.accept(row, user=current_actor())
    db.session.commit()
    flash(_("You are a member of %(name)s.", name=org.name))
    return redirect(url_for("accounts.organisation", slug=org.slug))
