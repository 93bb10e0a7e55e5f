"""Pool pages: the list, one pool (figures, eligible items, matches, a
round's published distribution), creating a pool, and the fiscal host's
actions (confirm the budget, record the return, exclude a funder from a round)."""
from __future__ import annotations

from datetime import datetime, time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from marketplace.access import admin_required
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db
from marketplace.i18n import format_money
from marketplace.money import Money, MoneyError, parse_amount
from marketplace.pools import queries
from marketplace.pools import service as pools
from marketplace.pools.forms import ConfirmBudgetForm, ExcludeForm, PoolForm, ReturnForm
from marketplace.pools.models import MatchingPool, PoolKind, PoolState

bp = Blueprint("pools", __name__)


def _pool_or_404(pool_id: int) -> MatchingPool:
    pool = db.session.get(MatchingPool, pool_id)
    visible = pool is not None and (pool.state in queries.LISTED_STATES or (
        current_user.is_authenticated and (current_user.is_admin or current_user.id == pool.sponsor_id)))
    if not visible:
        abort(404)
    return pool


@bp.get("/pools")
def index():
    """Every funded or ended pool with its figures (the fiscal host also sees those awaiting their budget)."""
    host = current_user.is_authenticated and current_user.is_admin
    rows = [(pool, queries.figures(pool)) for pool in queries.listed_pools(awaiting=host)]
    return render_template("pools/index.html", rows=rows)


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
        confirm_form=ConfirmBudgetForm(), return_form=ReturnForm(), exclude_form=ExcludeForm())


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
    flash(_("Pool created. Transfer %(amount)s with the reference %(reference)s; it opens once the fiscal host "
            "confirms the transfer.", amount=format_money(pool.budget_minor, pool.currency),
            reference=pool.transfer_reference))
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
