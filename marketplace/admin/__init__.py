"""The fiscal host's admin pages, one module per area: webhook deliveries, sync,
projects (admission, maintainers, maintainership requests), accounts (admin role,
organisations), money (pledges, refunds, payouts to pay by hand), certifications
and the audit log. Forms live in :mod:`marketplace.admin.forms`."""
from marketplace.admin import (  # noqa: F401
    accounts,
    audit,
    certifications,
    deliveries,
    fiscal_host,
    money,
    overview,
    projects,
    sync,
)
from marketplace.admin.blueprint import bp

__all__ = ["bp"]
