"""Pool pages: the list, one pool (figures, eligible items, matches, a
round's published distribution), creating a pool, and the fiscal host's
actions (confirm the budget, record the return, exclude a funder from a round)."""
from __future__ import annotations

from datetime import datetime, time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm

from marketplace.access import admin_required
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db
from marketplace.i18n import format_money
from marketplace.money import Money, MoneyError, parse_amount
from marketplace.notifications.links import url_for_public
from marketplace.payments import stripe_client
from marketplace.payments.pool_events import fund_from_session
from marketplace.pools import queries, rails
from marketplace.pools import service as pools
from marketplace.pools.forms import ConfirmBudgetForm, ExcludeForm, PoolForm, ReturnForm
from marketplace.pools.models import RETURNING_STATES, MatchingPool, PoolKind, PoolRail, PoolState

bp = Blueprint("pools", __name__)


def _pool_or_404(pool_id: int) -> MatchingPool:
    pool = db.session.get(MatchingPool, pool_id)
    # A pool cancelled after it was funded was public: it stays so, with what went back.
    visible = pool is not None and (pool.state in queries.LISTED_STATES or pool.funded_at is not None or (
        current_user.is_authenticated and (current_user.is_admin or current_user.id == pool.sponsor_id)))
    if not visible:
        abort(404)
    return pool


@bp.get("/pools")
def index():
    """Every funded or ended pool with its figures (the fiscal host also sees those awaiting their
    budget or cancelled, and what each owes its sponsor)."""
    host = current_user.is_authenticated and current_user.is_admin
    rows = [(pool, queries.figures(pool)) for pool in queries.listed_pools(awaiting=host)]
    # The fiscal host's flags: what each ended or cancelled pool still owes its sponsor, and failed card refunds.
    owed = {pool.id: (rails.owed_to_sponsor(pool), bool(rails.failed_refunds(pool.id))) for pool, _f in rows} \
        if host else {}
    return render_template("pools/index.html", rows=rows, owed=owed)


@bp.get("/pools/<int:pool_id>")
def show(pool_id: int):
    """One pool: budget, matched, returned, remaining; eligible items; matches with their pledges;
    for a round, the distribution as it stands (published before it moves money)."""
    pool = _pool_or_404(pool_id)
    # A round's division as it would be now; once executed, its matches below are what moved.
    distribution = (pools.round_distribution(pool)
                    if pool.kind is PoolKind.quadratic and pool.executed_at is None else None)
    return render_template(
        "pools/show.html", pool=pool, figures=queries.figures(pool), items=queries.eligible_items(pool),
        matches=queries.matches_of(pool), distribution=distribution, live=pools.is_live(pool),
        confirm_form=ConfirmBudgetForm(), return_form=ReturnForm(), exclude_form=ExcludeForm(),
        plain_form=FlaskForm(), returning=pool.state in RETURNING_STATES, owed=rails.owed_to_sponsor(pool),
        open_refund=rails.open_refund(pool.id), failed_refunds=rails.failed_refunds(pool.id),
        cancel_refusal=rails.cancel_refusal(pool) if pool.state not in RETURNING_STATES else None)


def _amount(text: str | None, currency: str) -> int | None:
    if not (text or "").strip():
        return None
    return parse_amount(text, currency, str(get_locale()), tuple(current_app.config["ALLOWED_CURRENCIES"])).amount_minor


def _numbers(text: str | None) -> list[int]:
    return [int(part) for part in (text or "").replace(" ", "").split(",") if part.isdigit()]


def _pool_form() -> PoolForm:
    form = PoolForm()
    form.currency.choices = [(c, c) for c in current_app.config["ALLOWED_CURRENCIES"]]
    return form


@bp.route("/pools/new", methods=["GET", "POST"])
@login_required
def new():
    """A sponsor creates a pool; it goes live once the fiscal host confirms its budget's transfer."""
    form = _pool_form()
    if not form.validate_on_submit():
        return render_template("pools/new.html", form=form), 400 if form.is_submitted() else 200
    currency = form.currency.data
    try:
        amounts = {name: _amount(getattr(form, name).data, currency)
                   for name in ("budget", "cap_per_pledge", "cap_per_funder", "cap_per_item", "min_pledge")}
    except MoneyError as exc:
        flash(str(exc), "error")
        return render_template("pools/new.html", form=form), 400
    on_refusal_go_to(url_for("pools.new"))
    pool = pools.create_pool(
        current_user, name=form.name.data, description=form.description.data, kind=PoolKind(form.kind.data),
        currency=currency, budget_minor=amounts["budget"], ratio_percent=int(form.ratio_percent.data),
        cap_per_pledge_minor=amounts["cap_per_pledge"], cap_per_funder_minor=amounts["cap_per_funder"],
        cap_per_item_minor=amounts["cap_per_item"], min_pledge_minor=amounts["min_pledge"],
        item_cap_bps=form.item_cap_percent.data * 100 if form.item_cap_percent.data else None,
        sdgs=[n for n in _numbers(form.sdgs.data) if 1 <= n <= 17],
        labels=(form.labels.data or "").split(","),
        starts_at=datetime.combine(form.starts_on.data, time()), ends_at=datetime.combine(form.ends_on.data, time()))
    db.session.commit()
    if form.rail.data == PoolRail.card.value:
        return _to_checkout(pool)
    flash(_("Pool created. Transfer %(amount)s with the reference %(reference)s; it opens once the fiscal host "
            "confirms the transfer.", amount=format_money(pool.budget_minor, pool.currency),
            reference=pool.transfer_reference))
    return redirect(url_for("pools.show", pool_id=pool.id), 303)


def _to_checkout(pool: MatchingPool):
    """Send the sponsor to Stripe Checkout for the pool's budget; on a refusal
    or an outage, back to the pool page (it can be paid by transfer instead)."""
    try:
        url = rails.start_checkout(
            pool.id, success_url=url_for_public("pools.paid", pool_id=pool.id) + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=url_for_public("pools.show", pool_id=pool.id), locale="auto")
    except (stripe_client.PaymentRefused, stripe_client.PaymentsUnavailable) as exc:
        db.session.rollback()
        flash(_("Card payment is not possible now (%(reason)s). Nothing was charged: try again later, or transfer "
                "%(amount)s with the reference %(reference)s.", reason=str(exc),
                amount=format_money(pool.budget_minor, pool.currency), reference=pool.transfer_reference), "error")
        return redirect(url_for("pools.show", pool_id=pool.id), 303)
    db.session.commit()
    return redirect(url, 303)


def _sponsor_or_admin(pool_id: int) -> MatchingPool:
    pool = _pool_or_404(pool_id)
    if not (current_user.is_authenticated and (current_user.is_admin or current_user.id == pool.sponsor_id)):
        abort(403)
    return pool


@bp.post("/pools/<int:pool_id>/checkout")
@login_required
def checkout(pool_id: int):
    """The sponsor pays (or tries again to pay) the pool's budget by card."""
    pool = _sponsor_or_admin(pool_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    on_refusal_go_to(url_for("pools.show", pool_id=pool.id))
    return _to_checkout(pool)


@bp.get("/pools/<int:pool_id>/paid")
@login_required
def paid(pool_id: int):
    """Stripe sends the sponsor back here; a paid session funds the pool now
    (whichever of this page and the webhook comes first; the other changes nothing)."""
    pool = _sponsor_or_admin(pool_id)
    session_id = request.args.get("session_id", "")
    if pool.checkout_session_id and session_id == pool.checkout_session_id:
        try:
            session_obj = stripe_client.retrieve_checkout_session(session_id)
            if session_obj.get("payment_status") == "paid" and fund_from_session(pool, session_obj) is not None:
                db.session.commit()
        except (stripe_client.PaymentsUnavailable, pools.PoolError, MoneyError):
            db.session.rollback()  # the webhook handler records it for a person to check
    flash(_("Thank you: the pool opens as soon as Stripe confirms the payment."))
    return redirect(url_for("pools.show", pool_id=pool.id), 303)


def _send_card_return(pool: MatchingPool, *, retry_failed: bool = False) -> None:
    """Refund what a card-funded pool holds: the refund row committed first, then Stripe asked."""
    row_id = rails.begin_card_return(pool.id, retry_failed=retry_failed)
    db.session.commit()
    if row_id is None:
        return
    if rails.send_card_return(row_id):
        flash(_("The money is on its way back to the sponsor's card."))
    else:
        flash(_("Stripe could not be reached: the refund is retried every hour."), "error")
    db.session.commit()


@bp.post("/pools/<int:pool_id>/cancel")
@login_required
def cancel(pool_id: int):
    """The sponsor cancels the pool: before its budget came, or before any
    match (the budget goes back by the rail it came by)."""
    pool = _sponsor_or_admin(pool_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    on_refusal_go_to(url_for("pools.show", pool_id=pool.id))
    try:
        cancelled = rails.cancel_pool(pool.id, actor=current_user)
    except stripe_client.PaymentsUnavailable:
        db.session.rollback()
        flash(_("Stripe could not be reached; nothing was cancelled. Please try again later."), "error")
        return redirect(url_for("pools.show", pool_id=pool.id), 303)
    db.session.commit()
    if cancelled:
        flash(_("The pool is cancelled."))
        if pool.rail == PoolRail.card.value:
            _send_card_return(pool)
        elif rails.owed_to_sponsor(pool):
            flash(_("The fiscal host sends the budget back by bank transfer."))
    return redirect(url_for("pools.show", pool_id=pool.id), 303)


@bp.post("/pools/<int:pool_id>/refund")
@admin_required
def refund(pool_id: int):
    """An admin refunds what a card-funded pool owes its sponsor now (again, after a failed refund)."""
    pool = _pool_or_404(pool_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    on_refusal_go_to(url_for("pools.show", pool_id=pool.id))
    _send_card_return(pool, retry_failed=True)
    return redirect(url_for("pools.show", pool_id=pool.id), 303)


@bp.post("/pools/<int:pool_id>/confirm")
@admin_required
def confirm(pool_id: int):
    """The fiscal host confirms the sponsor's transfer: the pool is funded with what arrived."""
    pool = _pool_or_404(pool_id)
    form = ConfirmBudgetForm()
    on_refusal_go_to(url_for("pools.show", pool_id=pool.id))
    if not form.validate_on_submit():
        flash(_("Give the amount received, the bank reference and the date."), "error")
        return redirect(url_for("pools.show", pool_id=pool.id), 303)
    try:
        received = Money(_amount(form.amount.data, pool.currency), pool.currency)
    except MoneyError as exc:
        flash(str(exc), "error")
        return redirect(url_for("pools.show", pool_id=pool.id), 303)
    if pools.confirm_budget(pool.id, received, reference=form.reference.data, received_on=form.received_on.data,
                            actor=current_user):
        flash(_("The pool is funded."))
    db.session.commit()
    return redirect(url_for("pools.show", pool_id=pool.id), 303)


@bp.post("/pools/<int:pool_id>/return")
@admin_required
def record_return(pool_id: int):
    """The fiscal host sent what an ended pool holds back to the sponsor."""
    pool = _pool_or_404(pool_id)
    form = ReturnForm()
    on_refusal_go_to(url_for("pools.show", pool_id=pool.id))
    if form.validate_on_submit():
        pools.record_return(pool.id, reference=form.reference.data, actor=current_user)
        db.session.commit()
        flash(_("The return to the sponsor is recorded."))
    else:
        flash(_("Give the reference of the transfer back."), "error")
    return redirect(url_for("pools.show", pool_id=pool.id), 303)


@bp.post("/pools/<int:pool_id>/exclude")
@admin_required
def exclude(pool_id: int):
    """An admin excludes a funder from a round's quadratic funding, with a reason."""
    pool = _pool_or_404(pool_id)
    form = ExcludeForm()
    on_refusal_go_to(url_for("pools.show", pool_id=pool.id))
    if form.validate_on_submit():
        pools.exclude_from_round(pool.id, form.user_id.data, reason=form.reason.data, admin=current_user)
        db.session.commit()
        flash(_("The funder no longer counts in this round."))
    else:
        flash(_("Give the funder's account number and a reason."), "error")
    return redirect(url_for("pools.show", pool_id=pool.id), 303)


@bp.app_template_global("pool_state_label")
def pool_state_label(state: PoolState) -> str:
    return {PoolState.awaiting_budget: _("waiting for its budget"), PoolState.funded: _("funded"),
            PoolState.ended: _("ended"), PoolState.cancelled: _("cancelled")}.get(state, state.value)
