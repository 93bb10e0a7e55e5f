"""Background jobs, run by RQ workers in production and in-process by default.

Job functions are thin: they take ids, call one service, commit once at the
end, fail loudly and are safe to run twice. Each declares its queue, timeout
and retries with :func:`marketplace.tasks.job`; services enqueue them by
dotted name with :func:`marketplace.tasks.enqueue` (never importing this
package), after the transaction they depend on has committed.
"""
