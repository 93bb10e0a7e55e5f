"""RQ cron configuration for tests/jobs/test_rq_cli.py: the probe job on ``default``, every minute
(an interval job is enqueued as soon as the scheduler starts)."""
from rq import cron

from tests.jobs.rq_probe import count_projects

cron.register(count_projects, "default", interval=60, job_timeout=60, name="probe")
