"""Pledging on an item page: by card through Stripe Checkout, or by bank transfer."""
from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from marketplace.backlog.item_page import render_item_page
from marketplace.backlog.queries import work_went_to
from marketplace.backlog.search import visible_item
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db
from marketplace.fiscal_host import bank_instructions
from marketplace.fiscal_host import contact as fiscal_host_contact
from marketplace.money import Money, MoneyError, parse_amount
from marketplace.notifications.links import url_for_public
from marketplace.payments import stripe_client
from marketplace.payments.stripe_events import hold_paid_session
from marketplace.pledges import service as pledges
from marketplace.pledges.forms import PledgeForm, pledge_form
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.pledges.queries import funder_pledges
from marketplace.pools import queries as pool_queries
from marketplace.pools import service as pools
from marketplace.projects.queries import has_maintainer
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import NotMatchedYet

bp = Blueprint("pledges", __name__)

PLEDGE_STATE_LABELS = {
    PledgeState.pending: _l("waiting for the payment"),
    PledgeState.processing: _l("payment on its way"),
    PledgeState.held: _l("held in escrow"),
    PledgeState.partially_refunded: _l("partly refunded, the rest held"),
    PledgeState.refunded: _l("refunded"),
    PledgeState.released: _l("paid out"),
    PledgeState.failed: _l("payment failed"),
    PledgeState.cancelled: _l("cancelled"),
    PledgeState.disputed: _l("disputed (chargeback open)"),
}
RAIL_LABELS = {Rail.card: _l("card"), Rail.bank_transfer: _l("bank transfer")}


@bp.app_template_filter("pledge_state")
def pledge_state_label(state: PledgeState) -> str:
    return str(PLEDGE_STATE_LABELS.get(state, state.value))


@bp.app_template_filter("rail")
def rail_label(rail: Rail) -> str:
    return str(RAIL_LABELS.get(rail, rail.value))


def _form_again(item, form: PledgeForm, error: str, status: int = 400):
    """The item page again with the pledge form as typed and its errors next to the fields."""
    return render_item_page(item, again={"pledges": {"form": form, "error": error}}, status=status)


def _field_error(field, message: str) -> None:
    field.errors = [*field.errors, message]


def refusal_words(refused: stripe_client.PaymentRefused, money) -> str:
    """Stripe's definite refusal of a Checkout, in plain words with a way forward."""
    if refused.code == "amount_too_small":
        return _("Stripe cannot charge an amount this small in %(currency)s (it said: %(reason)s). Pledge a larger "
                 "amount, or pay by bank transfer. Nothing was charged.", currency=money.currency,
                 reason=str(refused))
    if refused.code == "amount_too_large":
        return _("Stripe cannot charge this much in one card payment (it said: %(reason)s). Pledge less, or pay "
                 "by bank transfer. Nothing was charged.", reason=str(refused))
    return _("Stripe refused this payment: %(reason)s. Nothing was charged. Check the amount and currency, or pay "
             "by bank transfer.", reason=str(refused))


@bp.post("/items/<id:item_id>/pledge")
@login_required
def create(item_id: int):
    """Pledge to an item; card pledges continue on Stripe Checkout.

    Bad input, an amount over the limit or under Stripe's minimum, and
    Stripe's refusals show the item page again (400) with the message next
    to the field and the form as typed (amount, currency, rail, months);
    nothing is created for input errors. A Stripe outage (503) leaves the
    pending pledge cancelled and says "try again later".
    """
    item = visible_item(item_id)
    if item is None:
        abort(404)
    if pledges.pledging_closed(item):
        flash(_("This item is solved or closed: it takes no new pledges."), "error")
        return redirect(url_for("backlog.item", item_id=item.id)), 303
    form = pledge_form()
    if not form.validate_on_submit():
        return _form_again(item, form, _("Please correct the marked fields."))
    try:
        money = parse_amount(form.amount.data, form.currency.data, str(get_locale()),
                             tuple(current_app.config["ALLOWED_CURRENCIES"]))
    except MoneyError as exc:
        _field_error(form.amount, str(exc))
        return _form_again(item, form, _("Please correct the marked fields."))
    if not has_maintainer(item.repository.project_id) and not form.acknowledge_unmaintained.data:
        _field_error(form.acknowledge_unmaintained,
                     _("This project has no maintainer yet: tick this box to pledge anyway."))
        return _form_again(item, form, _("Please correct the marked fields."))
    rail = Rail(form.rail.data)
    try:
        pledges.check_amount(money, rail, confirmed=bool(form.confirm_large.data))
    except pledges.PledgeAmountError as exc:
        _field_error(getattr(form, exc.field), str(exc))
        return _form_again(item, form, _("Please correct the marked fields."))
    pledge = pledges.create(item, current_user.id, money, rail=rail, show_name=form.show_name.data,
                            expires_at=utcnow() + timedelta(days=30 * form.expiry_months.data),
                            actor=f"user:{current_user.id}")
    if rail is Rail.bank_transfer:
        pledges.give_transfer_reference(pledge)
        db.session.commit()
        return redirect(url_for("pledges.show", pledge_id=pledge.id))
    db.session.commit()  # the pending pledge exists before Stripe is asked
    try:
        session_id, url = stripe_client.create_checkout_session(
            pledge.id, money, item_title=item.title,
            success_url=url_for_public("pledges.thanks", pledge_id=pledge.id) + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=url_for_public("backlog.item", item_id=item.id), locale="auto")
    except (stripe_client.PaymentRefused, stripe_client.PaymentsUnavailable) as exc:
        if pledges.transition(pledge.id, PledgeState.cancelled):
            pledges.release_pending(pledge.id)
        db.session.commit()
        if isinstance(exc, stripe_client.PaymentRefused):
            _field_error(form.amount, refusal_words(exc, money))
            return _form_again(visible_item(item_id), form, _("Stripe refused this payment: see below."))
        _field_error(form.rail, _("Card payments are not available right now (Stripe cannot be reached). "
                                  "Please try again later, or pay by bank transfer."))
        return _form_again(visible_item(item_id), form, _("Nothing was charged. Please try again later."), 503)
    pledges.record_checkout_session(pledge.id, session_id)
    db.session.commit()
    return redirect(url, code=303)


def _own_pledge(pledge_id: int) -> Pledge:
    pledge = db.session.get(Pledge, pledge_id)
    if pledge is None or (pledge.funder_id != current_user.id and not current_user.is_admin):
        abort(404)
    return pledge


@bp.get("/account/pledges")
@login_required
def mine():
    """"My pledges": every pledge of the signed-in person, newest first, with its
    state in words, rail, bank reference, what its money paid for or where it
    went, and the actions still open (pay, cancel, take back)."""
    rows = funder_pledges(current_user.id)
    for row in rows:
        pledge = row["pledge"]
        row["can_take_back"] = (pledge.state in (PledgeState.held, PledgeState.partially_refunded)
                                and pledges.self_refund_refusal(pledge) is None)
    return render_template("pledges/mine.html", rows=rows)


@bp.get("/pledges/<id:pledge_id>")
@login_required
def show(pledge_id: int):
    """A funder's pledge: its state, and the transfer instructions for a bank transfer."""
    pledge = _own_pledge(pledge_id)
    movable = pledges.move_refusal(pledge) is None
    # Before the money comes: what the live pools would match now; after: what they matched.
    match_preview = (pools.preview(pledge.item, pledge.funder_id, Money(pledge.amount_minor, pledge.currency))
                     if pledge.state in (PledgeState.pending, PledgeState.processing) else [])
    return render_template("pledges/show.html", pledge=pledge, refund_refusal=pledges.self_refund_refusal(pledge),
                           refund_failed=bool(pledges.unresolved_refund_failures(pledge.id)),
                           move_target=work_went_to(pledge.item) if movable else None,
                           instructions=bank_instructions(pledge.currency),
                           match_preview=match_preview, matches=pool_queries.pledge_matches(pledge.id))


@bp.get("/pledges/<id:pledge_id>/thanks")
@login_required
def thanks(pledge_id: int):
    """Stripe sends the funder back here; a paid session holds the pledge now
    (whichever of this page and the webhook comes first; the other changes nothing)."""
    pledge = _own_pledge(pledge_id)
    session_id = request.args.get("session_id", "")
    if pledge.checkout_session_id and session_id == pledge.checkout_session_id:
        try:
            session_obj = stripe_client.retrieve_checkout_session(session_id)
        except stripe_client.PaymentsUnavailable:
            session_obj = None
        if session_obj and session_obj.get("payment_status") == "paid":
            try:
                hold_paid_session(session_obj)
                db.session.commit()
            except (pledges.PledgeError, stripe_client.PaymentsUnavailable, NotMatchedYet, LookupError, ValueError):
                db.session.rollback()  # the webhook handler records it for a person to check
    return redirect(url_for("pledges.show", pledge_id=pledge.id))


@bp.post("/pledges/<id:pledge_id>/refund")
@login_required
def self_refund(pledge_id: int):
    """The funder takes a card pledge back (all that is still held), until a
    claim on the item is approved; after that an admin refunds."""
    pledge = _own_pledge(pledge_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    if pledge.rail is not Rail.card:
        flash(_("Bank transfers are refunded by the fiscal host: write to %(host)s with your pledge reference.",
                host=fiscal_host_contact()))
        return redirect(url_for("pledges.show", pledge_id=pledge.id)), 303
    on_refusal_go_to(url_for("pledges.show", pledge_id=pledge.id))
    try:
        pledges.self_service_refund(pledge.id, actor=f"user:{current_user.id}")
    except pledges.PledgeError as exc:
        raise pledges.PledgeError(_("Nothing was refunded: %(reason)s", reason=str(exc))) from exc
    except stripe_client.PaymentsUnavailable:
        db.session.rollback()
        flash(_("Stripe could not be reached; nothing was refunded. Please try again later."), "error")
        return redirect(url_for("pledges.show", pledge_id=pledge.id)), 303
    db.session.commit()
    flash(_("Your money is on its way back to you."))
    return redirect(url_for("pledges.show", pledge_id=pledge.id))


@bp.post("/pledges/<id:pledge_id>/cancel")
@login_required
def cancel(pledge_id: int):
    """The funder cancels their own pledge that is still waiting for its money
    (a Checkout they will not finish, a transfer they will not send); an admin may too."""
    pledge = _own_pledge(pledge_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    on_refusal_go_to(url_for("pledges.show", pledge_id=pledge.id))  # a PledgeError: flashed, back (303)
    try:
        cancelled = pledges.cancel_unpaid(pledge.id, actor=f"user:{current_user.id}")
    except stripe_client.PaymentsUnavailable:
        db.session.rollback()
        flash(_("Stripe could not be reached; nothing was cancelled. Please try again later."), "error")
        return redirect(url_for("pledges.show", pledge_id=pledge.id)), 303
    db.session.commit()
    if cancelled:
        flash(_("Your pledge is cancelled; nothing was taken."))
    else:
        flash(_("This pledge is no longer waiting for a payment; nothing was cancelled."), "error")
    return redirect(url_for("pledges.show", pledge_id=pledge.id)), 303


@bp.post("/pledges/<id:pledge_id>/pay")
@login_required
def pay_again(pledge_id: int):
    """The funder goes back to the Stripe Checkout of their own unpaid card
    pledge (a tab closed, a card declined). Nothing is created: the session
    made for the pledge is asked for again; once it has ended, the pledge
    page says so and offers to cancel."""
    pledge = _own_pledge(pledge_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    back = url_for("pledges.show", pledge_id=pledge.id)
    if pledge.state is not PledgeState.pending or pledge.rail is not Rail.card or not pledge.checkout_session_id:
        flash(_("This pledge is not waiting for a card payment; nothing was done."), "error")
        return redirect(back), 303
    try:
        session_obj = stripe_client.retrieve_checkout_session(pledge.checkout_session_id)
    except stripe_client.PaymentsUnavailable:
        flash(_("Stripe could not be reached. Please try again later."), "error")
        return redirect(back), 303
    if session_obj.get("status") != "open" or not session_obj.get("url"):
        flash(_("This Checkout has ended and cannot be paid any more. Cancel this pledge and pledge again "
                "from the item page."), "error")
        return redirect(back), 303
    return redirect(session_obj["url"], code=303)


@bp.post("/pledges/<id:pledge_id>/move")
@login_required
def move(pledge_id: int):
    """The funder moves what the pledge holds to the item its item's work
    went to (moved or duplicate, as the forge or a maintainer says), instead
    of a refund: their choice, nothing moves by itself."""
    pledge = _own_pledge(pledge_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    on_refusal_go_to(url_for("pledges.show", pledge_id=pledge.id))
    try:
        target = pledges.move_to_target(pledge.id, funder_id=current_user.id, actor=f"user:{current_user.id}")
    except pledges.PledgeError as exc:
        raise pledges.PledgeError(_("Nothing was moved: %(reason)s", reason=str(exc))) from exc
    db.session.commit()
    flash(_("Your pledge now funds \"%(title)s\".", title=target.title))
    return redirect(url_for("pledges.show", pledge_id=pledge.id))
