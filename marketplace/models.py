"""Imports every model so that metadata (and Alembic) sees all tables."""
from marketplace.accounts.models import (  # noqa: F401
    ForgeIdentity,
    ImplementorProfile,
    OAuthState,
    Organisation,
    OrganisationMember,
    User,
)
from marketplace.audit.models import AuditEvent  # noqa: F401
from marketplace.backlog.models import (  # noqa: F401
    BacklogItem,
    ItemAlias,
    ItemFunding,
    ItemLabel,
    ItemLink,
    PullRequest,
)
from marketplace.claims.models import Certification, Claim  # noqa: F401
from marketplace.forges.models import (  # noqa: F401
    HttpCacheEntry,
    Repository,
    RepositoryAlias,
    SyncRun,
)
from marketplace.funds.models import (  # noqa: F401
    Allotment,
    AllotmentAttribution,
    FundReceipt,
    FundReturn,
    FundSubscription,
    ProjectFund,
)
from marketplace.httpcache.models import DataVersion  # noqa: F401
from marketplace.ledger.models import (  # noqa: F401
    LedgerAccount,
    LedgerEntry,
    LedgerSummary,
    LedgerTransaction,
)
from marketplace.notifications.models import OutboxMessage  # noqa: F401
from marketplace.payouts.models import Payout, PayoutAccount, PayoutPledge, PayoutShare  # noqa: F401
from marketplace.pledges.models import Pledge, RefundFailure  # noqa: F401
from marketplace.pools.models import MatchingPool, PoolMatch, RoundExclusion  # noqa: F401
from marketplace.presence.models import ForgeCommand, ForgeWrite, ItemPresence, RepositoryPresence  # noqa: F401
from marketplace.projects.models import (  # noqa: F401
    MaintainerInvitation,
    MaintainerRequest,
    MemberProject,
    ProjectLink,
    ProjectMaintainer,
    ProjectSdg,
)
from marketplace.reports.models import Grant, GrantPledge, ProjectCountry, ReportSnapshot  # noqa: F401
from marketplace.roles.models import FiscalHostSetting, ItemFollow, SentNotice  # noqa: F401
from marketplace.scheduling.models import ScheduleRun  # noqa: F401
from marketplace.training.models import (  # noqa: F401
    EarnedCertification,
    MentorReview,
    ProjectMentor,
    TrainingClaim,
    TrainingItem,
    TrainingRule,
)
from marketplace.webhooks.models import WebhookDelivery  # noqa: F401
