"""Payout pages: the public payout page with the maintainers' approval (split,
preview, approve) and cancellation, a project's payouts, and a recipient's
payout settings (Stripe Connect onboarding or the manual rail) with their earnings."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict

from marketplace.access import current_actor, project_or_404, refuse_unless_manager
from marketplace.accounts.models import ImplementorProfile, User
from marketplace.accounts.service import user_by_email
from marketplace.claims.forms import certification_form
from marketplace.claims.queries import (
    holding_claimants,
    item_claimants,
    project_certifications,
)
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db
from marketplace.forms import which_form
from marketplace.notifications.links import url_for_public
from marketplace.payments import stripe_client
from marketplace.payouts import service as payouts
from marketplace.payouts.forms import ApprovalForm, CancelForm, ManualDetailsForm
from marketplace.payouts.models import (
    APPROVABLE_STATES,
    OPEN_PAYOUT_STATES,
    Payout,
    PayoutAccount,
    PayoutState,
    ShareState,
)
from marketplace.payouts.queries import (
    LIST_LIMIT,
    earnings,
    paid_totals,
    payouts_of_project,
)
from marketplace.payouts.split import parse_percentages
from marketplace.projects.service import may_manage
from marketplace.validation import ascii_int

bp = Blueprint("payouts", __name__)

PAYOUT_STATE_LABELS = {
    PayoutState.awaiting_certification: _l("waiting for the recipient's certification"),
    PayoutState.proposed: _l("proposed, waiting for a maintainer's approval"),
    PayoutState.approved: _l("approved, paid once the dispute window has passed"),
    PayoutState.held: _l("held: a pledge it covers is disputed or changed"),
    PayoutState.executing: _l("being paid"),
    PayoutState.paid: _l("paid"),
    PayoutState.failed: _l("a transfer failed; it is retried"),
    PayoutState.cancelled: _l("cancelled"),
    PayoutState.returned: _l("returned: the transfer came back, the money is in escrow again"),
}
SHARE_STATE_LABELS = {
    ShareState.pending: _l("not yet paid"),
    ShareState.awaiting_certification: _l("owed, waiting for certification"),
    ShareState.awaiting_account: _l("owed, waiting for a payout account that can receive"),
    ShareState.awaiting_manual_payout: _l("owed, the fiscal host transfers it"),
    ShareState.transferring: _l("being transferred"),
    ShareState.failed: _l("transfer failed, retried"),
    ShareState.paid: _l("paid"),
    ShareState.reversed: _l("reversed"),
    ShareState.returned: _l("returned, not paid"),
}


@bp.app_template_filter("payout_state")
def payout_state_label(state: PayoutState) -> str:
    return str(PAYOUT_STATE_LABELS.get(state, state.value))


@bp.app_template_filter("share_state")
def share_state_label(state: ShareState) -> str:
    return str(SHARE_STATE_LABELS.get(state, state.value))


def _payout_or_404(payout_id: int) -> Payout:
    """The payout; 404 when its item is hidden or deleted, unless the viewer manages the project."""
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        abort(404)
    item = payout.item
    if (item.hidden or item.deleted_at is not None) and not may_manage(current_user, item.repository.project):
        abort(404)
    return payout


# --- the split a maintainer types ------------------------------------------------------

@dataclass
class SplitLine:
    """One filled row of the approval form, resolved."""

    person: User
    weight: int
    net: int | None = None
    certified: bool = True


@dataclass
class Split:
    lines: list[SplitLine]
    errors: list[str]
    figures: dict | None = None  # payouts.service.quote(): gross, fee, net, shares, pledges
    names: dict[int, str] = field(default_factory=dict)  # form row number (1-based) -> matched person's name


def _recipient(text: str) -> User | None:
    """An implementor named by account number (as on their profile page) or by e-mail."""
    text = text.strip()
    number = ascii_int(text)
    if number is not None:
        person = db.session.get(User, number) if 0 < number < 2**31 else None
    elif "@" in text:
        person = user_by_email(text)
    else:
        person = None
    return person if person is not None and person.is_implementor else None


def _read_split(form: ApprovalForm, payout: Payout) -> Split:
    """The recipients and weights the form asks for, with the amounts approving now would pay."""
    lines: list[SplitLine] = []
    errors: list[str] = []
    percents: list[str] = []
    names: dict[int, str] = {}
    for number, row in enumerate(form.rows, start=1):
        text, percent = (row.recipient.data or "").strip(), (row.percent.data or "").strip()
        if not text:
            if percent:
                errors.append(_("Row %(n)s has a percentage but no recipient.", n=number))
            continue
        person = _recipient(text)
        if person is None:
            errors.append(_("Row %(n)s: no implementor has the account id or e-mail address %(who)s.",
                            n=number, who=text))
            continue
        if any(line.person.id == person.id for line in lines):
            errors.append(_("%(name)s appears twice in the split.", name=person.display_name))
            continue
        lines.append(SplitLine(person=person, weight=1))
        names[number] = person.display_name
        percents.append(percent)
    if not lines and not errors:
        errors.append(_("Name at least one recipient."))
    if errors:
        return Split(lines, errors, names=names)
    if not form.equal.data:
        if len(percents) == 1 and not percents[0]:
            percents = ["100"]  # one recipient: all of it
        try:
            weights = parse_percentages(percents)
        except ValueError as exc:
            return Split(lines, [_("Percentages must be above 0, have at most two decimals and add up to 100 "
                                   "(%(problem)s).", problem=str(exc))], names=names)
        for line, weight in zip(lines, weights):
            line.weight = weight
    figures = payouts.quote(payout, [line.weight for line in lines])
    for line, net in zip(lines, figures["shares"]):
        line.net = net
        line.certified = payouts.may_be_paid(line.person.id, payout.item)  # a trainee is paid uncertified
    return Split(lines, [], figures, names)


def _prefilled_form(payout: Payout) -> ApprovalForm:
    """The approval form filled with the payout's current shares (at first: the suggested recipient, 100%)."""
    form = ApprovalForm()
    shares = list(payout.shares)
    suggested = payout.suggested_recipient_id
    if not shares and suggested is None and payout.reason == "merged":
        # The merged change's author has no verified identity: the approved claimant comes first.
        holders = holding_claimants(payout.item_id)
        suggested = holders[0] if len(holders) == 1 else None
    if not shares and suggested:
        form.rows[0].recipient.data = str(suggested)
        form.rows[0].percent.data = "100"
    total = sum(share.weight for share in shares)
    equal = len(shares) > 1 and len({share.weight for share in shares}) == 1
    for row, share in zip(form.rows, shares):
        row.recipient.data = str(share.recipient_id)
        if not equal:
            row.percent.data = "100" if len(shares) == 1 else (
                f"{share.weight / 100:.2f}" if total == 10_000 else "")
    form.equal.data = equal
    return form


def _candidates(payout: Payout) -> list[User]:
    """People a maintainer may want to pay: the suggested recipient, then the
    item's approved claimants, then its other claimants."""
    people = item_claimants(payout.item_id)
    holders = holding_claimants(payout.item_id)
    people.sort(key=lambda person: holders.index(person.id) if person.id in holders else len(holders))
    if payout.suggested_recipient is not None and payout.suggested_recipient not in people:
        people.insert(0, payout.suggested_recipient)
    return people


def _render_show(payout: Payout, *, form: ApprovalForm | None = None, split: Split | None = None,
                 error: str | None = None, status: int = 200):
    manager = may_manage(current_user, payout.item.repository.project)
    approvable = payout.state in APPROVABLE_STATES
    if manager and approvable:
        if form is None:
            form = _prefilled_form(payout)
            split = _read_split(form, payout) if any(row.recipient.data for row in form.rows) else None
        figures = split.figures if split is not None and split.figures is not None else payouts.quote(payout)
        form.seen_gross.data = str(figures["gross"])
    else:
        form, figures = None, None
    covered = len(payout.covered) if payout.covered or figures is None else len(figures["pledges"])
    return render_template(
        "payouts/show.html", payout=payout, item=payout.item, manager=manager, approvable=approvable,
        form=form, split=split, figures=figures, error=error, covered=covered,
        candidates=_candidates(payout) if form is not None else [],
        cancel_form=CancelForm(prefix="cancel") if manager and payout.state in OPEN_PAYOUT_STATES else None,
        window=payouts.dispute_window()), status


@bp.get("/payouts/<id:payout_id>")
def show(payout_id: int):
    """A payout: item, state, gross, fee, shares, covered pledges, dispute window; maintainers
    (and admins) approve it here, with a preview of each person's net."""
    payout = _payout_or_404(payout_id)
    draft = session.pop(_draft_key(payout.id), None)
    if draft is not None and may_manage(current_user, payout.item.repository.project) \
            and payout.state in APPROVABLE_STATES:
        form = ApprovalForm(formdata=MultiDict(draft["form"]))
        split = _read_split(form, payout)
        return _render_show(payout, form=form, split=split, error=draft.get("error") or " ".join(split.errors))
    return _render_show(payout)


def _draft_key(payout_id: int) -> str:
    return f"payout-draft-{payout_id}"


def _back_with_draft(payout: Payout, error: str | None = None):
    """A preview or a refused approval: keep what was typed (in the session, for
    this one next view of the payout page) and answer 303, so that reloading
    the page shows it again instead of posting the form a second time."""
    session[_draft_key(payout.id)] = {
        "form": [(name, value) for name, value in request.form.items(multi=True)
                 if not name.endswith("csrf_token") and name not in ("preview", "approve")],
        "error": error}
    return redirect(url_for("payouts.show", payout_id=payout.id) + "#approve", code=303)


@bp.post("/payouts/<id:payout_id>/approve")
def approve(payout_id: int):
    """Preview the split (nothing changes), or approve it: the amounts are fixed now."""
    payout = _payout_or_404(payout_id)
    back = url_for("payouts.show", payout_id=payout.id)
    if (refusal := refuse_unless_manager(payout.item.repository.project, back=back)) is not None:
        return refusal
    if (why := payouts.approval_refusal(payout)) is not None:
        flash(why, "error")
        return redirect(back, code=303)
    form = ApprovalForm()
    if not form.validate_on_submit():
        return _render_show(payout, form=form, error=_("Please check the form; nothing was approved."), status=400)
    split = _read_split(form, payout)
    if split.errors:
        return _back_with_draft(payout, " ".join(split.errors))
    if not form.approve.data:
        return _back_with_draft(payout)
    seen_gross = ascii_int(form.seen_gross.data or "")
    if seen_gross is None:
        return _back_with_draft(payout, _("Preview the amounts first; nothing was approved."))
    on_refusal_go_to(back)
    try:
        payouts.approve(payout.id, maintainer=current_actor(),
                        recipients=[(line.person.id, line.weight) for line in split.lines],
                        seen_gross=seen_gross, note=(form.note.data or "").strip() or None)
    except payouts.PayoutError as exc:
        db.session.rollback()
        payout = db.session.get(Payout, payout_id)
        if payout.state not in APPROVABLE_STATES:
            raise  # no longer approvable: flashed, back to the payout (303)
        return _back_with_draft(payout, str(exc))
    db.session.commit()
    if payouts.dispute_window():
        flash(_("The payout is approved. It is paid once the dispute window has passed."))
    else:
        flash(_("The payout is approved and being paid."))
    return redirect(back, code=303)


@bp.post("/payouts/<id:payout_id>/cancel")
def cancel(payout_id: int):
    """A maintainer (or an admin) cancels a payout not yet executed; its money stays in escrow."""
    payout = _payout_or_404(payout_id)
    back = url_for("payouts.show", payout_id=payout.id)
    if (refusal := refuse_unless_manager(payout.item.repository.project, back=back)) is not None:
        return refusal
    form = CancelForm(prefix="cancel")
    if not form.validate_on_submit():
        flash(_("Say why the payout is cancelled; nothing was changed."), "error")
        return redirect(back, code=303)
    on_refusal_go_to(back)  # a PayoutError: flashed, back to the payout (303)
    payouts.cancel(payout.id, actor=current_actor(), note=form.note.data.strip())
    db.session.commit()
    flash(_("The payout is cancelled; its money stays in the item's escrow."))
    return redirect(back, code=303)


@bp.get("/projects/<slug>/payouts")
def project_payouts(slug: str):
    """Maintainers: the payouts of the project's items, open ones first; the project's certifications."""
    project = project_or_404(slug)
    if (refusal := refuse_unless_manager(project, back=request.path)) is not None:
        return refusal
    rows = payouts_of_project(project.id)
    return render_template("payouts/project.html", project=project, rows=rows,
                           certifications=project_certifications(project.id),
                           cert_form=certification_form(), limit=LIST_LIMIT)


# --- a recipient's settings and earnings ------------------------------------------------

def _manual_only(profile: ImplementorProfile | None) -> bool:
    """Stripe pays out to no one in the person's country: the manual rail only."""
    return bool(profile and profile.country and profile.country in current_app.config["PAYOUT_MANUAL_COUNTRIES"])


@bp.route("/account/payouts", methods=["GET", "POST"])
@login_required
def settings():
    """How the signed-in implementor is paid (Stripe Connect, or a transfer by the
    fiscal host where Stripe pays out to no one), and what they earned."""
    user = current_actor()
    profile = db.session.get(ImplementorProfile, user.id)
    account = db.session.get(PayoutAccount, user.id)
    manual_form = ManualDetailsForm(prefix="manual")
    if request.method == "GET" and account is not None and account.manual_details:
        manual_form.details.data = account.manual_details
    error = None
    if request.method == "POST":
        which = which_form("stripe", "refresh", "manual")
        if not user.is_implementor:
            error = _("Only implementors are paid. Choose the implementor role in your account settings.")
        elif which == "stripe" and _csrf_ok():
            return _set_up_stripe(user, profile)
        elif which == "refresh" and _csrf_ok():
            return _refresh_stripe(account)
        elif which == "manual" and manual_form.validate_on_submit():
            payouts.choose_manual_rail(user.id, manual_form.details.data.strip())
            db.session.commit()
            flash(_("Saved. The fiscal host pays you by transfer to these details."))
            return redirect(url_for("payouts.settings"), code=303)
        if error is None:
            error = _("Please correct the marked fields.")
    shares = earnings(user.id)
    return render_template(
        "payouts/settings.html", account=account, profile=profile, manual_only=_manual_only(profile),
        manual_rail=payouts.manual_rail(user.id), manual_form=manual_form, error=error, shares=shares,
        totals=paid_totals(user.id),
        requirements=[r.strip() for r in (account.requirements or "").split(",") if r.strip()] if account else [],
    ), 400 if request.method == "POST" else 200


def _csrf_ok() -> bool:
    return FlaskForm().validate_on_submit()


def _set_up_stripe(user: User, profile: ImplementorProfile | None):
    """Create the person's Stripe Express account once, then send them to Stripe's onboarding."""
    back = url_for("payouts.settings")
    if _manual_only(profile):
        flash(_("Stripe cannot pay people in your country; the fiscal host pays you by bank or mobile-money "
                "transfer instead."))
        return redirect(back, code=303)
    if profile is None or not profile.country:
        flash(_("Set your country in your implementor profile first: Stripe needs it."), "error")
        return redirect(url_for("accounts.profile"), code=303)
    try:
        stripe_id = payouts.ensure_stripe_account(user, profile.country)
    except (stripe_client.PaymentsUnavailable, stripe_client.TransferRefused) as exc:
        db.session.rollback()
        current_app.logger.warning("Stripe account for user %s not created: %s", user.id, exc)
        flash(_("Stripe could not set up your account right now. Please try again later, or choose a "
                "transfer by the fiscal host."), "error")
        return redirect(back, code=303)
    db.session.commit()
    try:
        link = stripe_client.create_account_link(stripe_id, refresh_url=url_for_public("payouts.settings"),
                                                 return_url=url_for_public("payouts.settings"))
    except (stripe_client.PaymentsUnavailable, stripe_client.TransferRefused):
        flash(_("Your Stripe account exists, but Stripe's page could not be opened. Please try again."), "error")
        return redirect(back, code=303)
    return redirect(link, code=303)


def _refresh_stripe(account: PayoutAccount | None):
    """Ask Stripe now what the account can do (the ``account.updated`` webhook does the same)."""
    back = url_for("payouts.settings")
    if account is None or not account.stripe_account_id:
        flash(_("You have no Stripe account here yet."))
        return redirect(back, code=303)
    try:
        account_obj = stripe_client.retrieve_account(account.stripe_account_id)
    except (stripe_client.PaymentsUnavailable, stripe_client.TransferRefused):
        flash(_("Stripe could not be asked right now. Please try again later."), "error")
        return redirect(back, code=303)
    payouts.on_account_updated(account_obj)
    db.session.commit()
    flash(_("Your Stripe account's state is up to date."))
    return redirect(back, code=303)
