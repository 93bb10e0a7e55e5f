"""What the commons writes on the forges, and the commands it read there.

- :class:`RepositoryPresence`: a maintainer's opt-in, per repository, to the
  living comment and label (GitLab: with a project access token, encrypted).
- :class:`ItemPresence`: the one living comment of an item: its forge id, the
  state it last showed (``written_key``), whether the label is on, and the
  rate-limit wait.
- :class:`ForgeWrite`: every forge write attempted, with its outcome (the record).
- :class:`ForgeCommand`: each comment command handled, unique by the
  comment's forge id, so that an edited comment or a replayed delivery never
  runs a command twice.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.extensions import db
from marketplace.timeutil import utcnow


class RepositoryPresence(db.Model):
    """A repository whose funded issues get the living comment and the label.

    ``enabled`` off stops every write at once: each write job reads it under
    the item's row lock before writing. ``gitlab_token_encrypted`` holds a
    GitLab project access token (Fernet, see :mod:`marketplace.presence.secrets`);
    GitHub writes go through the App installation of the repository.
    """

    __tablename__ = "forge_presence"

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repository.id", ondelete="CASCADE"), unique=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    gitlab_token_encrypted: Mapped[str | None] = mapped_column(Text)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    repository: Mapped["Repository"] = relationship()  # noqa: F821


class ItemPresence(db.Model):
    """The living comment of one item on its issue (at most one per item)."""

    __tablename__ = "item_presence"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="CASCADE"), unique=True)
    # The forge's id of our comment (GitHub issue comment id, GitLab note id).
    comment_id: Mapped[int | None] = mapped_column(BigInteger)
    comment_url: Mapped[str | None] = mapped_column(String(2000))
    # The state version the comment shows now (a digest of its text); None: nothing written yet.
    written_key: Mapped[str | None] = mapped_column(String(64))
    label_applied: Mapped[bool] = mapped_column(default=False)
    # Times the comment was posted again after a person deleted it (at most once).
    reposts: Mapped[int] = mapped_column(default=0)
    # Deleted by a person a second time: the project was told; nothing more is written.
    abandoned_at: Mapped[datetime | None]
    # Rate-limited: the next attempt is due then (naive UTC).
    resume_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # The answer to the latest comment command, shown in the living comment.
    command_note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ForgeWrite(db.Model):
    """One write the commons attempted on a forge, and how it ended.

    ``action``: post_comment, adopt_comment (found our marked comment after a
    lost answer), edit_comment, repost_comment, add_label, remove_label,
    reply, rate_limited, failed, comment_deleted, abandoned.
    """

    __tablename__ = "forge_write"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(30))
    state_key: Mapped[str | None] = mapped_column(String(64))
    comment_id: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ForgeCommand(db.Model):
    """A ``/claim`` or ``/unclaim`` read from an issue comment, handled once.

    Unique by (forge host, comment id): GitHub and GitLab keep a comment's id
    through edits, so an edit (or a replayed delivery) finds it handled.
    ``outcome``: requested, refused, withdrawn, nothing_to_withdraw, unlinked.
    """

    __tablename__ = "forge_command"
    __table_args__ = (UniqueConstraint("host", "comment_id", name="uq_forge_command_host_comment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    comment_id: Mapped[int] = mapped_column(BigInteger)
    item_id: Mapped[int] = mapped_column(ForeignKey("backlog_item.id", ondelete="CASCADE"), index=True)
    command: Mapped[str] = mapped_column(String(20))  # claim | unclaim
    author_forge_id: Mapped[int | None] = mapped_column(BigInteger)
    author_login: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("claim.id", ondelete="SET NULL"))
    outcome: Mapped[str] = mapped_column(String(30))
    message: Mapped[str | None] = mapped_column(Text)
    # The reply to an unlinked commenter, once posted.
    reply_comment_id: Mapped[int | None] = mapped_column(BigInteger)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_delivery.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
