"""The in-process scheduler: runs the periodic jobs of ``jobs/cron_config.py``
when there is no Redis (``make run``'s thread, ``flask jobs run-due``).

Production runs RQ's cron scheduler on the same :data:`SCHEDULE`; this module
exists so that a laptop without Redis still sees dispute windows end, pledges
expire and claims lapse, through the same job functions.

Which runs are due is kept in the ``schedule_run`` table
(:class:`~marketplace.scheduling.models.ScheduleRun`), so a restart does not
run everything again and two schedulers never run one due job twice: a run is
taken by a conditional ``UPDATE`` on the row's previous ``started_at``, and
only the scheduler whose update changed the row runs the job.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter
from flask import Flask, current_app
from rq.utils import import_attribute
from sqlalchemy import and_, update
from sqlalchemy.exc import IntegrityError

from marketplace.extensions import db
from marketplace.scheduling.models import ScheduleRun
from marketplace.timeutil import utcnow

log = logging.getLogger(__name__)

# Where the schedule lives (a dotted name: services never import ``jobs``).
SCHEDULE_MODULE = "jobs.cron_config.SCHEDULE"


@dataclass(frozen=True)
class Scheduled:
    """One periodic job: its ``name`` (unique, at most 80 characters), its
    function as a dotted name (``jobs.money.retry_payouts``) and either an
    ``interval`` in seconds or a ``cron`` string (five fields, UTC).
    Raises ``ValueError`` when both or neither are given."""

    name: str
    func: str
    interval: int | None = None
    cron: str | None = None

    def __post_init__(self) -> None:
        if (self.interval is None) == (self.cron is None):
            raise ValueError(f"{self.name}: give an interval or a cron string, not both or neither")

    def next_run(self, last_started: datetime | None, interval_cap: int | None = None) -> datetime | None:
        """When this job is next due (naive UTC) after a run started at
        ``last_started``; None (due now) when it never ran. ``interval_cap``
        (seconds) shortens long intervals, for development."""
        if last_started is None:
            return None
        if self.interval is not None:
            seconds = min(self.interval, interval_cap) if interval_cap else self.interval
            return last_started + timedelta(seconds=seconds)
        return croniter(self.cron, last_started).get_next(datetime)


def schedule() -> tuple[Scheduled, ...]:
    """The schedule (``jobs.cron_config.SCHEDULE``), imported by name."""
    return import_attribute(SCHEDULE_MODULE)


def _ensure_rows(entries: tuple[Scheduled, ...]) -> None:
    known = set(db.session.scalars(db.select(ScheduleRun.name)))
    for entry in entries:
        if entry.name in known:
            continue
        try:
            with db.session.begin_nested():
                db.session.add(ScheduleRun(name=entry.name))
        except IntegrityError:
            pass  # another scheduler added it first
    db.session.commit()


def _take(name: str, previous: datetime | None, now: datetime) -> bool:
    """Mark the run of ``name`` started at ``now`` unless another scheduler did
    since ``previous`` was read. True when this caller took it."""
    unchanged = ScheduleRun.started_at.is_(None) if previous is None else ScheduleRun.started_at == previous
    result = db.session.execute(
        update(ScheduleRun).where(and_(ScheduleRun.name == name, unchanged))
        .values(started_at=now, finished_at=None, outcome=None))
    db.session.commit()
    return result.rowcount == 1


def due(now: datetime | None = None, entries: tuple[Scheduled, ...] | None = None) -> list[Scheduled]:
    """The entries due at ``now`` (naive UTC, default the current time), in
    schedule order; those named in ``SCHEDULE_SKIP`` never are (``make run``
    skips the forge sync while the forge is stood in for)."""
    return [entry for entry, _previous in _due_runs(now or utcnow(), schedule() if entries is None else entries)]


def _due_runs(now: datetime, entries: tuple[Scheduled, ...]) -> list[tuple[Scheduled, datetime | None]]:
    """Each due entry with the ``started_at`` its decision was made on."""
    _ensure_rows(entries)
    cap = current_app.config.get("SCHEDULE_INTERVAL_CAP_SECONDS")
    skipped = set(current_app.config.get("SCHEDULE_SKIP") or ())
    runs = {run.name: run for run in db.session.scalars(db.select(ScheduleRun))}
    found = []
    for entry in entries:
        if entry.name in skipped:
            continue
        run = runs[entry.name]
        # A run that never finished (a process killed mid-job) is due again after its period too.
        next_run = entry.next_run(run.started_at, cap)
        if next_run is None or next_run <= now:
            found.append((entry, run.started_at))
    return found


def run_due(now: datetime | None = None, entries: tuple[Scheduled, ...] | None = None) -> list[tuple[str, str]]:
    """Run every job due at ``now`` once, in schedule order, each in its own
    database session; return ``[(name, outcome)]`` for the runs this caller
    took (``outcome`` is ``"ok"`` or the error). A job's failure is logged and
    recorded, and does not stop the others. Needs an application context."""
    now = now or utcnow()
    app = current_app._get_current_object()
    done = []
    # Each run is taken on the value it was found due on: a scheduler that read the
    # row before another took the run finds the row changed, and leaves it.
    for entry, previous in _due_runs(now, schedule() if entries is None else entries):
        if not _take(entry.name, previous, now):
            continue
        outcome = _run(app, entry)
        db.session.execute(update(ScheduleRun).where(
            and_(ScheduleRun.name == entry.name, ScheduleRun.started_at == now))
            .values(finished_at=utcnow(), outcome=outcome[:500]))
        db.session.commit()
        done.append((entry.name, outcome))
    return done


def _run(app: Flask, entry: Scheduled) -> str:
    with app.app_context():
        try:
            import_attribute(entry.func)()
        except Exception as error:  # a job's failure is recorded, the schedule goes on
            db.session.rollback()
            log.exception("scheduled job %s failed", entry.name)
            return f"{type(error).__name__}: {error}"
        finally:
            db.session.remove()
    return "ok"


class InProcessScheduler:
    """A daemon thread that calls :func:`run_due` every ``tick`` seconds in
    ``app``'s context until :meth:`stop`. For ``make run`` (no Redis)."""

    def __init__(self, app: Flask, tick: float = 15.0):
        self.app = app
        self.tick = tick
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="in-process-scheduler", daemon=True)

    def start(self) -> InProcessScheduler:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to stop after the current pass and wait ``timeout`` seconds for it."""
        self._stopped.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            with self.app.app_context():
                try:
                    for name, outcome in run_due():
                        log.info("scheduled job %s: %s", name, outcome)
                except Exception:  # the database was unreachable: try again next tick
                    log.exception("the in-process scheduler's pass failed")
                finally:
                    db.session.remove()
            self._stopped.wait(self.tick)
