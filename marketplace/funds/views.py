"""Project fund pages: a project's fund (balance, income, subscribers,
allotments), subscribing by card or standing transfer, a maintainer's
allotment, one allotment with whose money it was, a subscriber's
subscription (pause, resume, cancel) and statement, and the fiscal host's
records (transfers, returns, a project that leaves)."""
from __future__ import annotations

import secrets

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select

from marketplace.access import admin_required
from marketplace.accounts.forms import as_choices
from marketplace.backlog.models import BacklogItem
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db
from marketplace.fiscal_host import bank_instructions
from marketplace.funds import queries, rails
from marketplace.funds import service as funds
from marketplace.funds.forms import MAX_ROW_ID, AllotForm, ReturnForm, SubscribeForm, TransferForm
from marketplace.funds.models import (
    Allotment,
    AllotmentState,
    FundReturn,
    FundState,
    FundSubscription,
    ProjectFund,
    SubscriptionRail,
    SubscriptionState,
)
from marketplace.i18n import format_money
from marketplace.money import Money, MoneyError, parse_amount
from marketplace.notifications.links import url_for_public
from marketplace.organisations import service as organisations
from marketplace.payments import stripe_client
from marketplace.projects.models import MemberProject
from marketplace.reports import fund_statements
from marketplace.reports.service import may_see_organisation

bp = Blueprint("funds", __name__)

SUBSCRIPTION_STATE_LABELS = {
    SubscriptionState.pending: _l("waiting for the first payment"),
    SubscriptionState.active: _l("active"),
    SubscriptionState.paused: _l("paused"),
    SubscriptionState.cancelled: _l("cancelled"),
    SubscriptionState.ended: _l("ended"),
}
ALLOTMENT_STATE_LABELS = {
    AllotmentState.held: _l("in escrow on the item"),
    AllotmentState.released: _l("paid out"),
    AllotmentState.returned: _l("back in the fund"),
}


@bp.app_template_filter("subscription_state")
def subscription_state_label(state: SubscriptionState) -> str:
    return str(SUBSCRIPTION_STATE_LABELS.get(state, state.value))


@bp.app_template_filter("allotment_state")
def allotment_state_label(state: AllotmentState) -> str:
    return str(ALLOTMENT_STATE_LABELS.get(state, state.value))


@bp.app_template_global("my_fund_subscriptions")
def my_fund_subscriptions() -> list[FundSubscription]:
    """The signed-in person's fund subscriptions (the pledges page lists them)."""
    if not current_user.is_authenticated:
        return []
    return queries.my_subscriptions(current_user.id)


def _project_or_404(slug: str) -> MemberProject:
    project = db.session.scalar(select(MemberProject).where(MemberProject.slug == slug))
    if project is None:
        abort(404)
    return project


def _amount(text: str, currency: str) -> int:
    return parse_amount(text, currency, str(get_locale()),
                        tuple(current_app.config["ALLOWED_CURRENCIES"])).amount_minor


def _subscribe_form() -> SubscribeForm:
    form = SubscribeForm()
    form.currency.choices = [(c, c) for c in current_app.config["ALLOWED_CURRENCIES"]]
    organisations = (funds.organisations_to_subscribe_for(current_user.id) if current_user.is_authenticated
                     else [])
    form.organisation_id.choices = as_choices([("", _("Myself"))] + [(str(o.id), o.name) for o in organisations])
    return form


def _organisation_id(value: str | None) -> int | None:
    """The organisation a subscription form names: None for "Myself"; anything
    but a row id is refused as an organisation the person may not act for."""
    value = (value or "").strip()
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 10 and 0 < int(value) <= MAX_ROW_ID):
        raise funds.FundError(_("You can subscribe for an organisation only when you are one of its members."))
    return int(value)


@bp.get("/projects/<slug>/fund")
def show(slug: str):
    """A project's fund in each currency: balance, income, subscribers (as they
    chose to be shown) and every allotment; the subscribe form; for its
    maintainers, the allot form."""
    project = _project_or_404(slug)
    maintainer = current_user.is_authenticated and funds.is_maintainer(current_user.id, project.id)
    rows = [{"fund": fund, "figures": queries.figures(fund), "subscribers": queries.subscribers(fund),
             "allotments": queries.allotments_of(fund)} for fund in queries.funds_of(project)]
    for row in rows:  # one form per currency, its fields named apart (one page, unique ids)
        row["allot_form"] = (AllotForm(prefix=row["fund"].currency.lower(), token=secrets.token_hex(16))
                             if maintainer else None)
    return render_template("funds/show.html", project=project, rows=rows, form=_subscribe_form(),
                           maintainer=maintainer, plain_form=FlaskForm(),
                           host=current_user.is_authenticated and current_user.is_admin)


@bp.post("/projects/<slug>/fund/subscribe")
@login_required
def subscribe(slug: str):
    """Subscribe monthly, for oneself or for a funder organisation one is a member of:
    by card (to Stripe Checkout in subscription mode) or by standing transfer."""
    project = _project_or_404(slug)
    form = _subscribe_form()
    back = url_for("funds.show", slug=slug)
    on_refusal_go_to(back)
    if not form.validate_on_submit():
        flash(_("Give an amount and a currency."), "error")
        return redirect(back, 303)
    try:
        amount = _amount(form.amount.data, form.currency.data)
    except MoneyError as exc:
        flash(str(exc), "error")
        return redirect(back, 303)
    organisation_id = _organisation_id(form.organisation_id.data)
    fund = funds.fund_of(project, form.currency.data)
    sub = funds.subscribe(fund, current_user, amount, rail=SubscriptionRail(form.rail.data),
                          show_name=bool(form.show_name.data), organisation_id=organisation_id)
    db.session.commit()
    if sub.rail is SubscriptionRail.card:
        return _to_checkout(sub)
    flash(_("Thank you. Set up a monthly transfer of %(amount)s with the reference %(reference)s; the fiscal host "
            "records each one.", amount=format_money(sub.amount_minor, sub.currency),
            reference=sub.transfer_reference))
    return redirect(url_for("funds.subscription", sub_id=sub.id), 303)


def _to_checkout(sub: FundSubscription):
    """Send the subscriber to Stripe Checkout; on a refusal or an outage, back to their subscription page."""
    try:
        url = rails.start_checkout(
            sub, success_url=url_for_public("funds.thanks", sub_id=sub.id) + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=url_for_public("funds.subscription", sub_id=sub.id))
    except (stripe_client.PaymentRefused, stripe_client.PaymentsUnavailable) as exc:
        db.session.rollback()
        flash(_("Card payment is not possible now (%(reason)s). Nothing was charged: try again later.",
                reason=str(exc)), "error")
        return redirect(url_for("funds.subscription", sub_id=sub.id), 303)
    db.session.commit()
    return redirect(url, 303)


def _own_subscription(sub_id: int) -> FundSubscription:
    sub = db.session.get(FundSubscription, sub_id)
    if sub is None or (sub.subscriber_id != current_user.id and not current_user.is_admin):
        abort(404)
    return sub


@bp.get("/funds/subscriptions/<int:sub_id>")
@login_required
def subscription(sub_id: int):
    """A subscriber's subscription: its state, what it brought in, what its money was allotted to."""
    sub = _own_subscription(sub_id)
    return render_template("funds/subscription.html", sub=sub, receipts=queries.receipts_of(sub),
                           attributions=queries.attributions_of(sub), returns=queries.returns_of(sub),
                           instructions=bank_instructions(sub.currency), plain_form=FlaskForm(),
                           transfer_form=TransferForm())


@bp.get("/funds/subscriptions/<int:sub_id>/thanks")
@login_required
def thanks(sub_id: int):
    """Stripe sends the subscriber back here; the webhook's events record the subscription and its invoices."""
    sub = _own_subscription(sub_id)
    flash(_("Thank you: your subscription starts as soon as Stripe confirms the first payment."))
    return redirect(url_for("funds.subscription", sub_id=sub.id), 303)


@bp.post("/funds/subscriptions/<int:sub_id>/checkout")
@login_required
def checkout(sub_id: int):
    """Pay a pending card subscription (again, after leaving the Checkout)."""
    sub = _own_subscription(sub_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    on_refusal_go_to(url_for("funds.subscription", sub_id=sub.id))
    return _to_checkout(sub)


def _change(sub_id: int, action, done: str):
    sub = _own_subscription(sub_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    back = request.form.get("back") == "pledges" and url_for("pledges.mine") or url_for(
        "funds.subscription", sub_id=sub.id)
    on_refusal_go_to(back)
    try:
        action(sub.id, person=current_user)
    except stripe_client.PaymentsUnavailable:
        db.session.rollback()
        flash(_("Stripe could not be reached; nothing changed. Please try again later."), "error")
        return redirect(back, 303)
    db.session.commit()
    flash(done)
    return redirect(back, 303)


@bp.post("/funds/subscriptions/<int:sub_id>/pause")
@login_required
def pause(sub_id: int):
    """The subscriber pauses their subscription (no invoice until they resume)."""
    return _change(sub_id, rails.pause, _("Your subscription is paused."))


@bp.post("/funds/subscriptions/<int:sub_id>/resume")
@login_required
def resume(sub_id: int):
    """The subscriber resumes a paused subscription."""
    return _change(sub_id, rails.resume, _("Your subscription is running again."))


@bp.post("/funds/subscriptions/<int:sub_id>/cancel")
@login_required
def cancel(sub_id: int):
    """The subscriber cancels: no more invoices; what the fund received stays the fund's."""
    return _change(sub_id, rails.cancel, _("Your subscription is cancelled; nothing more will be charged."))


@bp.post("/projects/<slug>/fund/<currency>/allot")
@login_required
def allot(slug: str, currency: str):
    """A maintainer allots fund money to an item of the project, with a short public reason."""
    project = _project_or_404(slug)
    fund = funds.fund_of(project, currency, create=False) if len(currency) == 3 else None
    if fund is None:
        abort(404)
    if not funds.is_maintainer(current_user.id, project.id):
        abort(403)
    form = AllotForm(prefix=fund.currency.lower())
    back = url_for("funds.show", slug=slug)
    on_refusal_go_to(back)
    if not form.validate_on_submit():
        flash(_("Give the item, the amount and a short reason."), "error")
        return redirect(back, 303)
    item = db.session.get(BacklogItem, form.item.data)
    if item is None:
        flash(_("No item has that number."), "error")
        return redirect(back, 303)
    try:
        amount = _amount(form.amount.data, fund.currency)
    except MoneyError as exc:
        flash(str(exc), "error")
        return redirect(back, 303)
    allotment = funds.allot(fund.id, item, amount, reason=form.reason.data, maintainer=current_user,
                            request_key=(form.token.data or "")[:64] or None)
    db.session.commit()
    flash(_("%(amount)s allotted to “%(title)s”.", amount=format_money(allotment.amount_minor, allotment.currency),
            title=item.title))
    return redirect(url_for("funds.allotment", allotment_id=allotment.id), 303)


@bp.get("/funds/allotments/<int:allotment_id>")
def allotment(allotment_id: int):
    """One allotment: the item, amount, reason, where the money is, and whose money it was."""
    row = db.session.get(Allotment, allotment_id)
    if row is None or row.item.hidden and not (current_user.is_authenticated and current_user.is_admin):
        abort(404)
    return render_template("funds/allotment.html", allotment=row, attribution=queries.attribution_of(row))


@bp.get("/statements/me/funds")
@login_required
def statement():
    """The signed-in subscriber's fund statement: what each subscription paid in,
    and what its money paid for (its attributed part of each allotment); ``?format=csv``."""
    st = fund_statements.subscriber_statement(current_user.id)
    if request.args.get("format") == "csv":
        return Response(fund_statements.statement_csv(st), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=fund-statement.csv"})
    return render_template("funds/statement.html", statements=st, title=_("Your fund statement"))


@bp.get("/organisations/<slug>/fund-statement")
@login_required
def organisation_statement(slug: str):
    """The fund statement of the subscriptions made for an organisation by its
    members (members and admins only); ``?format=csv``."""
    org = organisations.by_slug(slug)
    if org is None:
        abort(404)
    if not may_see_organisation(current_user, org):
        abort(403)
    st = fund_statements.organisation_statement(org.id)
    if request.args.get("format") == "csv":
        return Response(fund_statements.statement_csv(st), mimetype="text/csv",
                        headers={"Content-Disposition": f"attachment; filename=fund-statement-{org.slug}.csv"})
    return render_template("funds/statement.html", statements=st, org=org,
                           title=_("Fund statement of %(name)s", name=org.name))


# --- the fiscal host -----------------------------------------------------------------

@bp.get("/funds/host")
@admin_required
def host():
    """The fiscal host's work: standing transfers to record, returns to make."""
    subscriptions, returns = queries.bank_subscriptions(), queries.due_returns()
    # One form per row, its fields named apart (one page, unique ids).
    return render_template("funds/host.html", subscriptions=subscriptions, returns=returns,
                           transfer_forms={s.id: TransferForm(prefix=f"s{s.id}") for s in subscriptions},
                           return_forms={r.id: ReturnForm(prefix=f"r{r.id}") for r in returns},
                           plain_form=FlaskForm())


@bp.post("/funds/subscriptions/<int:sub_id>/transfer")
@admin_required
def record_transfer(sub_id: int):
    """The fiscal host records one month's standing transfer into the fund."""
    sub = db.session.get(FundSubscription, sub_id) or abort(404)
    form = TransferForm(prefix=f"s{sub.id}")
    on_refusal_go_to(url_for("funds.host"))
    if not form.validate_on_submit():
        flash(_("Give the amount received, the bank reference and the date."), "error")
        return redirect(url_for("funds.host"), 303)
    try:
        money = Money(_amount(form.amount.data, sub.currency), sub.currency)
    except MoneyError as exc:
        flash(str(exc), "error")
        return redirect(url_for("funds.host"), 303)
    recorded = funds.record_transfer(sub.id, money, reference=form.reference.data,
                                     received_on=form.received_on.data, actor=current_user)
    db.session.commit()
    flash(_("The transfer is in the fund.") if recorded else _("This transfer was recorded already."))
    return redirect(url_for("funds.host"), 303)


@bp.post("/funds/returns/<int:return_id>")
@admin_required
def record_return(return_id: int):
    """The fiscal host sent a subscriber's return by transfer (or refunds a card return at Stripe)."""
    row = db.session.get(FundReturn, return_id) or abort(404)
    on_refusal_go_to(url_for("funds.host"))
    if row.rail is SubscriptionRail.card and request.form.get("by") == "card":
        if not FlaskForm().validate_on_submit():
            abort(400)
        try:
            rails.refund_return(row.id)
        except stripe_client.PaymentsUnavailable:
            db.session.rollback()
            flash(_("Stripe could not be reached; nothing was refunded. Please try again later."), "error")
            return redirect(url_for("funds.host"), 303)
    else:
        form = ReturnForm(prefix=f"r{row.id}")
        if not form.validate_on_submit():
            flash(_("Give the reference of the transfer back."), "error")
            return redirect(url_for("funds.host"), 303)
        funds.record_return(row.id, reference=form.reference.data, actor=current_user)
    db.session.commit()
    flash(_("The return to the subscriber is recorded."))
    return redirect(url_for("funds.host"), 303)


@bp.post("/projects/<slug>/fund/<currency>/close")
@admin_required
def close(slug: str, currency: str):
    """The project left the commons: the fund closes and what it holds is due back to its subscribers."""
    project = _project_or_404(slug)
    fund: ProjectFund | None = funds.fund_of(project, currency, create=False) if len(currency) == 3 else None
    if fund is None:
        abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400)
    on_refusal_go_to(url_for("funds.show", slug=slug))
    made = funds.close_fund(fund.id, actor=current_user)
    db.session.commit()
    try:
        rails.end_at_stripe(fund.id)
    except stripe_client.PaymentsUnavailable:
        flash(_("Stripe could not be reached: cancel the card subscriptions again later."), "error")
    flash(_("The fund is closed; %(count)s returns to subscribers are due.", count=len(made))
          if fund.state is FundState.closed else _("Nothing changed."))
    return redirect(url_for("funds.host"), 303)
