"""Reading pools: figures derived from the ledger and the match rows, for
pages and the API. Amounts in minor units of the pool's currency."""
from __future__ import annotations

from sqlalchemy import exists, func, select

from marketplace.backlog.models import BacklogItem, ItemLabel, ItemState
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.ledger import service as ledger
from marketplace.ledger.models import AccountKind
from marketplace.pools.models import MatchingPool, MatchState, PoolMatch, PoolState
from marketplace.projects.models import ProjectMaintainer, ProjectSdg

LISTED_STATES = (PoolState.funded, PoolState.ended)


def figures(pool: MatchingPool) -> dict:
    """``{"budget", "received", "matched", "matched_back", "returned", "remaining"}``:
    announced and received budget, matched net of what came back, what came
    back from matches, returned to the sponsor, and what the pool holds (from
    its ledger account)."""
    gross, back = db.session.execute(
        select(func.coalesce(func.sum(PoolMatch.amount_minor), 0), func.coalesce(func.sum(PoolMatch.returned_minor), 0))
        .where(PoolMatch.pool_id == pool.id)).one()
    remaining = ledger.balance(ledger.account(AccountKind.matching_pool, pool_id=pool.id), pool.currency)
    return {"budget": pool.budget_minor, "received": pool.received_minor, "matched": int(gross) - int(back),
            "matched_back": int(back), "returned": pool.returned_minor, "remaining": remaining}


def listed_pools(*, awaiting: bool = False) -> list[MatchingPool]:
    """Pools the public sees (funded or ended), newest first; with ``awaiting``
    also those waiting for their budget and those cancelled (for the fiscal
    host, who may owe a cancelled pool's budget back)."""
    states = (*LISTED_STATES, PoolState.awaiting_budget, PoolState.cancelled) if awaiting else LISTED_STATES
    return list(db.session.scalars(select(MatchingPool).where(MatchingPool.state.in_(states))
                                   .order_by(MatchingPool.id.desc())))


def matches_of(pool: MatchingPool, limit: int = 200) -> list[PoolMatch]:
    """The pool's matches, newest first, with their pledges and items."""
    return list(db.session.scalars(select(PoolMatch).where(PoolMatch.pool_id == pool.id)
                                   .order_by(PoolMatch.id.desc()).limit(limit)))


def item_matches(item_id: int) -> list[tuple[MatchingPool, str, int]]:
    """(pool, currency, minor units held) of the pools whose matches ``item_id``'s escrow holds."""
    rows = db.session.execute(
        select(MatchingPool, PoolMatch.currency, func.sum(PoolMatch.amount_minor - PoolMatch.returned_minor))
        .join(PoolMatch, PoolMatch.pool_id == MatchingPool.id)
        .where(PoolMatch.item_id == item_id, PoolMatch.state == MatchState.held)
        .group_by(MatchingPool.id, PoolMatch.currency).order_by(MatchingPool.id)).all()
    return [(pool, currency, int(amount)) for pool, currency, amount in rows]


def pledge_matches(pledge_id: int) -> list[PoolMatch]:
    """The matches made for one pledge, by pool."""
    return list(db.session.scalars(select(PoolMatch).where(PoolMatch.pledge_id == pledge_id)
                                   .order_by(PoolMatch.pool_id)))


def eligible_items_query(pool: MatchingPool):
    """A select of the open, public items the pool covers (projects with a
    maintainer; the pool's projects, SDGs and labels when it names them)."""
    query = (select(BacklogItem).join(Repository, Repository.id == BacklogItem.repository_id)
             .where(BacklogItem.hidden.is_(False), BacklogItem.state == ItemState.open,
                    BacklogItem.solved_by_id.is_(None),
                    exists().where(ProjectMaintainer.project_id == Repository.project_id)))
    if pool.eligible_project_ids:
        query = query.where(Repository.project_id.in_(pool.eligible_project_ids))
    if pool.eligible_sdgs:
        query = query.where(exists().where(ProjectSdg.project_id == Repository.project_id,
                                           ProjectSdg.sdg.in_(pool.eligible_sdgs)))
    if pool.eligible_labels:
        query = query.where(exists().where(ItemLabel.item_id == BacklogItem.id,
                                           ItemLabel.name.in_(pool.eligible_labels)))
    return query


def eligible_items(pool: MatchingPool, limit: int = 50) -> list[BacklogItem]:
    """Up to ``limit`` items the pool covers, most recently updated first."""
    return list(db.session.scalars(eligible_items_query(pool)
                                   .order_by(BacklogItem.forge_updated_at.desc(), BacklogItem.id.desc())
                                   .limit(limit)))
