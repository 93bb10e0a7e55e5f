"""Imports every model so that metadata (and Alembic) sees all tables."""
from marketplace.accounts.models import User  # noqa: F401
from marketplace.audit.models import AuditEvent  # noqa: F401
from marketplace.backlog.models import (  # noqa: F401
    BacklogItem,
    ItemAlias,
    ItemFunding,
    ItemLabel,
    ItemLink,
    PullRequest,
)
from marketplace.forges.models import (  # noqa: F401
    HttpCacheEntry,
    Repository,
    RepositoryAlias,
    SyncRun,
)
from marketplace.webhooks.models import WebhookDelivery  # noqa: F401
from marketplace.projects.models import MemberProject, ProjectLink, ProjectSdg  # noqa: F401
