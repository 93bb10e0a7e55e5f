"""When each periodic job of the schedule last ran (the in-process scheduler's memory)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.extensions import db


class ScheduleRun(db.Model):
    """One row per scheduled job name (``jobs/cron_config.py``'s ``SCHEDULE``).

    ``started_at`` (naive UTC) is set by the conditional update that takes a
    run, so two schedulers (a ``make run`` thread and ``flask jobs run-due``)
    never run one due job twice; ``finished_at`` and ``outcome`` (``ok`` or the
    error's class and message, at most 500 characters) record how it ended.
    RQ's CronScheduler in production keeps its own state in Redis instead.
    """

    __tablename__ = "schedule_run"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str | None] = mapped_column(String(500))
