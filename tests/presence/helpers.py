"""Shared helpers of the forge presence tests (issue 22)."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.presence import service as presence
from marketplace.presence.models import ForgeWrite, ItemPresence

REPO = ("Codertocat", "Hello-World")


def serve_repo(forge) -> None:
    """The fake GitHub knows Codertocat/Hello-World (the recorded deliveries' repository)."""
    forge.repos[REPO] = {"id": 186853002, "default_branch": "main", "issues": [], "pulls": []}


def turn_on(world) -> None:
    """The maintainer turns the comment and label on (the App is installed on the repository)."""
    world.repo.installation_id = 4242
    presence.set_presence(world.repo, True, actor=world.maintainer)
    world.session.commit()


def comments(forge, number: int) -> list[dict]:
    return forge.comments.get((REPO, str(number)), [])


def labels(forge, number: int) -> set[str]:
    return forge.labels.get((REPO, str(number)), set())


def posts(forge) -> list:
    return [w for w in forge.writes() if w.method == "POST" and w.path.endswith("/comments")]


def edits(forge) -> list:
    return [w for w in forge.writes() if w.method == "PATCH"]


def row(session, item) -> ItemPresence:
    return session.scalar(select(ItemPresence).where(ItemPresence.item_id == item.id))


def actions(session, item) -> list[str]:
    return list(session.scalars(select(ForgeWrite.action).where(ForgeWrite.item_id == item.id)
                                .order_by(ForgeWrite.id)))
