"""Health and readiness probes for load balancers and orchestrators.

- ``GET /healthz``: the process answers (no database, no Redis);
- ``GET /readyz``: the database and, when configured, Redis answer; 503
  naming what is down otherwise.

Both are exempt from rate limits, need no CSRF token (GET only), and answer
whatever Host header the probe sends (:class:`~marketplace.health.service.ProbeHosts`).
"""
