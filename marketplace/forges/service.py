"""Finding, adding and renaming repositories. Services flush, never commit."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.audit import service as audit
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.forges.clients import client_for
from marketplace.forges.http import ForgeError
from marketplace.forges.models import ForgeKind, Repository, RepositoryAlias
from marketplace.forges.types import ForgePayloadError, RepositoryInfo
from marketplace.forges.urls import ParsedUrl, path_key


class RepositoryConflict(DomainError):
    """The repository already belongs to another member project."""


def _live_repository(host: str, key: str) -> Repository | None:
    """The repository whose current path is ``key`` on ``host``."""
    return db.session.scalar(select(Repository).where(Repository.host == host, Repository.path_key == key))


def _former_holder(host: str, key: str) -> Repository | None:
    """The repository that had the path ``key`` on ``host`` before a rename or transfer."""
    return db.session.scalar(
        select(Repository)
        .join(RepositoryAlias, RepositoryAlias.repository_id == Repository.id)
        .where(RepositoryAlias.host == host, RepositoryAlias.path_key == key)
    )


def find_repository(host: str, owner: str, name: str) -> Repository | None:
    """Return the repository at ``host``/``owner``/``name``, or the one that had that path.

    Numeric ids decide, names are hints: a former path only redirects while no
    live repository holds it (a repository renamed away from ``org/tool`` and a
    new ``org/tool`` created later are two repositories; the path is the new
    one's). Paths compare case-insensitively, as on GitHub and GitLab.
    """
    key = path_key(owner, name)
    host = host.lower()
    return _live_repository(host, key) or _former_holder(host, key)


def _forge_says(parsed: ParsedUrl) -> RepositoryInfo | None:
    """What the forge holds at ``parsed``'s path now (``GET /repos/{owner}/{repo}``,
    ``GET /projects/:path``; both answer a former name with the renamed
    repository while no other took it), or None when it cannot tell."""
    probe = Repository(forge=ForgeKind(parsed.kind), host=parsed.host, owner=parsed.owner, name=parsed.name,
                       path_key=parsed.path_key, url=parsed.url)
    client = client_for(probe)
    try:
        return client.repository_info(probe)
    except (ForgeError, ForgePayloadError):
        return None
    finally:
        client.close()


def add_repository(project, parsed: ParsedUrl, *, label: str | None, actor: str,
                   forge_id: int | None = None) -> Repository:
    """Attach the forge repository ``parsed`` to ``project`` and return it.

    Returns the existing row when the project already has it. A repository is
    the forge's numeric id: when ``parsed`` names only a *former* path of a
    repository we hold, the forge is asked what lives there now (unless
    ``forge_id`` says it): the same id (the forge redirects the old name) is
    that repository; another id is a new repository that took the name, added
    here with its id. When the forge cannot be asked, the former name
    redirects, as it does while no live repository holds it. Raises
    :class:`RepositoryConflict` when another project has the repository.
    """
    assert parsed.is_repository, parsed
    existing = _live_repository(parsed.host, parsed.path_key)
    if existing is None and forge_id is not None:
        existing = db.session.scalar(
            select(Repository).where(Repository.host == parsed.host, Repository.forge_id == forge_id))
    if existing is None:
        former = _former_holder(parsed.host, parsed.path_key)
        if former is not None:
            info = _forge_says(parsed) if forge_id is None else None
            now_id = forge_id if forge_id is not None else info.forge_id if info is not None else None
            same = now_id is None or now_id == former.forge_id or (
                former.forge_id is None and info is not None and path_key(info.owner, info.name) == former.path_key)
            if same:
                existing = former
            else:
                forge_id = now_id
                existing = db.session.scalar(
                    select(Repository).where(Repository.host == parsed.host, Repository.forge_id == forge_id))
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
        forge_id=forge_id,
    )
    db.session.add(repo)
    db.session.flush()
    audit.record(
        "repository.added",
        "repository",
        repo.id,
        actor=actor,
        details={"project": project.slug, "url": repo.url, "forge_id": forge_id},
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
