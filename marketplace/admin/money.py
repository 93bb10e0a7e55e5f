"""Money that needs the fiscal host: pledges (bank transfers to confirm, refunds, refunds
after payout, refunds that failed) and payouts (shares to pay by hand, transfers that came back)."""
from __future__ import annotations

from datetime import date

from flask import flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from marketplace.access import admin_required, current_actor
from marketplace.admin.blueprint import PAGE_SIZE, bp, listing, paginate
from marketplace.admin.forms import (
    ConfirmTransferForm,
    ManualPayoutForm,
    RefundAfterPayoutForm,
    RefundForm,
    ReturnedPayoutForm,
)
from marketplace.errors import on_refusal_go_to
from marketplace.extensions import db
from marketplace.i18n import format_money
from marketplace.money import MoneyError, parse_amount
from marketplace.payments.stripe_client import PaymentsUnavailable, TransferRefused
from marketplace.payouts import after_payout
from marketplace.payouts import service as payouts_service
from marketplace.payouts.models import (
    Payout,
    PayoutAccount,
    PayoutPledge,
    PayoutShare,
    PayoutState,
    ShareState,
)
from marketplace.pledges import service as pledges_service
from marketplace.pledges.models import Pledge, PledgeState, Rail, RefundFailure
from marketplace.timeutil import utcnow
from marketplace.validation import ascii_int

Bound = dict[tuple[str, int], FlaskForm]


# --- pledges ----------------------------------------------------------------------------

def _paid_shares(pledge_ids: list[int]) -> dict[int, list[PayoutShare]]:
    """Per released pledge: the paid shares of the payout that covered it (a refund after payout names one)."""
    shares: dict[int, list[PayoutShare]] = {}
    if pledge_ids:
        for pledge_id, share in db.session.execute(
                select(PayoutPledge.pledge_id, PayoutShare)
                .join(PayoutShare, PayoutShare.payout_id == PayoutPledge.payout_id)
                .where(PayoutPledge.pledge_id.in_(pledge_ids), PayoutShare.state == ShareState.paid)
                .options(selectinload(PayoutShare.recipient)).order_by(PayoutShare.id)):
            shares.setdefault(pledge_id, []).append(share)
    return shares


def _pledges_page(bound: Bound | None = None, status: int = 200):
    """The pledges list; ``bound`` maps (form kind, pledge id) to a refused form shown again with its errors."""
    awaiting = (Pledge.rail == Rail.bank_transfer) & (Pledge.state == PledgeState.pending)
    # A refund that failed needs the fiscal host first: flagged rows come on top.
    failed_refund = Pledge.id.in_(select(RefundFailure.pledge_id).where(RefundFailure.resolved_at.is_(None)))
    page = paginate(select(Pledge), [failed_refund.desc(), awaiting.desc(), Pledge.id.desc()])
    rows = page.items
    failures: dict[int, list[RefundFailure]] = {}
    for failure in db.session.scalars(select(RefundFailure).where(
            RefundFailure.pledge_id.in_([p.id for p in rows]), RefundFailure.resolved_at.is_(None))
            .order_by(RefundFailure.id)):
        failures.setdefault(failure.pledge_id, []).append(failure)
    return render_template("admin/pledges.html", **listing(page), q="", refund_failures=failures,
                           paid_shares=_paid_shares([p.id for p in rows if p.state is PledgeState.released]),
                           bound=bound or {}), status


@bp.get("/pledges")
@admin_required
def pledges_list():
    """Pledges: refunds that failed first, then bank transfers awaiting confirmation, then newest first."""
    return _pledges_page()


@bp.post("/pledges/<id:pledge_id>/confirm")
@admin_required
def confirm_pledge(pledge_id: int):
    """Record that a bank transfer arrived (amount as typed, date, bank reference).

    Another amount than pledged is held only when the admin ticks "record what
    arrived" (``other_amount``); the pledge then records it.
    """
    pledge = db.get_or_404(Pledge, pledge_id)
    form = ConfirmTransferForm()
    if not form.validate_on_submit():
        return _pledges_page({("confirm", pledge.id): form}, 400)
    on_refusal_go_to(url_for("admin.pledges_list"))  # MoneyError, PledgeError: flashed, 303
    money = parse_amount(form.amount.data or "", pledge.currency, str(get_locale()), (pledge.currency,))
    if not form.reference.data or not form.received_on.data:
        raise MoneyError(_("Give the bank reference and the date the money arrived."))
    moved = pledges_service.confirm_transfer(pledge.id, money, reference=form.reference.data,
                                             received_on=form.received_on.data,
                                             actor=f"user:{current_actor().id}",
                                             accept_other_amount=form.other_amount.data == "y")
    db.session.commit()
    if not moved:
        flash(_("Pledge %(id)s was confirmed already: nothing changed.", id=pledge.id), "error")
        return redirect(url_for("admin.pledges_list")), 303
    flash(_("Pledge %(id)s is held: %(amount)s.", id=pledge.id,
            amount=format_money(db.session.get(Pledge, pledge.id).amount_minor, pledge.currency)))
    return redirect(url_for("admin.pledges_list"))


@bp.post("/pledges/<id:pledge_id>/refund")
@admin_required
def refund_pledge(pledge_id: int):
    """Refund a pledge (all or part) with a reason; bank transfers need the reference of the transfer back."""
    pledge = db.get_or_404(Pledge, pledge_id)
    form = RefundForm()
    if not form.validate_on_submit():
        return _pledges_page({("refund", pledge.id): form}, 400)
    back = url_for("admin.pledges_list")
    on_refusal_go_to(back)  # MoneyError, PledgeError: flashed, 303
    # What the pledge had had back when the page was shown: required, so a
    # second submission (a double click, a reload, a form without it) refunds nothing.
    seen = ascii_int(form.seen_refunded.data or "")
    if seen is None:
        raise MoneyError(_("The form did not say what this pledge had had back when it was shown: open the "
                           "pledges page again. Nothing was refunded."))
    money = parse_amount(form.amount.data or "", pledge.currency, str(get_locale()), (pledge.currency,))
    if not form.reason.data:
        raise MoneyError(_("Give the reason for the refund."))
    try:
        pledges_service.refund_through_rail(pledge.id, money.amount_minor, reason=form.reason.data,
                                            actor=f"user:{current_actor().id}",
                                            offline_reference=form.reference.data or None,
                                            seen_refunded_minor=seen)
    except PaymentsUnavailable as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back), 303
    db.session.commit()
    flash(_("Pledge %(id)s: refund recorded.", id=pledge.id))
    return redirect(back)


@bp.post("/pledges/<id:pledge_id>/refund-after-payout")
@admin_required
def refund_after_payout(pledge_id: int):
    """Refund (part of) a pledge whose money was paid out: by reversing a share's
    Stripe transfer, or from the commons' funds with a receivable on the recipient.

    ``seen_refunded`` is what the pledge had had back when the page was shown:
    a second submission of the same form (a double click, a reload) finds it
    changed and refunds nothing more.
    """
    pledge = db.get_or_404(Pledge, pledge_id)
    form = RefundAfterPayoutForm()
    if not form.validate_on_submit():
        return _pledges_page({("after_payout", pledge.id): form}, 400)
    back = url_for("admin.pledges_list")
    on_refusal_go_to(back)  # MoneyError, PayoutError, PledgeError: flashed, 303
    seen = ascii_int(form.seen_refunded.data or "")
    share_id = ascii_int(form.share_id.data or "")
    if seen is None:
        raise MoneyError(_("This pledge was refunded meanwhile; check it again. Nothing was refunded."))
    if share_id is None or not 0 < share_id < 2**31:
        raise MoneyError(_("Choose the paid share the refund comes from."))
    money = parse_amount(form.amount.data or "", pledge.currency, str(get_locale()), (pledge.currency,))
    try:
        refund_id = after_payout.refund_after_payout(
            pledge.id, money.amount_minor, path=form.path.data or "", share_id=share_id, admin=current_actor(),
            offline_reference=form.reference.data or None, seen_refunded_minor=seen)
    except (PaymentsUnavailable, TransferRefused) as exc:
        db.session.rollback()
        flash(_("Stripe did not do it: %(reason)s. Nothing was recorded; try again later.", reason=str(exc)), "error")
        return redirect(back, code=303)
    db.session.commit()
    flash(_("Pledge %(id)s: refund after payout recorded (%(refund)s).", id=pledge.id, refund=refund_id))
    return redirect(back, code=303)


# --- payouts ----------------------------------------------------------------------------

def _shares(*states: ShareState) -> list[PayoutShare]:
    return db.session.scalars(
        select(PayoutShare).where(PayoutShare.state.in_(states))
        .options(selectinload(PayoutShare.recipient), selectinload(PayoutShare.payout).selectinload(Payout.item))
        .order_by(PayoutShare.id).limit(PAGE_SIZE * 4)).all()


def _payouts_page(bound: Bound | None = None, status: int = 200):
    """The payouts page; ``bound`` maps (form kind, share or payout id) to a refused form shown again."""
    manual = _shares(ShareState.awaiting_manual_payout)
    accounts = {a.user_id: a for a in db.session.scalars(
        select(PayoutAccount).where(PayoutAccount.user_id.in_({s.recipient_id for s in manual})))} if manual else {}
    payouts_waiting = db.session.scalars(
        select(Payout).where(Payout.state == PayoutState.awaiting_certification)
        .options(selectinload(Payout.item), selectinload(Payout.suggested_recipient))
        .order_by(Payout.id).limit(PAGE_SIZE * 4)).all()
    flagged = db.session.scalars(
        select(Payout).where(Payout.flagged_at.is_not(None)).options(selectinload(Payout.item))
        .order_by(Payout.flagged_at.desc()).limit(PAGE_SIZE * 4)).all()
    paid = db.session.scalars(
        select(PayoutShare).where(PayoutShare.state == ShareState.paid, PayoutShare.paid_at.is_not(None))
        .options(selectinload(PayoutShare.recipient), selectinload(PayoutShare.payout).selectinload(Payout.item))
        .order_by(PayoutShare.paid_at.desc(), PayoutShare.id.desc()).limit(PAGE_SIZE * 2)).all()
    return render_template(
        "admin/payouts.html", manual=manual, accounts=accounts,
        waiting=_shares(ShareState.awaiting_account, ShareState.awaiting_certification),
        payouts_waiting=payouts_waiting, failed=_shares(ShareState.failed, ShareState.reversed), flagged=flagged,
        today=utcnow().date().isoformat(), paid=paid, bound=bound or {}), status


@bp.get("/payouts")
@admin_required
def payouts():
    """Money owed that waits for someone: shares to pay by hand (with the recipient's
    details), shares waiting for an account or a certification, failed or reversed
    transfers, and payouts flagged for a look."""
    return _payouts_page()


@bp.post("/payouts/shares/<id:share_id>/paid")
@admin_required
def record_manual_payout(share_id: int):
    """The fiscal host paid a share by bank or mobile-money transfer: its reference and date."""
    db.get_or_404(PayoutShare, share_id)
    form = ManualPayoutForm()
    if not form.validate_on_submit():
        return _payouts_page({("paid", share_id): form}, 400)
    back = url_for("admin.payouts")
    try:
        paid_on = date.fromisoformat(form.paid_on.data or "")
    except ValueError:
        flash(_("Give the date of the transfer."), "error")
        return redirect(back, code=303)
    on_refusal_go_to(back)  # PayoutError: flashed, 303
    payouts_service.record_manual_payout(share_id, reference=form.reference.data or "", paid_on=paid_on,
                                         admin=current_actor())
    db.session.commit()
    flash(_("The transfer is recorded; the recipient is told."))
    return redirect(back, code=303)


@bp.post("/payouts/<id:payout_id>/returned")
@admin_required
def return_manual_payout(payout_id: int):
    """An executed manual payout's transfer came back ("returned / not paid"): undo it, with a reason."""
    db.get_or_404(Payout, payout_id)
    form = ReturnedPayoutForm()
    if not form.validate_on_submit():
        return _payouts_page({("returned", payout_id): form}, 400)
    on_refusal_go_to(url_for("admin.payouts"))  # PayoutError: flashed, 303
    payouts_service.return_manual_payout(payout_id, reason=form.reason.data or "", admin=current_actor())
    db.session.commit()
    flash(_("The payout is recorded as returned: its money is in escrow again and the recipients are told."))
    return redirect(url_for("admin.payouts"), code=303)
