"""What ends with an item on its forge: a close without the work, a deletion,
the forge keeping the issue private.

Each function runs inside the caller's transaction (services flush, never
commit), so everything that hangs on the item ends together or not at all:
claims, open payouts, held pledges. E-mails and Stripe refunds follow the
existing services (mail after commit; a Stripe refund that fails now is
retried by the hourly refund cron).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, or_, select

from marketplace.audit import service as audit
from marketplace.backlog.close_reasons import (
    DECISIONS,
    CloseReason,
    close_reason_of,
    pays,
    reason_of,
    reason_text,
)
from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.claims import service as claims
from marketplace.claims.models import ACTIVE_CLAIM_STATES, Claim
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.funds import service as funds
from marketplace.payouts import service as payouts
from marketplace.payouts.models import OPEN_PAYOUT_STATES, Payout
from marketplace.pledges.models import Pledge, PledgeState
from marketplace.pledges.service import (
    NOT_PLANNED_WINDOW,
    offer_refunds,
    refund_item_now,
    tell_funders_refunded,
)
from marketplace.pools import service as pools
from marketplace.timeutil import utcnow

# GitLab: confidential issue; a repository that is private or internal (either forge).
PRIVATE_REASONS = ("confidential", "repository")



class EndingError(DomainError):
    """A maintainer's decision about a closed item that cannot be taken; the message is for the person."""

def after_forge_change(item: BacklogItem, *, created: bool, was_state, was_reason: CloseReason | None,
                       private_reason: str | None, when: datetime, actor: str,
                       done_at: datetime | None = None) -> None:
    """What follows from the forge's new state of ``item`` (already written
    by ``upsert_issue``), given its state and close reason before (None when
    just created):

    - private (``private_reason``): unpublished at once; public: published again;
    - closed (or closed again for another reason): ``payouts.on_item_closed``
      (a proposal for completed work, cancellations otherwise); reopened:
      ``payouts.on_item_reopened``;
    - open, already open, and the event (``when``, UTC) is newer than the
      moment the forge last said the work was done (``done_at``: a close, or
      the merge of a keyword-closing change): the issue was reopened after
      that, whatever arrived first (a "reopened" delivered before its
      "closed", which is then stale), so ``payouts.on_item_reopened`` as in
      the natural order. Effects follow from what the event says and when,
      not only from the difference with the stored row;
    - newly closed without the work: :func:`closed_without_work`.
    """

    set_private(item, private_reason, when, actor=actor)
    reason = close_reason_of(item)
    if was_state is not None and was_state is not item.state:
        if item.state is ItemState.closed:
            payouts.on_item_closed(item)
        else:
            payouts.on_item_reopened(item)
    elif (was_state is ItemState.open and item.state is ItemState.open and done_at is not None
          and when > done_at):
        payouts.on_item_reopened(item)
    elif was_reason is not None and reason is not None and was_reason is not reason:
        payouts.on_item_closed(item)  # closed still, for another reason (completed ↔ duplicate)
    if not created and reason is not None and not pays(reason) and (was_reason is None or pays(was_reason)):
        closed_without_work(item, actor=actor)


def closed_without_work(item: BacklogItem, *, actor: str) -> None:
    """The forge closed ``item`` for a reason that pays nobody (see
    :mod:`marketplace.backlog.close_reasons`): its active claims are
    cancelled (each claimant told) and its funders are told they may take
    their money back now, or move it to where the work went when the forge
    says where. Open payouts are cancelled by ``payouts.on_item_closed``."""

    claims.cancel_for_item(item, reason_text(close_reason_of(item)), actor=actor)
    # Matching pools' money goes back to them at once; the funders decide about theirs.
    pools.return_item_matches(item, why=close_reason_of(item).value)
    funds.return_item_allotments(item, why=close_reason_of(item).value)  # back to the project's fund
    offer_refunds(item)


def end_item(item: BacklogItem, when: datetime, *, actor: str) -> list[int]:
    """The forge deleted ``item``'s issue: everything hanging on it ends, now.

    The item is hidden (soft delete: money points at it), no longer solved,
    and answers 410;
    active claims are cancelled and their holders told; payouts not yet
    executing are cancelled; every held pledge is refunded at once through
    its rail and its funder told. No link, proposal or pledge attaches to it
    afterwards (``deleted_at`` is checked there). Idempotent: a second
    delivery finds it deleted and changes nothing. Returns the pledge ids refunded.
    """

    # Two deliveries of the deletion (a redelivery, the reconciliation) at once:
    # the second waits here and finds the item deleted.
    item = db.session.get(BacklogItem, item.id, with_for_update=True, populate_existing=True)
    if item.deleted_at is not None:
        return []
    item.deleted_at = when
    item.hidden = True
    # Gone means unsolved whatever merged before: nobody is paid for a deleted
    # item, and the same events in any order end the same (issue 11 §2, §6).
    item.solved_by = None
    db.session.flush()
    audit.record("item.deleted_on_forge", "backlog_item", item.id, actor=actor)
    why = reason_text(CloseReason.deleted)
    claims.cancel_for_item(item, why, actor=actor)
    payouts.on_item_closed(item)  # deleted pays nobody: open payouts are cancelled
    pools.return_item_matches(item, why="deleted on the forge")
    funds.return_item_allotments(item, why="deleted on the forge")
    told = tell_funders_refunded(item, lambda: reason_text(CloseReason.deleted))
    refunded = refund_item_now(item, reason="deleted on the forge", actor=actor)
    audit.record("item.ended", "backlog_item", item.id, actor=actor,
                 details={"refunded_pledges": refunded, "funders_told": told})
    return refunded


def end_repository(repo, when: datetime, *, actor: str) -> list[int]:
    """The forge deleted ``repo`` (GitHub ``repository.deleted``): every issue
    of it is gone, so each item not already ended ends as a deletion does
    (:func:`end_item`: hidden, 410, claims and open payouts cancelled, held
    pledges refunded at once). Idempotent. Returns the ids of the items ended now."""
    ended = []
    for item in db.session.scalars(select(BacklogItem).where(
            BacklogItem.repository_id == repo.id, BacklogItem.deleted_at.is_(None))
            .order_by(BacklogItem.id)).all():
        end_item(item, when, actor=actor)
        ended.append(item.id)
    audit.record("repository.deleted_on_forge", "repository", repo.id, actor=actor, details={"items": ended})
    return ended


def private_reason_for(issue_confidential: bool, repository_visibility: str | None) -> str | None:
    """Why the forge keeps an issue private, or None when it is public.

    GitLab ``confidential: true``; a repository whose visibility is private or
    internal (GitHub ``private`` / ``visibility``, GitLab ``visibility`` /
    ``visibility_level``), whatever our token can read.
    """
    if issue_confidential:
        return "confidential"
    if repository_visibility in ("private", "internal"):
        return "repository"
    return None


def set_private(item: BacklogItem, reason: str | None, when: datetime, *, actor: str) -> bool:
    """Unpublish ``item`` at once when the forge keeps it private (``reason``
    in :data:`PRIVATE_REASONS`), or publish it again when the forge made it
    public (``reason`` None). Hidden items answer 404 in pages and the API
    and drop out of the list and search. The money waits: if the item stays
    private past the refund window, :func:`end_withheld` ends it like a
    deletion. Returns whether the item's visibility changed."""
    if reason is not None:
        if item.private_reason is not None:
            item.private_reason = reason  # still private, maybe for another reason
            return False
        item.private_reason, item.private_since = reason, when
        item.hidden = True
        db.session.flush()
        audit.record("item.unpublished", "backlog_item", item.id, actor=actor, details={"reason": reason})
        return True
    if item.private_reason is None:
        return False
    item.private_reason, item.private_since = None, None
    if item.deleted_at is None:
        item.hidden = False
    db.session.flush()
    audit.record("item.republished", "backlog_item", item.id, actor=actor)
    return True


def end_withheld(now: datetime | None = None, window: timedelta | None = None) -> list[int]:
    """Cron: items the forge has kept private for longer than the refund
    window end like a deletion's money: active claims cancelled, open
    payouts cancelled, held pledges refunded (each funder told). Returns the
    ids of the items ended now; an item ended before has nothing left to end."""


    now = now or utcnow()
    window = window or NOT_PLANNED_WINDOW
    hanging = or_(
        select(Pledge.id).where(Pledge.item_id == BacklogItem.id,
                                Pledge.state.in_([PledgeState.held, PledgeState.partially_refunded])).exists(),
        select(Claim.id).where(Claim.item_id == BacklogItem.id, Claim.state.in_(ACTIVE_CLAIM_STATES)).exists(),
        select(Payout.id).where(Payout.item_id == BacklogItem.id, Payout.state.in_(OPEN_PAYOUT_STATES)).exists(),
    )
    ended = []
    for item in db.session.scalars(select(BacklogItem).where(
            BacklogItem.private_since <= now - window, hanging)
            .order_by(BacklogItem.id).with_for_update()).all():
        why = _("kept private by the forge")
        cancelled = claims.cancel_for_item(item, why, actor="job:end_withheld")
        closed = payouts.cancel_open_payouts(item, "the forge keeps the issue private")
        pools.return_item_matches(item, why="kept private by the forge")
        funds.return_item_allotments(item, why="kept private by the forge")
        told = tell_funders_refunded(item, lambda: _("kept private by the forge"))
        refunded = refund_item_now(item, reason="kept private by the forge", actor="job:end_withheld")
        if cancelled or closed or told or refunded:
            ended.append(item.id)
    return ended


def set_repository_visibility(repo, visibility: str | None, when: datetime, *, actor: str) -> int:
    """Record what the forge says about who may see ``repo`` (public, private,
    internal; None: not said, nothing changes). A repository made private or
    internal unpublishes every published item of it at once; made public
    again, those items are published again (not the confidential ones, nor
    those hidden for another reason: transferred out of the commons, deleted). Returns the number
    of items whose visibility changed."""
    if visibility is None or repo.visibility == visibility:
        return 0
    repo.visibility = visibility
    db.session.flush()
    private = visibility in ("private", "internal")
    # Made private: every published item goes (a confidential one stays confidential);
    # made public: only the items hidden for the repository's sake come back. An
    # item hidden for another reason (transferred out of the commons, deleted)
    # is not taken over: making the repository public again must not publish it.
    affected = (and_(BacklogItem.private_reason.is_(None), BacklogItem.hidden.is_(False)) if private
                else BacklogItem.private_reason == "repository")
    changed = 0
    for item in db.session.scalars(select(BacklogItem).where(BacklogItem.repository_id == repo.id, affected)
                                   .order_by(BacklogItem.id)).all():
        changed += set_private(item, "repository" if private else None, when, actor=actor)
    audit.record("repository.visibility", "repository", repo.id, actor=actor,
                 details={"visibility": visibility, "items": changed})
    return changed


def decide_unknown_close(item: BacklogItem, decision: str, *, actor: str, actor_user_id: int | None = None) -> None:
    """A maintainer decides what a close the forge gave no known reason for
    meant: ``completed`` (a payout is proposed for their attribution, or to
    the merged change's author) or ``not_planned`` (it stays unpaid; funders
    were offered their money back). The decision holds for this close only:
    a reopening clears it (``upsert_issue``), so a later unknown close is
    decided anew. Raises :class:`EndingError` when the item's
    close reason is not unknown or the decision is neither."""

    if decision not in {d.value for d in DECISIONS}:
        raise EndingError(_("Choose completed or not planned."))
    if item.deleted_at is not None or reason_of(item.state.value, item.state_reason) is not CloseReason.unknown:
        raise EndingError(_("Only a close the forge gave no known reason for can be decided."))
    if item.close_decision == decision:
        return
    item.close_decision = decision
    db.session.flush()
    audit.record("item.close_decided", "backlog_item", item.id, actor=actor, actor_user_id=actor_user_id,
                 details={"decision": decision, "state_reason": item.state_reason})
    payouts.on_item_closed(item)


def name_work_target(item: BacklogItem, target: BacklogItem | None, *, actor: str,
                     actor_user_id: int | None = None) -> None:
    """A maintainer says where the work of ``item`` (closed as duplicate or
    moved) went: its funders are offered to move their pledges to ``target``
    (GitHub gives no reliable target: a duplicate's comment is only text).
    Raises :class:`EndingError` when ``item`` is not closed as duplicate or moved,
    or ``target`` is missing, ``item`` itself, hidden, or takes no pledges."""
    reason = close_reason_of(item)
    if reason not in (CloseReason.duplicate, CloseReason.moved):
        raise EndingError(_("Only an item closed as a duplicate or moved can name where its work went."))
    if target is None or target.id == item.id or target.hidden or target.work_done:
        raise EndingError(_("Name an open item of the backlog."))
    item.close_target_item_id = target.id
    db.session.flush()
    audit.record("item.work_target", "backlog_item", item.id, actor=actor, actor_user_id=actor_user_id,
                 details={"target": target.id})

    offer_refunds(item)
