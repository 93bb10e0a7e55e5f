"""Finding, adding and renaming repositories. Services flush, never commit."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.audit import service as audit
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository, RepositoryAlias
from marketplace.forges.urls import ParsedUrl, path_key


class RepositoryConflict(ValueError):
    """The repository already belongs to another member project."""


def find_repository(host: str, owner: str, name: str) -> Repository | None:
    """Return the repository at ``host``/``owner``/``name`` or at a former path of it.

    Paths compare case-insensitively, as on GitHub and GitLab.
    """
    key = path_key(owner, name)
    host = host.lower()
    repo = db.session.scalar(
        select(Repository).where(Repository.host == host, Repository.path_key == key)
    )
    if repo is not None:
        return repo
    return db.session.scalar(
        select(Repository)
        .join(RepositoryAlias, RepositoryAlias.repository_id == Repository.id)
        .where(RepositoryAlias.host == host, RepositoryAlias.path_key == key)
    )


def add_repository(project, parsed: ParsedUrl, *, label: str | None, actor: str) -> Repository:
    """Attach the forge repository ``parsed`` to ``project`` and return it.

    Returns the existing row when the project already has it (by current or
    former path). Raises :class:`RepositoryConflict` when another project has it.
    """
    assert parsed.is_repository, parsed
    existing = find_repository(parsed.host, parsed.owner, parsed.name)
    if existing is not None:
        if existing.project_id != project.id:
            raise RepositoryConflict(
                f"{parsed.host}/{parsed.owner}/{parsed.name} already belongs to "
                f"project {existing.project.slug!r}"
            )
        return existing
    repo = Repository(
        project=project,
        forge=ForgeKind(parsed.kind),
        host=parsed.host,
        owner=parsed.owner,
        name=parsed.name,
        path_key=parsed.path_key,
        url=parsed.url,
        label=label,
    )
    db.session.add(repo)
    db.session.flush()
    audit.record(
        "repository.added",
        "repository",
        repo.id,
        actor=actor,
        details={"project": project.slug, "url": repo.url},
    )
    return repo


def move_repository(repo: Repository, new_owner: str, new_name: str, *, actor: str) -> bool:
    """Record that ``repo`` now lives at ``new_owner/new_name`` (rename or transfer).

    The former path is kept as a :class:`RepositoryAlias`. Returns False when
    the repository already has that path. Raises :class:`RepositoryConflict`
    when another repository holds the new path.
    """
    new_key = path_key(new_owner, new_name)
    if repo.path_key == new_key and repo.owner == new_owner and repo.name == new_name:
        return False
    holder = db.session.scalar(
        select(Repository).where(Repository.host == repo.host, Repository.path_key == new_key)
    )
    if holder is not None and holder.id != repo.id:
        raise RepositoryConflict(f"{repo.host}/{new_owner}/{new_name} is another repository")
    old = (repo.owner, repo.name, repo.path_key)
    if old[2] != new_key:
        alias = db.session.scalar(
            select(RepositoryAlias).where(
                RepositoryAlias.host == repo.host, RepositoryAlias.path_key == old[2]
            )
        )
        if alias is None:
            repo.aliases.append(
                RepositoryAlias(host=repo.host, owner=old[0], name=old[1], path_key=old[2])
            )
        # The new path may itself be a former alias (renamed back): drop it.
        for alias in list(repo.aliases):
            if alias.path_key == new_key:
                repo.aliases.remove(alias)
    repo.owner, repo.name, repo.path_key = new_owner, new_name, new_key
    repo.url = f"https://{repo.host}/{new_owner}/{new_name}"
    db.session.flush()
    audit.record(
        "repository.moved",
        "repository",
        repo.id,
        actor=actor,
        details={"from": f"{old[0]}/{old[1]}", "to": f"{new_owner}/{new_name}"},
    )
    return True
