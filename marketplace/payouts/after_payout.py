"""Money that moves after a payout was executed: a dispute lost or a refund made
on Stripe after the pledge was paid out (the commons' funds cover it), an
admin's refund after payout (by transfer reversal or as a receivable from the
contributor), and transfer reversals made on Stripe.

Every path posts balanced ledger transactions under idempotency keys from
Stripe's ids or our own row ids, so a redelivered event or a retried request
counts once. Amounts are integers in minor units of the pledge's currency."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.i18n import format_money
from marketplace.ledger import service as ledger
from marketplace.ledger.models import (
    AccountKind,
)
from marketplace.money import (
    Money,
    from_stripe_amount,
)
from marketplace.payments import stripe_client
from marketplace.payments.balance import BalanceError, movements
from marketplace.payouts.models import (
    Payout,
    PayoutShare,
    ShareState,
)
from marketplace.payouts.service import PayoutError
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.timeutil import utcnow


def _released_pledge(pledge_id: int) -> Pledge:
    pledge = db.session.get(Pledge, pledge_id, with_for_update=True, populate_existing=True)
    if pledge is None or pledge.state is not PledgeState.released:
        raise PayoutError(_("This pledge was not paid out."))
    return pledge


def record_loss_after_payout(pledge_id: int, amount_minor: int, *, dispute_id: str,
                             balance_transactions: list | None = None) -> bool:
    """A dispute lost on a pledge already paid out: the commons covers the loss.

    The loss is what moved: the sum of the dispute's balance transactions'
    ``net`` (:func:`marketplace.payments.balance.movements`), one ledger
    transaction per balance transaction id (``dispute-balance:{id}``):
    commons funds −loss, disputes +the pledge money taken, Stripe fees +the
    dispute fee. Disputed 65.00 with a 0.12 fee is a loss of 6512. Without
    balance transactions (an event that does not carry them), the dispute's
    ``amount_minor`` is the loss, keyed by the dispute. The pledge records the
    money taken as refunded. Returns whether this call recorded anything.
    Raises ``BalanceError`` for a balance transaction in another currency.
    """
    pledge = _released_pledge(pledge_id)
    moves = movements(balance_transactions)
    if not moves:
        amount_minor = min(amount_minor, pledge.amount_minor - pledge.refunded_minor)
        if amount_minor <= 0:
            return False
        _transaction, created = ledger.post("dispute_lost_after_payout", f"refund:dispute:{dispute_id}", [
            ledger.Line(ledger.account(AccountKind.commons_funds), Money(-amount_minor, pledge.currency)),
            ledger.Line(ledger.account(AccountKind.disputes), Money(amount_minor, pledge.currency)),
        ])
        if created:
            pledge.refunded_minor += amount_minor
            db.session.flush()
            audit.record("pledge.dispute_lost_after_payout", "pledge", pledge.id, actor="stripe",
                         details={"amount_minor": amount_minor, "dispute": dispute_id})
        return created
    counted_by_amount = ledger.posted(f"refund:dispute:{dispute_id}")
    recorded = False
    for move in moves:
        if move.currency != pledge.currency:
            raise BalanceError(f"balance transaction {move.id} in {move.currency} on a {pledge.currency} pledge")
        key = f"dispute-balance:{move.id}"
        if ledger.posted(key):
            continue
        # The pledge money taken, within what the pledge has not had back; the rest of the loss is Stripe's fee.
        taken = 0 if counted_by_amount else max(-pledge.refunded_minor,
                                                min(move.taken_minor, pledge.amount_minor - pledge.refunded_minor))
        loss = move.loss_minor
        lines = [ledger.Line(ledger.account(AccountKind.commons_funds), Money(-loss, pledge.currency)),
                 ledger.Line(ledger.account(AccountKind.disputes), Money(taken, pledge.currency)),
                 ledger.Line(ledger.account(AccountKind.stripe_fees), Money(loss - taken, pledge.currency))]
        ledger.post("dispute_lost_after_payout", key, [line for line in lines if line.money.amount_minor],
                    memo=f"dispute {dispute_id}")
        pledge.refunded_minor += taken
        recorded = True
        audit.record("pledge.dispute_lost_after_payout", "pledge", pledge.id, actor="stripe",
                     details={"loss_minor": loss, "taken_minor": taken, "dispute": dispute_id,
                              "balance_transaction": move.id})
    db.session.flush()
    return recorded


def record_dispute_fees(currency: str, balance_transactions: list | None, *, dispute_id: str) -> int:
    """A dispute lost before payout: its pledge money left escrow (keyed by the
    dispute); Stripe's fees on its balance transactions are the commons' cost,
    one ledger transaction per balance transaction id (``stripe-fee:{id}``:
    commons funds −fee, Stripe fees +fee). Returns the fees recorded now
    (minor units of ``currency``). Raises ``BalanceError``."""
    recorded = 0
    for move in movements(balance_transactions):
        if move.currency != currency:
            raise BalanceError(f"balance transaction {move.id} in {move.currency} on a {currency} pledge")
        if not move.fee_minor:
            continue
        _transaction, created = ledger.post("stripe_fee", f"stripe-fee:{move.id}", [
            ledger.Line(ledger.account(AccountKind.commons_funds), Money(-move.fee_minor, currency)),
            ledger.Line(ledger.account(AccountKind.stripe_fees), Money(move.fee_minor, currency)),
        ], memo=f"dispute {dispute_id}")
        recorded += move.fee_minor if created else 0
    return recorded


def record_refund_after_payout_elsewhere(pledge_id: int, amount_minor: int, *, refund_id: str) -> bool:
    """A refund of a paid-out pledge made outside the commons (Stripe's
    dashboard): the commons' funds covered it. One transaction keyed by the
    refund id (commons funds −amount, refunds +amount); the pledge records
    it; audited for an admin to recover it. Returns whether this call recorded it."""
    pledge = _released_pledge(pledge_id)
    key = f"refund:{refund_id}"
    if ledger.posted(key):
        return False  # the commons' own refund after payout, or this one seen before
    amount_minor = min(amount_minor, pledge.amount_minor - pledge.refunded_minor)
    if amount_minor <= 0:
        return False
    ledger.post("refund_after_payout", key, [
        ledger.Line(ledger.account(AccountKind.commons_funds), Money(-amount_minor, pledge.currency)),
        ledger.Line(ledger.account(AccountKind.refunds), Money(amount_minor, pledge.currency)),
    ], memo="refunded outside the commons after payout")
    pledge.refunded_minor += amount_minor
    db.session.flush()
    audit.record("pledge.refunded_elsewhere_after_payout", "pledge", pledge.id, actor="stripe",
                 details={"amount_minor": amount_minor, "refund_id": refund_id})
    return True


def refund_after_payout(pledge_id: int, amount_minor: int, *, path: str, share_id: int, admin: User,
                        offline_reference: str | None = None, seen_refunded_minor: int | None = None) -> str:
    """An admin refunds (part of) a pledge whose money was paid out. Self-service never can.

    The funder can get back all the pledge has not had back: the chosen
    share gives back first, up to what is left of it, and the rest comes
    from the commons' fee on the payout, as its own ledger line (platform
    fees −fee part). Fee 10%, 100.00 paid out as 90.00 + 10.00 fee: a refund
    of 100.00 reverses 90.00 and the fee 10.00. ``path`` ``reversal``:
    Stripe reverses the share's part of the transfer (``POST
    /v1/transfers/{id}/reversals``); ``receivable``: the commons advances the
    share's part from its own funds and records what the recipient owes
    back. Either way the ledger balances; a refused reversal records
    nothing. The refund goes through the pledge's rail (a Stripe
    refund for a card pledge, ``offline_reference`` for a bank transfer).
    Keyed by the pledge and what it refunded so far; ``seen_refunded_minor``
    stops a second submission of the form (``pledges.check_seen_refunded``).
    Returns the refund id. Raises :class:`PayoutError`, ``PledgeError``, or
    ``PaymentsUnavailable``.
    """
    pledge = _released_pledge(pledge_id)
    pledges.check_seen_refunded(pledge, seen_refunded_minor)
    share = db.session.get(PayoutShare, share_id, with_for_update=True, populate_existing=True)
    if share is None or share.state is not ShareState.paid or \
            not any(c.pledge_id == pledge.id for c in share.payout.covered):
        raise PayoutError(_("Choose a paid share of the payout that covered this pledge."))
    if not 0 < amount_minor <= pledge.amount_minor - pledge.refunded_minor:
        raise PayoutError(_("The amount must be more than zero and at most what the pledge has not had back."))
    payout = db.session.get(Payout, share.payout_id, with_for_update=True, populate_existing=True)
    # The share gives back first, then the commons' fee on the payout (its own ledger line).
    share_part = min(amount_minor, share.amount_minor - share.refunded_after_minor)
    fee_part = amount_minor - share_part
    if fee_part > payout.fee_minor - payout.fee_refunded_minor:
        raise PayoutError(_("At most %(amount)s can be given back through this share and the commons' fee.",
                            amount=format_money(share.amount_minor - share.refunded_after_minor
                                                + payout.fee_minor - payout.fee_refunded_minor, pledge.currency)))
    money = Money(amount_minor, pledge.currency)
    request_key = f"pledge-{pledge.id}-refund-after-{pledge.refunded_minor}"
    if pledge.rail is not Rail.card:
        reference = (offline_reference or "").strip()
        if not reference:
            raise PayoutError(_("A bank-transfer refund needs the reference of the transfer back."))
        if ledger.posted(f"refund:offline:{pledge.id}:{reference}"):
            raise PayoutError(_("This transfer reference was recorded already."))
    unfinished = _unfinished_reversal(share)
    if unfinished and (path != "reversal" or share_part != unfinished):
        raise PayoutError(_("A reversal of %(amount)s from this share was made but its refund did not finish: "
                            "refund that amount by reversal (with the same part of the fee) to finish it.",
                            amount=format_money(unfinished, pledge.currency)))
    if path == "reversal":
        if not share.stripe_transfer_id:
            raise PayoutError(_("This share was not paid by Stripe: record a receivable instead."))
        if share_part:
            reversal = stripe_client.create_transfer_reversal(
                share.stripe_transfer_id, Money(share_part, pledge.currency),
                idempotency_key=f"{request_key}-reversal",
                metadata={"commons_refund": request_key, "pledge_id": str(pledge.id)})
            ledger.post("transfer_reversed", f"transfer-reversal:{reversal['id']}", [
                ledger.Line(ledger.account(AccountKind.payouts_paid), Money(-share_part, pledge.currency)),
                ledger.Line(ledger.account(AccountKind.commons_funds), Money(share_part, pledge.currency)),
            ], reference=_own_reversal(share))
        source = ledger.account(AccountKind.commons_funds)
    elif path == "receivable":
        source = ledger.account(AccountKind.contributor_receivable, user_id=share.recipient_id)
    else:
        raise PayoutError(_("Choose a transfer reversal or a receivable."))
    if pledge.rail is Rail.card:
        refund_id = stripe_client.create_refund(pledge.payment_intent_id, money, idempotency_key=request_key)
    else:
        refund_id = f"offline:{pledge.id}:{offline_reference.strip()}"
    lines = [ledger.Line(source, Money(-share_part, pledge.currency)),
             ledger.Line(ledger.account(AccountKind.platform_fees), Money(-fee_part, pledge.currency)),
             ledger.Line(ledger.account(AccountKind.refunds), money)]
    _transaction, created = ledger.post("refund_after_payout", f"refund:{refund_id}",
                                        [line for line in lines if line.money.amount_minor],
                                        reference=_own_reversal(share) if path == "reversal" else None)
    if created:
        pledge.refunded_minor += amount_minor
        share.refunded_after_minor += share_part
        payout.fee_refunded_minor += fee_part
        db.session.flush()
        audit.record("pledge.refunded_after_payout", "pledge", pledge.id, actor=f"user:{admin.id}",
                     actor_user_id=admin.id, details={"amount_minor": amount_minor, "path": path,
                                                      "share": share.id, "share_minor": share_part,
                                                      "fee_minor": fee_part, "refund_id": refund_id})
    return refund_id


def _own_reversal(share: PayoutShare) -> tuple[str, int]:
    """The ledger reference of the commons' own transfer reversals from ``share``."""
    return ("own_reversal", share.id)


def _unfinished_reversal(share: PayoutShare) -> int:
    """What the commons reversed from ``share`` for a refund that did not go
    out yet (minor units): the commons' funds of its own reversals, less what
    those refunds paid."""
    return ledger.referenced_total(_own_reversal(share), AccountKind.commons_funds)


def on_transfer_reversed(transfer_obj: dict) -> str:
    """Stripe ``transfer.reversed``: reversals the commons made are recorded
    already; one made elsewhere (the Stripe dashboard) brings the money back to
    the commons' funds, and the share is marked reversed for an admin."""
    share = db.session.scalar(select(PayoutShare).where(
        PayoutShare.stripe_transfer_id == transfer_obj.get("id")).with_for_update())
    if share is None:
        return "no payout share for this transfer"
    reversals = (transfer_obj.get("reversals") or {}).get("data") or []
    recorded = []
    for reversal in reversals:
        key = f"transfer-reversal:{reversal.get('id')}"
        if not isinstance(reversal.get("amount"), int) or ledger.posted(key):
            continue
        money = from_stripe_amount(reversal["amount"], reversal.get("currency") or share.payout.currency)
        own = bool((reversal.get("metadata") or {}).get("commons_refund"))
        ledger.post("transfer_reversed", key, [
            ledger.Line(ledger.account(AccountKind.payouts_paid), Money(-money.amount_minor, money.currency)),
            ledger.Line(ledger.account(AccountKind.commons_funds), money),
        ], reference=_own_reversal(share) if own else None)
        if own:
            # The commons' own reversal for a refund after payout whose refund
            # did not go through yet: the admin's retry finishes it.
            recorded.append(reversal.get("id"))
            continue
        share.state = ShareState.reversed
        payout = share.payout
        payout.flagged_at, payout.flag_reason = utcnow(), "a transfer was reversed outside the commons"
        audit.record("payout.transfer_reversed", "payout_share", share.id, actor="stripe",
                     details={"reversal": reversal.get("id"), "amount_minor": money.amount_minor})
        recorded.append(reversal.get("id"))
    db.session.flush()
    return f"reversals recorded: {recorded}" if recorded else "reversals recorded already"
