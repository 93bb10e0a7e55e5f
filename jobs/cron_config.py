"""The schedule of periodic jobs, read by two schedulers.

- Production: RQ's cron scheduler (``flask rq cron`` or ``rq cron
  jobs/cron_config.py``) loads this file, which registers each entry of
  :data:`SCHEDULE` with ``rq.cron.register``; it only enqueues, and workers
  started with ``flask rq worker`` run the jobs with the application context.
- Without Redis (``make run``, ``flask jobs run-due``): the in-process
  scheduler, :mod:`marketplace.scheduling.service`, reads :data:`SCHEDULE`
  by name and runs what is due itself.

Each job's queue and timeout are the ones it declares with
:func:`marketplace.tasks.job`.
"""
from rq import cron
from rq.utils import import_attribute

from marketplace.scheduling.service import Scheduled
from marketplace.tasks import options_of

SCHEDULE: tuple[Scheduled, ...] = (
    # Incremental sync of every repository (cheap: unchanged ones cost 304s only),
    # and the resumption of syncs whose rate-limit wait is over.
    Scheduled("incremental-sync", "jobs.sync.sync_due_repositories", interval=15 * 60),
    # Once a day, find what webhooks missed (deleted merge requests, lost deliveries).
    Scheduled("reconciliation", "jobs.sync.reconcile_all", cron="17 3 * * *"),
    # Every hour, the full ledger check and fresh totals, stored for the public pages (issue 15).
    Scheduled("ledger-reconciliation", "jobs.money.reconcile_ledger", cron="11 * * * *"),
    # Deliveries whose job was lost (Redis down when they arrived) are queued again.
    Scheduled("requeue-deliveries", "jobs.webhooks.requeue_pending_deliveries", interval=5 * 60),
    # E-mails and notices still waiting in the outbox (their job was lost while
    # Redis was down, or the mail server refused them) are sent, with back-off.
    Scheduled("send-outbox", "jobs.notifications.send_waiting_outbox", interval=60),
    # Stripe events that came before what they are about (kept "waiting") are tried again.
    Scheduled("retry-waiting-deliveries", "jobs.webhooks.retry_waiting_deliveries", interval=15 * 60),
    # Pledges never paid (Checkout abandoned, transfer never sent) are cancelled after their rail's time.
    Scheduled("cancel-unpaid-pledges", "jobs.money.cancel_unpaid_pledges", cron="47 * * * *"),
    # Pledges past their expiry with the item unsolved go back to their funders.
    Scheduled("refund-expired-pledges", "jobs.money.refund_expired_pledges", cron="7 * * * *"),
    Scheduled("refund-not-planned", "jobs.money.refund_not_planned_items", cron="37 * * * *"),
    # Approved payouts whose dispute window has passed are executed; transfers
    # Stripe could not take are retried with their own idempotency keys.
    Scheduled("payouts", "jobs.money.retry_payouts", interval=10 * 60),
    # Once a day, Stripe's transfers per payout transfer group against the shares
    # the ledger paid (a second transfer for one share is reported and flagged).
    Scheduled("transfer-reconciliation", "jobs.money.reconcile_transfers", cron="47 3 * * *"),
    # Claims: warn before the deadline, lapse those past it with no linked change.
    Scheduled("claim-lapses", "jobs.money.lapse_claims", cron="23 * * * *"),
    # Matching pools past their window end; rounds are divided by quadratic funding, once.
    Scheduled("end-pools", "jobs.money.end_pools", cron="53 * * * *"),
    # Project funds: allotments past their expiry with no claim at work go back to their fund.
    Scheduled("return-expired-allotments", "jobs.money.return_expired_allotments", cron="41 * * * *"),
    # Public reports: recomputed more often than they are kept (REPORTS_MAX_AGE_SECONDS,
    # 600), so anonymous requests read stored figures; the public data export once a day.
    Scheduled("refresh-reports", "jobs.reports.refresh_reports", interval=5 * 60),
    Scheduled("public-data-export", "jobs.reports.export_public_data", cron="31 2 * * *"),
    # Living comments and replies on the forges that a rate limit deferred (issue 22).
    Scheduled("forge-presence", "jobs.presence.resume_presence", interval=5 * 60),
)

for _entry in SCHEDULE:
    _options = options_of(_entry.func)
    cron.register(import_attribute(_entry.func), _options.queue, interval=_entry.interval, cron=_entry.cron,
                  job_timeout=_options.timeout, name=_entry.name)
