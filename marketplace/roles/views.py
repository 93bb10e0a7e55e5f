"""Pages of issue 20: follow and unfollow an item, "Items for me", a firm's
payout settings and earnings, and remittance advice (page and CSV)."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from marketplace.access import current_actor
from marketplace.backlog.models import BacklogItem
from marketplace.claims import certification
from marketplace.errors import DomainError
from marketplace.extensions import csrf, db
from marketplace.notifications.links import url_for_public
from marketplace.organisations import service as organisations
from marketplace.payments import stripe_client
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutShare
from marketplace.roles import service
from marketplace.roles.forms import ActionForm, FirmPayoutForm

bp = Blueprint("roles", __name__)


@bp.post("/items/<id:item_id>/follow")
@login_required
def follow(item_id: int):
    """Follow an item without pledging (its solved and paid notices come by e-mail)."""
    item = db.get_or_404(BacklogItem, item_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    service.follow(item, current_actor())
    db.session.commit()
    flash(_("You follow this item: you get an e-mail when it is solved and when its money is paid."))
    return redirect(url_for("backlog.item", item_id=item.id), code=303)


@bp.post("/items/<id:item_id>/unfollow")
@login_required
def unfollow_signed_in(item_id: int):
    """Stop following an item (the button on the item page)."""
    item = db.get_or_404(BacklogItem, item_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    service.unfollow(item.id, current_user.id)
    db.session.commit()
    flash(_("You no longer follow this item."))
    return redirect(url_for("backlog.item", item_id=item.id), code=303)


@bp.route("/unfollow/<token>", methods=["GET", "POST"])
@csrf.exempt  # the signed token is the authority; RFC 8058 one-click POSTs carry no CSRF token
def unfollow(token: str):
    """The unfollow link of an e-mail, without signing in: GET asks to confirm
    (a link scanner following it changes nothing), POST unfollows."""
    read = service.read_unfollow_token(token)
    if read is None:
        abort(404)
    item_id, user_id = read
    item = db.session.get(BacklogItem, item_id)
    if request.method == "POST":
        service.unfollow(item_id, user_id)
        db.session.commit()
        return render_template("roles/unfollowed.html", item=item)
    return render_template("roles/unfollow.html", item=item, token=token,
                           following=service.is_following(item_id, user_id))


@bp.get("/account/items-for-me")
@login_required
def items_for_me():
    """Open, funded items that fit the implementor's skills, languages and certifications."""
    if not current_user.is_implementor:
        abort(403)
    return render_template("roles/items_for_me.html", **service.items_for(current_actor()))


def _firm(slug: str):
    org = organisations.by_slug(slug)
    if org is None or org.kind != "implementor":
        abort(404)
    return org


@bp.route("/organisations/<slug>/payouts", methods=["GET", "POST"])
@login_required
def firm_payouts(slug: str):
    """A firm's payout account (owners set it: legal name and the manual rail's
    bank or mobile-money details) and its earnings with remittance advice (members and admins)."""
    org = _firm(slug)
    member = any(m.user_id == current_user.id and m.accepted_at for m in org.members)
    owner = service.owns(org, current_actor())
    if not (member or current_user.is_admin):
        abort(403)
    account = db.session.get(PayoutAccount, org.payee_id) if org.payee_id else None
    form = FirmPayoutForm(legal_name=org.legal_name or org.name,
                          details=account.manual_details if account is not None and owner else "")
    if request.method == "POST":
        if not owner:
            abort(403)
        if form.validate_on_submit():
            try:
                service.ensure_payee(org, owner=current_actor(), legal_name=form.legal_name.data)
                if (form.details.data or "").strip():
                    service.set_firm_manual_rail(org, form.details.data, owner=current_actor())
            except (service.FirmError, DomainError) as exc:
                db.session.rollback()
                flash(str(exc), "error")
                return redirect(url_for("roles.firm_payouts", slug=org.slug), code=303)
            db.session.commit()
            flash(_("%(name)s is paid as a firm.", name=service.firm_name(org)))
            return redirect(url_for("roles.firm_payouts", slug=org.slug), code=303)
    rows = service.earnings(org.payee_id) if org.payee_id else []
    certified = bool(org.payee_id) and certification.is_certified(org.payee_id, None)
    return render_template("roles/firm_payouts.html", org=org, form=form, owner=owner, account=account,
                           rows=rows, name=service.firm_name(org), certified=certified,
                           action=ActionForm()), 400 if request.method == "POST" else 200


@bp.post("/organisations/<slug>/payouts/stripe")
@login_required
def firm_stripe(slug: str):
    """An owner sets the firm up to be paid by Stripe Connect: the company's own
    Express account (made once), then Stripe's onboarding for the company."""
    org = _firm(slug)
    back = url_for("roles.firm_payouts", slug=org.slug)
    if not service.owns(org, current_actor()):
        abort(403)
    if not ActionForm().validate_on_submit():
        abort(400)
    if not org.country:
        flash(_("The firm has no country: Stripe needs it."), "error")
        return redirect(back, code=303)
    try:
        payee = service.ensure_payee(org, owner=current_actor())
        stripe_id = payouts.ensure_stripe_account(payee, org.country, company_name=org.legal_name or org.name)
    except (stripe_client.PaymentsUnavailable, stripe_client.TransferRefused, service.FirmError):
        db.session.rollback()
        flash(_("Stripe could not set up the firm's account right now. Please try again later, or choose a "
                "transfer by the fiscal host."), "error")
        return redirect(back, code=303)
    db.session.commit()
    try:
        link = stripe_client.create_account_link(stripe_id, refresh_url=url_for_public("roles.firm_payouts",
                                                                                       slug=org.slug),
                                                 return_url=url_for_public("roles.firm_payouts", slug=org.slug))
    except (stripe_client.PaymentsUnavailable, stripe_client.TransferRefused):
        flash(_("The firm's Stripe account exists, but Stripe's page could not be opened. Please try again."),
              "error")
        return redirect(back, code=303)
    return redirect(link, code=303)


@bp.post("/organisations/<slug>/payouts/certify")
@login_required
def firm_certify(slug: str):
    """An admin certifies the firm (its payee account) for every member project, for the default period."""
    org = _firm(slug)
    if not current_user.is_admin:
        abort(403)
    if not ActionForm().validate_on_submit() or org.payee_id is None:
        abort(400)
    try:
        certification.grant(org.payee, issuer=current_actor(), project_id=None, note="firm")
    except certification.CertificationError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("roles.firm_payouts", slug=org.slug), code=303)
    db.session.commit()
    flash(_("%(name)s is certified for every member project.", name=service.firm_name(org)))
    return redirect(url_for("roles.firm_payouts", slug=org.slug), code=303)


@bp.get("/organisations/<slug>/earnings.csv")
@login_required
def firm_earnings_csv(slug: str):
    """Every remittance advice of the firm as CSV, for its books."""
    org = _firm(slug)
    if not (current_user.is_admin or any(m.user_id == current_user.id and m.accepted_at for m in org.members)):
        abort(403)
    rows = service.earnings(org.payee_id) if org.payee_id else []
    return _csv(service.remittance_csv(rows), f"{org.slug}-earnings.csv")


def _share(share_id: int) -> PayoutShare:
    share = db.get_or_404(PayoutShare, share_id)
    if not service.may_see_remittance(share, current_actor()) or share.payout.executed_at is None:
        abort(404)
    return share


@bp.get("/remittance/<id:share_id>")
@login_required
def remittance(share_id: int):
    """Printable remittance advice of one payout share (to a firm or a person)."""
    return render_template("roles/remittance.html", row=service.remittance(_share(share_id)))


@bp.get("/remittance/<id:share_id>.csv")
@login_required
def remittance_csv(share_id: int):
    """The remittance advice of one share as CSV."""
    return _csv(service.remittance_csv([service.remittance(_share(share_id))]), f"remittance-{share_id}.csv")


def _csv(text: str, filename: str) -> Response:
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
