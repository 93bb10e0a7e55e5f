"""Reads of claims that pages share: an item's latest claims (its page's claim
section), a project's open claims, a person's claims, and who holds, asked for
or could take over an item. Nothing here writes."""
from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem
from marketplace.claims.models import (
    ACTIVE_CLAIM_STATES,
    Certification,
    Claim,
    ClaimState,
)
from marketplace.extensions import db
from marketplace.forges.models import Repository

LIST_LIMIT = 200  # rows on a list page: enough for a project's open claims, light on a slow connection


def item_claims(item_id: int, limit: int = 20) -> list[Claim]:
    """The item's claims for its page: active ones (requested, approved, submitted) first, then newest first."""
    return list(db.session.scalars(
        select(Claim).where(Claim.item_id == item_id).options(selectinload(Claim.claimant))
        .order_by(case((Claim.state.in_(ACTIVE_CLAIM_STATES), 0), else_=1), Claim.created_at.desc(),
                  Claim.id.desc()).limit(limit)))


def project_open_claims(project_id: int, limit: int = LIST_LIMIT) -> list[Claim]:
    """The active claims on a member project's items: requests, then approved, then submitted; by deadline."""
    order = case((Claim.state == ClaimState.requested, 0), (Claim.state == ClaimState.approved, 1), else_=2)
    return list(db.session.scalars(
        select(Claim).join(BacklogItem, BacklogItem.id == Claim.item_id)
        .join(Repository, Repository.id == BacklogItem.repository_id)
        .where(Repository.project_id == project_id, Claim.state.in_(ACTIVE_CLAIM_STATES))
        .options(selectinload(Claim.claimant), selectinload(Claim.item))
        .order_by(order, Claim.deadline, Claim.id).limit(limit)))


def claims_of(user_id: int, limit: int = LIST_LIMIT) -> list[Claim]:
    """A person's claims, newest first."""
    return list(db.session.scalars(
        select(Claim).where(Claim.claimant_id == user_id)
        .options(selectinload(Claim.item)).order_by(Claim.created_at.desc(), Claim.id.desc()).limit(limit)))


def reassign_candidates(claim: Claim) -> list[User]:
    """Other implementors with a requested claim on the same item, by name."""
    return list(db.session.scalars(
        select(User).join(Claim, Claim.claimant_id == User.id).where(
            Claim.item_id == claim.item_id, Claim.state == ClaimState.requested, User.id != claim.claimant_id,
            User.is_implementor.is_(True)).order_by(User.display_name, User.id)))


def holding_claimants(item_id: int) -> list[int]:
    """User ids of the claims holding the item (approved or submitted), oldest claim first."""
    return list(db.session.scalars(select(Claim.claimant_id).where(
        Claim.item_id == item_id, Claim.state.in_([ClaimState.approved, ClaimState.submitted]))
        .order_by(Claim.id)))


def item_claimants(item_id: int) -> list[User]:
    """Implementors with a live or completed claim (requested, approved, submitted, completed) on the item, by id."""
    return list(db.session.scalars(
        select(User).join(Claim, Claim.claimant_id == User.id).where(
            Claim.item_id == item_id, User.is_implementor.is_(True),
            Claim.state.in_([ClaimState.requested, ClaimState.approved, ClaimState.submitted,
                             ClaimState.completed])).distinct().order_by(User.id)))


def project_certifications(project_id: int, limit: int = LIST_LIMIT) -> list[Certification]:
    """A member project's certifications (not the global ones): current ones first, then newest first."""
    return list(db.session.scalars(
        select(Certification).where(Certification.project_id == project_id)
        .options(selectinload(Certification.user), selectinload(Certification.issued_by))
        .order_by(Certification.revoked_at.is_not(None), Certification.issued_at.desc()).limit(limit)))
