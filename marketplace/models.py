"""Imports every model so that metadata (and Alembic) sees all tables."""
from marketplace.accounts.models import User  # noqa: F401
from marketplace.audit.models import AuditEvent  # noqa: F401
from marketplace.backlog.models import (  # noqa: F401
    BacklogItem,
    ItemFunding,
    ItemLabel,
    PullRequest,
)
from marketplace.forges.models import Repository, RepositoryAlias  # noqa: F401
from marketplace.projects.models import MemberProject, ProjectLink, ProjectSdg  # noqa: F401
