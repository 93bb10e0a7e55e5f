"""Gunicorn settings for the web process (``gunicorn -c gunicorn.conf.py wsgi:app``).

Every number can be changed from the environment; the defaults suit a small
machine. Logs go to standard output through the application's logging
configuration (marketplace/logconfig.py: text or JSON, token links redacted).
"""
import os

from marketplace.logconfig import logging_dict

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104 (behind a proxy)
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A request that takes longer than this (seconds) is cut and its worker restarted;
# slow work (forge sync, Stripe transfers, e-mail) runs in the RQ workers instead.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30  # seconds a worker has to finish its requests on restart or shutdown
keepalive = 5
# Workers are replaced now and then, so a slow leak never takes the site down.
max_requests = 2000
max_requests_jitter = 200
# X-Forwarded-For / -Proto are trusted only from these addresses (the proxy in
# front); the app's PROXY_FIX setting tells Flask how many proxies to trust.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"  # standard output
errorlog = "-"
# The request id is the one the app answered with (X-Request-ID), as in the app's own records.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms req=%({x-request-id}o)s'
logconfig_dict = logging_dict(os.environ)
