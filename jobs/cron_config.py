"""RQ cron schedule (``flask rq cron`` or ``rq cron jobs/cron_config.py``).

The scheduler only enqueues; workers started with ``flask rq worker`` run the
jobs with the application context.
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

# Incremental sync of every repository (cheap: unchanged ones cost 304s only),
# and the resumption of syncs whose rate-limit wait is over.
cron.register(sync_due_repositories, "sync", interval=15 * 60, job_timeout=600, name="incremental-sync")

# Once a day, find what webhooks missed (deleted merge requests, lost deliveries).
cron.register(reconcile_all, "sync", cron="17 3 * * *", job_timeout=600, name="reconciliation")

# Deliveries whose job was lost (Redis down when they arrived) are queued again.
cron.register(requeue_pending_deliveries, "webhooks", interval=5 * 60, job_timeout=300, name="requeue-deliveries")

# Stripe events that came before what they are about (kept "waiting") are tried again.
cron.register(retry_waiting_deliveries, "webhooks", interval=15 * 60, job_timeout=300, name="retry-waiting-deliveries")

# Pledges never paid (Checkout abandoned, transfer never sent) are cancelled after their rail's time.
cron.register(cancel_unpaid_pledges, "money", cron="47 * * * *", job_timeout=600, name="cancel-unpaid-pledges")

# Pledges past their expiry with the item unsolved go back to their funders.
cron.register(refund_expired_pledges, "money", cron="7 * * * *", job_timeout=600, name="refund-expired-pledges")
cron.register(refund_not_planned_items, "money", cron="37 * * * *", job_timeout=600, name="refund-not-planned")

# Approved payouts whose dispute window has passed are executed; transfers
# Stripe could not take are retried with their own idempotency keys.
cron.register(retry_payouts, "money", interval=10 * 60, job_timeout=600, name="payouts")

# Once a day, Stripe's transfers per payout transfer group against the shares
# the ledger paid (a second transfer for one share is reported and flagged).
cron.register(reconcile_transfers, "money", cron="47 3 * * *", job_timeout=600, name="transfer-reconciliation")

# Claims: warn before the deadline, lapse those past it with no linked change.
cron.register(lapse_claims, "default", cron="23 * * * *", job_timeout=600, name="claim-lapses")
