"""Noticing, in any transaction, that an item's bounty may have changed, and
queueing its living comment's refresh after that transaction commits.

Funding, claims, solving, payouts and refunds are written by many services
(the ledger's projection, conditional UPDATEs on claims and payouts, the
sync); rather than a call in each, the session notes writes to the tables
that make up a bounty's state (:data:`WATCHED`), and before the commit the
items the transaction touched (those in its identity map) whose repository
opted in are queued for ``jobs.presence.refresh_item``. The job decides from
the item's state alone, and writes nothing when that state is shown
already: queueing one item too many costs one read.
"""
from __future__ import annotations

from itertools import chain

from sqlalchemy import event, exists, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from marketplace.backlog.models import BacklogItem, ItemFunding
from marketplace.claims.models import Claim
from marketplace.payouts.models import Payout
from marketplace.pledges.models import Pledge
from marketplace.presence.models import ItemPresence, RepositoryPresence
from marketplace.tasks import enqueue

REFRESH_JOB = "jobs.presence.refresh_item"

WATCHED = frozenset({"backlog_item", "item_funding", "claim", "payout", "payout_share", "pledge"})
_CHANGED = "backlog_commons_presence_changed"


def _note(session: Session, names) -> None:
    if WATCHED.intersection(names):
        session.info[_CHANGED] = True


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, flush_context) -> None:
    _note(session, {obj.__table__.name for obj in chain(session.new, session.dirty, session.deleted)
                    if hasattr(obj, "__table__")})


@event.listens_for(Session, "do_orm_execute")
def _on_execute(state) -> None:
    if state.is_update or state.is_delete or state.is_insert:
        table = getattr(state.statement, "table", None)
        if table is not None:
            _note(state.session, {getattr(table, "name", "")})


def _item_id(obj) -> int | None:
    try:
        if isinstance(obj, BacklogItem):
            return obj.id
        if isinstance(obj, (ItemFunding, Claim, Payout, Pledge)):
            return obj.item_id
    except SQLAlchemyError:  # deleted meanwhile
        return None
    return None


def touched_items(session: Session) -> set[int]:
    """Ids of the items the transaction holds (or those of its funding, claims, payouts, pledges)."""
    ids = {_item_id(obj) for obj in chain(list(session.identity_map.values()), list(session.new))}
    ids.discard(None)
    return ids


def items_to_refresh(session: Session, item_ids: set[int]) -> list[int]:
    """Of ``item_ids``, those of opted-in repositories with money held or a living comment already."""
    if not item_ids or session.scalar(select(RepositoryPresence.id).where(
            RepositoryPresence.enabled.is_(True)).limit(1)) is None:
        return []
    held = exists().where(ItemFunding.item_id == BacklogItem.id, ItemFunding.held_minor > 0)
    known = exists().where(ItemPresence.item_id == BacklogItem.id)
    return list(session.scalars(
        select(BacklogItem.id)
        .join(RepositoryPresence, RepositoryPresence.repository_id == BacklogItem.repository_id)
        .where(BacklogItem.id.in_(sorted(item_ids)), RepositoryPresence.enabled.is_(True), or_(held, known))
        .order_by(BacklogItem.id)))


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    pending = bool(session.new or session.dirty or session.deleted)
    if not session.info.get(_CHANGED) and not pending:
        return
    if pending:
        session.flush()  # the commit would flush next; the notes need the rows
    if not session.info.pop(_CHANGED, None):
        return
    for item_id in items_to_refresh(session, touched_items(session)):
        enqueue(REFRESH_JOB, item_id)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction) -> None:
    if not previous_transaction.nested:
        session.info.pop(_CHANGED, None)
