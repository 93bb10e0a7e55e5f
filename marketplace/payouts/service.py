"""Payouts: proposed when a change completes a funded item, approved (and
split) by a maintainer, executed after the dispute window, paid through each
recipient's rail exactly once.

Exactly once, because:
- one open payout per item and currency (unique ``open_key``);
- approval and execution lock the payout row and move it by its state, so a
  second approval, a double click or a retried job finds it moved;
- the money leaves escrow in one ledger transaction keyed by the payout id,
  and each share is paid in one keyed by the share id;
- each Stripe transfer carries an idempotency key made from the payout id and
  the recipient, the same on every retry, so a retry after a timeout gets the
  transfer Stripe already made.
Services flush, never commit; jobs and e-mails run after commit.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.models import ImplementorProfile, User
from marketplace.audit import service as audit
from marketplace.backlog.models import BacklogItem, ItemState, PullRequest
from marketplace.claims import certification
from marketplace.claims import service as claims
from marketplace.claims import signals as claim_signals
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.funds import service as funds
from marketplace.ledger import service as ledger
from marketplace.ledger.models import (
    AccountKind,
)
from marketplace.money import (
    Money,
    MoneyError,
    fee_of,
    from_stripe_amount,
    stripe_amount,
)
from marketplace.notifications import notices
from marketplace.payments import connect, stripe_client
from marketplace.payouts import signals as payout_signals
from marketplace.payouts.models import (
    APPROVABLE_STATES,
    OPEN_PAYOUT_STATES,
    PAYOUT_ALLOWED_FROM,
    Payout,
    PayoutAccount,
    PayoutPledge,
    PayoutRail,
    PayoutShare,
    PayoutState,
    ShareState,
)
from marketplace.payouts.split import largest_remainder
from marketplace.pledges import signals as pledge_signals
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.pools import service as pools
from marketplace.tasks import enqueue, pending_jobs
from marketplace.timeutil import utcnow
from marketplace.training import queries as training

# Stripe error codes that mean "this account cannot receive yet", not "try again".
ACCOUNT_NOT_READY_CODES = frozenset({"insufficient_capabilities_for_transfer", "account_invalid",
                                     "resource_missing", "transfers_not_allowed"})
RETRY_BACKOFF = (60, 300, 1800, 3600, 6 * 3600)  # seconds between attempts, the last repeated


class PayoutError(DomainError):
    """A payout operation that cannot be done; the message is for the person."""


# --- what escrow a payout may take -------------------------------------------------

def undisputed_pledges(item_id: int, currency: str | None, *, lock: bool = False) -> list[Pledge]:
    """The item's pledges in ``currency`` (None: any) holding money that no dispute contests, by id.

    With ``lock`` their rows are locked (FOR UPDATE) until the transaction ends.
    """
    query = (select(Pledge).where(Pledge.item_id == item_id,
                                  Pledge.state.in_([PledgeState.held, PledgeState.partially_refunded]))
             .order_by(Pledge.id))
    if currency is not None:
        query = query.where(Pledge.currency == currency)
    if lock:
        query = query.with_for_update()
    return [p for p in db.session.scalars(query.execution_options(populate_existing=True)) if p.held_minor > 0]


def fee_rate_bps(item: BacklogItem) -> int:
    """The project's fee rate in basis points (its own, or ``DEFAULT_FEE_RATE_BPS``)."""
    return item.repository.project.fee_rate(current_app.config["DEFAULT_FEE_RATE_BPS"])


def quote(payout: Payout, weights: list[int] | None = None) -> dict:
    """What approving now would pay: ``{"gross", "fee", "net", "shares", "pledges"}`` in minor units of
    ``payout.currency``. ``shares`` follow ``weights`` (default: the current shares' weights, or one share)."""
    pledges = undisputed_pledges(payout.item_id, payout.currency)
    gross = sum(p.held_minor for p in pledges) + _matched(payout.item_id, payout.currency, pledges)
    fee = fee_of(gross, fee_rate_bps(payout.item))
    weights = weights or [s.weight for s in payout.shares] or [1]
    return {"gross": gross, "fee": fee, "net": gross - fee, "shares": largest_remainder(gross - fee, weights),
            "pledges": [(p.id, p.held_minor) for p in pledges]}


# --- proposal ------------------------------------------------------------------------

def _matched(item_id: int, currency: str, pledges: list[Pledge]) -> int:
    """What matching pools added to these pledges (and a round to the item), and
    what project funds allotted to the item, held in its escrow beside them:
    paid out with them (minor units)."""
    return (sum(m.held_minor for m in pools.held_matches(item_id, currency, [p.id for p in pledges]))
            + sum(a.held_minor for a in funds.held_allotments(item_id, currency)))


def _escrow_currencies(item_id: int) -> list[str]:
    """Currencies in which the item's escrow holds undisputed money (what a payout can take)."""
    return sorted({p.currency for p in undisputed_pledges(item_id, None)} | set(funds.held_currencies(item_id)))


def open_payout(item_id: int, currency: str) -> Payout | None:
    return db.session.scalar(select(Payout).where(Payout.open_key == f"{item_id}:{currency}"))


def propose(item: BacklogItem, *, reason: str, pull: PullRequest | None = None) -> list[Payout]:
    """The work on ``item`` is done: propose a payout per currency its escrow holds.

    ``reason``: ``merged`` (``pull`` closed it), ``closed_by_commit`` or
    ``closed_completed`` (no linked change: a maintainer attributes it). The
    suggested recipient is the approved claimant who authored ``pull``
    (matched by verified forge id); otherwise none, and a maintainer
    attributes the payout. A proposal still open is updated, never doubled.
    Nothing is paid until a maintainer approves. Returns the payouts touched.
    """
    claim = claims.holding_claim_of_author(item, pull)
    if claim is not None and training.waits_for_mentor(claim):
        return []  # a training claim: proposed once its mentor approves the change (marketplace.training)
    default = (training.default_shares(claim) or [(_payee_of(claim), 1)]) if claim is not None else []
    if not default:
        # Money that arrived after this item's payout: suggest the people that payout paid, as it split.
        previous = db.session.scalar(select(Payout).where(
            Payout.item_id == item.id, Payout.executed_at.is_not(None)).order_by(Payout.id.desc()).limit(1))
        if previous is not None:
            default = [(share.recipient_id, share.weight) for share in previous.shares]
    recipient_id = default[0][0] if len(default) == 1 else None
    touched = []
    for currency in _escrow_currencies(item.id):
        payout = open_payout(item.id, currency)
        if payout is not None:
            if payout.state in (PayoutState.proposed, PayoutState.awaiting_certification) and pull is not None \
                    and payout.pull_request_id != pull.id:
                # The change that solves the item now (closed first, or a wrong link removed).
                payout.pull_request_id, payout.reason = pull.id, reason
                payout.suggested_recipient_id = recipient_id
                _must_move(payout, _proposal_state(recipient_id, item))
                _set_default_shares(payout, default)
                touched.append(payout)
            continue
        try:
            with db.session.begin_nested():
                payout = Payout(item_id=item.id, currency=currency, open_key=f"{item.id}:{currency}",
                                pull_request_id=pull.id if pull else None, reason=reason,
                                suggested_recipient_id=recipient_id, state=_proposal_state(recipient_id, item),
                                fee_rate_bps=fee_rate_bps(item))
                db.session.add(payout)
                db.session.flush()
        except IntegrityError:
            continue  # another session proposed it first
        _set_default_shares(payout, default)
        audit.record("payout.proposed", "payout", payout.id, actor="sync",
                     details={"item": item.id, "currency": currency, "reason": reason,
                              "pull_request": pull.id if pull else None, "recipient": recipient_id})
        notices.payout_event(payout.id, "proposed")
        touched.append(payout)
    if claim is not None:
        # Their change merged: the claim is done, funded or not.
        claims.complete(claim, pull.id if pull is not None else None)
    return touched


def _payee_of(claim) -> int:
    """Who a claim's work pays: the firm's payee account when the claim was made for
    an implementor firm that has one (issue 20), else the claimant."""
    firm = claim.organisation
    if firm is not None and firm.kind == "implementor" and firm.payee_id is not None:
        return firm.payee_id
    return claim.claimant_id


def _proposal_state(recipient_id: int | None, item: BacklogItem) -> PayoutState:
    if recipient_id is not None and not may_be_paid(recipient_id, item):
        return PayoutState.awaiting_certification
    return PayoutState.proposed


def may_be_paid(user_id: int, item: BacklogItem, at: datetime | None = None) -> bool:
    """Certified for the item's project (or globally) at ``at`` (UTC, default now), or
    the trainee of the item's mentor-approved training claim (issue 19's exception)."""
    return (certification.is_certified(user_id, item.repository.project_id, at)
            or training.paid_as_trainee(user_id, item.id))


def _set_default_shares(payout: Payout, default: list[tuple[int, int]]) -> None:
    """Before approval: the suggested (recipient id, weight) shares; the figures are a preview."""
    payout.shares.clear()
    db.session.flush()
    payout.shares = [PayoutShare(recipient_id=user_id, weight=weight, position=i)
                     for i, (user_id, weight) in enumerate(default)]
    db.session.flush()
    figures = quote(payout)
    payout.gross_minor, payout.fee_minor = figures["gross"], figures["fee"]
    for share, amount in zip(payout.shares, figures["shares"]):
        share.amount_minor = amount
    db.session.flush()


def on_solved(item: BacklogItem) -> list[Payout]:
    """Sync: a merged change now closes ``item`` (the linking rules). Hooked
    from ``update_solved``. A claimant holding the item is told when the
    change's author has no verified forge identity (it cannot count for them)."""
    claims.tell_unverified_author(item)
    touched = propose_remaining(item)
    payout_signals.solved.send(item)
    return touched


def on_item_closed(item: BacklogItem, *, commit_id: str | None = None) -> list[Payout]:
    """Sync: ``item`` was closed. As completed (or by a direct commit) with no
    linked change, a proposal waits for a maintainer's attribution; closed as
    not planned, nothing is proposed and payouts not yet executed are
    cancelled (the pledges go back)."""
    if item.closed_as_not_planned:
        # Not planned, duplicate, moved, deleted or unknown: the work was not done.
        _cancel_open(item, f"the issue was closed ({item.close_reason.value})")
        return []
    if item.solved_by_id is not None:
        return propose_remaining(item)  # closed after the merge, or again after a reopen
    return propose(item, reason="closed_by_commit" if commit_id else "closed_completed")


def cancel_open_payouts(item: BacklogItem, why: str) -> list[int]:
    """Cancel ``item``'s payouts not yet executing (their money stays in escrow); returns their ids."""
    return _cancel_open(item, why)


def _cancel_open(item: BacklogItem, why: str) -> list[int]:
    """Cancel the item's payouts not yet executed (their money stays in escrow)."""
    payouts = db.session.scalars(select(Payout).where(
        Payout.item_id == item.id, Payout.state.in_(OPEN_PAYOUT_STATES)).with_for_update()).all()
    for payout in payouts:
        _cancel(payout, why, actor="sync")
    return [payout.id for payout in payouts]


def _cancel(payout: Payout, note: str, *, actor: str, actor_user_id: int | None = None) -> None:
    """Move a payout not yet executed (locked by the caller) to cancelled; its money stays in escrow."""
    _must_move(payout, PayoutState.cancelled, open_key=None, cancelled_at=utcnow(), note=note)
    db.session.flush()
    audit.record("payout.cancelled", "payout", payout.id, actor=actor, actor_user_id=actor_user_id,
                 details={"note": note})


def propose_remaining(item: BacklogItem) -> list[Payout]:
    """Propose what the escrow holds for an item whose work is done: solved by
    a merged change (never when closed as not planned: its funders were
    offered their money back), or closed as completed after an earlier payout
    (a pledge received after the approval, a dispute won after execution).
    The open proposal is updated, never doubled."""
    if item.closed_as_not_planned:
        return []
    if item.solved_by_id is not None:
        return propose(item, reason="merged", pull=item.solved_by)
    if item.state is ItemState.closed and db.session.scalar(
            select(Payout.id).where(Payout.item_id == item.id, Payout.executed_at.is_not(None)).limit(1)):
        return propose(item, reason="closed_completed")
    return []


def on_item_reopened(item: BacklogItem) -> list[int]:
    """Sync: ``item`` reopened. The work is not done: payouts not yet
    executed are cancelled (a new proposal comes when it is solved again). A
    payout already executed is never paid again; it is flagged for the
    maintainers. Returns the flagged payout ids."""
    _cancel_open(item, "the issue was reopened")
    executed = db.session.scalars(select(Payout).where(
        Payout.item_id == item.id, Payout.state.in_([PayoutState.executing, PayoutState.paid,
                                                     PayoutState.failed]))).all()
    for payout in executed:
        if payout.flagged_at is None:
            payout.flagged_at = utcnow()
            payout.flag_reason = "the issue was reopened after this payout"
            audit.record("payout.flagged", "payout", payout.id, actor="sync",
                         details={"reason": payout.flag_reason})
    db.session.flush()
    return [p.id for p in executed]


# --- approval ------------------------------------------------------------------------

def _move(payout: Payout, to: PayoutState, **columns) -> bool:
    """Move ``payout`` to state ``to`` (and set ``columns``) by one conditional
    UPDATE that obeys :data:`PAYOUT_ALLOWED_FROM`, as pledges and claims move.

    Returns False, changing nothing and reloading the row, when the payout's
    state in the database does not allow the move (another session moved it
    first). Staying in the same state is allowed and just sets ``columns``.
    """
    if payout.state is to:
        for name, value in columns.items():
            setattr(payout, name, value)
        return True
    moved = db.session.execute(
        update(Payout).where(Payout.id == payout.id, Payout.state.in_(PAYOUT_ALLOWED_FROM[to]))
        .values(state=to, **columns).execution_options(synchronize_session=False)).rowcount == 1
    if not moved:
        db.session.refresh(payout)
        return False
    # Set in memory too (as a change, not as loaded state), so a savepoint
    # rolled back after this expires them with the rest of its changes.
    payout.state = to
    for name, value in columns.items():
        setattr(payout, name, value)
    return True


def _must_move(payout: Payout, to: PayoutState, **columns) -> None:
    """:func:`_move` where the caller has checked the state under the row lock:
    a refused move is a broken rule, raised as :class:`PayoutError`."""
    was = payout.state
    if not _move(payout, to, **columns):
        raise PayoutError(f"payout {payout.id} cannot move from {was.value} to {to.value}")


def _locked(payout_id: int) -> Payout:
    payout = db.session.get(Payout, payout_id, with_for_update=True, populate_existing=True)
    if payout is None:
        raise PayoutError(f"no payout {payout_id}")
    return payout


def dispute_window() -> timedelta:
    """Time between a payout's approval and its execution: ``PAYOUT_DISPUTE_WINDOW_MINUTES``
    when set (a walkthrough on a laptop), else ``PAYOUT_DISPUTE_WINDOW_DAYS``."""
    minutes = current_app.config.get("PAYOUT_DISPUTE_WINDOW_MINUTES")
    if minutes is not None:
        return timedelta(minutes=minutes)
    return timedelta(days=current_app.config["PAYOUT_DISPUTE_WINDOW_DAYS"])


def approve(payout_id: int, *, maintainer: User, recipients: list[tuple[int, int]],
            seen_gross: int | None = None, note: str | None = None) -> Payout:
    """A maintainer approves: the amounts are fixed now.

    ``recipients`` are (user id, weight) pairs: weights are percentages in
    hundredths (7000 + 3000) or equal parts (1, 1, 1). Gross = the item's
    undisputed escrow in the payout's currency; fee = gross × the project's
    rate (:func:`marketplace.money.fee_of`); the net is split by largest
    remainder, so fee + shares = gross exactly. ``seen_gross``, when given,
    is the gross the maintainer was shown: if the escrow changed since,
    nothing is approved. Under the payout's row lock: a second approval (a
    double click, another maintainer) raises :class:`PayoutError` and
    changes nothing. Execution follows after the dispute window (:func:`dispute_window`).
    """
    payout = _locked(payout_id)
    if payout.state not in APPROVABLE_STATES:
        raise PayoutError(approval_refusal(payout))
    item = payout.item
    if not recipients:
        raise PayoutError(_("Choose who is paid."))
    ids = [user_id for user_id, _weight in recipients]
    if len(set(ids)) != len(ids):
        raise PayoutError(_("A person appears twice in the split."))
    if maintainer.id in ids:
        raise PayoutError(_("You are one of the recipients: another maintainer or an admin approves this payout."))
    for user_id, weight in recipients:
        person = db.session.get(User, user_id)
        if person is None or not person.is_implementor:
            raise PayoutError(_("Every recipient must be an implementor with an account."))
        if not isinstance(weight, int) or weight <= 0:
            raise PayoutError(_("Every share must be more than zero."))
        if not may_be_paid(user_id, item):
            raise PayoutError(_("%(name)s is not certified yet: certify them first, or choose someone else.",
                                name=person.display_name))
    pledges = undisputed_pledges(item.id, payout.currency, lock=True)
    gross = sum(p.held_minor for p in pledges) + _matched(item.id, payout.currency, pledges)
    if gross <= 0:
        raise PayoutError(_("The item's escrow holds no undisputed money to pay out."))
    if seen_gross is not None and seen_gross != gross:
        raise PayoutError(_("The escrow changed since the page was shown; check the amounts again."))
    rate = fee_rate_bps(item)
    fee = fee_of(gross, rate)
    amounts = largest_remainder(gross - fee, [weight for _user, weight in recipients])
    payout.shares.clear()
    payout.covered.clear()
    db.session.flush()
    payout.shares = [PayoutShare(recipient_id=user_id, weight=weight, amount_minor=amount, position=i)
                     for i, ((user_id, weight), amount) in enumerate(zip(recipients, amounts))]
    payout.covered = [PayoutPledge(pledge_id=p.id, amount_minor=p.held_minor) for p in pledges]
    now = utcnow()
    payout.gross_minor, payout.fee_minor, payout.fee_rate_bps = gross, fee, rate
    _must_move(payout, PayoutState.approved, approved_at=now, approved_by_id=maintainer.id, note=note,
               execute_after=now + dispute_window())
    db.session.flush()
    audit.record("payout.approved", "payout", payout.id, actor=f"user:{maintainer.id}", actor_user_id=maintainer.id,
                 details={"gross_minor": gross, "fee_minor": fee, "currency": payout.currency,
                          "shares": [[user_id, amount] for (user_id, _weight), amount in zip(recipients, amounts)]})
    notices.payout_event(payout.id, "approved")
    _schedule_execution(payout)
    # A maintainer pays the people holding claims on the item (say, the approved
    # claimant whose change's author had no verified identity): their claims are done.
    for claim in claims.holding_claims_of(item, [user_id for user_id, _weight in recipients]):
        claims.complete(claim, item.solved_by_id)
    return payout


def approval_refusal(payout: Payout) -> str | None:
    """Why ``payout`` cannot be approved now (for the person), or None when it can."""
    if payout.state in APPROVABLE_STATES:
        return None
    if payout.state is PayoutState.awaiting_certification:
        return _("The recipient must be certified before this payout can be approved.")
    if payout.state in (PayoutState.approved, PayoutState.executing, PayoutState.paid, PayoutState.failed):
        return _("This payout was approved already.")
    return _("This payout was cancelled.")


def _schedule_execution(payout: Payout) -> None:
    at = payout.execute_after.replace(tzinfo=None) if payout.execute_after > utcnow() else None
    enqueue("jobs.money.execute_payout", payout.id, job_id=f"payout-{payout.id}-execute", at=at)


def cancel(payout_id: int, *, actor: User, note: str) -> None:
    """Cancel a payout not yet executed; its money stays in escrow. Raises :class:`PayoutError`."""
    payout = _locked(payout_id)
    if payout.state not in OPEN_PAYOUT_STATES:
        raise PayoutError(_("Only a payout not yet executed can be cancelled."))
    _cancel(payout, note, actor=f"user:{actor.id}", actor_user_id=actor.id)


# --- execution -------------------------------------------------------------------------

def execute(payout_id: int, now: datetime | None = None) -> bool:
    """Once the dispute window has passed: the money leaves escrow, exactly once.

    One ledger transaction (key ``payout:{id}:released``): escrow −gross,
    fees +fee, each recipient's payable +share; the covered pledges are
    released. If a covered pledge is disputed or holds less than at approval,
    the payout is held instead and nothing moves. Then each share goes to its
    rail. Returns whether this call executed the payout.
    """
    now = now or utcnow()
    payout = _locked(payout_id)
    if payout.state is not PayoutState.approved or (payout.execute_after and payout.execute_after > now):
        return False
    if payout.item.closed_as_not_planned:
        _cancel_open(payout.item, f"the issue was closed ({payout.item.close_reason.value})")
        return False
    if payout.item.private_reason is not None:
        return False  # the forge keeps the issue private: nothing leaves escrow unless it is public again
    pledges = {p.id: p for p in db.session.scalars(
        select(Pledge).where(Pledge.id.in_([c.pledge_id for c in payout.covered])).order_by(Pledge.id)
        .with_for_update().execution_options(populate_existing=True))}
    changed = [c.pledge_id for c in payout.covered
               if pledges[c.pledge_id].state not in (PledgeState.held, PledgeState.partially_refunded)
               or pledges[c.pledge_id].held_minor != c.amount_minor]
    matches = pools.held_matches(payout.item_id, payout.currency, list(pledges))
    allotments = funds.held_allotments(payout.item_id, payout.currency)
    if sum(m.held_minor for m in matches) + sum(a.held_minor for a in allotments) \
            != payout.gross_minor - sum(c.amount_minor for c in payout.covered):
        # A match or an allotment went back (or one came) since approval.
        changed = changed or [c.pledge_id for c in payout.covered] or ["allotments"]
    if changed:
        _must_move(payout, PayoutState.held)
        db.session.flush()
        audit.record("payout.held", "payout", payout.id, actor="job:execute_payout",
                     details={"pledges": changed, "reason": "a covered pledge is disputed or changed"})
        return False
    money = payout.currency
    lines = [ledger.Line(ledger.account(AccountKind.item_escrow, item_id=payout.item_id),
                         Money(-payout.gross_minor, money))]
    if payout.fee_minor:
        lines.append(ledger.Line(ledger.account(AccountKind.platform_fees), Money(payout.fee_minor, money)))
    for share in payout.shares:
        if share.amount_minor:
            lines.append(ledger.Line(ledger.account(AccountKind.contributor_payable, user_id=share.recipient_id),
                                     Money(share.amount_minor, money)))
    ledger.post("payout_released", f"payout:{payout.id}:released", lines, memo=f"payout {payout.id}")
    for pledge in pledges.values():
        pledge.state, pledge.closed_at = PledgeState.released, now
    pools.release_matches(payout.id, matches)
    funds.release_allotments(payout.id, allotments)
    _must_move(payout, PayoutState.executing, open_key=None, executed_at=now)
    db.session.flush()
    audit.record("payout.executed", "payout", payout.id, actor="job:execute_payout",
                 details={"gross_minor": payout.gross_minor, "fee_minor": payout.fee_minor})
    payout_signals.executed.send(payout)
    for share in payout.shares:
        _route(share, now)
    _settle(payout)
    propose_remaining(payout.item)
    return True


def manual_rail(user_id: int) -> bool:
    """Whether ``user_id`` is paid by the fiscal host's transfer: they chose it,
    or they live in a country of ``PAYOUT_MANUAL_COUNTRIES``."""
    account = db.session.get(PayoutAccount, user_id)
    if account is not None and account.rail is PayoutRail.manual:
        return True
    profile = db.session.get(ImplementorProfile, user_id)
    return bool(profile and profile.country and profile.country in current_app.config["PAYOUT_MANUAL_COUNTRIES"])


def _route(share: PayoutShare, now: datetime) -> None:
    """Send a share (owed, in the payable account) to its rail, or let it wait."""
    payout = share.payout
    if share.amount_minor == 0:
        share.state, share.paid_at = ShareState.paid, now
        return
    if not may_be_paid(share.recipient_id, payout.item, now):
        _wait(share, ShareState.awaiting_certification, now)
        return
    if manual_rail(share.recipient_id):
        share.rail = PayoutRail.manual
        _wait(share, ShareState.awaiting_manual_payout, now)
        return
    share.rail = PayoutRail.stripe
    account = db.session.get(PayoutAccount, share.recipient_id)
    if account is None or not account.stripe_account_id or not account.transfers_active:
        _wait(share, ShareState.awaiting_account, now)
        return
    share.state = ShareState.transferring
    db.session.flush()
    _enqueue_transfer(share)


def _wait(share: PayoutShare, state: ShareState, now: datetime) -> None:
    """The money stays owed (payable); the recipient is told once how to receive it."""
    share.state = state
    if share.told_at is None:
        share.told_at = now
        notices.share_event(share.id, "how_to_receive")
    db.session.flush()


def _enqueue_transfer(share: PayoutShare) -> None:
    enqueue("jobs.money.transfer_share", share.id, job_id=f"payout-share-{share.id}-transfer-{share.attempts}")


def _settle(payout: Payout) -> None:
    states = {share.state for share in payout.shares}
    if states <= {ShareState.paid}:
        _must_move(payout, PayoutState.paid, paid_at=utcnow())
    elif ShareState.failed in states:
        _must_move(payout, PayoutState.failed)
    else:
        _must_move(payout, PayoutState.executing)
    db.session.flush()


def begin_transfer(share_id: int, now: datetime | None = None) -> bool:
    """Step one of paying a share by Stripe: mark an attempt in flight.

    The caller commits this on its own, before :func:`transfer` calls Stripe
    (``jobs.money.transfer_share``, and the retry cron between steps): if the
    worker dies after Stripe made the transfer but before our commit, the
    marker survives, and the next attempt looks the transfer up in the
    payout's transfer group before making one, even after Stripe has
    forgotten the idempotency key (24 hours; Stripe docs "Idempotent
    requests"). A marker already set (an earlier attempt whose outcome was
    never recorded) is kept as it is. Pass the same ``now`` (naive UTC) to
    both steps. Returns whether the share is to be transferred.
    """
    now = now or utcnow()
    share = db.session.get(PayoutShare, share_id, with_for_update=True, populate_existing=True)
    if share is None or share.state not in (ShareState.transferring, ShareState.failed):
        return False
    if share.transfer_in_flight_at is None:
        share.transfer_in_flight_at = now
        db.session.flush()
    return True


def _transfer_made_before(share: PayoutShare, now: datetime) -> bool:
    """Whether an earlier attempt may have made this share's transfer (its
    outcome was never recorded): its in-flight marker predates this attempt,
    or it ended without an answer (a timeout)."""
    earlier = share.transfer_in_flight_at is not None and share.transfer_in_flight_at < now
    unanswered = bool(share.attempts and share.state is ShareState.transferring and share.last_error)
    return earlier or unanswered


def transfer(share_id: int, now: datetime | None = None) -> bool:
    """Pay one share by Stripe transfer (``POST /v1/transfers``) to the recipient's connected account.

    The idempotency key is made from the payout id and the recipient
    (:attr:`PayoutShare.transfer_idempotency_key`) and reused on every retry:
    a retry after a timeout returns the transfer Stripe already made. When an
    earlier attempt's outcome is unknown (:func:`begin_transfer`'s marker, or
    a timeout), the payout's transfer group (``GET /v1/transfers``) is read
    first and a transfer found there for this share is recorded instead of
    making another, since Stripe forgets a key after 24 hours. Under the
    share's row lock. Stripe unreachable: the share stays ``transferring``
    for the retry cron. Stripe refusing because the account cannot receive:
    ``awaiting_account`` (told once, paid on ``account.updated``). Another
    refusal: ``failed``, retried later with the same key. Returns whether the
    share was paid by this call.
    """
    now = now or utcnow()
    share = db.session.get(PayoutShare, share_id, with_for_update=True, populate_existing=True)
    if share is None or share.state not in (ShareState.transferring, ShareState.failed):
        return False
    payout = share.payout
    account = db.session.get(PayoutAccount, share.recipient_id)
    if account is None or not account.stripe_account_id or not account.transfers_active:
        _wait(share, ShareState.awaiting_account, now)
        _settle(payout)
        return False
    if _transfer_made_before(share, now):
        try:
            made = transfers_of_share(share)
        except (stripe_client.PaymentsUnavailable, stripe_client.TransferRefused) as exc:
            share.last_error = str(exc)[:500]
            share.next_attempt_at = now + timedelta(seconds=_backoff(max(share.attempts, 1)))
            db.session.flush()
            return False
        if made:
            _mark_paid(share, now, transfer_id=made[0]["id"])  # more than one: reconciliation reports it
            return True
    if share.transfer_in_flight_at is None:
        share.transfer_in_flight_at = now  # a caller that did not commit step one: same transaction
    share.attempts += 1
    try:
        stripe_amount(Money(share.amount_minor, payout.currency))
    except MoneyError as exc:
        # Stripe takes three-decimal currencies in tens only: the fiscal host pays this one.
        share.rail, share.last_error = PayoutRail.manual, str(exc)[:500]
        _wait(share, ShareState.awaiting_manual_payout, now)
        _settle(payout)
        return False
    try:
        result = stripe_client.create_transfer(
            Money(share.amount_minor, payout.currency), account.stripe_account_id,
            idempotency_key=share.transfer_idempotency_key, transfer_group=f"payout-{payout.id}",
            metadata={"payout_id": str(payout.id), "share_id": str(share.id)})
    except stripe_client.PaymentsUnavailable as exc:
        share.last_error = str(exc)[:500]
        share.next_attempt_at = now + timedelta(seconds=_backoff(share.attempts))
        db.session.flush()
        return False
    except stripe_client.TransferRefused as exc:
        share.last_error = f"{exc.code}: {exc}"[:500]
        if exc.key_spent:
            # Refused under this key: no transfer was made, and Stripe would replay the refusal.
            share.refusals += 1
            share.transfer_in_flight_at = None
        if exc.code in ACCOUNT_NOT_READY_CODES:
            account.transfers_active = False
            _wait(share, ShareState.awaiting_account, now)
        else:
            first_failure = share.state is not ShareState.failed
            share.state = ShareState.failed
            share.next_attempt_at = now + timedelta(seconds=_backoff(share.attempts))
            if first_failure:
                notices.share_event(share.id, "failed")
            audit.record("payout.transfer_failed", "payout_share", share.id, actor="job:transfer_share",
                         details={"code": exc.code, "attempt": share.attempts})
        _settle(payout)
        return False
    _mark_paid(share, now, transfer_id=result["id"])
    return True


def transfers_of_share(share: PayoutShare) -> list[dict]:
    """The Stripe transfers made for ``share``: those of its payout's transfer
    group (``payout-{id}``) whose metadata names the share, oldest first.
    Raises ``PaymentsUnavailable`` or ``TransferRefused``."""
    return sorted((t for t in stripe_client.list_transfers(f"payout-{share.payout_id}")
                   if (t.get("metadata") or {}).get("share_id") == str(share.id)),
                  key=lambda t: (t.get("created") or 0, t.get("id") or ""))


def _backoff(attempts: int) -> int:
    return RETRY_BACKOFF[min(attempts, len(RETRY_BACKOFF)) - 1]


def _mark_paid(share: PayoutShare, now: datetime, *, transfer_id: str | None = None,
               reference: str | None = None, paid_on: date | None = None) -> None:
    payout = share.payout
    ledger.post("payout_paid", f"payout-share:{share.id}:paid", [
        ledger.Line(ledger.account(AccountKind.contributor_payable, user_id=share.recipient_id),
                    Money(-share.amount_minor, payout.currency)),
        ledger.Line(ledger.account(AccountKind.payouts_paid), Money(share.amount_minor, payout.currency)),
    ], memo=transfer_id or reference)
    share.state, share.paid_at, share.last_error, share.next_attempt_at = ShareState.paid, now, None, None
    share.transfer_in_flight_at = None
    share.stripe_transfer_id = transfer_id
    share.manual_reference, share.manual_paid_on = reference, paid_on
    db.session.flush()
    audit.record("payout.share_paid", "payout_share", share.id, actor="payouts",
                 details={"amount_minor": share.amount_minor, "currency": payout.currency,
                          "transfer": transfer_id, "reference": reference})
    notices.share_event(share.id, "paid")
    _settle(payout)


def record_manual_payout(share_id: int, *, reference: str, paid_on: date, admin: User) -> None:
    """The fiscal host paid a share by bank or mobile-money transfer: record it.

    ``reference`` is the transfer's reference (1–200 characters), ``paid_on``
    its date (not in the future). Under the share's row lock, once: a second
    recording raises :class:`PayoutError` and changes nothing, as does an
    admin recording a payment to themselves.
    """
    reference = (reference or "").strip()
    if not reference or len(reference) > 200:
        raise PayoutError(_("Give the transfer's reference (up to 200 characters)."))
    if paid_on > utcnow().date():
        raise PayoutError(_("The transfer date cannot be in the future."))
    share = db.session.get(PayoutShare, share_id, with_for_update=True, populate_existing=True)
    if share is None or share.state is not ShareState.awaiting_manual_payout:
        raise PayoutError(_("This share is not waiting for a manual payout (recorded already?)."))
    if share.recipient_id == admin.id:
        raise PayoutError(_("This share is yours: another admin records its payment."))
    _mark_paid(share, utcnow(), reference=reference, paid_on=paid_on)
    audit.record("payout.manual_recorded", "payout_share", share.id, actor=f"user:{admin.id}",
                 actor_user_id=admin.id, details={"reference": reference, "paid_on": paid_on.isoformat()})


def return_manual_payout(payout_id: int, *, reason: str, admin: User) -> Payout:
    """The bank or mobile-money transfer of an executed manual payout came back
    ("returned / not paid"): an admin undoes the payout in one audited action.

    One ledger transaction (key ``payout:{id}:returned``), the exact inverse of
    the execution and of the shares paid: escrow +gross, platform fees −fee,
    each paid share −amount from paid out (a share still owed: −amount from
    what its recipient is owed). Gross 5.00 = share 4.50 + fee 0.50: escrow
    500 again, fee 0. The covered pledges hold their money again, the payout
    and its shares are ``returned``, each recipient is told, and the work's
    money is proposed again for a maintainer. ``reason`` is required (up to
    500 characters). Under the payout's row lock: a second return raises
    :class:`PayoutError` and posts nothing; so does a payout with a Stripe
    share, or one whose pledges or fee changed since (a refund or loss after payout).
    """
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise PayoutError(_("Give the reason the transfer came back (up to 500 characters)."))
    payout = _locked(payout_id)
    if payout.state is PayoutState.returned or ledger.posted(f"payout:{payout.id}:returned"):
        raise PayoutError(_("This payout was returned already; nothing was posted."))
    if payout.state not in (PayoutState.executing, PayoutState.paid) or payout.executed_at is None:
        raise PayoutError(_("Only an executed payout can be returned."))
    shares = list(payout.shares)
    if any(share.rail is not PayoutRail.manual and share.amount_minor for share in shares) or any(
            share.state not in (ShareState.paid, ShareState.awaiting_manual_payout) for share in shares):
        raise PayoutError(_("Only a payout paid by the fiscal host's bank or mobile-money transfer can be "
                            "returned here; nothing was posted."))
    covered = {p.id: p for p in db.session.scalars(
        select(Pledge).where(Pledge.id.in_([c.pledge_id for c in payout.covered])).order_by(Pledge.id)
        .with_for_update().execution_options(populate_existing=True))}
    if payout.fee_refunded_minor or any(share.refunded_after_minor for share in shares) or any(
            covered[c.pledge_id].state is not PledgeState.released
            or covered[c.pledge_id].amount_minor - covered[c.pledge_id].refunded_minor != c.amount_minor
            for c in payout.covered):
        raise PayoutError(_("Money of this payout was refunded or lost since it was paid: it cannot be undone "
                            "exactly. Nothing was posted."))
    currency = payout.currency
    lines = [ledger.Line(ledger.account(AccountKind.item_escrow, item_id=payout.item_id),
                         Money(payout.gross_minor, currency))]
    if payout.fee_minor:
        lines.append(ledger.Line(ledger.account(AccountKind.platform_fees), Money(-payout.fee_minor, currency)))
    for share in shares:
        if not share.amount_minor:
            continue
        source = (ledger.account(AccountKind.payouts_paid) if share.state is ShareState.paid
                  else ledger.account(AccountKind.contributor_payable, user_id=share.recipient_id))
        lines.append(ledger.Line(source, Money(-share.amount_minor, currency)))
    ledger.post("payout_returned", f"payout:{payout.id}:returned", lines, memo=reason)
    now = utcnow()
    for c in payout.covered:
        pledge = covered[c.pledge_id]
        pledge.state = PledgeState.partially_refunded if pledge.refunded_minor else PledgeState.held
        pledge.closed_at = None
    for share in shares:
        share.state = ShareState.returned
    pools.unrelease_matches(payout.id)
    funds.unrelease_allotments(payout.id)
    _must_move(payout, PayoutState.returned, returned_at=now)
    payout.flagged_at, payout.flag_reason = now, _("returned / not paid: %(reason)s", reason=reason)
    db.session.flush()
    audit.record("payout.returned", "payout", payout.id, actor=f"user:{admin.id}", actor_user_id=admin.id,
                 details={"reason": reason, "gross_minor": payout.gross_minor, "fee_minor": payout.fee_minor,
                          "currency": currency, "shares": [[s.id, s.amount_minor] for s in shares]})
    for share in shares:
        if share.amount_minor:
            notices.share_event(share.id, "returned")
    propose_remaining(payout.item)
    return payout


def retry_due(now: datetime | None = None, after_each=lambda: None) -> dict[str, list[int]]:
    """Cron: execute approved payouts whose window has passed, and retry
    transfers that Stripe could not take or refused (each with its own key).

    Each payout and each share is one step; ``after_each`` runs after every
    step (the cron job commits there, so a transfer Stripe made is recorded
    at once, whatever happens to the next step).
    """
    now = now or utcnow()
    executed, retried = [], []
    for payout_id in db.session.scalars(select(Payout.id).where(
            Payout.state == PayoutState.approved, Payout.execute_after <= now).order_by(Payout.id)).all():
        if _one_unit(execute, payout_id, now):
            executed.append(payout_id)
        after_each()
    for share_id in db.session.scalars(select(PayoutShare.id).where(
            PayoutShare.state.in_([ShareState.transferring, ShareState.failed]),
            (PayoutShare.next_attempt_at.is_(None)) | (PayoutShare.next_attempt_at <= now))
            .order_by(PayoutShare.id)).all():
        retried.append(share_id)
        if _one_unit(begin_transfer, share_id, now):
            after_each()  # the attempt in flight is committed before Stripe is called
            _one_unit(transfer, share_id, now)
        after_each()
    return {"executed": executed, "retried": retried}


RECONCILE_DAYS = 40  # executed payouts younger than this are compared with Stripe's transfers


def reconcile_transfers(now: datetime | None = None, days: int = RECONCILE_DAYS) -> list[str]:
    """Cron: compare Stripe's transfers with the shares the ledger paid, per
    payout transfer group (``GET /v1/transfers?transfer_group=payout-{id}``),
    for the payouts executed in the last ``days`` days that had a Stripe share.

    A difference (a paid share without exactly one transfer of its amount to
    its account, a transfer for a share not recorded as paid, a transfer in
    the group naming no share of it) is reported: returned as sentences,
    audited (``payout.transfers_differ``) and the payout flagged for an admin.
    Nothing is paid or recorded as paid here. A payout Stripe cannot be asked
    about now is reported as such and compared on the next run.
    """
    now = now or utcnow()
    report: list[str] = []
    payouts = db.session.scalars(select(Payout).where(
        Payout.executed_at >= now - timedelta(days=days),
        Payout.id.in_(select(PayoutShare.payout_id).where(PayoutShare.rail == PayoutRail.stripe)))
        .order_by(Payout.id)).all()
    for payout in payouts:
        try:
            made = stripe_client.list_transfers(f"payout-{payout.id}")
        except (stripe_client.PaymentsUnavailable, stripe_client.TransferRefused) as exc:
            report.append(f"payout {payout.id}: Stripe could not be asked ({exc}); compared on the next run")
            continue
        differences = []
        shares = {str(share.id): share for share in payout.shares}
        by_share: dict[str, list[dict]] = {}
        for made_transfer in made:
            share_id = str((made_transfer.get("metadata") or {}).get("share_id"))
            if share_id not in shares:
                differences.append(f"transfer {made_transfer.get('id')} names no share of this payout")
                continue
            by_share.setdefault(share_id, []).append(made_transfer)
        for share_id, share in shares.items():
            found = by_share.get(share_id, [])
            account = db.session.get(PayoutAccount, share.recipient_id)
            if share.state is ShareState.paid and share.rail is PayoutRail.stripe and share.amount_minor:
                if len(found) != 1:
                    differences.append(f"share {share.id} is paid but Stripe has {len(found)} transfers for it")
                    continue
                amount = from_stripe_amount(found[0].get("amount") or 0, found[0].get("currency") or payout.currency)
                destination = account.stripe_account_id if account else None
                if (amount.amount_minor, amount.currency) != (share.amount_minor, payout.currency) \
                        or found[0].get("destination") != destination or found[0].get("id") != share.stripe_transfer_id:
                    differences.append(f"share {share.id}: paid {share.amount_minor} {payout.currency} by "
                                       f"{share.stripe_transfer_id}, Stripe has {found[0].get('id')} of "
                                       f"{amount.amount_minor} {amount.currency} to {found[0].get('destination')}")
            elif found and share.state is not ShareState.reversed:
                differences.append(f"share {share.id} is {share.state.value} but Stripe has "
                                   f"{len(found)} transfers for it ({', '.join(str(t.get('id')) for t in found)})")
        if differences:
            reason = f"Stripe's transfers differ from the paid shares: {'; '.join(differences)}"[:2000]
            if payout.flag_reason != reason:
                payout.flagged_at, payout.flag_reason = now, reason
                audit.record("payout.transfers_differ", "payout", payout.id, actor="job:reconcile_transfers",
                             details={"differences": differences})
            report.extend(f"payout {payout.id}: {difference}" for difference in differences)
    db.session.flush()
    return report


def _one_unit(func, object_id: int, now: datetime) -> bool:
    """Run one payout's or share's step in a savepoint: a fault in it is
    logged and undone, and the others go on."""
    queued = len(pending_jobs(db.session))
    try:
        with db.session.begin_nested():
            return bool(func(object_id, now))
    except Exception:  # noqa: BLE001 - one bad unit must not stop the money of the others
        del pending_jobs(db.session)[queued:]  # its jobs and e-mails go with its savepoint
        current_app.logger.exception("payout step %s(%s) failed; left for the next run", func.__name__, object_id)
        return False


# --- events that release waiting money -------------------------------------------

def connect_signals() -> None:
    """Connect the payouts' receivers to the signals of other domains (at app
    setup; connecting twice changes nothing): a certification granted releases
    the payouts waiting for it (:func:`on_certified`), money held on an item
    whose work is done is proposed (:func:`propose_remaining`)."""
    claim_signals.certified.connect(_release_for_certification, weak=False)
    pledge_signals.held_after_work_done.connect(_propose_late_money, weak=False)


def _release_for_certification(certification_obj, **_extra) -> None:
    on_certified(certification_obj.user_id)


def _propose_late_money(item: BacklogItem, **_extra) -> None:
    propose_remaining(item)


def on_certified(user_id: int) -> None:
    """``user_id`` was certified: their proposals may be approved, and shares
    that waited for the certification go to their rails."""
    now = utcnow()
    for payout in db.session.scalars(select(Payout).where(
            Payout.state == PayoutState.awaiting_certification, Payout.suggested_recipient_id == user_id)):
        if certification.is_certified(user_id, payout.item.repository.project_id, now) \
                and _move(payout, PayoutState.proposed):
            audit.record("payout.certification_arrived", "payout", payout.id, actor="payouts")
    for share in db.session.scalars(select(PayoutShare).where(
            PayoutShare.recipient_id == user_id, PayoutShare.state == ShareState.awaiting_certification)):
        if certification.is_certified(user_id, share.payout.item.repository.project_id, now):
            _route(share, now)
            _settle(share.payout)
    db.session.flush()


def on_account_updated(account_obj: dict) -> str:
    """Stripe ``account.updated``: record whether the connected account can
    receive transfers; if it now can, its waiting shares are paid (once each)."""
    account = db.session.scalar(select(PayoutAccount).where(
        PayoutAccount.stripe_account_id == account_obj.get("id")).with_for_update())
    if account is None:
        return "no payout account for this Stripe account"
    active = connect.can_receive_transfers(account_obj)
    account.transfers_active = active
    account.requirements = ", ".join(connect.missing_requirements(account_obj)) or None
    released = []
    if active:
        for share in db.session.scalars(select(PayoutShare).where(
                PayoutShare.recipient_id == account.user_id, PayoutShare.state == ShareState.awaiting_account)
                .order_by(PayoutShare.id).with_for_update()):
            share.state = ShareState.transferring
            released.append(share.id)
            db.session.flush()
            _enqueue_transfer(share)
    db.session.flush()
    return f"transfers {'active' if active else 'inactive'}; shares released {released}"


def choose_manual_rail(user_id: int, details: str) -> PayoutAccount:
    """The person is paid by the fiscal host's bank or mobile-money transfer,
    to ``details`` (their own instructions, up to 2000 characters, seen by admins only).

    Shares waiting for a Stripe account go to the manual rail now. Raises
    :class:`PayoutError` for empty or over-long details.
    """
    details = (details or "").strip()
    if not details or len(details) > 2000:
        raise PayoutError(_("Give your bank or mobile-money details (up to 2000 characters)."))
    db.session.get(User, user_id, with_for_update=True)  # serialises two submissions
    account = db.session.get(PayoutAccount, user_id, populate_existing=True)
    if account is None:
        account = PayoutAccount(user_id=user_id, rail=PayoutRail.manual)
        db.session.add(account)
    account.rail, account.manual_details = PayoutRail.manual, details
    db.session.flush()
    audit.record("payout_account.manual", "payout_account", user_id, actor=f"user:{user_id}",
                 actor_user_id=user_id)
    reroute_waiting(user_id)
    return account


def ensure_stripe_account(user: User, country: str, *, company_name: str | None = None) -> str:
    """The person's Stripe Express account id (``acct_…``): made at Stripe the
    first time (keyed by the user id there, so a retry after a lost answer gets
    the same account), then recorded with :func:`attach_stripe_account`. The
    person's row lock serialises two clicks: one account, one row. Raises
    :class:`marketplace.payments.stripe_client.PaymentsUnavailable` or
    ``TransferRefused`` when Stripe cannot make it (nothing is recorded).
    ``company_name``: the firm's legal name when ``user`` is a firm's payee
    account (the Stripe account is then the company's)."""
    db.session.get(User, user.id, with_for_update=True)
    account = db.session.get(PayoutAccount, user.id, populate_existing=True)
    if account is not None and account.stripe_account_id:
        stripe_id = account.stripe_account_id
    else:
        stripe_id = stripe_client.create_connected_account(user.id, country=country, email=user.email,
                                                           company_name=company_name)
    attach_stripe_account(user.id, stripe_id)
    return stripe_id


def attach_stripe_account(user_id: int, stripe_account_id: str) -> PayoutAccount:
    """Record the person's Stripe Express account (``acct_…``, made once per person)
    and choose the Stripe rail; transfers wait until ``account.updated`` says it can receive."""
    db.session.get(User, user_id, with_for_update=True)
    account = db.session.get(PayoutAccount, user_id, populate_existing=True)
    if account is None:
        account = PayoutAccount(user_id=user_id, rail=PayoutRail.stripe)
        db.session.add(account)
    if account.stripe_account_id != stripe_account_id:
        account.stripe_account_id = stripe_account_id
        audit.record("payout_account.stripe_created", "payout_account", user_id, actor=f"user:{user_id}",
                     actor_user_id=user_id, details={"stripe_account": stripe_account_id})
    account.rail = PayoutRail.stripe
    db.session.flush()
    reroute_waiting(user_id)
    return account


def reroute_waiting(user_id: int) -> list[int]:
    """Shares of ``user_id`` waiting for a payout account go to the rail that
    applies now (a person who chose the manual rail). A share the fiscal host
    is to pay by hand stays with it: it may be sending the money already."""
    now = utcnow()
    moved = []
    for share in db.session.scalars(select(PayoutShare).where(
            PayoutShare.recipient_id == user_id, PayoutShare.state == ShareState.awaiting_account)
            .order_by(PayoutShare.id).with_for_update()):
        before = share.state
        _route(share, now)
        _settle(share.payout)
        if share.state is not before:
            moved.append(share.id)
    return moved


def on_pledge_disputed(pledge_id: int) -> list[int]:
    """A covered pledge is disputed: approved payouts covering it are held (nothing executes)."""
    held = []
    for payout in db.session.scalars(select(Payout).join(PayoutPledge).where(
            PayoutPledge.pledge_id == pledge_id, Payout.state == PayoutState.approved).with_for_update(of=Payout)):
        _must_move(payout, PayoutState.held)
        held.append(payout.id)
        audit.record("payout.held", "payout", payout.id, actor="stripe", details={"pledge": pledge_id})
    db.session.flush()
    return held


def on_dispute_closed(pledge_id: int, *, won: bool) -> list[int]:
    """The dispute on a covered pledge closed. Won: the held payout is approved
    again (execution checks every pledge again). Lost: it goes back to
    proposed, for a maintainer to approve what is left."""
    moved = []
    for payout in db.session.scalars(select(Payout).join(PayoutPledge).where(
            PayoutPledge.pledge_id == pledge_id, Payout.state == PayoutState.held).with_for_update(of=Payout)):
        _must_move(payout, PayoutState.approved if won else PayoutState.proposed)
        moved.append(payout.id)
        audit.record("payout.dispute_closed", "payout", payout.id, actor="stripe",
                     details={"pledge": pledge_id, "won": won})
        if won:
            _schedule_execution(payout)
        else:
            notices.payout_event(payout.id, "proposed")
    db.session.flush()
    if won and not moved:
        pledge = db.session.get(Pledge, pledge_id)
        propose_remaining(pledge.item)
    return moved
