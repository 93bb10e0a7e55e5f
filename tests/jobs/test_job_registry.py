"""Jobs are enqueued by dotted name with the options they declare; the services never import ``jobs``."""
import ast
from pathlib import Path

import pytest
from rq import Queue

from marketplace.extensions import db
from marketplace.tasks import JOBS, enqueue, options_of, pending_jobs

ROOT = Path(__file__).resolve().parents[2]


def test_a_job_declares_its_queue_timeout_and_retries_once():
    options = options_of("jobs.notifications.send_email")
    assert (options.queue, options.timeout, options.retries, options.retry_intervals) == (
        "notifications", 60, 3, (30, 300, 1800))
    assert options_of("jobs.money.execute_payout").queue == "money"
    assert options_of("jobs.webhooks.process_delivery").retry.intervals == [10, 60, 300]


def test_an_undeclared_function_is_not_a_job():
    with pytest.raises(LookupError, match="not declared as a job"):
        options_of("marketplace.timeutil.utcnow")
    assert "marketplace.timeutil.utcnow" not in JOBS


def test_enqueue_by_name_reaches_rq_with_the_declared_options(rq_redis, session):
    enqueue("jobs.notifications.send_email", "a@example.org", "Subject", "Body")
    assert pending_jobs(db.session)[-1].func == "jobs.notifications.send_email"
    session.commit()
    [job] = Queue("notifications", connection=rq_redis).jobs
    assert job.func_name == "jobs.notifications.send_email"
    assert job.args == ("a@example.org", "Subject", "Body")
    assert (job.timeout, job.retries_left, job.retry_intervals) == (60, 3, [30, 300, 1800])


def test_enqueue_by_name_runs_in_process_without_redis(app, session, caplog):
    enqueue("jobs.notifications.send_email", "b@example.org", "In process", "Body")
    session.commit()
    # No MAIL_SERVER: the job ran, and the log names the e-mail (never its body).
    assert "e-mail to b@example.org not sent (no MAIL_SERVER, no MAIL_OUTBOX_DIR): In process" in caplog.text


def _imported_modules(path: Path) -> list[tuple[str, bool]]:
    """(module imported, inside a function) for each import statement of a source file."""
    tree = ast.parse(path.read_text())
    inside = {id(node) for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
              for node in ast.walk(function)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in inside) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, id(node) in inside))
    return found


def test_no_marketplace_module_imports_jobs_but_the_app_factory_and_the_cli():
    allowed = {ROOT / "marketplace" / "__init__.py", ROOT / "marketplace" / "cli.py"}
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "marketplace").rglob("*.py") if path not in allowed
                 and any(module == "jobs" or module.startswith("jobs.") for module, _ in _imported_modules(path))]
    assert offenders == []


def test_jobs_and_the_services_they_call_import_at_the_top():
    paths = [*(ROOT / "jobs").glob("*.py"), *(ROOT / "marketplace" / "notifications").glob("*.py")] + [
        ROOT / "marketplace" / name for name in (
            "tasks.py", "accounts/service.py", "backlog/close_reasons.py", "backlog/ending.py", "backlog/models.py",
            "backlog/queries.py", "backlog/service.py", "claims/certification.py", "claims/service.py",
            "ledger/service.py", "payouts/service.py", "pledges/service.py", "webhooks/service.py",
            "payments/stripe_events.py")]
    inside = [f"{path.relative_to(ROOT)}: {module}" for path in paths
              for module, in_function in _imported_modules(path) if in_function]
    assert inside == []
