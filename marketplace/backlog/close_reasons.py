"""Why an item was closed, and whether that means the work was done.

The one place that reads a forge's close into a :class:`CloseReason` and
decides what the reason means for money:

- GitHub ``state_reason`` (REST "Get an issue", ``issues`` webhook):
  ``completed``, ``not_planned``, ``duplicate``; a closed issue without a
  reason (issues closed before GitHub had reasons) counts as completed; any
  other value, today's or tomorrow's, is ``unknown``.
- GitLab (REST issue object, Issue Hook ``object_attributes``): ``moved_to_id``
  set → ``moved``; ``duplicated_to_id`` set → ``duplicate``; a plain close →
  ``completed`` (a payout then waits for a maintainer's attribution unless a
  merged merge request closes it, as GitHub's direct closes do).
- A deleted issue (GitHub ``issues.deleted``, a reconciliation that no longer
  finds it) is ``deleted``, whatever its last state was.

Only ``completed`` (or a merged linked change, which solves the item whatever
the close says) proposes a payout. Every other reason pays nobody: funders may
take their money back at once, and what they leave is refunded after
:data:`marketplace.pledges.service.NOT_PLANNED_WINDOW`. ``unknown`` is shown to
the maintainers, who may decide it was ``completed`` or ``not_planned``.
"""
from __future__ import annotations

import enum

from sqlalchemy import and_, or_

from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.extensions import db
from marketplace.forges.types import ForgeIssue


class CloseReason(str, enum.Enum):
    """Why the forge closed an issue."""

    completed = "completed"  # the work was done
    not_planned = "not_planned"  # won't be done
    duplicate = "duplicate"  # the work is tracked by another issue
    moved = "moved"  # the issue moved to another project (GitLab)
    deleted = "deleted"  # the issue is gone from the forge
    unknown = "unknown"  # a reason we do not know: never pays, a maintainer decides


# The state_reason values we store, as each forge's close reads into them.
_KNOWN = {reason.value: reason for reason in (CloseReason.completed, CloseReason.not_planned,
                                               CloseReason.duplicate, CloseReason.moved)}
# What a maintainer may decide for a close the forge gave no known reason for.
DECISIONS = (CloseReason.completed, CloseReason.not_planned)


def pays(reason: CloseReason | None) -> bool:
    """Whether a close for ``reason`` means the work was done (a payout may be proposed)."""
    return reason is CloseReason.completed


def read_forge_close(forge: str, issue: ForgeIssue) -> tuple[str | None, int | None]:
    """What to store of a forge's close: ``(state_reason, target forge id)``.

    ``forge`` is ``github`` or ``gitlab``. GitHub's ``state_reason`` is kept
    as sent (a value we do not know reads as ``unknown``, and is kept so a
    maintainer sees it); GitLab has none, so ``moved`` or ``duplicate`` is
    written from ``moved_to_id`` / ``duplicated_to_id``, whose issue id is the
    target: where the work went.
    """
    if forge == "gitlab":
        if issue.moved_to_id:
            return CloseReason.moved.value, issue.moved_to_id
        if issue.duplicated_to_id:
            return CloseReason.duplicate.value, issue.duplicated_to_id
        return None, None
    return issue.state_reason, None


def reason_of(state: str, state_reason: str | None, *, deleted: bool = False,
              decision: str | None = None) -> CloseReason | None:
    """The :class:`CloseReason` of a stored close; None while the issue is open (and not deleted).

    ``decision`` is a maintainer's decision on an ``unknown`` reason.
    """
    if deleted:
        return CloseReason.deleted
    if state != "closed":
        return None
    if state_reason is None:
        return CloseReason.completed
    reason = _KNOWN.get(state_reason, CloseReason.unknown)
    if reason is CloseReason.unknown and decision in {d.value for d in DECISIONS}:
        return CloseReason(decision)
    return reason


def close_reason_of(item) -> CloseReason | None:
    """The close reason of a :class:`~marketplace.backlog.models.BacklogItem`."""
    return reason_of(item.state.value, item.state_reason, deleted=item.deleted_at is not None,
                     decision=item.close_decision)


def not_done_condition():
    """SQL condition on ``backlog_item``: closed (or deleted) for a reason that pays nobody.

    The same rule as :func:`reason_of`, for queries (the refund cron).
    """
    decided_not_planned = BacklogItem.close_decision == CloseReason.not_planned.value
    unknown = BacklogItem.state_reason.not_in(list(_KNOWN))
    return or_(
        BacklogItem.deleted_at.is_not(None),
        and_(BacklogItem.state == ItemState.closed, BacklogItem.state_reason.is_not(None),
             BacklogItem.state_reason != CloseReason.completed.value,
             or_(~unknown, BacklogItem.close_decision.is_(None), decided_not_planned)),
    )


def solved_condition():
    """SQL condition on ``backlog_item``: the work is done, as
    ``BacklogItem.solved`` says: closed as completed, or still open on the
    forge while a merged change closes it (from the moment of the merge, before
    the forge's close arrives)."""
    completed = and_(
        BacklogItem.state == ItemState.closed, BacklogItem.deleted_at.is_(None),
        or_(BacklogItem.state_reason.is_(None), BacklogItem.state_reason == CloseReason.completed.value,
            and_(BacklogItem.state_reason.not_in(list(_KNOWN)),
                 BacklogItem.close_decision == CloseReason.completed.value)),
    )
    still_open = and_(BacklogItem.state == ItemState.open, BacklogItem.deleted_at.is_(None))
    return or_(and_(BacklogItem.solved_by_id.is_not(None), still_open), completed)


def state_condition(state: str):
    """SQL condition for the backlog's state filter: ``open`` (still needs
    work: open on the forge and no merged change closes it), ``solved``, or
    ``closed`` (closed without the work). The API's ``state`` of an item is
    the filter it appears under."""
    if state == "open":
        return and_(BacklogItem.state == ItemState.open, BacklogItem.solved_by_id.is_(None))
    if state == "solved":
        return solved_condition()
    return and_(BacklogItem.state == ItemState.closed, ~solved_condition())


def work_went_to(item):
    """The item the work of ``item`` went to (moved or duplicate): the one a
    maintainer named, else the forge's target when it is in the backlog; or None."""
    from marketplace.backlog.service import find_item  # backlog.service imports this module

    if item.close_target_item_id is not None:
        return db.session.get(BacklogItem, item.close_target_item_id)
    if item.close_target_forge_id is not None:
        target = find_item(item.forge_host, item.close_target_forge_id)
        if target is not None and target.id != item.id:
            return target
    return None
