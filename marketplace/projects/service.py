"""Member projects in the commons: admission, maintainers, invitations, claims.
Services flush, never commit."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from marketplace.accounts.models import ForgeIdentity, User
from marketplace.audit import service as audit
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.forges.http import ForgeError, ForgeHttp
from marketplace.forges.models import ForgeKind, Repository
from marketplace.notifications import mail
from marketplace.notifications.links import url_for_public
from marketplace.projects.models import (
    MaintainerInvitation,
    MaintainerRequest,
    MemberProject,
    ProjectMaintainer,
)
from marketplace.timeutil import utcnow

INVITATION_LIFETIME = timedelta(days=14)


class ProjectError(DomainError):
    """A request about a project that cannot be done; the message is for the person."""


def is_maintainer(user, project: MemberProject) -> bool:
    """True when ``user`` maintains ``project`` (admins are not maintainers by default)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return db.session.scalar(select(ProjectMaintainer.id).where(
        ProjectMaintainer.project_id == project.id, ProjectMaintainer.user_id == user.id)) is not None


def may_manage(user, project: MemberProject) -> bool:
    """Maintainers of this project and admins may manage it; nobody else."""
    return bool(getattr(user, "is_authenticated", False)) and (user.is_admin or is_maintainer(user, project))


def admit(project: MemberProject, *, actor: User) -> None:
    """Admit a registry project to the commons (idempotent)."""
    if project.admitted_at is None:
        project.admitted_at = utcnow()
        db.session.flush()
        audit.record("project.admitted", "member_project", project.id, actor=f"user:{actor.id}",
                     actor_user_id=actor.id)


def add_maintainer(project: MemberProject, user: User, *, granted_by: str,
                   actor_user_id: int | None) -> ProjectMaintainer:
    """Make ``user`` a maintainer of ``project`` (idempotent). A person named by
    someone else (not by accepting an invitation themselves) is told by e-mail,
    with a link to the project, once the transaction commits; only when the row
    is new, and only to a confirmed address."""
    row = db.session.scalar(select(ProjectMaintainer).where(
        ProjectMaintainer.project_id == project.id, ProjectMaintainer.user_id == user.id))
    if row is None:
        row = ProjectMaintainer(project=project, user=user, granted_by=granted_by)
        db.session.add(row)
        db.session.flush()
        audit.record("project.maintainer_added", "member_project", project.id, actor=granted_by,
                     actor_user_id=actor_user_id, details={"user": user.id})
        if not granted_by.startswith("invitation:") and user.email_verified_at is not None:
            mail.send("maintainer_named", user.email, project=project,
                      link=url_for_public("projects.project", slug=project.slug),
                      to_decide=url_for_public("projects.to_decide"))
    return row


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(project: MemberProject, email: str, *, inviter: User) -> MaintainerInvitation:
    """Invite ``email`` to co-maintain ``project``; the link is mailed after commit."""
    token = secrets.token_urlsafe(32)
    invitation = MaintainerInvitation(project=project, email=email.strip(), token_hash=_token_hash(token),
                                      invited_by_id=inviter.id, expires_at=utcnow() + INVITATION_LIFETIME)
    db.session.add(invitation)
    db.session.flush()
    audit.record("project.maintainer_invited", "member_project", project.id, actor=f"user:{inviter.id}",
                 actor_user_id=inviter.id, details={"email": invitation.email})
    # The invitee may have no account yet: the inviter's page language.
    mail.send("maintainer_invitation", invitation.email, project=project, inviter=inviter,
              link=url_for_public("projects.invitation", token=token))
    return invitation


def find_invitation(token: str) -> MaintainerInvitation | None:
    return db.session.scalar(select(MaintainerInvitation).where(MaintainerInvitation.token_hash == _token_hash(token)))


def accept(invitation: MaintainerInvitation, user: User) -> None:
    """Accept an invitation: it must be open, unexpired, and for the user's confirmed address."""
    if invitation.accepted_at is not None or invitation.expires_at < utcnow():
        raise ProjectError(_("This invitation was used already or has expired."))
    if not user.email_verified or (user.email or "").lower() != invitation.email.lower():
        raise ProjectError(_("This invitation is for %(email)s; sign in with that confirmed address.",
                             email=invitation.email))
    invitation.accepted_at = utcnow()
    add_maintainer(invitation.project, user, granted_by=f"invitation:{invitation.id}", actor_user_id=user.id)


def repository_permission(repo: Repository, login: str) -> tuple[str | None, int | None]:
    """(permission, GitHub user id) of ``login`` on ``repo`` ("admin", "write", …).

    ``GET /repos/{owner}/{repo}/collaborators/{username}/permission`` with the
    platform's ``GITHUB_TOKEN``. Raises :class:`ForgeError` on a forge error.
    """
    config = current_app.config
    headers = {"Accept": "application/vnd.github+json", "User-Agent": "backlog-commons"}
    if config.get("GITHUB_TOKEN"):
        headers["Authorization"] = f"Bearer {config['GITHUB_TOKEN']}"
    http = ForgeHttp(config["GITHUB_API_URL"], headers)
    try:
        data = http.get_json(f"/repos/{repo.owner}/{repo.name}/collaborators/{login}/permission")
    finally:
        http.close()
    if not isinstance(data, dict):
        return None, None
    user = data.get("user") if isinstance(data.get("user"), dict) else {}
    permission = data.get("permission") if isinstance(data.get("permission"), str) else None
    user_id = user.get("id") if isinstance(user.get("id"), int) else None
    return permission, user_id


def request_maintainership(project: MemberProject, repo: Repository, user: User) -> MaintainerRequest:
    """Ask to maintain ``project`` as an administrator of its GitHub repository ``repo``.

    Needs a verified GitHub identity whose permission on the repository is
    "admin" (asked from GitHub now). An admin confirms the claim afterwards.
    Raises :class:`ProjectError`.
    """
    if repo.project_id != project.id or repo.forge is not ForgeKind.github:
        raise ProjectError(_("Choose a GitHub repository of this project."))
    identity = db.session.scalar(select(ForgeIdentity).where(
        ForgeIdentity.user_id == user.id, ForgeIdentity.host == "github.com").order_by(ForgeIdentity.id))
    if identity is None:
        raise ProjectError(_("Connect your GitHub account first."))
    try:
        permission, github_id = repository_permission(repo, identity.login)
    except ForgeError:
        raise ProjectError(_("GitHub could not tell us your permission on %(repo)s. Try again later.",
                             repo=repo.full_name)) from None
    if github_id != identity.forge_user_id:
        # The handle now belongs to someone else (a rename): never borrow their rights.
        raise ProjectError(_("Your GitHub handle %(login)s changed. Connect your GitHub account again, then retry.",
                             login=identity.login))
    if permission != "admin":
        raise ProjectError(_("Your GitHub account %(login)s does not administer %(repo)s.",
                             login=identity.login, repo=repo.full_name))
    row = MaintainerRequest(project=project, user=user, repository=repo,
                              evidence=f"GitHub permission of {identity.login} (id {identity.forge_user_id}) "
                                       f"on {repo.full_name}: admin")
    db.session.add(row)
    db.session.flush()
    audit.record("project.maintainership_claimed", "member_project", project.id, actor=f"user:{user.id}",
                 actor_user_id=user.id, details={"claim": row.id, "repository": repo.full_name})
    return row


def decide(claim_row: MaintainerRequest, *, confirm: bool, admin: User) -> None:
    """An admin confirms (the person becomes a maintainer) or rejects a claim.
    Raises :class:`ProjectError` when it was decided already, or when it is
    the admin's own request (another admin decides)."""
    if claim_row.user_id == admin.id:
        raise ProjectError(_("This is your own request: another admin decides on it."))
    if claim_row.status != "requested":
        raise ProjectError(_("This claim was decided already."))
    claim_row.status = "confirmed" if confirm else "rejected"
    claim_row.decided_by_id = admin.id
    claim_row.decided_at = utcnow()
    if confirm:
        add_maintainer(claim_row.project, claim_row.user, granted_by=f"claim:{claim_row.id}", actor_user_id=admin.id)
    audit.record(f"project.claim_{claim_row.status}", "member_project", claim_row.project_id,
                 actor=f"user:{admin.id}", actor_user_id=admin.id, details={"claim": claim_row.id})


def maintainer_counts() -> dict[int, int]:
    return dict(db.session.execute(select(ProjectMaintainer.project_id, func.count()).group_by(
        ProjectMaintainer.project_id)).all())
