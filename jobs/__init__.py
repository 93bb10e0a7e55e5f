"""Background jobs, run by RQ workers in production and in-process by default.

Job functions take ids, reload their rows, commit once at the end, fail loudly
and are safe to run twice. They are enqueued with
:func:`jobs.queue.enqueue_after_commit`, never before the transaction they
depend on has committed.
"""
