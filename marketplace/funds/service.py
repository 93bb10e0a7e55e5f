"""Project funds: their money moves, each a balanced ledger transaction keyed
by our own row ids or the provider's ids, under the fund's row lock.

- A subscriber's money arrives (:func:`receive`): a paid invoice once per
  invoice id, or a transfer the fiscal host records once per reference:
  subscriber payments → fund.
- A maintainer allots (:func:`allot`): fund → the item's escrow, decided
  under the fund's row lock with the balance read from the entries, so two
  allotments at once never take more than the fund holds. The allotment is
  attributed to the subscriptions in proportion to their parts of the
  balance (largest remainder).
- An allotment is then like a held pledge of the fund: paid out with the
  item's payout (:func:`release_allotments`), or back to the fund — never
  to the subscribers nor the platform — when the item closes without the
  work, is deleted, or its expiry passes with no active claim
  (:func:`return_item_allotments`, :func:`return_expired`).
- The project leaves the commons (:func:`close_fund`): what the fund holds
  goes back pro rata to the subscriptions of the last 12 months (each at
  most what it paid then), the rest stays with the fiscal host.

Lock order, everywhere: the item's funding row (taken by any escrow
posting), then the fund. Services flush, never commit.
"""
from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.models import Organisation, OrganisationMember, User
from marketplace.audit import service as audit
from marketplace.backlog.models import BacklogItem
from marketplace.claims.models import Claim, ClaimState
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.funds.models import (
    LIVE_SUBSCRIPTION_STATES,
    SUBSCRIPTION_ALLOWED_FROM,
    Allotment,
    AllotmentAttribution,
    AllotmentState,
    FundReceipt,
    FundReturn,
    FundReturnState,
    FundState,
    FundSubscription,
    ProjectFund,
    SubscriptionRail,
    SubscriptionState,
)
from marketplace.ledger import service as ledger
from marketplace.ledger.models import AccountKind, LedgerEntry, LedgerTransaction
from marketplace.money import MAX_MINOR, Money, exponent
from marketplace.notifications import mail
from marketplace.notifications.links import url_for_public
from marketplace.organisations.service import organisations_of
from marketplace.payouts.split import largest_remainder
from marketplace.projects.models import MemberProject, ProjectMaintainer
from marketplace.timeutil import utcnow

# Claims whose holder may not allot to the item (they would pay themselves).
CLAIMANT_STATES = (ClaimState.requested, ClaimState.approved, ClaimState.submitted, ClaimState.completed)
# Claims that keep an expired allotment on its item: the work is under way.
WORKING_CLAIM_STATES = (ClaimState.approved, ClaimState.submitted)
RETURN_WINDOW = timedelta(days=365)  # a leaving project's fund goes back to the subscriptions of the last 12 months
REASON_MAX = 300


class FundError(DomainError):
    """A fund operation that cannot be done; the message is for the person."""


# --- funds and figures ---------------------------------------------------------------

def fund_of(project: MemberProject, currency: str, *, create: bool = True) -> ProjectFund | None:
    """The project's fund in ``currency`` (ISO code), created once when ``create``
    (race-safe: two sessions creating it at once end with one row)."""
    currency = currency.upper()
    query = select(ProjectFund).where(ProjectFund.project_id == project.id, ProjectFund.currency == currency)
    fund = db.session.scalar(query)
    if fund is not None or not create:
        return fund
    exponent(currency)  # raises MoneyError for an unknown currency
    try:
        with db.session.begin_nested():
            fund = ProjectFund(project_id=project.id, currency=currency, state=FundState.open)
            db.session.add(fund)
    except IntegrityError:
        fund = db.session.scalar(query)
    return fund


def fund_account(fund: ProjectFund):
    """The fund's own ledger account (what it holds unallotted)."""
    return ledger.account(AccountKind.project_fund, fund_id=fund.id)


def fund_balance(fund: ProjectFund) -> int:
    """What the fund holds now, from the ledger entries alone (minor units of its currency)."""
    return ledger.balance(fund_account(fund), fund.currency)


def _locked(fund_id: int) -> ProjectFund:
    fund = db.session.get(ProjectFund, fund_id, with_for_update=True, populate_existing=True)
    if fund is None:
        raise FundError(_("No such fund."))
    return fund


def is_maintainer(user_id: int, project_id: int) -> bool:
    """Whether ``user_id`` maintains the project."""
    return db.session.scalar(select(ProjectMaintainer.id).where(
        ProjectMaintainer.project_id == project_id, ProjectMaintainer.user_id == user_id).limit(1)) is not None


# --- subscriptions -------------------------------------------------------------------

def subscribe(fund: ProjectFund, subscriber: User, amount_minor: int, *, rail: SubscriptionRail,
              show_name: bool = False, organisation_id: int | None = None) -> FundSubscription:
    """A monthly subscription of ``amount_minor`` (minor units of the fund's
    currency) by ``subscriber``, pending until its first money arrives. A bank
    transfer gets the reference to write on each transfer (``BF<id>-<6 hex>``);
    a card subscription opens a Stripe Checkout next
    (:func:`marketplace.funds.rails.start_checkout`). Raises :class:`FundError`
    for a closed fund, an amount not above zero, or a subscriber who already
    subscribes to this fund (for the same organisation, or for themselves).

    ``organisation_id``: subscribe for that organisation (its name is then the
    one the fund page, the attribution and the statements show); only an
    accepted member (owner or member) of a funder organisation may
    (:func:`may_subscribe_for`), else :class:`FundError` and nothing changes."""
    if organisation_id is not None and not may_subscribe_for(subscriber.id, organisation_id):
        raise FundError(_("You can subscribe for an organisation only when you are one of its members."))
    if fund.state is not FundState.open:
        raise FundError(_("This fund takes no new subscriptions."))
    if not 0 < amount_minor <= MAX_MINOR:
        raise FundError(_("The monthly amount must be more than zero."))
    same_payer = (FundSubscription.organisation_id == organisation_id if organisation_id is not None
                  else FundSubscription.organisation_id.is_(None))
    if db.session.scalar(select(FundSubscription.id).where(
            FundSubscription.fund_id == fund.id, FundSubscription.subscriber_id == subscriber.id, same_payer,
            FundSubscription.state.in_([SubscriptionState.active, SubscriptionState.paused])).limit(1)):
        raise FundError(_("You already subscribe to this fund; change it from your pledges page."))
    sub = FundSubscription(fund_id=fund.id, subscriber_id=subscriber.id, organisation_id=organisation_id,
                           amount_minor=amount_minor, currency=fund.currency, rail=rail,
                           state=SubscriptionState.pending, show_name=show_name)
    db.session.add(sub)
    db.session.flush()
    if rail is SubscriptionRail.bank_transfer:
        sub.transfer_reference = f"BF{sub.id}-{secrets.token_hex(3).upper()}"
        db.session.flush()
    audit.record("fund.subscribed", "fund_subscription", sub.id, actor=f"user:{subscriber.id}",
                 actor_user_id=subscriber.id,
                 details={"fund": fund.id, "amount_minor": amount_minor, "rail": rail.value,
                          "organisation": organisation_id})
    return sub


def organisations_to_subscribe_for(user_id: int) -> list[Organisation]:
    """The funder organisations ``user_id`` may subscribe for (accepted member: owner or member), by name."""
    return organisations_of(user_id, kind="funder")


def may_subscribe_for(user_id: int, organisation_id: int) -> bool:
    """Whether ``user_id`` may subscribe for the organisation: an accepted member of a funder organisation."""
    return db.session.scalar(select(OrganisationMember.id).join(Organisation).where(
        OrganisationMember.organisation_id == organisation_id, OrganisationMember.user_id == user_id,
        OrganisationMember.accepted_at.is_not(None), Organisation.kind == "funder").limit(1)) is not None


def move(sub: FundSubscription, to: SubscriptionState, **columns) -> bool:
    """One conditional UPDATE from an allowed state (:data:`SUBSCRIPTION_ALLOWED_FROM`);
    False when the subscription is elsewhere already. Staying put is not a move."""
    if sub.state is to:
        return False
    result = db.session.execute(
        update(FundSubscription).where(FundSubscription.id == sub.id,
                                       FundSubscription.state.in_(SUBSCRIPTION_ALLOWED_FROM[to]))
        .values(state=to, **columns).execution_options(synchronize_session=False))
    db.session.refresh(sub)
    return result.rowcount == 1


def learn_stripe_ids(sub: FundSubscription, *, subscription_id: str | None, customer_id: str | None) -> None:
    """Record Stripe's subscription and customer ids on ours (from any event that carries them)."""
    if subscription_id and sub.stripe_subscription_id is None:
        sub.stripe_subscription_id = subscription_id
    if customer_id and sub.stripe_customer_id is None:
        sub.stripe_customer_id = customer_id
    db.session.flush()


def receive(sub_id: int, external_id: str, money: Money, *, payment_intent_id: str | None = None,
            actor: str) -> bool:
    """Money for subscription ``sub_id`` reached the fund: subscriber payments −,
    fund + (key ``fund-receipt:<external_id>``), once per ``external_id`` (a Stripe
    invoice id, or ``transfer:<sub>:<reference>``). What arrived is the fund's
    money whatever the subscription's state (an invoice paid just before a
    cancellation still counts). A pending subscription becomes active.
    Returns whether this call recorded it. Raises :class:`FundError` for
    another currency or nothing received."""
    sub = db.session.get(FundSubscription, sub_id)
    fund = _locked(sub.fund_id)
    if db.session.scalar(select(FundReceipt.id).where(FundReceipt.external_id == external_id)):
        return False
    if money.currency != fund.currency or money.amount_minor <= 0:
        raise FundError(_("The fund is in %(currency)s; give what arrived in it.", currency=fund.currency))
    receipt = FundReceipt(fund_id=fund.id, subscription_id=sub.id, external_id=external_id,
                          payment_intent_id=payment_intent_id, currency=money.currency,
                          amount_minor=money.amount_minor, received_at=utcnow())
    db.session.add(receipt)
    db.session.flush()
    ledger.post("fund_received", f"fund-receipt:{external_id}", [
        ledger.Line(ledger.account(AccountKind.subscriber_payments, fund_id=fund.id), Money(-money.amount_minor,
                                                                                         money.currency)),
        ledger.Line(fund_account(fund), money),
    ], memo=f"fund {fund.id}: subscription {sub.id} paid", reference=("fund_receipt", receipt.id))
    if sub.state is SubscriptionState.pending:
        move(sub, SubscriptionState.active, started_at=utcnow())
    audit.record("fund.received", "project_fund", fund.id, actor=actor,
                 details={"subscription": sub.id, "external_id": external_id, "amount_minor": money.amount_minor})
    return True


def _own_money_left(fund: ProjectFund, subscription_id: int) -> int:
    """What of the fund's balance is still ``subscription_id``'s own money
    (minor units): its part while the fund is open; once closed, what the fund
    holds less the returns due to the other subscriptions."""
    held = max(fund_balance(fund), 0)
    if fund.state is FundState.open:
        return min(held, subscription_parts(fund).get(subscription_id, 0))
    due_to_others = int(db.session.scalar(select(func.coalesce(func.sum(FundReturn.amount_minor), 0)).where(
        FundReturn.fund_id == fund.id, FundReturn.state == FundReturnState.due,
        FundReturn.subscription_id != subscription_id)))
    return max(held - due_to_others, 0)


def take_back(receipt_id: int, key: str, amount_minor: int, *, why: str, actor: str = "stripe") -> int:
    """Stripe took back ``amount_minor`` (minor units) of a paid invoice
    (``key``: ``refund:<re_…>`` for a refund made at Stripe, ``dispute:<dp_…>``
    for a lost chargeback), once per key and never more than the invoice paid
    less what was taken back or refunded already.

    The money is gone from the fund's bank, so it leaves the books: what is
    still that subscription's own money in the fund pays it (its part, see
    :func:`subscription_parts`; in a closed fund, what is not due back to the
    others) — fund −, ``subscriber_refunds`` +, key ``fund-taken-back:<key>``
    — so the other subscribers' parts stay whole; what the fund allotted of
    it already is covered by the commons (``commons_funds`` −, key
    ``fund-taken-back:<key>:covered``) and flagged for an admin
    (``fund.taken_back_uncovered``): allotments in items' escrow are promises
    to contributors and are not clawed back. The receipt's
    ``refunded_minor`` grows by the amount, so the subscriber's part of the
    fund (attribution) and a leaving project's returns no longer count it.
    Returns the minor units taken back by this call (0: seen before)."""
    receipt = db.session.get(FundReceipt, receipt_id)
    fund = _locked(receipt.fund_id)
    tx_key = f"fund-taken-back:{key}"[:200]
    if ledger.posted(tx_key) or ledger.posted(f"{tx_key}:covered"[:200]):
        return 0
    receipt = db.session.get(FundReceipt, receipt_id, with_for_update=True, populate_existing=True)
    amount = min(amount_minor, receipt.amount_minor - receipt.refunded_minor)
    if amount <= 0:
        return 0
    from_fund = min(amount, _own_money_left(fund, receipt.subscription_id))
    covered = amount - from_fund
    to = ledger.account(AccountKind.subscriber_refunds, fund_id=fund.id)
    if from_fund:
        ledger.post("fund_taken_back", tx_key, [
            ledger.Line(fund_account(fund), Money(-from_fund, fund.currency)),
            ledger.Line(to, Money(from_fund, fund.currency)),
        ], memo=f"fund {fund.id}: {why} on {receipt.external_id}"[:500], reference=("fund_receipt", receipt.id))
    if covered:
        ledger.post("fund_taken_back_covered", f"{tx_key}:covered"[:200], [
            ledger.Line(ledger.account(AccountKind.commons_funds), Money(-covered, fund.currency)),
            ledger.Line(to, Money(covered, fund.currency)),
        ], memo=f"fund {fund.id}: {why} on {receipt.external_id}, allotted already: covered by the commons"[:500],
            reference=("fund_receipt", receipt.id))
    receipt.refunded_minor += amount
    db.session.flush()
    audit.record("fund.taken_back", "project_fund", fund.id, actor=actor,
                 details={"receipt": receipt.id, "key": key, "amount_minor": amount, "from_fund_minor": from_fund,
                          "covered_minor": covered, "why": why})
    if covered:
        audit.record("fund.taken_back_uncovered", "project_fund", fund.id, actor=actor,
                     details={"receipt": receipt.id, "key": key, "covered_minor": covered})
    return amount


def taken_back_failed(receipt_id: int, key: str, *, actor: str = "stripe") -> int:
    """A refund made at Stripe (``key`` ``refund:<re_…>``, as :func:`take_back`
    had it) failed afterwards (the card was closed…): Stripe holds its amount
    again, so the take-back is undone, once per key, under the fund's row lock —
    ``subscriber_refunds`` −, fund + what the fund paid (key
    ``fund-taken-back:<key>:failed``), commons' funds + what the commons covered
    (key ``…:failed:covered``), posted as the take-back's own kinds with the
    signs turned (the ledger check nets them) — and the receipt's ``refunded_minor`` drops by
    the amount, so the subscriber's part counts it again. Audited as
    ``fund.taken_back_failed``. Returns the minor units given back (0: nothing
    was taken back for that key, or this was undone already)."""
    receipt = db.session.get(FundReceipt, receipt_id)
    fund = _locked(receipt.fund_id)
    tx_key = f"fund-taken-back:{key}"[:200]
    undo_key = f"fund-taken-back:{key}:failed"[:200]
    if ledger.posted(undo_key) or ledger.posted(f"{undo_key}:covered"[:200]):
        return 0
    to = ledger.account(AccountKind.subscriber_refunds, fund_id=fund.id)

    def paid(posted_key: str) -> int:
        return int(db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
                                     .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
                                     .where(LedgerTransaction.idempotency_key == posted_key[:200],
                                            LedgerEntry.account_id == to.id)))

    from_fund, covered = paid(tx_key), paid(f"{tx_key}:covered")
    if from_fund + covered <= 0:
        return 0
    receipt = db.session.get(FundReceipt, receipt_id, with_for_update=True, populate_existing=True)
    why = f"fund {fund.id}: {key} failed at Stripe on {receipt.external_id}"
    if from_fund:
        ledger.post("fund_taken_back", undo_key, [
            ledger.Line(to, Money(-from_fund, fund.currency)),
            ledger.Line(fund_account(fund), Money(from_fund, fund.currency)),
        ], memo=f"{why}: back to the fund"[:500], reference=("fund_receipt", receipt.id))
    if covered:
        ledger.post("fund_taken_back_covered", f"{undo_key}:covered"[:200], [
            ledger.Line(to, Money(-covered, fund.currency)),
            ledger.Line(ledger.account(AccountKind.commons_funds), Money(covered, fund.currency)),
        ], memo=f"{why}: what the commons covered, back to it"[:500], reference=("fund_receipt", receipt.id))
    receipt.refunded_minor -= from_fund + covered
    db.session.flush()
    audit.record("fund.taken_back_failed", "project_fund", fund.id, actor=actor,
                 details={"receipt": receipt.id, "key": key, "from_fund_minor": from_fund,
                          "covered_minor": covered})
    return from_fund + covered


def record_transfer(sub_id: int, money: Money, *, reference: str, received_on: date, actor: User) -> bool:
    """The fiscal host records one month's standing transfer of a bank-transfer
    subscription (once per reference). Raises :class:`FundError` for a card
    subscription, a date in the future, no reference, or the subscriber
    recording their own transfer."""
    sub = db.session.get(FundSubscription, sub_id)
    if sub is None:
        raise FundError(_("No such subscription."))
    if sub.subscriber_id == actor.id:
        raise FundError(_("This is your own subscription: another admin records its transfers."))
    if sub.rail is not SubscriptionRail.bank_transfer:
        raise FundError(_("Card subscriptions are paid through Stripe."))
    reference = (reference or "").strip()
    if not reference:
        raise FundError(_("Give the reference of the transfer."))
    if received_on > utcnow().date():
        raise FundError(_("The date the money arrived cannot be in the future."))
    recorded = receive(sub.id, f"transfer:{sub.id}:{reference[:200]}", money, actor=f"user:{actor.id}")
    if recorded and sub.state is SubscriptionState.cancelled:
        audit.record("fund.transfer_after_cancel", "fund_subscription", sub.id, actor=f"user:{actor.id}",
                     actor_user_id=actor.id, details={"reference": reference})
    return recorded


def invoice_failed(sub_id: int, invoice_id: str) -> bool:
    """Stripe could not charge a monthly invoice: nothing moves, and the
    subscriber is told once per invoice (Stripe retries the invoice by itself).
    Returns whether they were told now."""
    sub = db.session.get(FundSubscription, sub_id, with_for_update=True, populate_existing=True)
    if sub.last_failed_invoice_id == invoice_id:
        return False  # Stripe's next attempt at the same invoice failed too: told already
    sub.last_failed_invoice_id = invoice_id
    sub.last_failed_at = utcnow()
    db.session.flush()
    audit.record("fund.invoice_failed", "fund_subscription", sub.id, actor="stripe", details={"invoice": invoice_id})
    person = sub.subscriber
    if person.email and person.email_verified_at:
        mail.send("fund_payment_failed", person.email, language=mail.language_of(person), person=person,
                  subscription=sub, project=sub.fund.project,
                  link=url_for_public("pledges.mine"))
    return True


def set_paused(sub: FundSubscription, paused: bool, *, actor: str, actor_user_id: int | None = None) -> bool:
    """Record a pause (no invoices meanwhile) or a resumption; returns whether the state moved."""
    moved = (move(sub, SubscriptionState.paused, paused_at=utcnow()) if paused
             else move(sub, SubscriptionState.active, paused_at=None))
    if moved:
        audit.record("fund.paused" if paused else "fund.resumed", "fund_subscription", sub.id, actor=actor,
                     actor_user_id=actor_user_id)
    return moved


def set_cancelled(sub: FundSubscription, *, actor: str, actor_user_id: int | None = None) -> bool:
    """Record the subscriber's cancellation: no more invoices; returns whether it moved."""
    moved = move(sub, SubscriptionState.cancelled, cancelled_at=utcnow())
    if moved:
        audit.record("fund.cancelled", "fund_subscription", sub.id, actor=actor, actor_user_id=actor_user_id)
    return moved


def set_ended(sub: FundSubscription, *, actor: str) -> bool:
    """Stripe ended the subscription (``customer.subscription.deleted``), or the fund closed: for good."""
    moved = move(sub, SubscriptionState.ended, ended_at=utcnow())
    if moved:
        audit.record("fund.subscription_ended", "fund_subscription", sub.id, actor=actor)
    return moved


# --- attribution ---------------------------------------------------------------------

def subscription_parts(fund: ProjectFund) -> dict[int, int]:
    """subscription id → its part of what the fund holds now (minor units):
    what it paid in (less what Stripe took back of it, :func:`take_back`), less its
    attributions still allotted or paid out. The
    parts add up to the fund's balance while the fund is open."""
    received = dict(db.session.execute(
        select(FundReceipt.subscription_id, func.sum(FundReceipt.amount_minor - FundReceipt.refunded_minor))
        .where(FundReceipt.fund_id == fund.id).group_by(FundReceipt.subscription_id)).all())
    taken = dict(db.session.execute(
        select(AllotmentAttribution.subscription_id, func.sum(AllotmentAttribution.amount_minor))
        .join(Allotment, Allotment.id == AllotmentAttribution.allotment_id)
        .where(Allotment.fund_id == fund.id, Allotment.state.in_([AllotmentState.held, AllotmentState.released]))
        .group_by(AllotmentAttribution.subscription_id)).all())
    parts = {sub_id: int(total) - int(taken.get(sub_id, 0)) for sub_id, total in received.items()}
    return {sub_id: part for sub_id, part in sorted(parts.items()) if part > 0}


def attribute(parts: dict[int, int], amount_minor: int) -> dict[int, int]:
    """``amount_minor`` divided among subscriptions in proportion to their
    ``parts`` (by subscription id), by largest remainder (earlier id first on
    a tie): the shares add up to ``amount_minor`` exactly, each at most its part
    when the amount is at most their sum. 25.00 of parts 20.00 + 10.00 is
    16.67 + 8.33. Shares of zero are left out."""
    ids = [sub_id for sub_id, part in parts.items() if part > 0]
    if not ids or amount_minor <= 0:
        return {}
    shares = largest_remainder(amount_minor, [parts[sub_id] for sub_id in ids])
    return {sub_id: share for sub_id, share in zip(ids, shares) if share}


# --- allotments ----------------------------------------------------------------------

def allotment_refusal(fund: ProjectFund, item: BacklogItem, maintainer: User) -> str | None:
    """Why ``maintainer`` cannot allot from ``fund`` to ``item`` (for the person), or None."""
    if fund.state is not FundState.open:
        return _("This fund is closed.")
    if not is_maintainer(maintainer.id, fund.project_id):
        return _("Only a maintainer of the project allots its fund.")
    if item.repository.project_id != fund.project_id:
        return _("The item belongs to another project.")
    if item.hidden or item.work_done:
        return _("The item takes no new money: it is solved, closed or not public.")
    if db.session.scalar(select(Claim.id).where(Claim.item_id == item.id, Claim.claimant_id == maintainer.id,
                                                Claim.state.in_(CLAIMANT_STATES)).limit(1)):
        return _("You claimed this item yourself: another maintainer decides what the fund gives it.")
    return None


def allot(fund_id: int, item: BacklogItem, amount_minor: int, *, reason: str, maintainer: User,
          request_key: str | None = None) -> Allotment:
    """A maintainer allots ``amount_minor`` of the fund to ``item``: fund −,
    escrow + (key ``fund-allotment:<id>``), attributed to the subscriptions
    (:func:`attribute`). Under the fund's row lock the balance is read from
    the entries, so of two allotments taking the last money at once the
    second waits and is refused. ``request_key`` (the form's one-time token)
    makes a repeated submission return the first allotment. Raises
    :class:`FundError` (refused; see :func:`allotment_refusal`; more than the fund holds)."""
    reason = " ".join((reason or "").split())
    if request_key:
        earlier = db.session.scalar(select(Allotment).where(Allotment.request_key == request_key))
        if earlier is not None:
            return earlier
    if not reason:
        raise FundError(_("Give a short public reason."))
    if len(reason) > REASON_MAX:
        raise FundError(_("Keep the reason under %(count)s characters.", count=REASON_MAX))
    if amount_minor <= 0:
        raise FundError(_("The amount must be more than zero."))
    currency = db.session.get(ProjectFund, fund_id).currency
    # The item's row first, re-read: a close, deletion or merge being written by
    # another worker (its UPDATE holds this row) is seen once it commits, so no
    # allotment lands on an item that just closed; and a close that comes after
    # waits for this allotment and then finds it to give back.
    item = db.session.get(BacklogItem, item.id, with_for_update=True, populate_existing=True)
    ledger.funding_row(item.id, currency)  # the escrow's lock next, as every escrow posting takes it
    fund = _locked(fund_id)
    refusal = allotment_refusal(fund, item, maintainer)
    if refusal:
        raise FundError(refusal)
    holds = fund_balance(fund)
    if amount_minor > holds:
        raise FundError(_("The fund holds %(amount)s minor units of %(currency)s; allot at most that.",
                          amount=holds, currency=fund.currency))
    now = utcnow()
    allotment = Allotment(fund_id=fund.id, item_id=item.id, maintainer_id=maintainer.id, currency=fund.currency,
                          amount_minor=amount_minor, reason=reason, request_key=request_key or None,
                          state=AllotmentState.held, created_at=now,
                          expires_at=now + timedelta(days=fund.allotment_expiry_days))
    db.session.add(allotment)
    db.session.flush()
    for sub_id, share in attribute(subscription_parts(fund), amount_minor).items():
        db.session.add(AllotmentAttribution(allotment_id=allotment.id, subscription_id=sub_id, amount_minor=share))
    ledger.post("fund_allotment", f"fund-allotment:{allotment.id}", [
        ledger.Line(fund_account(fund), Money(-amount_minor, fund.currency)),
        ledger.Line(ledger.account(AccountKind.item_escrow, item_id=item.id), Money(amount_minor, fund.currency)),
    ], memo=f"fund {fund.id} allots to item {item.id}", reference=("fund_allotment", allotment.id))
    db.session.flush()
    audit.record("fund.allotted", "project_fund", fund.id, actor=f"user:{maintainer.id}",
                 actor_user_id=maintainer.id,
                 details={"allotment": allotment.id, "item": item.id, "amount_minor": amount_minor, "reason": reason})
    return allotment


def held_allotments(item_id: int, currency: str) -> list[Allotment]:
    """The item's allotments in ``currency`` still in its escrow (paid out with its next payout), by id."""
    return list(db.session.scalars(
        select(Allotment).where(Allotment.item_id == item_id, Allotment.currency == currency,
                                Allotment.state == AllotmentState.held).order_by(Allotment.id)
        .execution_options(populate_existing=True)))


def held_currencies(item_id: int) -> list[str]:
    """Currencies in which the item's escrow holds allotments."""
    return sorted(set(db.session.scalars(select(Allotment.currency).where(
        Allotment.item_id == item_id, Allotment.state == AllotmentState.held))))


def release_allotments(payout_id: int, allotments: list[Allotment]) -> None:
    """The payout ``payout_id`` paid these allotments out (the usual fee, the rest to its recipients)."""
    for allotment in allotments:
        allotment.state, allotment.payout_id = AllotmentState.released, payout_id
    db.session.flush()


def unrelease_allotments(payout_id: int) -> None:
    """The payout ``payout_id`` came back into escrow: its allotments are held again."""
    for allotment in db.session.scalars(select(Allotment).where(Allotment.payout_id == payout_id,
                                                                Allotment.state == AllotmentState.released)):
        allotment.state, allotment.payout_id = AllotmentState.held, None
    db.session.flush()


def _give_back(allotment: Allotment, *, why: str) -> int:
    """The allotment goes from its item's escrow back to its fund, whole (key
    ``fund-allotment:<id>:returned``); its attributions are the subscribers'
    parts of the fund again. Returns the minor units given back (0: not held)."""
    fund = _locked(allotment.fund_id)
    db.session.refresh(allotment)
    if allotment.state is not AllotmentState.held:
        return 0
    ledger.post("fund_allotment_returned", f"fund-allotment:{allotment.id}:returned", [
        ledger.Line(ledger.account(AccountKind.item_escrow, item_id=allotment.item_id),
                    Money(-allotment.amount_minor, allotment.currency)),
        ledger.Line(fund_account(fund), Money(allotment.amount_minor, allotment.currency)),
    ], memo=f"allotment {allotment.id} back to fund {fund.id}: {why}"[:500],
        reference=("fund_allotment_returned", allotment.id))
    allotment.state, allotment.returned_at, allotment.return_reason = AllotmentState.returned, utcnow(), why[:200]
    db.session.flush()
    audit.record("fund.allotment_returned", "project_fund", fund.id, actor="funds",
                 details={"allotment": allotment.id, "amount_minor": allotment.amount_minor, "why": why})
    return allotment.amount_minor


def return_item_allotments(item: BacklogItem, *, why: str) -> int:
    """The item closed without the work (not planned, duplicate, moved,
    deleted, withheld): every allotment it holds goes back to its fund at
    once (never to the subscribers). Returns the minor units given back."""
    # Read after the escrow locks: an allotment committed while this waited is
    # seen (read again until the set of currencies to lock stops growing).
    locked: set[str] = set()
    while True:
        allotments = list(db.session.scalars(select(Allotment).where(
            Allotment.item_id == item.id, Allotment.state == AllotmentState.held).order_by(Allotment.id)
            .execution_options(populate_existing=True)))
        currencies = {a.currency for a in allotments}
        if currencies <= locked:
            break
        for currency in sorted(currencies - locked):
            ledger.funding_row(item.id, currency)
        locked |= currencies
    return sum(_give_back(allotment, why=why) for allotment in allotments)


def return_expired(now: datetime | None = None) -> list[int]:
    """Cron: allotments past their expiry whose item is not solved and holds no
    approved or submitted claim (none, or it lapsed) go back to their fund.
    Idempotent. Returns the ids of the allotments returned."""
    now = now or utcnow()
    working = select(Claim.id).where(Claim.item_id == Allotment.item_id,
                                     Claim.state.in_(WORKING_CLAIM_STATES)).exists()
    returned = []
    for allotment in db.session.scalars(select(Allotment).where(
            Allotment.state == AllotmentState.held, Allotment.expires_at <= now, ~working)
            .order_by(Allotment.id)).all():
        item = allotment.item
        if item.solved_by_id is not None:
            continue  # solved: its payout takes the allotment
        ledger.funding_row(item.id, allotment.currency)
        if _give_back(allotment, why="expired with no claim at work"):
            returned.append(allotment.id)
    return returned


# --- a project leaving the commons ---------------------------------------------------

def close_fund(fund_id: int, *, actor: User) -> list[FundReturn]:
    """The project left the commons: the fund closes (no subscriptions, no
    allotments; live subscriptions end — card ones are cancelled at Stripe by
    :func:`marketplace.funds.rails.end_at_stripe`), and what it holds now is
    divided pro rata among the subscriptions that paid in the last 12 months
    (each at most what it paid then, by largest remainder); the rest goes to
    the fiscal host (``fund_kept``, key ``fund:<id>:kept-<n>``). Each share is
    a :class:`FundReturn` due: card ones are refunded at Stripe
    (:func:`marketplace.funds.rails.refund_return`), transfers recorded by
    the fiscal host (:func:`record_return`). Run again (money that came back
    to a closed fund from an allotment), it divides what arrived since.
    Returns the returns made by this call."""
    fund = _locked(fund_id)
    if not actor.is_admin:
        raise FundError(_("Only the fiscal host closes a fund."))
    now = utcnow()
    if fund.state is FundState.open:
        fund.state, fund.closed_at = FundState.closed, now
        for sub in db.session.scalars(select(FundSubscription).where(
                FundSubscription.fund_id == fund.id, FundSubscription.state.in_(LIVE_SUBSCRIPTION_STATES))):
            set_ended(sub, actor=f"user:{actor.id}")
        audit.record("fund.closed", "project_fund", fund.id, actor=f"user:{actor.id}", actor_user_id=actor.id)
    due = db.session.scalar(select(func.coalesce(func.sum(FundReturn.amount_minor), 0)).where(
        FundReturn.fund_id == fund.id, FundReturn.state == FundReturnState.due))
    holds = fund_balance(fund) - int(due)
    if holds <= 0:
        db.session.flush()
        return []
    number = 1 + int(db.session.scalar(select(func.coalesce(func.max(FundReturn.number), 0)).where(
        FundReturn.fund_id == fund.id)))
    paid = dict(db.session.execute(
        select(FundReceipt.subscription_id, func.sum(FundReceipt.amount_minor - FundReceipt.refunded_minor))
        .where(FundReceipt.fund_id == fund.id, FundReceipt.received_at >= now - RETURN_WINDOW)
        .group_by(FundReceipt.subscription_id).order_by(FundReceipt.subscription_id)).all())
    paid = {sub_id: int(total) for sub_id, total in paid.items() if total}
    back = attribute(paid, min(holds, sum(paid.values())))
    made = []
    for sub_id, amount in back.items():
        sub = db.session.get(FundSubscription, sub_id)
        row = FundReturn(fund_id=fund.id, subscription_id=sub_id, number=number, rail=sub.rail,
                         currency=fund.currency, amount_minor=amount, state=FundReturnState.due)
        db.session.add(row)
        made.append(row)
    kept = holds - sum(back.values())
    if kept > 0:
        ledger.post("fund_kept", f"fund:{fund.id}:kept-{number}", [
            ledger.Line(fund_account(fund), Money(-kept, fund.currency)),
            ledger.Line(ledger.account(AccountKind.fund_kept, fund_id=fund.id), Money(kept, fund.currency)),
        ], memo=f"fund {fund.id}: kept by the fiscal host under the terms", reference=("fund_kept", fund.id))
    db.session.flush()
    audit.record("fund.returns_due", "project_fund", fund.id, actor=f"user:{actor.id}", actor_user_id=actor.id,
                 details={"pass": number, "returns": [[r.subscription_id, r.amount_minor] for r in made],
                          "kept_minor": kept})
    return made


def book_return(row: FundReturn, reference: str) -> bool:
    """A due return went back to its subscriber (``reference``: the refund ids or
    the transfer's reference): fund −, subscriber returns + (key
    ``fund-return:<id>``), once. Returns whether this call booked it."""
    _locked(row.fund_id)
    db.session.refresh(row)
    if row.state is not FundReturnState.due:
        return False
    ledger.post("fund_returned", f"fund-return:{row.id}", [
        ledger.Line(fund_account(row.subscription.fund), Money(-row.amount_minor, row.currency)),
        ledger.Line(ledger.account(AccountKind.subscriber_returns, fund_id=row.fund_id),
                    Money(row.amount_minor, row.currency)),
    ], memo=f"fund {row.fund_id}: back to subscription {row.subscription_id}", reference=("fund_return", row.id))
    row.state, row.reference, row.returned_at = FundReturnState.returned, reference[:300], utcnow()
    db.session.flush()
    return True


def return_refund_failed(return_id: int, refund_id: str, amount_minor: int, *, reason: str | None,
                         actor: str = "stripe") -> FundReturn | None:
    """Stripe reports that ``refund_id``, one of the card refunds that paid the
    booked return ``return_id``, failed (the card was closed…): its
    ``amount_minor`` (minor units of the fund's currency) is back on the
    commons' Stripe balance and still owed to the subscriber.

    Once per refund id, under the fund's row lock: the booking is undone for
    that amount — subscriber returns −, fund + (key
    ``fund-return-refund:<refund id>:failed``) — so the fund holds the money
    again, and a new :class:`FundReturn` of it, due, by bank transfer (its
    ``reference`` the failed refund's id), goes to the fiscal host's list
    (``/funds/host``) to be sent back by bank (:func:`record_return`); the
    due return keeps a later pass of :func:`close_fund` from dividing it
    again. The failed return's amount drops to what did go back (state
    ``failed`` when nothing did). The invoices' ``refunded_minor`` stay as
    they are: their card is not refunded a second time, and a later
    chargeback cannot take the same money twice. Audited as
    ``fund.return_refund_failed``, the subscriber is told by e-mail.

    Returns the new due return (None: this failure was recorded already).
    Raises :class:`FundError` when the return is not booked yet (the caller
    waits for its booking), does not name the refund, or is smaller than the
    failed amount."""
    row = db.session.get(FundReturn, return_id)
    if row is None:
        raise FundError(_("No such return."))
    fund = _locked(row.fund_id)
    key = f"fund-return-refund:{refund_id}:failed"[:200]
    if ledger.posted(key):
        return None
    row = db.session.get(FundReturn, return_id, with_for_update=True, populate_existing=True)
    if row.state is FundReturnState.due:
        raise FundError(f"return {row.id} is not booked yet; refund {refund_id} failed")
    if refund_id not in (row.reference or "").split(", "):
        raise FundError(f"refund {refund_id} did not pay return {row.id}")
    if not 0 < amount_minor <= row.amount_minor:
        raise FundError(f"refund {refund_id} of {amount_minor} does not fit return {row.id} of {row.amount_minor}")
    ledger.post("fund_return_failed", key, [
        ledger.Line(ledger.account(AccountKind.subscriber_returns, fund_id=fund.id),
                    Money(-amount_minor, row.currency)),
        ledger.Line(fund_account(fund), Money(amount_minor, row.currency)),
    ], memo=f"fund {fund.id}: card refund {refund_id} of return {row.id} failed, owed to subscription "
            f"{row.subscription_id}"[:500], reference=("fund_return", row.id))
    if amount_minor == row.amount_minor:
        row.state = FundReturnState.failed
    else:
        row.amount_minor -= amount_minor
    number = 1 + int(db.session.scalar(select(func.coalesce(func.max(FundReturn.number), 0)).where(
        FundReturn.fund_id == fund.id)))
    owed = FundReturn(fund_id=fund.id, subscription_id=row.subscription_id, number=number,
                      rail=SubscriptionRail.bank_transfer, currency=row.currency, amount_minor=amount_minor,
                      state=FundReturnState.due, reference=refund_id[:300])
    db.session.add(owed)
    db.session.flush()
    audit.record("fund.return_refund_failed", "fund_return", row.id, actor=actor,
                 details={"refund_id": refund_id, "amount_minor": amount_minor, "reason": reason,
                          "owed_return": owed.id})
    _tell_subscriber_refund_failed(owed)
    return owed


def _tell_subscriber_refund_failed(owed: FundReturn) -> None:
    person = owed.subscription.subscriber
    if not person.email:
        return
    mail.send("fund_refund_failed", person.email, language=mail.language_of(person), person=person, owed=owed,
              project=owed.subscription.fund.project.name,
              link=url_for_public("funds.subscription", sub_id=owed.subscription_id))


def record_return(return_id: int, *, reference: str, actor: User) -> bool:
    """The fiscal host sent a due return back by bank transfer (or another way
    when a card refund cannot be made). Raises :class:`FundError` without a
    reference, or for the subscriber recording their own."""
    row = db.session.get(FundReturn, return_id)
    if row is None:
        raise FundError(_("No such return."))
    if row.subscription.subscriber_id == actor.id:
        raise FundError(_("This is your own subscription: another admin records what went back to you."))
    if not (reference or "").strip():
        raise FundError(_("Give the reference of the transfer back."))
    booked = book_return(row, reference.strip())
    if booked:
        audit.record("fund.returned", "fund_return", row.id, actor=f"user:{actor.id}", actor_user_id=actor.id,
                     details={"reference": reference.strip(), "amount_minor": row.amount_minor})
    return booked
