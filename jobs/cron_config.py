"""RQ cron schedule (``flask rq cron`` or ``rq cron jobs/cron_config.py``).

The scheduler only enqueues; workers started with ``flask rq worker`` run the
jobs with the application context. Each job's queue and timeout are the ones
it declares with :func:`marketplace.tasks.job`.
"""
from rq import cron

from jobs.money import (
    cancel_unpaid_pledges,
    lapse_claims,
    reconcile_transfers,
    refund_expired_pledges,
    refund_not_planned_items,
    retry_payouts,
)
from jobs.sync import reconcile_all, sync_due_repositories
from jobs.webhooks import requeue_pending_deliveries, retry_waiting_deliveries
from marketplace.tasks import dotted_name, options_of


def _register(func, *, name: str, interval: int | None = None, cron_string: str | None = None) -> None:
    """Schedule ``func`` (a declared job) every ``interval`` seconds or on ``cron_string``."""
    options = options_of(dotted_name(func))
    cron.register(func, options.queue, interval=interval, cron=cron_string, job_timeout=options.timeout, name=name)


# Incremental sync of every repository (cheap: unchanged ones cost 304s only),
# and the resumption of syncs whose rate-limit wait is over.
_register(sync_due_repositories, interval=15 * 60, name="incremental-sync")

# Once a day, find what webhooks missed (deleted merge requests, lost deliveries).
_register(reconcile_all, cron_string="17 3 * * *", name="reconciliation")

# Deliveries whose job was lost (Redis down when they arrived) are queued again.
_register(requeue_pending_deliveries, interval=5 * 60, name="requeue-deliveries")

# Stripe events that came before what they are about (kept "waiting") are tried again.
_register(retry_waiting_deliveries, interval=15 * 60, name="retry-waiting-deliveries")

# Pledges never paid (Checkout abandoned, transfer never sent) are cancelled after their rail's time.
_register(cancel_unpaid_pledges, cron_string="47 * * * *", name="cancel-unpaid-pledges")

# Pledges past their expiry with the item unsolved go back to their funders.
_register(refund_expired_pledges, cron_string="7 * * * *", name="refund-expired-pledges")
_register(refund_not_planned_items, cron_string="37 * * * *", name="refund-not-planned")

# Approved payouts whose dispute window has passed are executed; transfers
# Stripe could not take are retried with their own idempotency keys.
_register(retry_payouts, interval=10 * 60, name="payouts")

# Once a day, Stripe's transfers per payout transfer group against the shares
# the ledger paid (a second transfer for one share is reported and flagged).
_register(reconcile_transfers, cron_string="47 3 * * *", name="transfer-reconciliation")

# Claims: warn before the deadline, lapse those past it with no linked change.
_register(lapse_claims, cron_string="23 * * * *", name="claim-lapses")
