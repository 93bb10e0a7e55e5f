"""Reads of member projects that pages and the API share: open item counts per
project and per SDG, the project list, an SDG's projects, a project's maintainers.
Nothing here writes."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from marketplace.backlog.models import BacklogItem
from marketplace.backlog.queries import state_condition
from marketplace.extensions import db
from marketplace.forges.models import Repository
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
