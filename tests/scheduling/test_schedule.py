"""The in-process scheduler (no Redis): what is due, each due job run once,
two schedulers never running one job twice, and the real schedule's entries."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from marketplace.extensions import db
from marketplace.scheduling.models import ScheduleRun
from marketplace.scheduling.service import Scheduled, due, run_due, schedule
from marketplace.tasks import options_of

CALLS: list[str] = []
T0 = datetime(2026, 12, 1, 10, 0)


def record_a() -> None:
    CALLS.append("a")


def record_b() -> None:
    CALLS.append("b")


def fail() -> None:
    db.session.add(ScheduleRun(name="written-by-a-failing-job"))
    db.session.flush()
    raise RuntimeError("the forge is down")


ENTRIES = (
    Scheduled("every-ten-minutes", f"{__name__}.record_a", interval=600),
    Scheduled("hourly-at-7", f"{__name__}.record_b", cron="7 * * * *"),
)


@pytest.fixture(autouse=True)
def _fresh_calls():
    CALLS.clear()
    yield
    CALLS.clear()


def test_an_entry_needs_an_interval_or_a_cron_string_not_both():
    with pytest.raises(ValueError):
        Scheduled("x", "a.b")
    with pytest.raises(ValueError):
        Scheduled("x", "a.b", interval=60, cron="* * * * *")


def test_next_run_follows_the_interval_the_cap_and_the_cron_string():
    every = Scheduled("e", "a.b", interval=600)
    assert every.next_run(None) is None  # never ran: due now
    assert every.next_run(T0) == T0 + timedelta(minutes=10)
    assert every.next_run(T0, interval_cap=60) == T0 + timedelta(minutes=1)
    assert every.next_run(T0, interval_cap=3600) == T0 + timedelta(minutes=10)
    hourly = Scheduled("h", "a.b", cron="7 * * * *")
    assert hourly.next_run(T0) == datetime(2026, 12, 1, 10, 7)
    assert hourly.next_run(datetime(2026, 12, 1, 10, 7)) == datetime(2026, 12, 1, 11, 7)
    assert hourly.next_run(T0, interval_cap=60) == datetime(2026, 12, 1, 10, 7)  # the cap is for intervals only


def test_each_due_job_runs_once_and_again_only_when_due(app, session):
    assert run_due(T0, ENTRIES) == [("every-ten-minutes", "ok"), ("hourly-at-7", "ok")]
    assert CALLS == ["a", "b"]
    assert run_due(T0 + timedelta(minutes=5), ENTRIES) == []
    assert run_due(T0 + timedelta(minutes=8), ENTRIES) == [("hourly-at-7", "ok")]
    assert run_due(T0 + timedelta(minutes=10), ENTRIES) == [("every-ten-minutes", "ok")]
    assert CALLS == ["a", "b", "b", "a"]
    run = session.get(ScheduleRun, "every-ten-minutes")
    assert (run.started_at, run.outcome) == (T0 + timedelta(minutes=10), "ok")
    assert run.finished_at is not None


def test_a_failing_job_is_recorded_rolled_back_and_does_not_stop_the_others(app, session):
    entries = (Scheduled("failing", f"{__name__}.fail", interval=60),) + ENTRIES
    ran = run_due(T0, entries)
    assert ran == [("failing", "RuntimeError: the forge is down"), ("every-ten-minutes", "ok"), ("hourly-at-7", "ok")]
    assert session.get(ScheduleRun, "failing").outcome == "RuntimeError: the forge is down"
    assert session.get(ScheduleRun, "written-by-a-failing-job") is None


def test_skipped_names_and_the_interval_cap_come_from_the_configuration(app, session):
    app.config.update(SCHEDULE_SKIP=["hourly-at-7"], SCHEDULE_INTERVAL_CAP_SECONDS=60)
    try:
        assert [entry.name for entry in due(T0, ENTRIES)] == ["every-ten-minutes"]
        run_due(T0, ENTRIES)
        assert [entry.name for entry in due(T0 + timedelta(seconds=59), ENTRIES)] == []
        assert [entry.name for entry in due(T0 + timedelta(seconds=60), ENTRIES)] == ["every-ten-minutes"]
    finally:
        app.config.update(SCHEDULE_SKIP=[], SCHEDULE_INTERVAL_CAP_SECONDS=None)
    assert CALLS == ["a"]


def test_the_real_schedule_names_declared_jobs_with_valid_times(app):
    entries = schedule()
    assert len({entry.name for entry in entries}) == len(entries) == 17  # issue 22 added forge-presence, issue 18 return-expired-allotments
    for entry in entries:
        options_of(entry.func)  # raises for a function that is not a declared job
        assert entry.next_run(T0) > T0
    names = {entry.name: entry for entry in entries}
    assert names["payouts"].func == "jobs.money.retry_payouts" and names["payouts"].interval == 600
    assert (names["end-pools"].func, names["end-pools"].cron) == ("jobs.money.end_pools", "53 * * * *")
    assert names["return-expired-allotments"].func == "jobs.money.return_expired_allotments"


def test_flask_jobs_run_due_runs_what_is_due_then_nothing(app, session, runner, monkeypatch):
    monkeypatch.setattr("marketplace.scheduling.service.SCHEDULE_MODULE", f"{__name__}.ENTRIES")
    first = runner.invoke(args=["jobs", "run-due"])
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == ["every-ten-minutes: ok", "hourly-at-7: ok"]
    second = runner.invoke(args=["jobs", "run-due"])
    assert second.output.strip() == "nothing was due"
    assert CALLS == ["a", "b"]


def test_flask_jobs_run_due_exits_non_zero_when_a_job_failed(app, session, runner, monkeypatch):
    monkeypatch.setattr("marketplace.scheduling.service.SCHEDULE_MODULE", f"{__name__}.FAILING")
    result = runner.invoke(args=["jobs", "run-due"])
    assert result.exit_code == 1
    assert "failing: RuntimeError: the forge is down" in result.output


FAILING = (Scheduled("failing", f"{__name__}.fail", interval=60),)


@pytest.mark.postgres
def test_two_schedulers_at_once_run_each_due_job_once(database_url):
    """Two processes' worth of schedulers (threads, each its own session) race
    over the same due jobs on PostgreSQL; each job runs exactly once."""
    from tests.races import race_database_app, race_name

    with race_database_app(database_url, race_name(database_url, "schedule_race")) as app:
        barrier = threading.Barrier(2)
        results: list[list[tuple[str, str]]] = []

        def scheduler() -> None:
            with app.app_context():
                due(T0, ENTRIES)  # both read the rows as never run …
                barrier.wait()
                results.append(run_due(T0, ENTRIES))  # … and both try to take each run
                db.session.remove()

        threads = [threading.Thread(target=scheduler) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(CALLS) == ["a", "b"]
        assert sorted(name for ran in results for name, _ in ran) == ["every-ten-minutes", "hourly-at-7"]
        with app.app_context():
            assert db.session.scalars(select(ScheduleRun.started_at)).all() == [T0, T0]


@pytest.mark.postgres
def test_of_two_sessions_taking_one_run_on_the_same_reading_exactly_one_wins(database_url):
    from marketplace.scheduling.service import _take
    from tests.races import race_database_app, race_name

    with race_database_app(database_url, race_name(database_url, "schedule_take")) as app:
        with app.app_context():
            db.session.add(ScheduleRun(name="payouts"))
            db.session.commit()
        barrier = threading.Barrier(2)
        won: list[bool] = []

        def take() -> None:
            with app.app_context():
                barrier.wait()
                won.append(_take("payouts", None, T0))  # both read "never ran"
                db.session.remove()

        threads = [threading.Thread(target=take) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(won) == [False, True]
