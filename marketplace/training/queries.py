"""Read-only questions about training, asked by the payouts, the backlog
filter and the pages: is this a training item or claim, what did its mentor
say, how is a trainee's payout split, how far along is a trainee.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import distinct, exists, func, select

from marketplace.accounts.models import ImplementorProfile
from marketplace.backlog.models import BacklogItem, ItemLink, ItemLinkKind, PullRequest, PullRequestState
from marketplace.claims.certification import is_certified
from marketplace.claims.models import (
    ACTIVE_CLAIM_STATES,
    HOLDING_CLAIM_STATES,
    Certification,
    Claim,
    ClaimState,
)
from marketplace.extensions import db
from marketplace.projects.models import MemberProject, ProjectMaintainer
from marketplace.timeutil import utcnow
from marketplace.training.models import (
    EarnedCertification,
    MentorReview,
    ProjectMentor,
    ReviewVerdict,
    TrainingClaim,
    TrainingItem,
    TrainingRule,
)


def rule_for(project_id: int) -> TrainingRule:
    """The project's training rule; an unsaved row with the defaults when it set none."""
    rule = db.session.get(TrainingRule, project_id)
    if rule is None:
        rule = TrainingRule(project_id=project_id)
        for column in ("merges_required", "mentors_required", "trainee_percent"):
            setattr(rule, column, TrainingRule.__table__.c[column].default.arg)
    return rule


def is_training_item(item_id: int) -> bool:
    """Whether a maintainer marked ``item_id`` as suitable for training."""
    return db.session.get(TrainingItem, item_id) is not None


def training_condition():
    """SQL condition "the backlog item is a training item" (for the backlog filter)."""
    return exists().where(TrainingItem.item_id == BacklogItem.id)


def training_item_ids(item_ids: list[int]) -> set[int]:
    """Which of ``item_ids`` are training items (one query for a list page)."""
    if not item_ids:
        return set()
    return set(db.session.scalars(select(TrainingItem.item_id).where(TrainingItem.item_id.in_(item_ids))))


def training_claim_of(claim_id: int) -> TrainingClaim | None:
    """The training record of claim ``claim_id``; None for an ordinary claim."""
    return db.session.get(TrainingClaim, claim_id)


def is_maintainer(project_id: int, user_id: int) -> bool:
    return db.session.scalar(select(ProjectMaintainer.id).where(
        ProjectMaintainer.project_id == project_id, ProjectMaintainer.user_id == user_id).limit(1)) is not None


def is_mentor(project_id: int, user_id: int) -> bool:
    """Named a mentor of the project, and still certified for it or a maintainer of it."""
    named = db.session.scalar(select(ProjectMentor.id).where(
        ProjectMentor.project_id == project_id, ProjectMentor.user_id == user_id)) is not None
    return named and (is_maintainer(project_id, user_id) or is_certified(user_id, project_id))


def mentors_of(project_id: int) -> list[ProjectMentor]:
    """The project's named mentors, in the order they were named."""
    return list(db.session.scalars(select(ProjectMentor).where(ProjectMentor.project_id == project_id)
                                   .order_by(ProjectMentor.id)))


def mentor_gone(training: TrainingClaim) -> bool:
    """Whether the mentor named on a training claim can no longer act as its
    mentor: their account was deleted (``mentor_id`` set to NULL), or they are
    no longer a mentor of the project (removed, or no longer certified for it
    nor a maintainer: :func:`is_mentor`). False while nobody was named yet
    (a requested claim waits for a mentor's approval instead)."""
    if training.mentor_id is None:
        return training.claim.state in HOLDING_CLAIM_STATES
    return not is_mentor(training.project_id, training.mentor_id)


def awaiting_mentor(project_id: int) -> list[TrainingClaim]:
    """The project's approved or submitted training claims whose mentor is gone
    (:func:`mentor_gone`): nobody can review them until another mentor of the
    project takes them over. Oldest claim first."""
    rows = db.session.scalars(select(TrainingClaim).join(Claim, Claim.id == TrainingClaim.claim_id).where(
        TrainingClaim.project_id == project_id, Claim.state.in_(HOLDING_CLAIM_STATES)).order_by(Claim.id))
    return [row for row in rows if mentor_gone(row)]


def pulls_under_review(repository_id: int) -> list[PullRequest]:
    """The repository's pull/merge requests whose reviews a mentor's verdict may be
    in (for sync, issue 19): each closes (by keyword or by hand, link not removed)
    an item with an approved or submitted training claim that names a mentor.
    By number."""
    return list(db.session.scalars(
        select(PullRequest).where(PullRequest.repository_id == repository_id, exists().where(
            ItemLink.pull_request_id == PullRequest.id, ItemLink.kind == ItemLinkKind.closes,
            ItemLink.removed.is_(False), Claim.item_id == ItemLink.item_id,
            Claim.state.in_(HOLDING_CLAIM_STATES), TrainingClaim.claim_id == Claim.id,
            TrainingClaim.mentor_id.is_not(None)))
        .order_by(PullRequest.number)))


def latest_forge_review(claim_id: int, mentor_id: int, source: str,
                        at: datetime | None = None) -> MentorReview | None:
    """The mentor's latest review on the claim that came from ``source``
    (``github``, ``gitlab``), by ``submitted_at`` — the latest submitted at or
    before ``at`` (naive UTC) when given; None before any."""
    query = select(MentorReview).where(
        MentorReview.claim_id == claim_id, MentorReview.mentor_id == mentor_id, MentorReview.source == source)
    if at is not None:
        query = query.where(MentorReview.submitted_at <= at)
    return db.session.scalar(query.order_by(MentorReview.submitted_at.desc(), MentorReview.id.desc()).limit(1))


def reviews_of(claim_id: int) -> list[MentorReview]:
    """The mentor reviews recorded on a claim, oldest first."""
    return list(db.session.scalars(select(MentorReview).where(MentorReview.claim_id == claim_id)
                                   .order_by(MentorReview.submitted_at, MentorReview.id)))


def standing_verdict(claim_id: int, mentor_id: int | None) -> ReviewVerdict | None:
    """The verdict of the mentor's latest review (by the time it was submitted,
    however late it arrived) on the claim; None before any."""
    if mentor_id is None:
        return None
    return db.session.scalar(select(MentorReview.verdict).where(
        MentorReview.claim_id == claim_id, MentorReview.mentor_id == mentor_id)
        .order_by(MentorReview.submitted_at.desc(), MentorReview.id.desc()).limit(1))


def waits_for_mentor(claim: Claim) -> bool:
    """A training claim whose named mentor has not (or no longer) approved the change:
    no payout is proposed for it yet."""
    training = training_claim_of(claim.id)
    if training is None:
        return False
    return standing_verdict(claim.id, training.mentor_id) is not ReviewVerdict.approved


def default_shares(claim: Claim) -> list[tuple[int, int]] | None:
    """The suggested split of a training claim's payout as (user id, weight in
    hundredths of a percent): trainee and mentor by the project's rule (80/20
    by default), the mentor only when certified for the project (else the
    trainee has it all). None for an ordinary claim."""
    training = training_claim_of(claim.id)
    if training is None:
        return None
    percent = rule_for(training.project_id).trainee_percent
    mentor = training.mentor_id
    if percent >= 100 or mentor is None or not is_certified(mentor, training.project_id):
        return [(training.trainee_id, 1)]
    return [(training.trainee_id, percent * 100), (mentor, (100 - percent) * 100)]


def paid_as_trainee(user_id: int, item_id: int) -> bool:
    """Whether ``user_id`` may be paid for ``item_id`` without a certification:
    their training claim on it was approved by its mentor, who approved the change."""
    for training in db.session.scalars(select(TrainingClaim).join(Claim, Claim.id == TrainingClaim.claim_id).where(
            Claim.item_id == item_id, TrainingClaim.trainee_id == user_id,
            Claim.state.in_((ClaimState.approved, ClaimState.submitted, ClaimState.completed)))):
        if standing_verdict(training.claim_id, training.mentor_id) is ReviewVerdict.approved:
            return True
    return False


def active_training_claim(user_id: int) -> Claim | None:
    """The trainee's requested, approved or submitted training claim, if any."""
    return db.session.scalar(select(Claim).join(TrainingClaim, TrainingClaim.claim_id == Claim.id).where(
        TrainingClaim.trainee_id == user_id, Claim.state.in_(ACTIVE_CLAIM_STATES)).order_by(Claim.id).limit(1))


def _merged_training():
    """Completed training claims whose change merged, with an approving review by their mentor."""
    approved = exists().where(MentorReview.claim_id == TrainingClaim.claim_id,
                              MentorReview.mentor_id == TrainingClaim.mentor_id,
                              MentorReview.verdict == ReviewVerdict.approved)
    return (select(TrainingClaim).join(Claim, Claim.id == TrainingClaim.claim_id)
            .join(PullRequest, PullRequest.id == Claim.pull_request_id)
            .where(Claim.state == ClaimState.completed, PullRequest.state == PullRequestState.merged,
                   TrainingClaim.mentor_id.is_not(None), approved))


def merged_counts(user_id: int, project_id: int) -> tuple[int, int]:
    """(merged training items, different mentors who reviewed them) of a trainee in a project."""
    rows = _merged_training().where(TrainingClaim.trainee_id == user_id,
                                    TrainingClaim.project_id == project_id).subquery()
    merges, mentors = db.session.execute(
        select(func.count(distinct(Claim.item_id)), func.count(distinct(rows.c.mentor_id)))
        .select_from(rows).join(Claim, Claim.id == rows.c.claim_id)).one()
    return int(merges or 0), int(mentors or 0)


def progress(user_id: int, project_id: int) -> dict:
    """A trainee's way to a project's certification: ``{"merges", "merges_required",
    "mentors", "mentors_required", "certified"}``."""
    rule = rule_for(project_id)
    merges, mentors = merged_counts(user_id, project_id)
    return {"merges": merges, "merges_required": rule.merges_required, "mentors": mentors,
            "mentors_required": rule.mentors_required, "certified": is_certified(user_id, project_id)}


def progress_of(user_id: int) -> list[tuple[MemberProject, dict]]:
    """Every project where ``user_id`` has held a training claim, with :func:`progress`, by project name."""
    projects = db.session.scalars(select(MemberProject).where(MemberProject.id.in_(
        select(TrainingClaim.project_id).where(TrainingClaim.trainee_id == user_id)))
        .order_by(func.lower(MemberProject.name))).all()
    return [(project, progress(user_id, project.id)) for project in projects]


def earned_in(project_id: int) -> list[EarnedCertification]:
    """Certifications earned through training in the project that still hold, newest first."""
    now = utcnow()
    return list(db.session.scalars(
        select(EarnedCertification).join(Certification, Certification.id == EarnedCertification.certification_id)
        .where(EarnedCertification.project_id == project_id, Certification.revoked_at.is_(None),
               Certification.expires_at > now)
        .order_by(EarnedCertification.earned_at.desc())))


def trainee_country(user_id: int) -> str | None:
    profile = db.session.get(ImplementorProfile, user_id)
    return profile.country if profile is not None else None


def figures_by(group: str, project_id: int | None = None) -> list[dict]:
    """Report figures (issue 19): per project (``group="project"``: key = project
    name) or per trainee country (``group="country"``: key = ISO code, "" when
    unknown): ``{"key", "trainees", "mentored_merges", "certifications"}``,
    sorted by key; only ``project_id``'s when given. Trainees: people who held
    a training claim; mentored merges: completed training claims whose change
    merged after their mentor's approval; certifications: earned through
    training (revoked ones too)."""
    merged = _merged_training()
    claims_q = select(TrainingClaim.project_id, TrainingClaim.trainee_id)
    earned_q = select(EarnedCertification.project_id, EarnedCertification.user_id)
    if project_id is not None:
        merged = merged.where(TrainingClaim.project_id == project_id)
        claims_q = claims_q.where(TrainingClaim.project_id == project_id)
        earned_q = earned_q.where(EarnedCertification.project_id == project_id)
    sources = {"trainees": claims_q.subquery(), "mentored_merges": merged.subquery(),
               "certifications": earned_q.subquery()}
    table: dict[str, dict] = {}
    for name, rows in sources.items():
        person = rows.c.trainee_id if "trainee_id" in rows.c else rows.c.user_id
        counted = func.count(distinct(person)) if name == "trainees" else func.count()
        if group == "project":
            key = MemberProject.name
            stmt = select(key, counted).select_from(rows).join(MemberProject, MemberProject.id == rows.c.project_id)
        else:
            key = func.coalesce(ImplementorProfile.country, "")
            stmt = (select(key, counted).select_from(rows)
                    .outerjoin(ImplementorProfile, ImplementorProfile.user_id == person))
        for value, count in db.session.execute(stmt.group_by(key)).all():
            entry = table.setdefault(value or "", {"key": value or "", "trainees": 0, "mentored_merges": 0,
                                                   "certifications": 0})
            entry[name] = int(count)
    return [table[key] for key in sorted(table)]
