"""Claims: requested by implementors, decided by maintainers, submitted when
their pull/merge request closes the item, lapsed past their deadline.

Every state change is one conditional UPDATE on the current state (a second
click, a racing maintainer or a retried job finds the claim moved and
changes nothing). Services flush, never commit; e-mail goes after commit.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.models import ForgeIdentity, OrganisationMember, User
from marketplace.audit import service as audit
from marketplace.backlog.models import (
    BacklogItem,
    ItemLink,
    ItemLinkKind,
    PullRequest,
    PullRequestState,
)
from marketplace.claims import signals
from marketplace.claims.models import (
    ACTIVE_CLAIM_STATES,
    CLAIM_ALLOWED_FROM,
    HOLDING_CLAIM_STATES,
    Claim,
    ClaimState,
)
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.notifications import notices as notify
from marketplace.projects.queries import has_maintainer
from marketplace.timeutil import utcnow

MAX_PLAN_LENGTH = 5000
MAX_DEADLINE = timedelta(days=365)


class ClaimError(DomainError):
    """A claim operation that cannot be done; the message is for the person."""


def item_is_solved(item: BacklogItem) -> bool:
    """Solved: a merged change closes it, or it is closed (completed or not planned)."""
    return item.work_done


def active_count(user_id: int) -> int:
    """How many requested, approved or submitted claims ``user_id`` holds."""
    return db.session.scalar(select(func.count(Claim.id)).where(
        Claim.claimant_id == user_id, Claim.state.in_(ACTIVE_CLAIM_STATES)))


def request_claim(item: BacklogItem, user: User, *, plan: str, estimate_days: int, deadline: date,
            organisation_id: int | None = None, today: date | None = None) -> Claim:
    """``user`` asks to do ``item``: a requested claim.

    ``deadline`` is a UTC date from today + ``estimate_days`` (calendar days,
    so the estimate fits) to a year ahead; ``estimate_days`` 1–365.
    Raises :class:`ClaimError` when the person is not an implementor,
    the item is solved, hidden or already claimed by them, their active
    claims reach ``CLAIM_ACTIVE_LIMIT``, or the firm is not theirs. The
    person's row is locked while counting, so two requests at once cannot
    both pass the cap.
    """
    today = today or utcnow().date()
    if not user.is_implementor:
        raise ClaimError(_("Only implementors can claim items. Choose the implementor role in your settings."))
    if item.hidden or item.deleted_at is not None:
        raise ClaimError(_("This item cannot be claimed."))
    if item_is_solved(item):
        raise ClaimError(_("This item is already solved or closed; it cannot be claimed."))
    if not has_maintainer(item.repository.project_id):
        raise ClaimError(_("Nobody can approve claims or payouts for this project yet: it has no maintainer. "
                           "This item cannot be claimed until it has one."))
    plan = (plan or "").strip()
    if not plan or len(plan) > MAX_PLAN_LENGTH:
        raise ClaimError(_("Describe your plan in 1 to %(most)d characters.", most=MAX_PLAN_LENGTH))
    if not isinstance(estimate_days, int) or not 1 <= estimate_days <= 365:
        raise ClaimError(_("The estimate must be 1 to 365 days."))
    if not today <= deadline <= today + MAX_DEADLINE:
        raise ClaimError(_("The deadline must be between today and one year from today."))
    if deadline < today + timedelta(days=estimate_days):
        raise ClaimError(_("A deadline of %(deadline)s leaves less time than your estimate of %(days)d days: "
                           "choose %(earliest)s or later, or a shorter estimate.",
                           deadline=format_date(deadline), days=estimate_days,
                           earliest=format_date(today + timedelta(days=estimate_days))))
    if organisation_id is not None and db.session.scalar(select(OrganisationMember.id).where(
            OrganisationMember.organisation_id == organisation_id, OrganisationMember.user_id == user.id,
            OrganisationMember.accepted_at.is_not(None))) is None:
        raise ClaimError(_("You can claim for an implementor firm only when you are one of its members."))
    db.session.get(User, user.id, with_for_update=True)  # serialises this person's claims
    if db.session.scalar(select(Claim.id).where(Claim.item_id == item.id, Claim.claimant_id == user.id,
                                                Claim.state.in_(ACTIVE_CLAIM_STATES))):
        raise ClaimError(_("You already have an open claim on this item."))
    limit = current_app.config["CLAIM_ACTIVE_LIMIT"]
    if active_count(user.id) >= limit:
        raise ClaimError(_("You already have %(limit)d open claims, the most one person may hold. "
                           "Finish or withdraw one first.", limit=limit))
    signals.requesting.send(item, user=user)  # may refuse (training: one active training claim)
    claim = Claim(item_id=item.id, claimant_id=user.id, organisation_id=organisation_id, plan=plan,
                  estimate_days=estimate_days, deadline=deadline, state=ClaimState.requested)
    db.session.add(claim)
    db.session.flush()
    signals.requested.send(claim)
    audit.record("claim.requested", "claim", claim.id, actor=f"user:{user.id}", actor_user_id=user.id,
                 details={"item": item.id, "deadline": deadline.isoformat(), "estimate_days": estimate_days})
    notify.claim_event(claim.id, "requested")
    return claim


def _move(claim: Claim, to: ClaimState, **values) -> bool:
    """One conditional UPDATE from an allowed state; False when the claim had moved already."""
    result = db.session.execute(
        update(Claim).where(Claim.id == claim.id, Claim.state.in_(CLAIM_ALLOWED_FROM[to]))
        .values(state=to, **values).execution_options(synchronize_session=False))
    db.session.expire(claim)
    return result.rowcount == 1


def approve(claim: Claim, *, maintainer: User, note: str | None = None) -> None:
    """A maintainer lets the claimant do the item.

    One approved claim per item unless the item is open to a team: the unique
    ``holding_item_id`` refuses a second, even from a racing session. Raises
    :class:`ClaimError` when the claim is not requested, the item is solved,
    or another claim holds it, and when the maintainer is the claimant
    (another maintainer or an admin decides: nobody approves their own claim).
    """
    if claim.claimant_id == maintainer.id:
        raise ClaimError(_("This is your own claim: another maintainer or an admin decides on it."))
    signals.approving.send(claim, decider=maintainer)  # may refuse (training: its mentor approves)
    item = claim.item
    if item_is_solved(item):
        raise ClaimError(_("This item is already solved or closed."))
    holding = None if item.open_to_team else item.id
    try:
        with db.session.begin_nested():
            moved = _move(claim, ClaimState.approved, holding_item_id=holding, decided_by_id=maintainer.id,
                          decided_at=utcnow(), decision_note=note)
    except IntegrityError:
        raise ClaimError(_("Another claim on this item is approved already. Reassign it, or open the item "
                           "to a team.")) from None
    if not moved:
        raise ClaimError(_("This claim was decided already."))
    audit.record("claim.approved", "claim", claim.id, actor=f"user:{maintainer.id}", actor_user_id=maintainer.id)
    notify.claim_event(claim.id, "approved")


def reject(claim: Claim, *, maintainer: User, note: str | None = None) -> None:
    """A maintainer refuses a claim (or ends an approved one). Raises :class:`ClaimError` if it is
    closed, or if it is the maintainer's own (they withdraw it instead)."""
    if claim.claimant_id == maintainer.id:
        raise ClaimError(_("This is your own claim: withdraw it instead, or let another maintainer decide."))
    if not _move(claim, ClaimState.rejected, holding_item_id=None, decided_by_id=maintainer.id,
                 decided_at=utcnow(), decision_note=note, closed_at=utcnow()):
        raise ClaimError(_("This claim is closed already."))
    audit.record("claim.rejected", "claim", claim.id, actor=f"user:{maintainer.id}", actor_user_id=maintainer.id,
                 details={"note": note})
    notify.claim_event(claim.id, "rejected")


def withdraw(claim: Claim, *, user: User) -> None:
    """The claimant gives the item up. Raises :class:`ClaimError` if it is closed or not theirs."""
    if claim.claimant_id != user.id:
        raise ClaimError(_("Only the claimant can withdraw a claim."))
    if not _move(claim, ClaimState.withdrawn, holding_item_id=None, closed_at=utcnow()):
        raise ClaimError(_("This claim is closed already."))
    audit.record("claim.withdrawn", "claim", claim.id, actor=f"user:{user.id}", actor_user_id=user.id)


def reassign(claim: Claim, to: User, *, maintainer: User, note: str | None = None) -> Claim:
    """A maintainer moves an approved (or submitted) claim to another implementor.

    The old claim ends as rejected ("reassigned"); ``to``'s requested claim on
    the item is approved, or an approved claim is made for them with the old
    deadline. Audited with both claims. Returns the claim now holding the
    item. Raises :class:`ClaimError`, also when the maintainer would give
    the claim to themselves or take it from themselves.
    """
    if maintainer.id in (to.id, claim.claimant_id):
        raise ClaimError(_("You cannot move a claim to or from yourself: another maintainer or an admin does."))
    if claim.state not in HOLDING_CLAIM_STATES:
        raise ClaimError(_("Only an approved claim can be reassigned."))
    if not to.is_implementor:
        raise ClaimError(_("The new claimant must be an implementor."))
    if to.id == claim.claimant_id:
        raise ClaimError(_("The claim is theirs already."))
    db.session.get(User, to.id, with_for_update=True)
    limit = current_app.config["CLAIM_ACTIVE_LIMIT"]
    has_request = db.session.scalar(select(Claim.id).where(
        Claim.item_id == claim.item_id, Claim.claimant_id == to.id, Claim.state == ClaimState.requested))
    if active_count(to.id) - (1 if has_request else 0) >= limit:
        raise ClaimError(_("%(name)s already has %(limit)d open claims, the most one person may hold.",
                           name=to.display_name, limit=limit))
    item = claim.item
    deadline = claim.deadline
    if not _move(claim, ClaimState.rejected, holding_item_id=None, decided_by_id=maintainer.id,
                 decided_at=utcnow(), decision_note=note or f"reassigned to {to.display_name}", closed_at=utcnow()):
        raise ClaimError(_("This claim is closed already."))
    db.session.flush()
    target = db.session.scalar(select(Claim).where(Claim.item_id == item.id, Claim.claimant_id == to.id,
                                                   Claim.state == ClaimState.requested))
    if target is None:
        target = Claim(item_id=item.id, claimant_id=to.id, plan=f"Reassigned from claim {claim.id}.",
                       estimate_days=claim.estimate_days, deadline=deadline, state=ClaimState.requested)
        db.session.add(target)
        db.session.flush()
    approve(target, maintainer=maintainer, note=note)
    audit.record("claim.reassigned", "claim", claim.id, actor=f"user:{maintainer.id}", actor_user_id=maintainer.id,
                 details={"from_user": claim.claimant_id, "to_user": to.id, "new_claim": target.id, "note": note})
    notify.claim_event(claim.id, "rejected")
    return target


def set_open_to_team(item: BacklogItem, open_: bool, *, maintainer: User) -> None:
    """Allow (or stop allowing) several approved claims on ``item``.

    Closing it again is refused while more than one claim holds the item.
    Raises :class:`ClaimError`.
    """
    holders = db.session.scalars(select(Claim).where(
        Claim.item_id == item.id, Claim.state.in_(HOLDING_CLAIM_STATES))).all()
    if not open_ and len(holders) > 1:
        raise ClaimError(_("Several claims are approved on this item; end all but one first."))
    item.open_to_team = open_
    for claim in holders:
        claim.holding_item_id = None if open_ else item.id
    db.session.flush()
    audit.record("item.open_to_team" if open_ else "item.closed_to_team", "backlog_item", item.id,
                 actor=f"user:{maintainer.id}", actor_user_id=maintainer.id)


def claimant_ids_for(pull: PullRequest) -> set[int]:
    """Accounts whose verified forge identity authored ``pull`` (matched by numeric forge id, never by login)."""
    if pull.author_forge_id is None or pull.author_deleted:
        return set()
    return set(db.session.scalars(select(ForgeIdentity.user_id).where(
        ForgeIdentity.host == pull.forge_host, ForgeIdentity.forge_user_id == pull.author_forge_id)))


def holding_claim_of_author(item: BacklogItem, pull: PullRequest | None) -> Claim | None:
    """The approved/submitted claim on ``item`` whose claimant authored ``pull``, if any."""
    if pull is None:
        return None
    authors = claimant_ids_for(pull)
    if not authors:
        return None
    return db.session.scalar(select(Claim).where(
        Claim.item_id == item.id, Claim.state.in_(HOLDING_CLAIM_STATES), Claim.claimant_id.in_(authors))
        .order_by(Claim.id).limit(1))


def unverified_solver(claim: Claim) -> PullRequest | None:
    """The merged change that solved ``claim``'s item when its author has no
    verified forge identity here, so it cannot count for the claim (we match
    by the numeric forge id of a connected account, never by login); None
    otherwise. Shown on the claim page with how to fix it."""
    if claim.state not in HOLDING_CLAIM_STATES:
        return None
    pull = claim.item.solved_by
    if pull is None or claimant_ids_for(pull):
        return None
    return pull


def tell_unverified_author(item: BacklogItem) -> list[int]:
    """``item`` was just solved by a merged change whose author has no
    verified forge identity: each claimant holding the item is told why it
    does not count for their claim and how to fix it. Returns the claim ids told."""
    pull = item.solved_by
    if pull is None or claimant_ids_for(pull):
        return []
    told = []
    for claim in db.session.scalars(select(Claim).where(
            Claim.item_id == item.id, Claim.state.in_(HOLDING_CLAIM_STATES)).order_by(Claim.id)):
        notify.claim_event(claim.id, "unverified_author")
        told.append(claim.id)
    return told


def holding_claims_of(item: BacklogItem, user_ids: list[int]) -> list[Claim]:
    """The approved or submitted claims on ``item`` of the people ``user_ids``, oldest first."""
    return list(db.session.scalars(select(Claim).where(
        Claim.item_id == item.id, Claim.state.in_(HOLDING_CLAIM_STATES), Claim.claimant_id.in_(user_ids))
        .order_by(Claim.id)))


def on_links(pull: PullRequest) -> list[int]:
    """Sync saw ``pull`` (open or merged) closing items: the authors' approved
    claims on them become submitted. Returns the claim ids moved."""
    if pull.state is PullRequestState.closed:
        return []
    item_ids = [link.item_id for link in pull.links
                if link.item_id and link.kind is ItemLinkKind.closes and not link.removed]
    moved = []
    for item_id in item_ids:
        claim = holding_claim_of_author(db.session.get(BacklogItem, item_id), pull)
        if claim is not None and claim.state is ClaimState.approved:
            if _move(claim, ClaimState.submitted, pull_request_id=pull.id):
                audit.record("claim.submitted", "claim", claim.id, actor="sync",
                             details={"pull_request": pull.id})
                moved.append(claim.id)
    return moved


def complete(claim: Claim, pull_request_id: int | None = None) -> bool:
    """The claimant's change (``pull_request_id``) merged and a payout was proposed to them."""
    values = {"pull_request_id": pull_request_id} if pull_request_id else {}
    moved = _move(claim, ClaimState.completed, holding_item_id=None, closed_at=utcnow(), **values)
    if moved:
        audit.record("claim.completed", "claim", claim.id, actor="sync")
        signals.completed.send(claim)
    return moved


def cancel_for_item(item: BacklogItem, why: str, *, actor: str) -> list[int]:
    """The item ended without the work (closed as not planned, duplicate,
    moved or unknown; deleted; kept private): its active claims are
    cancelled and each claimant is told ``why``. Returns the claim ids moved."""
    moved = []
    for claim in db.session.scalars(select(Claim).where(
            Claim.item_id == item.id, Claim.state.in_(ACTIVE_CLAIM_STATES)).order_by(Claim.id)).all():
        if _move(claim, ClaimState.cancelled, holding_item_id=None, closed_at=utcnow(), decision_note=why):
            audit.record("claim.cancelled", "claim", claim.id, actor=actor, details={"why": why})
            notify.claim_event(claim.id, "cancelled")
            moved.append(claim.id)
    return moved


def warn_lapsing(now: datetime | None = None) -> list[int]:
    """Cron: warn each approved claim's implementor once, ``CLAIM_WARNING_DAYS`` before its deadline."""
    now = now or utcnow()
    horizon = now.date() + timedelta(days=current_app.config["CLAIM_WARNING_DAYS"])
    due = db.session.scalars(select(Claim.id).where(
        Claim.state == ClaimState.approved, Claim.warned_at.is_(None), Claim.deadline <= horizon)
        .order_by(Claim.id)).all()
    warned = []
    for claim_id in due:
        result = db.session.execute(update(Claim).where(Claim.id == claim_id, Claim.warned_at.is_(None))
                                    .values(warned_at=now).execution_options(synchronize_session=False))
        if result.rowcount == 1:
            notify.claim_event(claim_id, "lapsing")
            warned.append(claim_id)
    return warned


def lapse_due(now: datetime | None = None) -> list[int]:
    """Cron: claims past their deadline (the whole UTC day) with no open or
    merged change of the claimant closing the item lapse (approved ones with
    none, submitted ones whose change closed unmerged)."""
    now = now or utcnow()
    due = db.session.scalars(select(Claim).where(
        Claim.state.in_(HOLDING_CLAIM_STATES), Claim.deadline < now.date()).order_by(Claim.id)).all()
    lapsed = []
    for claim in due:
        if _linked_change(claim):
            continue
        if _move(claim, ClaimState.lapsed, holding_item_id=None, closed_at=now):
            audit.record("claim.lapsed", "claim", claim.id, actor="job:lapse_claims")
            notify.claim_event(claim.id, "lapsed")
            lapsed.append(claim.id)
    return lapsed


def _linked_change(claim: Claim) -> bool:
    """An open or merged pull request by the claimant closes the item."""
    identities = select(ForgeIdentity.forge_user_id).where(ForgeIdentity.user_id == claim.claimant_id)
    return db.session.scalar(
        select(PullRequest.id).join(ItemLink, ItemLink.pull_request_id == PullRequest.id).where(
            ItemLink.item_id == claim.item_id, ItemLink.kind == ItemLinkKind.closes, ItemLink.removed.is_(False),
            PullRequest.state != PullRequestState.closed, PullRequest.author_forge_id.in_(identities),
        ).limit(1)) is not None
