"""Reads behind statements and reports: which ledger transactions a set of
pledges is behind, and aggregate queries over the ledger for the public
reports. Nothing here writes."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import ImplementorProfile, OrganisationMember, User
from marketplace.audit.models import AuditEvent
from marketplace.backlog.models import BacklogItem, PullRequest
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from marketplace.payouts.models import Payout, PayoutPledge, PayoutShare
from marketplace.pledges.models import Pledge
from marketplace.pools.models import PoolMatch
from marketplace.projects.models import MemberProject, ProjectSdg
from marketplace.reports.models import Grant, GrantPledge, ProjectCountry

# Audit actions on a pledge whose details name the ledger transaction that moved its money back.
_REFUND_ACTIONS = ("pledge.refunded", "pledge.refunded_after_payout", "pledge.refunded_elsewhere_after_payout",
                   "pledge.refund_failed", "pledge.dispute_lost_after_payout")


def pledges_of_person(user_id: int) -> list[Pledge]:
    """The pledges ``user_id`` made for themself (not on behalf of an organisation), by id."""
    return list(db.session.scalars(select(Pledge).where(
        Pledge.funder_id == user_id, Pledge.organisation_id.is_(None)).order_by(Pledge.id)))


def pledges_of_organisation(organisation_id: int) -> list[Pledge]:
    """The pledges made on behalf of the organisation, by id."""
    return list(db.session.scalars(select(Pledge).where(Pledge.organisation_id == organisation_id)
                                   .order_by(Pledge.id)))


def pledges_of_grant(grant_id: int) -> list[Pledge]:
    """The pledges tagged with the grant, by id."""
    return list(db.session.scalars(select(Pledge).join(GrantPledge, GrantPledge.pledge_id == Pledge.id)
                                   .where(GrantPledge.grant_id == grant_id).order_by(Pledge.id)))


def grants_of(organisation_id: int) -> list[Grant]:
    """The organisation's grants, newest period first."""
    return list(db.session.scalars(select(Grant).where(Grant.organisation_id == organisation_id)
                                   .order_by(Grant.starts_on.desc(), Grant.id.desc())))


def grant_of_pledges(pledge_ids: list[int]) -> dict[int, int]:
    """pledge id → grant id, for the tagged ones among ``pledge_ids``."""
    if not pledge_ids:
        return {}
    return dict(db.session.execute(select(GrantPledge.pledge_id, GrantPledge.grant_id)
                                   .where(GrantPledge.pledge_id.in_(pledge_ids))).all())


def is_member(organisation_id: int, user_id: int) -> bool:
    """Whether ``user_id`` is an accepted member of the organisation."""
    return db.session.scalar(select(OrganisationMember.id).where(
        OrganisationMember.organisation_id == organisation_id, OrganisationMember.user_id == user_id,
        OrganisationMember.accepted_at.is_not(None))) is not None


def _refund_keys(details: dict, action: str) -> list[str]:
    """The idempotency keys of the transactions an audit event of a refund or dispute names."""
    refund_id = details.get("refund_id")
    if refund_id:
        return [f"refund:{refund_id}:failed"] if action == "pledge.refund_failed" else [f"refund:{refund_id}"]
    if details.get("balance_transaction"):
        return [f"dispute-balance:{details['balance_transaction']}"]
    if details.get("dispute"):
        return [f"refund:dispute:{details['dispute']}"]
    return []


def transactions_behind(pledge_ids: list[int]) -> list[tuple[str, int, LedgerTransaction]]:
    """Every ledger transaction that moved the money of ``pledge_ids``, with
    entries and accounts loaded, as (link, row id, transaction) oldest first:
    ``("pledge", pledge id, …)`` for a pledge's own money (received, refunded,
    lost, a failed refund), ``("payout_pledge", pledge id, …)`` for a payout
    that released or returned it (the pledge's part is
    ``payout_pledge.amount_minor``), ``("match", match id, …)`` for what a
    matching pool added beside it.

    Sources: the idempotency keys ``pledge:{id}:received``,
    ``payout:{id}:released`` / ``:returned`` (payouts covering the pledge), the
    refund and dispute ids recorded in the pledge's audit events, and the
    ``("pool_match", match id)`` references.
    """
    if not pledge_ids:
        return []
    keyed: dict[str, tuple[str, int]] = {f"pledge:{pid}:received": ("pledge", pid) for pid in pledge_ids}
    events = db.session.execute(select(AuditEvent.object_id, AuditEvent.action, AuditEvent.details).where(
        AuditEvent.object_type == "pledge", AuditEvent.object_id.in_([str(p) for p in pledge_ids]),
        AuditEvent.action.in_(_REFUND_ACTIONS))).all()
    for object_id, action, details in events:
        for key in _refund_keys(details or {}, action):
            keyed[key] = ("pledge", int(object_id))
    covered = db.session.execute(select(PayoutPledge.payout_id, PayoutPledge.pledge_id)
                                 .where(PayoutPledge.pledge_id.in_(pledge_ids))).all()
    payout_keys: dict[str, list[int]] = defaultdict(list)
    for payout_id, pledge_id in covered:
        for suffix in ("released", "returned"):
            payout_keys[f"payout:{payout_id}:{suffix}"].append(pledge_id)
    load = selectinload(LedgerTransaction.entries).selectinload(LedgerEntry.account)
    found: list[tuple[str, int, LedgerTransaction]] = []
    keys = list(keyed) + list(payout_keys)
    for start in range(0, len(keys), 1000):
        for txn in db.session.scalars(select(LedgerTransaction).options(load)
                                      .where(LedgerTransaction.idempotency_key.in_(keys[start:start + 1000]))):
            if txn.idempotency_key in keyed:
                found.append((*keyed[txn.idempotency_key], txn))
            for pledge_id in payout_keys.get(txn.idempotency_key, ()):
                found.append(("payout_pledge", pledge_id, txn))
    matches = db.session.execute(select(PoolMatch.id).where(PoolMatch.pledge_id.in_(pledge_ids))).scalars().all()
    if matches:
        for txn in db.session.scalars(select(LedgerTransaction).options(load).where(
                LedgerTransaction.reference_kind.in_(("pool_match", "pool_match_returned")),
                LedgerTransaction.reference_id.in_(matches))):
            found.append(("match", txn.reference_id, txn))
    found.sort(key=lambda row: (row[2].created_at, row[2].id, row[1]))
    return found


def payout_details(payout_ids: list[int]) -> dict[int, Payout]:
    """Payouts by id with their item, project, pull request, shares and recipients loaded."""
    if not payout_ids:
        return {}
    rows = db.session.scalars(select(Payout).where(Payout.id.in_(payout_ids)).options(
        selectinload(Payout.item).selectinload(BacklogItem.repository).selectinload(Repository.project),
        selectinload(Payout.pull_request), selectinload(Payout.covered),
        selectinload(Payout.shares).selectinload(PayoutShare.recipient)))
    return {row.id: row for row in rows}


def recipient_countries(user_ids: list[int]) -> dict[int, str | None]:
    """user id → the country (ISO 3166-1 alpha-2) on their implementor profile, or None."""
    if not user_ids:
        return {}
    rows = dict(db.session.execute(select(ImplementorProfile.user_id, ImplementorProfile.country)
                                   .where(ImplementorProfile.user_id.in_(user_ids))).all())
    return {uid: rows.get(uid) for uid in user_ids}


def match_amounts(match_ids: list[int]) -> dict[int, PoolMatch]:
    """Matches by id."""
    if not match_ids:
        return {}
    return {m.id: m for m in db.session.scalars(select(PoolMatch).where(PoolMatch.id.in_(match_ids)))}


# --- public reports: aggregate queries --------------------------------------------------

def _month(column):
    """The UTC month of a timestamp as 'YYYY-MM' (PostgreSQL and SQLite)."""
    if db.engine.dialect.name == "sqlite":
        return func.strftime("%Y-%m", column)
    return func.to_char(column, "YYYY-MM")


def money_by_month(project_id: int | None = None) -> list[tuple[str, str, str, int]]:
    """(month 'YYYY-MM', currency, figure, minor units) from the ledger entries,
    one GROUP BY over entries joined to their transaction (index on
    ``ledger_transaction.created_at``; ``ix_ledger_entry_account_currency``).

    Figures: ``received`` (pledges into escrow), ``matched`` (pools into
    escrow), ``paid_out`` (escrow released to fees and recipients, net of
    returned payouts), ``fees``, ``refunded``, ``lost``. With ``project_id``,
    only the escrow of that project's items, and fees of its payouts.
    """
    month = _month(LedgerTransaction.created_at).label("month")
    query = (select(month, LedgerEntry.currency, LedgerTransaction.kind, LedgerAccount.kind,
                    func.sum(LedgerEntry.amount_minor))
             .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
             .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
             .where(LedgerAccount.kind.in_((AccountKind.item_escrow, AccountKind.platform_fees,
                                            AccountKind.refunds, AccountKind.disputes))))
    if project_id is not None:
        escrow_of_project = LedgerAccount.item_id.in_(
            select(BacklogItem.id).join(Repository, Repository.id == BacklogItem.repository_id)
            .where(Repository.project_id == project_id))
        in_project_txn = LedgerTransaction.id.in_(
            select(LedgerEntry.transaction_id).join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerAccount.kind == AccountKind.item_escrow, escrow_of_project))
        query = query.where(in_project_txn).where(
            (LedgerAccount.kind != AccountKind.item_escrow) | escrow_of_project)
    rows = db.session.execute(query.group_by(month, LedgerEntry.currency, LedgerTransaction.kind,
                                             LedgerAccount.kind)).all()
    out: dict[tuple[str, str, str], int] = defaultdict(int)
    for m, currency, txn_kind, account_kind, total in rows:
        total = int(total or 0)
        if account_kind is AccountKind.item_escrow:
            if txn_kind == "pledge_received":
                out[(m, currency, "received")] += total
            elif txn_kind in ("pool_match", "pool_match_returned"):
                out[(m, currency, "matched")] += total
            elif txn_kind in ("payout_released", "payout_returned"):
                out[(m, currency, "paid_out")] -= total
        elif account_kind is AccountKind.platform_fees:
            out[(m, currency, "fees")] += total
        elif account_kind is AccountKind.refunds:
            out[(m, currency, "refunded")] += total
        elif account_kind is AccountKind.disputes:
            out[(m, currency, "lost")] += total
    return sorted((m, c, f, v) for (m, c, f), v in out.items() if v)


def held_by_project(project_id: int | None = None) -> list[tuple[int, str, int]]:
    """(project id, currency, minor units held in its items' escrow), from the entries;
    only ``project_id``'s when given."""
    query = (select(Repository.project_id, LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
             .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
             .join(BacklogItem, BacklogItem.id == LedgerAccount.item_id)
             .join(Repository, Repository.id == BacklogItem.repository_id)
             .where(LedgerAccount.kind == AccountKind.item_escrow))
    if project_id is not None:
        query = query.where(Repository.project_id == project_id)
    rows = db.session.execute(query.group_by(Repository.project_id, LedgerEntry.currency)).all()
    return [(pid, currency, int(total)) for pid, currency, total in rows if total]


def projects_with_money() -> list[int]:
    """Ids of the projects one of whose items has an escrow account (money was pledged or matched)."""
    return list(db.session.scalars(
        select(Repository.project_id).join(BacklogItem, BacklogItem.repository_id == Repository.id)
        .join(LedgerAccount, LedgerAccount.item_id == BacklogItem.id)
        .where(LedgerAccount.kind == AccountKind.item_escrow).distinct().order_by(Repository.project_id)))


def executed_payout_shares(project_id: int | None = None) -> list[tuple]:
    """Of payouts that released money (executing, paid, failed — not returned):
    (payout id, project id, item id, currency, share amount minor, recipient
    id, recipient country or None, executed_at, fee minor of the payout)."""
    query = (select(Payout.id, Repository.project_id, Payout.item_id, Payout.currency, PayoutShare.amount_minor,
                    PayoutShare.recipient_id, ImplementorProfile.country, Payout.executed_at, Payout.fee_minor)
             .join(PayoutShare, PayoutShare.payout_id == Payout.id)
             .join(BacklogItem, BacklogItem.id == Payout.item_id)
             .join(Repository, Repository.id == BacklogItem.repository_id)
             .outerjoin(ImplementorProfile, ImplementorProfile.user_id == PayoutShare.recipient_id)
             .where(Payout.executed_at.is_not(None), Payout.returned_at.is_(None)))
    if project_id is not None:
        query = query.where(Repository.project_id == project_id)
    return list(db.session.execute(query.order_by(Payout.id, PayoutShare.position)).all())


def first_funding_and_merge(project_id: int | None = None) -> list[tuple[int, datetime, datetime | None]]:
    """(item id, first pledge held at, merge time of the pull request that solved it)
    for solved items that received a pledge."""
    first = (select(Pledge.item_id, func.min(Pledge.held_at).label("first"))
             .where(Pledge.held_at.is_not(None)).group_by(Pledge.item_id).subquery())
    query = (select(BacklogItem.id, first.c.first, PullRequest.merged_at)
             .join(first, first.c.item_id == BacklogItem.id)
             .join(PullRequest, PullRequest.id == BacklogItem.solved_by_id)
             .join(Repository, Repository.id == BacklogItem.repository_id)
             .where(PullRequest.merged_at.is_not(None)))
    if project_id is not None:
        query = query.where(Repository.project_id == project_id)
    return list(db.session.execute(query).all())


def project_sdgs() -> dict[int, list[int]]:
    """project id → its SDG numbers."""
    out: dict[int, list[int]] = defaultdict(list)
    for project_id, sdg in db.session.execute(select(ProjectSdg.project_id, ProjectSdg.sdg)
                                              .order_by(ProjectSdg.sdg)):
        out[project_id].append(sdg)
    return out


def countries_of(project_id: int, kind: str) -> list[str]:
    """The project's countries of ``kind`` (deployment | development), sorted codes."""
    return list(db.session.scalars(select(ProjectCountry.country).where(
        ProjectCountry.project_id == project_id, ProjectCountry.kind == kind).order_by(ProjectCountry.country)))


def deployment_countries(kind: str = "deployment") -> dict[int, set[str]]:
    """project id → its countries of ``kind`` (deployment, or development)."""
    out: dict[int, set[str]] = defaultdict(set)
    for pid, country in db.session.execute(select(ProjectCountry.project_id, ProjectCountry.country)
                                           .where(ProjectCountry.kind == kind)):
        out[pid].add(country)
    return out


def used_deployment_countries() -> list[str]:
    """The countries (codes, sorted) where some member project with visible backlog
    items is deployed: a filter choice that could only return nothing is left out."""
    has_items = (select(BacklogItem.id).join(Repository, Repository.id == BacklogItem.repository_id)
                 .where(Repository.project_id == ProjectCountry.project_id, BacklogItem.hidden.is_(False)).exists())
    return list(db.session.scalars(select(ProjectCountry.country).where(ProjectCountry.kind == "deployment", has_items)
                                   .distinct().order_by(ProjectCountry.country)))


def project_names() -> dict[int, tuple[str, str]]:
    """project id → (slug, name)."""
    return {pid: (slug, name) for pid, slug, name in db.session.execute(
        select(MemberProject.id, MemberProject.slug, MemberProject.name))}


def user_names(user_ids: list[int]) -> dict[int, str]:
    """user id → display name."""
    if not user_ids:
        return {}
    return dict(db.session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids))).all())


def transactions_by_id(transaction_ids: list[int]) -> list[LedgerTransaction]:
    """The transactions with their entries and accounts, by id."""
    if not transaction_ids:
        return []
    load = selectinload(LedgerTransaction.entries).selectinload(LedgerEntry.account)
    return list(db.session.scalars(select(LedgerTransaction).options(load)
                                   .where(LedgerTransaction.id.in_(transaction_ids)).order_by(LedgerTransaction.id)))


def escrow_flows_by_project() -> list[tuple[int, str, str, int]]:
    """(project id, currency, transaction kind, sum of escrow entries) over all
    items' escrow accounts: one GROUP BY (``ix_ledger_entry_account_currency``)."""
    rows = db.session.execute(
        select(Repository.project_id, LedgerEntry.currency, LedgerTransaction.kind, func.sum(LedgerEntry.amount_minor))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(BacklogItem, BacklogItem.id == LedgerAccount.item_id)
        .join(Repository, Repository.id == BacklogItem.repository_id)
        .where(LedgerAccount.kind == AccountKind.item_escrow)
        .group_by(Repository.project_id, LedgerEntry.currency, LedgerTransaction.kind)).all()
    return [(pid, currency, kind, int(total or 0)) for pid, currency, kind, total in rows]
