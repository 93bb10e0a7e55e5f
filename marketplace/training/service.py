"""The training path to certification (issue 19).

Where the rules live:

- **Training claims** — a claim on a training item by an implementor not
  certified for its project (:func:`on_requested`); at most one active per
  trainee, checked under the person's row lock that
  :func:`marketplace.claims.service.request_claim` takes (:func:`on_requesting`);
  the cap on active claims still holds there.
- **Mentors** approve a training claim (:func:`approve_as_mentor`; nobody else
  may, :func:`on_approving`); when the named mentor is gone (account deleted,
  no longer a mentor of the project) another mentor takes the claim over
  (:func:`take_over`); mentors review the trainee's change, from the site
  or from the forge (:func:`review`, :func:`record_forge_review`). No payout
  is proposed before the named mentor's standing verdict is "approved"
  (:func:`marketplace.training.queries.waits_for_mentor`, asked by
  :func:`marketplace.payouts.service.propose`); an approval that arrives after
  the merge proposes it then, once.
- **The split** trainee/mentor (80/20 of the net by default, largest
  remainder) is :func:`marketplace.training.queries.default_shares`; the
  trainee is paid uncertified (:func:`marketplace.training.queries.paid_as_trainee`).
- **Automatic certification** is :func:`certify_if_earned`: after
  ``merges_required`` merged training items of a project (default 3)
  reviewed by at least ``mentors_required`` different mentors (default 2),
  the trainee is certified for that project with the usual expiry
  (:data:`marketplace.claims.certification.DEFAULT_VALIDITY`), told by e-mail
  (``templates/email/certification_earned``) and listed on the project's page.
  It runs each time a training claim completes (``claims.signals.completed``).
  A maintainer revokes with a reason (:func:`revoke_earned`).

Services flush, never commit.
"""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.models import ForgeIdentity, User
from marketplace.audit import service as audit
from marketplace.backlog.models import BacklogItem, ItemLinkKind, PullRequest
from marketplace.claims import signals as claim_signals
from marketplace.claims.certification import DEFAULT_VALIDITY, is_certified
from marketplace.claims.models import HOLDING_CLAIM_STATES, Certification, Claim, ClaimState
from marketplace.claims.service import ClaimError, claimant_ids_for
from marketplace.claims.service import approve as approve_claim
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.notifications import notices
from marketplace.payouts import service as payouts
from marketplace.projects.models import MemberProject
from marketplace.timeutil import utcnow
from marketplace.training import queries
from marketplace.training.models import (
    EarnedCertification,
    MentorReview,
    ProjectMentor,
    ReviewVerdict,
    TrainingClaim,
    TrainingItem,
    TrainingRule,
)

MAX_NOTE = 2000


class TrainingError(DomainError):
    """A training operation that cannot be done; the message is for the person."""


# --- training items and the project's rule ---------------------------------------------

def mark_item(item: BacklogItem, training: bool, *, maintainer: User) -> bool:
    """Mark ``item`` as a training item (or unmark it). Returns whether anything changed.
    Claims already made keep what they are."""
    row = db.session.get(TrainingItem, item.id)
    if training == (row is not None):
        return False
    if training:
        db.session.add(TrainingItem(item_id=item.id, marked_by_id=maintainer.id, marked_at=utcnow()))
    else:
        db.session.delete(row)
    db.session.flush()
    audit.record("item.training_marked" if training else "item.training_unmarked", "backlog_item", item.id,
                 actor=f"user:{maintainer.id}", actor_user_id=maintainer.id)
    return True


def set_rule(project: MemberProject, *, merges_required: int, mentors_required: int, trainee_percent: int,
             maintainer: User) -> TrainingRule:
    """Set the project's training rule: merges (1–50) and different mentors (1–10)
    that earn certification, the trainee's percent of the net (1–100; the mentor
    has the rest). Raises :class:`TrainingError` for values out of range."""
    if not 1 <= merges_required <= 50 or not 1 <= mentors_required <= 10 or not 1 <= trainee_percent <= 100:
        raise TrainingError(_("Merges must be 1 to 50, mentors 1 to 10 and the trainee's share 1 to 100%."))
    rule = db.session.get(TrainingRule, project.id) or TrainingRule(project_id=project.id)
    rule.merges_required, rule.mentors_required = merges_required, mentors_required
    rule.trainee_percent, rule.updated_by_id, rule.updated_at = trainee_percent, maintainer.id, utcnow()
    db.session.add(rule)
    db.session.flush()
    audit.record("training.rule_set", "member_project", project.id, actor=f"user:{maintainer.id}",
                 actor_user_id=maintainer.id, details={"merges": merges_required, "mentors": mentors_required,
                                                       "trainee_percent": trainee_percent})
    return rule


# --- mentors --------------------------------------------------------------------------

def name_mentor(project: MemberProject, person: User, *, maintainer: User) -> ProjectMentor:
    """A maintainer names ``person`` a mentor of the project. Raises
    :class:`TrainingError` unless they are certified for the project or maintain it,
    or when they are a mentor already."""
    if not (queries.is_maintainer(project.id, person.id) or is_certified(person.id, project.id)):
        raise TrainingError(_("A mentor must be certified for the project or one of its maintainers."))
    if db.session.scalar(select(ProjectMentor.id).where(ProjectMentor.project_id == project.id,
                                                        ProjectMentor.user_id == person.id)):
        raise TrainingError(_("%(name)s is a mentor already.", name=person.display_name))
    mentor = ProjectMentor(project_id=project.id, user_id=person.id, named_by_id=maintainer.id, named_at=utcnow())
    db.session.add(mentor)
    db.session.flush()
    audit.record("training.mentor_named", "member_project", project.id, actor=f"user:{maintainer.id}",
                 actor_user_id=maintainer.id, details={"mentor": person.id})
    return mentor


def remove_mentor(project: MemberProject, user_id: int, *, maintainer: User) -> None:
    """A maintainer ends ``user_id``'s mentoring of the project (claims they approved keep them named)."""
    row = db.session.scalar(select(ProjectMentor).where(ProjectMentor.project_id == project.id,
                                                        ProjectMentor.user_id == user_id))
    if row is None:
        raise TrainingError(_("This person is not a mentor of the project."))
    db.session.delete(row)
    db.session.flush()
    audit.record("training.mentor_removed", "member_project", project.id, actor=f"user:{maintainer.id}",
                 actor_user_id=maintainer.id, details={"mentor": user_id})


# --- training claims --------------------------------------------------------------------

def _trains(item: BacklogItem, user: User) -> bool:
    """A claim by ``user`` on ``item`` would be a training claim."""
    return queries.is_training_item(item.id) and not is_certified(user.id, item.repository.project_id)


def on_requesting(item: BacklogItem, user: User, **_kw) -> None:
    """Receiver of ``claims.signals.requesting`` (under the person's row lock):
    at most one active training claim per trainee. Raises ``ClaimError``."""
    if not _trains(item, user):
        return
    active = queries.active_training_claim(user.id)
    if active is not None:
        raise ClaimError(_("You already have an active training claim (on “%(title)s”): finish or withdraw it "
                           "before you claim another training item.", title=active.item.title))


def on_requested(claim: Claim, **_kw) -> None:
    """Receiver of ``claims.signals.requested``: record a training claim as such."""
    item = claim.item
    if _trains(item, claim.claimant):
        db.session.add(TrainingClaim(claim_id=claim.id, project_id=item.repository.project_id,
                                     trainee_id=claim.claimant_id, created_at=utcnow()))
        db.session.flush()
        audit.record("training.claim_requested", "claim", claim.id, actor=f"user:{claim.claimant_id}",
                     actor_user_id=claim.claimant_id)


def on_approving(claim: Claim, decider: User, **_kw) -> None:
    """Receiver of ``claims.signals.approving``: a training claim is approved only
    through :func:`approve_as_mentor`, by the mentor it names. Raises ``ClaimError``."""
    training = queries.training_claim_of(claim.id)
    if training is not None and training.mentor_id != decider.id:
        raise ClaimError(_("This is a training claim: one of the project's mentors approves it, "
                           "from the claim's page."))


def approve_as_mentor(claim: Claim, *, mentor: User, note: str | None = None) -> None:
    """A mentor of the project approves a training claim, answering the trainee's
    plan with ``note``, and is named on it. Raises :class:`TrainingError` (or
    ``ClaimError`` as :func:`marketplace.claims.service.approve`) when it is not a
    training claim, the person is not a mentor of the project, or it is their own."""
    training = queries.training_claim_of(claim.id)
    if training is None:
        raise TrainingError(_("This is not a training claim."))
    if claim.claimant_id == mentor.id:
        raise TrainingError(_("You cannot mentor your own claim: another mentor does."))
    if not queries.is_mentor(training.project_id, mentor.id):
        raise TrainingError(_("Only a mentor of the project can approve a training claim."))
    if claim.state is not ClaimState.requested:
        raise TrainingError(_("This claim was decided already."))
    if note is not None and len(note) > MAX_NOTE:
        raise TrainingError(_("The note may have at most %(most)d characters.", most=MAX_NOTE))
    with db.session.begin_nested():
        training.mentor_id = mentor.id
        db.session.flush()
        approve_claim(claim, maintainer=mentor, note=note)
    audit.record("training.mentor_approved_claim", "claim", claim.id, actor=f"user:{mentor.id}",
                 actor_user_id=mentor.id)


def take_over(claim: Claim, *, mentor: User) -> TrainingClaim:
    """Another mentor of the project takes over a training claim whose mentor
    is gone (account deleted, or no longer a mentor of the project:
    :func:`marketplace.training.queries.mentor_gone`) and is named on it from
    now on: they review the change, and their standing verdict is the one the
    payout waits for. Reviews already recorded stay, the gone mentor's too.
    The trainee and the new mentor are told by e-mail (notice
    ``training``/``mentor_changed``).

    Under the training claim's row lock: of two mentors taking it over at
    once, the second finds it has a mentor again and is refused. Raises
    :class:`TrainingError` when it is not a training claim, the person is its
    trainee, not a mentor of the project, the claim is not being worked on
    (approved or submitted), or its mentor is not gone."""
    training = db.session.get(TrainingClaim, claim.id, with_for_update=True, populate_existing=True)
    if training is None:
        raise TrainingError(_("This is not a training claim."))
    if claim.claimant_id == mentor.id:
        raise TrainingError(_("You cannot mentor your own claim: another mentor does."))
    if not queries.is_mentor(training.project_id, mentor.id):
        raise TrainingError(_("Only a mentor of the project can take over a training claim."))
    db.session.refresh(claim)
    if claim.state not in HOLDING_CLAIM_STATES:
        raise TrainingError(_("This claim is not being worked on; there is nothing to mentor."))
    if not queries.mentor_gone(training):
        raise TrainingError(_("This claim has a mentor: %(name)s.", name=training.mentor.display_name))
    previous = training.mentor_id
    training.mentor_id = mentor.id
    db.session.flush()
    audit.record("training.mentor_took_over", "claim", claim.id, actor=f"user:{mentor.id}",
                 actor_user_id=mentor.id, details={"previous_mentor": previous, "mentor": mentor.id})
    notices.mentor_changed(claim.id)
    return training


# --- mentor reviews --------------------------------------------------------------------

def review(claim: Claim, *, mentor: User, verdict: ReviewVerdict, note: str = "", source: str = "site",
           external_id: str | None = None, submitted_at: datetime | None = None) -> MentorReview | None:
    """Record the claim's mentor's review of the trainee's change.

    ``submitted_at`` (naive UTC, default now) orders the reviews: the latest is
    the standing verdict, whatever order they arrive in. A forge review already
    recorded (same ``external_id``) changes nothing and returns None. Under the
    item's row lock, as the merge is decided: when the verdict now stands as
    approved and the change has merged, the payout is proposed (once: an open
    proposal is never doubled). Raises :class:`TrainingError` when the person is
    not the mentor named on the claim or the claim is not being worked on. A
    mentor removed from the project still reviews the claims they approved
    until another mentor takes one over (:func:`take_over`).
    """
    training = queries.training_claim_of(claim.id)
    if training is None:
        raise TrainingError(_("This is not a training claim."))
    if mentor.id == claim.claimant_id:
        raise TrainingError(_("You cannot review your own claim."))
    if training.mentor_id != mentor.id:
        raise TrainingError(_("Only the mentor named on the claim reviews it."))
    if verdict is ReviewVerdict.changes_requested and not (note or "").strip():
        raise TrainingError(_("Say what should change."))
    if len(note or "") > MAX_NOTE:
        raise TrainingError(_("The note may have at most %(most)d characters.", most=MAX_NOTE))
    item = db.session.get(BacklogItem, claim.item_id, with_for_update=True, populate_existing=True)
    # A take-over (under the training claim's row lock) may have named another mentor since
    # the first look: read the mentor again under that lock, or a removed mentor's review
    # waiting here would be recorded after the take-over and could propose the payout.
    training = db.session.get(TrainingClaim, claim.id, with_for_update=True, populate_existing=True)
    if training.mentor_id != mentor.id:
        raise TrainingError(_("Only the mentor named on the claim reviews it."))
    db.session.refresh(claim)
    if claim.state not in HOLDING_CLAIM_STATES:
        raise TrainingError(_("This claim is not being worked on; there is nothing to review."))
    row = MentorReview(claim_id=claim.id, mentor_id=mentor.id, verdict=verdict, note=(note or "").strip(),
                       source=source, external_id=external_id, submitted_at=submitted_at or utcnow(),
                       created_at=utcnow())
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        return None  # this forge review was recorded already
    audit.record("training.reviewed", "claim", claim.id, actor=f"user:{mentor.id}" if source == "site" else source,
                 actor_user_id=mentor.id, details={"verdict": verdict.value, "source": source,
                                                   "external_id": external_id})
    if (queries.standing_verdict(claim.id, mentor.id) is ReviewVerdict.approved and item.solved_by_id is not None
            and not item.closed_as_not_planned):
        # The change merged before the mentor approved it: its payout waited for this.
        payouts.propose_remaining(item)
    return row


# The mark in the external id of a GitLab approval sync saw standing
# (``<host>:approval:<merge request>:<approver>:<time>``, :func:`marketplace.forges.sync.sync_reviews`).
SYNC_SIGHTING = ":approval:"


def record_forge_review(pull: PullRequest, *, reviewer_forge_id: int, verdict: ReviewVerdict, note: str,
                        external_id: str, submitted_at: datetime | None, standing: bool = False) -> list[int]:
    """Sync or a webhook saw a review of ``pull`` (GitHub ``pull_request_review``
    submitted ``approved`` / ``changes_requested``; a GitLab merge request approval):
    when the reviewer's verified forge identity (numeric id, never the login) is
    the mentor named on a training claim whose trainee authored ``pull`` and
    that it closes, the review is recorded there (:func:`review`). Returns the
    ids of the reviews recorded; anything else is ignored.

    Webhook and sync (:func:`marketplace.forges.sync.sync_reviews`) both come
    here and the same review is recorded once: a GitHub review by its id
    (``external_id`` ``<host>:review:<id>``, unique per claim). A GitLab
    approval has no id. Sync sees what stands now (``standing``): it is
    recorded only when it changes the mentor's latest GitLab verdict on the
    claim. A hook is one event (its delivery is its id): it is recorded unless
    the GitLab verdict in force at its ``submitted_at`` is the same and came
    from sync (the same approval, seen by sync first) — so hooks delivered out
    of order (approved, approved again, then the withdrawal between them) each
    count, and the latest by time stands. Decided under the item's row lock, as
    :func:`review` records, so a hook and sync seeing one approval at once
    record it once."""
    mentors = set(db.session.scalars(select(ForgeIdentity.user_id).where(
        ForgeIdentity.host == pull.forge_host, ForgeIdentity.forge_user_id == reviewer_forge_id)))
    authors = claimant_ids_for(pull)
    item_ids = [link.item_id for link in pull.links
                if link.item_id and link.kind is ItemLinkKind.closes and not link.removed]
    if not mentors or not authors or not item_ids:
        return []
    recorded = []
    trainings = db.session.scalars(select(TrainingClaim).join(Claim, Claim.id == TrainingClaim.claim_id).where(
        Claim.item_id.in_(item_ids), Claim.claimant_id.in_(authors), Claim.state.in_(HOLDING_CLAIM_STATES),
        TrainingClaim.mentor_id.in_(mentors)).order_by(Claim.id)).all()
    source = "gitlab" if "gitlab" in pull.forge_host else "github"
    for training in trainings:
        if source == "gitlab":
            # GitLab names no approval: a webhook's and a sync's sight of one approval have no
            # common id. Under the item's lock, so two sights at once are one.
            db.session.get(BacklogItem, training.claim.item_id, with_for_update=True)
            if standing:
                latest = queries.latest_forge_review(training.claim_id, training.mentor_id, source)
                if latest is not None and latest.verdict is verdict:
                    continue
            else:
                latest = queries.latest_forge_review(training.claim_id, training.mentor_id, source,
                                                     at=submitted_at or utcnow())
                if latest is not None and latest.verdict is verdict and SYNC_SIGHTING in (latest.external_id or ""):
                    continue
        row = review(training.claim, mentor=training.mentor, verdict=verdict, note=note or "",
                     source=source, external_id=f"{external_id}:claim:{training.claim_id}",
                     submitted_at=submitted_at)
        if row is not None:
            recorded.append(row.id)
    return recorded


# --- earning certification ------------------------------------------------------------

def on_completed(claim: Claim, **_kw) -> None:
    """Receiver of ``claims.signals.completed``: a training claim's change merged
    and its payout was proposed; the trainee may have earned certification."""
    training = queries.training_claim_of(claim.id)
    if training is not None:
        certify_if_earned(training.trainee_id, training.project_id)


def certify_if_earned(trainee_id: int, project_id: int) -> Certification | None:
    """THE RULE FOR AUTOMATIC CERTIFICATION (issue 19).

    When the trainee has at least the project's ``merges_required`` merged
    training items (default 3) reviewed by at least ``mentors_required``
    different mentors (default 2) (:func:`marketplace.training.queries.merged_counts`)
    and holds no valid certification for the project (or a global one), they
    are certified for the project now, until now + ``DEFAULT_VALIDITY`` (the
    usual expiry, two years), issued by the mentor of their latest merged
    training item; recorded as earned (:class:`EarnedCertification`, listed on
    the project's page), audited, told by e-mail (``certification_earned``),
    and the payouts that waited for them go ahead. Under the trainee's row
    lock, so two merges completing at once certify once. Returns the new
    certification, or None.
    """
    trainee = db.session.get(User, trainee_id, with_for_update=True)
    if trainee is None or is_certified(trainee_id, project_id):
        return None
    rule = queries.rule_for(project_id)
    merges, mentors = queries.merged_counts(trainee_id, project_id)
    if merges < rule.merges_required or mentors < rule.mentors_required:
        return None
    issuer_id = db.session.scalar(select(TrainingClaim.mentor_id).join(Claim, Claim.id == TrainingClaim.claim_id)
                                  .where(TrainingClaim.trainee_id == trainee_id,
                                         TrainingClaim.project_id == project_id,
                                         Claim.state == ClaimState.completed, TrainingClaim.mentor_id.is_not(None))
                                  .order_by(Claim.closed_at.desc(), Claim.id.desc()).limit(1))
    now = utcnow()
    cert = Certification(user_id=trainee_id, project_id=project_id, issued_by_id=issuer_id, issued_at=now,
                         expires_at=now + DEFAULT_VALIDITY,
                         note=f"earned through training: {merges} merged training items, {mentors} mentors")
    db.session.add(cert)
    db.session.flush()
    db.session.add(EarnedCertification(certification_id=cert.id, project_id=project_id, user_id=trainee_id,
                                       merges=merges, mentors=mentors, earned_at=now))
    db.session.flush()
    audit.record("certification.earned", "certification", cert.id, actor="training",
                 details={"user": trainee_id, "project": project_id, "merges": merges, "mentors": mentors,
                          "expires_at": cert.expires_at.isoformat()})
    notices.certification_earned(cert.id)
    claim_signals.certified.send(cert)  # payouts waiting for this person go ahead
    return cert


def revoke_earned(earned: EarnedCertification, *, maintainer: User, reason: str) -> None:
    """A maintainer revokes a certification earned through training, with a reason
    (1–2000 characters). Raises :class:`TrainingError`."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_NOTE:
        raise TrainingError(_("Give the reason for revoking (up to %(most)d characters).", most=MAX_NOTE))
    cert = earned.certification
    if cert.revoked_at is not None:
        raise TrainingError(_("This certification is revoked already."))
    if cert.user_id == maintainer.id:
        raise TrainingError(_("You cannot revoke your own certification."))
    cert.revoked_at = utcnow()
    earned.revoked_reason, earned.revoked_by_id = reason, maintainer.id
    db.session.flush()
    audit.record("certification.revoked", "certification", cert.id, actor=f"user:{maintainer.id}",
                 actor_user_id=maintainer.id, details={"reason": reason, "earned": True})


def connect_signals() -> None:
    """Connect the training rules to the claims' signals (once, at app setup)."""
    claim_signals.requesting.connect(on_requesting, weak=False)
    claim_signals.requested.connect(on_requested, weak=False)
    claim_signals.approving.connect(on_approving, weak=False)
    claim_signals.completed.connect(on_completed, weak=False)
