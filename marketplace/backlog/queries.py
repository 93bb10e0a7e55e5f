"""Shared reads of backlog items: finding an item by its forge id, where an
item's work went, and the close-reason rules of
:mod:`marketplace.backlog.close_reasons` as SQL conditions on ``backlog_item``.
"""
from __future__ import annotations

from sqlalchemy import and_, or_, select

from marketplace.backlog.close_reasons import KNOWN_REASONS, CloseReason
from marketplace.backlog.models import BacklogItem, ItemAlias, ItemState
from marketplace.extensions import db


def find_item(host: str, forge_id: int, *, lock: bool = False) -> BacklogItem | None:
    """The item with forge id ``forge_id`` on ``host``, now or before a transfer.

    With ``lock`` the row is locked (FOR UPDATE) and re-read from the database.
    """
    query = select(BacklogItem).where(BacklogItem.forge_host == host, BacklogItem.forge_id == forge_id)
    by_alias = (select(BacklogItem).join(ItemAlias, ItemAlias.item_id == BacklogItem.id)
                .where(ItemAlias.forge_host == host, ItemAlias.forge_id == forge_id))
    if lock:
        query = query.with_for_update(of=BacklogItem).execution_options(populate_existing=True)
        by_alias = by_alias.with_for_update(of=BacklogItem).execution_options(populate_existing=True)
    item = db.session.scalar(query)
    if item is not None:
        return item
    return db.session.scalar(by_alias)


def not_done_condition():
    """SQL condition on ``backlog_item``: closed (or deleted) for a reason that pays nobody.

    The same rule as :func:`reason_of`, for queries (the refund cron).
    """
    decided_not_planned = BacklogItem.close_decision == CloseReason.not_planned.value
    unknown = BacklogItem.state_reason.not_in(list(KNOWN_REASONS))
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
            and_(BacklogItem.state_reason.not_in(list(KNOWN_REASONS)),
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
    if item.close_target_item_id is not None:
        return db.session.get(BacklogItem, item.close_target_item_id)
    if item.close_target_forge_id is not None:
        target = find_item(item.forge_host, item.close_target_forge_id)
        if target is not None and target.id != item.id:
            return target
    return None
