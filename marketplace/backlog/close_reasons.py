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

The same rules as SQL conditions are in :mod:`marketplace.backlog.queries`.
"""
from __future__ import annotations

import enum

from flask_babel import gettext as _

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
KNOWN_REASONS = {reason.value: reason for reason in (CloseReason.completed, CloseReason.not_planned,
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
    reason = KNOWN_REASONS.get(state_reason, CloseReason.unknown)
    if reason is CloseReason.unknown and decision in {d.value for d in DECISIONS}:
        return CloseReason(decision)
    return reason


def close_reason_of(item) -> CloseReason | None:
    """The close reason of a :class:`~marketplace.backlog.models.BacklogItem`."""
    return reason_of(item.state.value, item.state_reason, deleted=item.deleted_at is not None,
                     decision=item.close_decision)


def reason_text(reason: CloseReason | None) -> str:
    """A short phrase for people: why the item ended ("closed as not planned")."""
    return {
        CloseReason.not_planned: _("closed as not planned"),
        CloseReason.duplicate: _("closed as a duplicate"),
        CloseReason.moved: _("moved to another project"),
        CloseReason.deleted: _("deleted on the forge"),
        CloseReason.unknown: _("closed for a reason the forge did not give"),
    }.get(reason, _("closed"))
