"""Jobs are enqueued only after commit: on RQ with Redis, in-process without it."""
import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select

from marketplace.audit import service as audit
from marketplace.audit.models import AuditEvent
from marketplace.extensions import db
from marketplace.tasks import enqueue_after_commit


def record_job_ran(label: str) -> None:
    """A job for these tests: records an audit event in its own session and commits."""
    audit.record("test.job_ran", "test", label, actor="job:test")
    db.session.commit()


def ran(session, label: str) -> bool:
    return session.scalar(select(AuditEvent).where(AuditEvent.object_id == label)) is not None


def test_in_process_job_runs_after_commit(app, session):
    enqueue_after_commit(session, record_job_ran, "after-commit")
    assert not ran(session, "after-commit")
    session.commit()
    assert ran(session, "after-commit")


def test_in_process_job_is_dropped_on_rollback(app, session):
    enqueue_after_commit(session, record_job_ran, "rolled-back")
    session.rollback()
    session.commit()
    assert not ran(session, "rolled-back")


def test_unknown_queue_is_refused(session):
    with pytest.raises(ValueError, match="unknown queue 'nope'"):
        enqueue_after_commit(session, record_job_ran, "x", queue="nope")


def test_job_reaches_redis_only_after_commit(rq_redis, session):
    queue = Queue("sync", connection=rq_redis)
    enqueue_after_commit(session, record_job_ran, "via-rq", queue="sync", timeout=60, retries=2,
                         retry_intervals=[10, 60])
    assert queue.count == 0
    session.commit()
    assert queue.count == 1
    job = queue.jobs[0]
    assert job.func_name == "tests.jobs.test_queue.record_job_ran"
    assert job.args == ("via-rq",)
    assert job.timeout == 60
    assert job.retries_left == 2


def test_rollback_sends_nothing_to_redis(rq_redis, session):
    enqueue_after_commit(session, record_job_ran, "never", queue="sync")
    session.rollback()
    assert Queue("sync", connection=rq_redis).count == 0


def test_a_worker_runs_the_job(rq_redis, app, session):
    enqueue_after_commit(session, record_job_ran, "worked", queue="default")
    session.commit()
    # SimpleWorker runs the job in this process, inside the test's transaction.
    with app.app_context():
        SimpleWorker([Queue("default", connection=rq_redis)], connection=rq_redis).work(burst=True)
    assert ran(session, "worked")


def test_releasing_a_savepoint_runs_no_job_the_commit_does(app, session):
    from marketplace.extensions import db
    from marketplace.tasks import enqueue_after_commit

    ran = []
    enqueue_after_commit(db.session, ran.append, "job")
    with db.session.begin_nested():
        pass  # e.g. a ledger posting: its savepoint is released, the transaction goes on
    assert ran == []
    db.session.commit()
    assert ran == ["job"]
