"""Reads of member projects that pages and the API share: open item counts per
project and per SDG, the project list, an SDG's projects, a project's maintainers.
Nothing here writes."""
from __future__ import annotations

from sqlalchemy import exists, func, select
from sqlalchemy.orm import selectinload

from marketplace.backlog.models import BacklogItem, ItemFunding, ItemState
from marketplace.backlog.queries import state_condition
from marketplace.claims.models import Claim, ClaimState
from marketplace.extensions import db
from marketplace.forges.models import Repository
from marketplace.payouts.models import Payout, PayoutState
from marketplace.projects.models import MemberProject, ProjectMaintainer, ProjectSdg
from marketplace.sdgs import SDG_NAMES


def open_item_counts() -> dict[int, int]:
    """Open, visible items per member project id (projects without any are left out)."""
    rows = db.session.execute(
        select(Repository.project_id, func.count(BacklogItem.id))
        .join(BacklogItem, BacklogItem.repository_id == Repository.id)
        .where(state_condition("open"), BacklogItem.hidden.is_(False))
        .group_by(Repository.project_id)
    ).all()
    return dict(rows)


def funded_totals(currency: str) -> dict[int, int]:
    """Per member project id, the money held (minor units of ``currency``) on its
    open, visible items; projects with none are left out. Unpaid pledges never count."""
    rows = db.session.execute(
        select(Repository.project_id, func.sum(ItemFunding.held_minor))
        .join(BacklogItem, BacklogItem.repository_id == Repository.id)
        .join(ItemFunding, ItemFunding.item_id == BacklogItem.id)
        .where(state_condition("open"), BacklogItem.hidden.is_(False), ItemFunding.currency == currency,
               ItemFunding.held_minor > 0)
        .group_by(Repository.project_id)
    ).all()
    return {project_id: int(total) for project_id, total in rows}


PROJECT_SORTS = ("name", "open", "funded")


def project_list(*, q: str = "", sort: str = "name", show_empty: bool = False,
                 currency: str = "USD") -> dict:
    """The /projects list: ``{"projects", "counts", "funded", "hidden"}``.

    ``q`` keeps projects whose name contains it (case-insensitive); ``sort``
    is one of :data:`PROJECT_SORTS` (name A–Z; open items, most first; funded
    in ``currency``, most first; ties by name); projects with no open item are
    left out unless ``show_empty``, and ``hidden`` counts them. Raises
    ``ValueError`` for another sort."""
    if sort not in PROJECT_SORTS:
        raise ValueError(sort)
    counts, funded = open_item_counts(), funded_totals(currency)
    rows = all_projects()
    if q:
        needle = q.casefold()
        rows = [p for p in rows if needle in p.name.casefold()]
    hidden = 0 if show_empty else sum(1 for p in rows if not counts.get(p.id))
    if not show_empty:
        rows = [p for p in rows if counts.get(p.id)]
    rows.sort(key=lambda p: p.name.casefold())
    if sort == "open":
        rows.sort(key=lambda p: -counts.get(p.id, 0))
    elif sort == "funded":
        rows.sort(key=lambda p: -funded.get(p.id, 0))
    return {"projects": rows, "counts": counts, "funded": funded, "hidden": hidden}


def sdg_counts() -> dict[int, tuple[int, int]]:
    """Per SDG number (all 17): (member projects, open visible items)."""
    projects = dict(
        db.session.execute(select(ProjectSdg.sdg, func.count()).group_by(ProjectSdg.sdg)).all()
    )
    items = dict(
        db.session.execute(
            select(ProjectSdg.sdg, func.count(BacklogItem.id))
            .join(Repository, Repository.project_id == ProjectSdg.project_id)
            .join(BacklogItem, BacklogItem.repository_id == Repository.id)
            .where(state_condition("open"), BacklogItem.hidden.is_(False))
            .group_by(ProjectSdg.sdg)
        ).all()
    )
    return {n: (projects.get(n, 0), items.get(n, 0)) for n in SDG_NAMES}


def all_projects() -> list[MemberProject]:
    """Every member project, active first, then by name; SDGs and repositories loaded."""
    return list(db.session.scalars(
        select(MemberProject)
        .options(selectinload(MemberProject.sdgs), selectinload(MemberProject.repositories))
        .order_by(MemberProject.registry_status, func.lower(MemberProject.name))
    ))


def projects_of_sdg(number: int) -> list[MemberProject]:
    """The member projects serving SDG ``number``, by name."""
    return list(db.session.scalars(
        select(MemberProject)
        .join(ProjectSdg)
        .where(ProjectSdg.sdg == number)
        .order_by(func.lower(MemberProject.name))
    ))


def maintainers_of(project_id: int) -> list[ProjectMaintainer]:
    """The project's maintainers, in the order they joined."""
    return list(db.session.scalars(
        select(ProjectMaintainer).where(ProjectMaintainer.project_id == project_id).order_by(ProjectMaintainer.id)
    ))


DECISION_PAYOUT_STATES = (PayoutState.proposed, PayoutState.awaiting_certification)
TO_DECIDE_LIMIT = 200


def _maintained(user_id: int):
    return select(ProjectMaintainer.project_id).where(ProjectMaintainer.user_id == user_id)


def maintainer_exists(project_id: int):
    """SQL condition: someone maintains ``project_id`` (for a page's probe, :func:`has_maintainer`)."""
    return exists().where(ProjectMaintainer.project_id == project_id)


def has_maintainer(project_id: int) -> bool:
    """Whether anyone maintains ``project_id`` (and so can approve its claims and payouts)."""
    return db.session.scalar(select(ProjectMaintainer.id).where(ProjectMaintainer.project_id == project_id)
                             .limit(1)) is not None


def maintains_any(user_id: int) -> bool:
    """Whether ``user_id`` maintains at least one member project."""
    return db.session.scalar(_maintained(user_id).limit(1)) is not None


def _claims_waiting(user_id: int):
    return (select(Claim).join(BacklogItem, BacklogItem.id == Claim.item_id)
            .join(Repository, Repository.id == BacklogItem.repository_id)
            .where(Claim.state == ClaimState.requested, Repository.project_id.in_(_maintained(user_id)),
                   BacklogItem.deleted_at.is_(None)))


def _payouts_waiting(user_id: int):
    return (select(Payout).join(BacklogItem, BacklogItem.id == Payout.item_id)
            .join(Repository, Repository.id == BacklogItem.repository_id)
            .where(Payout.state.in_(DECISION_PAYOUT_STATES), Repository.project_id.in_(_maintained(user_id))))


REOPENED_FLAG = "the issue was reopened after this payout"  # marketplace.payouts.service.on_item_reopened


def _unattributed(user_id: int):
    """Payouts waiting for approval of items solved with nobody to suggest (closed
    as completed or by a commit, or by a change whose author holds no claim):
    a maintainer attributes the work."""
    return _payouts_waiting(user_id).where(Payout.suggested_recipient_id.is_(None))


def _flagged_reopenings(user_id: int):
    """Executed payouts of items reopened afterwards and still open: a maintainer looks."""
    return (select(Payout).join(BacklogItem, BacklogItem.id == Payout.item_id)
            .join(Repository, Repository.id == BacklogItem.repository_id)
            .where(Payout.flagged_at.is_not(None), Payout.flag_reason == REOPENED_FLAG,
                   BacklogItem.state == ItemState.open, Repository.project_id.in_(_maintained(user_id))))


def _count(query) -> int:
    return int(db.session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def decision_count(user_id: int) -> int:
    """How many claims and payouts of the projects ``user_id`` maintains wait for a
    maintainer's decision, and flagged reopenings (items solved without
    attribution are payouts waiting, counted once)."""
    return _count(_claims_waiting(user_id)) + _count(_payouts_waiting(user_id)) \
        + _count(_flagged_reopenings(user_id))


def to_decide(user_id: int) -> dict:
    """``{"claims", "payouts", "unattributed", "reopenings"}`` (and the counts of
    the last two): claims waiting for approval, payouts waiting for approval
    (proposed, or waiting for a recipient's certification), of those the items
    solved without attribution, and executed payouts of items reopened since, on
    the projects ``user_id`` maintains, oldest first, at most :data:`TO_DECIDE_LIMIT` each."""
    return {
        "claims": list(db.session.scalars(_claims_waiting(user_id).order_by(Claim.id).limit(TO_DECIDE_LIMIT))),
        "payouts": list(db.session.scalars(_payouts_waiting(user_id).order_by(Payout.id).limit(TO_DECIDE_LIMIT))),
        "unattributed": list(db.session.scalars(_unattributed(user_id).order_by(Payout.id).limit(TO_DECIDE_LIMIT))),
        "unattributed_count": _count(_unattributed(user_id)),
        "reopenings": list(db.session.scalars(_flagged_reopenings(user_id).order_by(Payout.id)
                                              .limit(TO_DECIDE_LIMIT))),
        "reopenings_count": _count(_flagged_reopenings(user_id)),
    }
