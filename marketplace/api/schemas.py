"""The shapes of the read-only API, defined once: the views build their answers
from these models (``model_dump(mode="json")``) and the OpenAPI document's
``components.schemas`` and query parameters are their JSON Schema
(:mod:`marketplace.api.openapi`).

Amounts are integers in the currency's minor unit (cents for USD, yen for JPY);
times are UTC, written ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``.
"""
import enum
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from marketplace.backlog.close_reasons import CloseReason
from marketplace.backlog.models import ItemState
from marketplace.backlog.search import FUNDED, MATCHED, MAX_PAGE, MAX_QUERY_LENGTH, SORTS, STATES, TRAINING
from marketplace.forges.models import ForgeKind
from marketplace.funds.models import AllotmentState, FundState
from marketplace.payouts.models import PayoutState, ShareState
from marketplace.pledges.models import PledgeState
from marketplace.pools.models import MatchState, PoolKind, PoolRail, PoolState
from marketplace.projects.models import ProjectLinkKind, RegistryStatus


def values_of(kind: type[enum.Enum]) -> Any:
    """``Literal[...]`` of an enum's values: the JSON Schema is an ``enum`` of strings."""
    return Literal[tuple(member.value for member in kind)]


def _utc(value: datetime) -> str:
    if value.tzinfo is not None:  # parsed from an already written "…Z"
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat() + "Z"


# Naive UTC datetimes from the database, written with a trailing Z.
UtcTimestamp = Annotated[
    datetime,
    PlainSerializer(_utc, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "UTC"}),
]
Url = Annotated[str, Field(json_schema_extra={"format": "uri"})]
CurrencyCode = Annotated[str, Field(pattern="^[A-Z]{3}$", description="ISO 4217 code")]
MinorUnits = Annotated[int, Field(description="Amount in the currency's minor unit (cents for USD, yen for JPY)")]


class ApiModel(BaseModel):
    """Base of every API shape: unknown fields are refused when building, so a
    typo in a view fails a test instead of vanishing from the answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# -- errors ---------------------------------------------------------------------------------------


class ErrorDetail(ApiModel):
    status: int = Field(description="The HTTP status, repeated")
    message: str = Field(description="What went wrong, in the visitor's language")
    parameter: Optional[str] = Field(default=None, description="The query parameter refused (400 only)")
    deleted_at: Optional[UtcTimestamp] = Field(default=None, description="When the forge removed the item (410 only)")


class Error(ApiModel):
    """Every 4xx/5xx answer under /api/: ``{"error": {...}}``."""

    error: ErrorDetail


# -- items ----------------------------------------------------------------------------------------


class Money(ApiModel):
    currency: CurrencyCode
    amount_minor: MinorUnits


class Author(ApiModel):
    login: Optional[str]
    forge_id: Optional[int]


class ForgeRef(ApiModel):
    kind: values_of(ForgeKind)
    host: str
    id: int
    number: int
    url: Optional[str] = Field(description="The issue on its forge (an http(s) URL) or null")


class RepositoryRef(ApiModel):
    full_name: str
    url: str


class ProjectRef(ApiModel):
    slug: str
    name: str


class SolvedBy(ApiModel):
    """The merged pull/merge request that closed the item, from the linking rules."""

    repository: str
    number: int
    url: Optional[str]
    merged_at: Optional[UtcTimestamp]


class Item(ApiModel):
    """One backlog item as the public sees it."""

    id: int
    url: Url
    page_url: Url
    title: str
    body: Optional[str] = Field(description="Markdown as written on the forge; unsanitised")
    state: Literal["open", "solved", "closed"] = Field(
        description="open: still needs work; solved: a merged change closes it, or closed as completed; "
                    "closed: closed without the work. The `state` filter's values.")
    solved: bool = Field(description="true exactly when state is solved")
    forge_state: values_of(ItemState) = Field(description="The issue's state on its forge")
    state_reason: Optional[str] = Field(
        description="As the forge gave it (GitHub state_reason; moved/duplicate from GitLab)")
    close_reason: Optional[values_of(CloseReason)]
    labels: list[str]
    author: Author
    forge: ForgeRef
    repository: RepositoryRef
    project: ProjectRef
    created_at: UtcTimestamp
    updated_at: UtcTimestamp
    closed_at: Optional[UtcTimestamp]
    comments: int
    priority: Optional[int]
    funding_goal: Optional[Money]
    solved_by: Optional[SolvedBy]
    bounty: list[Money] = Field(description="Held (escrowed) pledges per currency; the item's bounty")
    pledges_awaiting_payment: int = Field(
        description="How many pledges wait for their money; their amounts are never shown or counted")


class ItemList(ApiModel):
    items: list[Item]
    total: int = Field(description="Matching items: exact up to 10,000, else 10,000 and `total_exact` false")
    total_exact: bool = Field(description="false when there are more than `total` matching items")
    page: int = Field(description="The page number asked for (1 when a `cursor` was given)")
    next: Optional[Url] = Field(description="The next page (with a `cursor`), or null on the last")


# -- projects -------------------------------------------------------------------------------------


class Project(ApiModel):
    slug: str
    name: str
    url: Url
    page_url: Url
    website: Optional[str]
    registry_stage: Optional[str]
    registry_status: values_of(RegistryStatus)
    sdgs: list[Annotated[int, Field(ge=1, le=17)]]
    open_items: int


class SdgEvidence(ApiModel):
    sdg: int = Field(ge=1, le=17)
    text: Optional[str]
    url: Optional[str]


class ProjectRepository(ApiModel):
    forge: values_of(ForgeKind)
    host: str
    full_name: str
    url: str
    forge_id: Optional[int]
    former_names: list[str]


class ProjectLink(ApiModel):
    kind: values_of(ProjectLinkKind)
    label: Optional[str]
    url: str


class ProjectDetail(Project):
    description: str
    aliases: list[str]
    licences: list[dict[str, Any]] = Field(description="As the DPG registry gives them")
    types: list[str]
    organisations: list[dict[str, Any]] = Field(description="As the DPG registry gives them")
    sdg_evidence: list[SdgEvidence]
    repositories: list[ProjectRepository]
    links: list[ProjectLink]


class ProjectList(ApiModel):
    projects: list[Project]
    total: int
    page: int
    next: Optional[Url] = Field(description="The next page, or null on the last")


# -- money ----------------------------------------------------------------------------------------


class LedgerPledge(ApiModel):
    """A pledge whose money arrived (unpaid ones are only counted)."""

    pledge: int
    funder: Optional[str] = Field(description="The funder's name, or null when they pledged anonymously")
    state: values_of(PledgeState)
    currency: CurrencyCode
    amount_minor: MinorUnits
    held_minor: MinorUnits
    refunded_minor: MinorUnits
    created_at: UtcTimestamp


class PayoutShareView(ApiModel):
    recipient: str
    amount_minor: MinorUnits
    state: values_of(ShareState)


class LedgerPayout(ApiModel):
    payout: int
    state: values_of(PayoutState)
    currency: CurrencyCode
    gross_minor: MinorUnits
    fee_minor: MinorUnits
    pull_request: Optional[str]
    shares: list[PayoutShareView] = Field(description="Empty until the payout is approved")
    executed_at: Optional[UtcTimestamp]


class ItemLedger(ApiModel):
    """Every received pledge of an item with its escrow and refunds, and its payouts."""

    item: int
    escrow: list[Money] = Field(description="Held per currency (currencies holding nothing left out)")
    pledges: list[LedgerPledge]
    pledges_awaiting_payment: int
    payouts: list[LedgerPayout]


class CurrencyTotals(ApiModel):
    """One currency's figures from the ledger entries, in minor units, all positive."""

    received: MinorUnits
    held: MinorUnits
    refunded: MinorUnits
    fees: MinorUnits
    paid: MinorUnits
    owed: MinorUnits = Field(description="Approved for contributors, not yet paid")
    lost: MinorUnits = Field(description="Lost to disputes, with their fees")
    commons: MinorUnits = Field(description="Covered by the commons' own funds")
    advanced: MinorUnits = Field(description="Advanced against recipients' debts")
    pools_received: MinorUnits = Field(description="Received from matching pools' sponsors")
    pools_held: MinorUnits = Field(description="Held by matching pools, not matched yet")
    pools_returned: MinorUnits = Field(description="Returned to matching pools' sponsors")
    funds_received: MinorUnits = Field(default=0, description="Received by project funds from subscribers")
    funds_held: MinorUnits = Field(default=0, description="Held by project funds, not allotted yet")
    funds_returned: MinorUnits = Field(default=0, description="Returned to subscribers of projects that left")
    funds_kept: MinorUnits = Field(default=0, description="Kept by the fiscal host under the funds' terms")


class LedgerSummary(ApiModel):
    totals: dict[Annotated[str, Field(pattern="^[A-Z]{3}$")], CurrencyTotals]
    reconciled: bool = Field(description="true when the last full check (`flask ledger check`, run hourly) "
                                         "found nothing; false when it found something or never ran")
    violations: int = Field(description="what the last full check found")
    totals_at: Optional[UtcTimestamp] = Field(description="when the totals last changed (at every money event)")
    checked_at: Optional[UtcTimestamp] = Field(description="when the last full check ran; null: never")


# -- matching pools -------------------------------------------------------------------------------


class PoolFigures(ApiModel):
    """A pool's money in minor units of its currency, from its ledger account and matches."""

    budget: MinorUnits = Field(description="What the sponsor announced")
    received: MinorUnits = Field(description="What arrived (the pool's money in)")
    matched: MinorUnits = Field(description="Matched, net of matches that came back")
    matched_back: MinorUnits = Field(description="Came back from matches (refunded pledges, ended items)")
    returned: MinorUnits = Field(description="Returned to the sponsor")
    remaining: MinorUnits = Field(description="Held by the pool now")


class Pool(ApiModel):
    """A matching pool (ratio) or quadratic-funding round."""

    pool: int
    name: str
    kind: values_of(PoolKind)
    state: values_of(PoolState)
    currency: CurrencyCode
    rail: values_of(PoolRail) = Field(description="How the budget came, and goes back to the sponsor: card "
                                                   "(Stripe refunds) or bank_transfer (recorded by the fiscal host)")
    ratio_percent: Optional[int] = Field(description="Percent of each eligible pledge matched (ratio pools)")
    starts_at: UtcTimestamp
    ends_at: UtcTimestamp
    figures: PoolFigures
    url: Url


class PoolMatchView(ApiModel):
    """Pool money in an item's escrow: beside a pledge (ratio) or a round's share (pledge null)."""

    item: int
    pledge: Optional[int]
    amount_minor: MinorUnits
    returned_minor: MinorUnits
    state: values_of(MatchState)


class PoolDetail(Pool):
    """A pool with its caps, eligibility and matches (newest first, at most 200)."""

    cap_per_pledge_minor: Optional[MinorUnits]
    cap_per_funder_minor: Optional[MinorUnits]
    cap_per_item_minor: Optional[MinorUnits]
    min_pledge_minor: Optional[MinorUnits]
    item_cap_bps: Optional[int] = Field(description="Rounds: an item's share of the pool at most, basis points")
    sdgs: list[int]
    labels: list[str]
    projects: list[int]
    matches: list[PoolMatchView]


class PoolList(ApiModel):
    pools: list[Pool]


# -- project funds ---------------------------------------------------------------------------------


class FundAttribution(ApiModel):
    """A subscriber's part of an allotment (name null: the subscriber chose not to be shown)."""

    name: Optional[str]
    amount_minor: MinorUnits


class FundAllotment(ApiModel):
    """Fund money a maintainer allotted to an item, held like a pledge of the fund."""

    allotment: int
    item: int
    amount_minor: MinorUnits
    reason: str
    state: values_of(AllotmentState) = Field(description="held: in the item's escrow; released: paid out; "
                                                         "returned: back in the fund")
    created_at: UtcTimestamp
    expires_at: UtcTimestamp = Field(description="Back to the fund after this if the item is unsolved "
                                                 "and no claim is at work")
    attribution: list[FundAttribution] = Field(description="Whose money it was, by largest remainder")


class FundSubscriber(ApiModel):
    """A live subscription (name null: anonymous)."""

    name: Optional[str]
    amount_minor: MinorUnits = Field(description="Each month")
    state: Literal["active", "paused"]


class FundCurrency(ApiModel):
    """A project's fund in one currency, in minor units of it."""

    currency: CurrencyCode
    state: values_of(FundState)
    balance: MinorUnits = Field(description="Held by the fund, not allotted (from the ledger)")
    received: MinorUnits = Field(description="Everything subscribers paid in")
    monthly: MinorUnits = Field(description="What the active subscriptions give each month")
    allotted: MinorUnits = Field(description="Every allotment made")
    returned: MinorUnits = Field(description="Allotments come back to the fund (work not done, expired)")
    paid_out: MinorUnits = Field(description="Allotments paid out with their items' payouts")
    taken_back: MinorUnits = Field(description="Taken back by Stripe after it reached the fund: invoices refunded "
                                               "at Stripe and chargebacks lost (from the ledger; includes what the "
                                               "commons covered because the fund had allotted it already)")
    subscribers: list[FundSubscriber]
    allotments: list[FundAllotment] = Field(description="Newest first, at most 500")


class ProjectFundView(ApiModel):
    """A member project's fund: per currency, its figures, subscribers and allotments."""

    project: str
    url: Url
    funds: list[FundCurrency]


# -- query parameters -----------------------------------------------------------------------------

Page = Annotated[int, Field(ge=1, le=MAX_PAGE, description="Page number, from 1")]


class PageQuery(ApiModel):
    page: Page = 1


class ItemQuery(ApiModel):
    """The backlog filters (:func:`marketplace.backlog.search.parse_filters` applies them)."""

    q: Optional[Annotated[str, Field(max_length=MAX_QUERY_LENGTH)]] = Field(
        default=None, description="Full-text search over title and body; every word must match")
    project: Optional[str] = Field(default=None, description="Member project slug (400 when there is none)")
    sdg: Optional[Annotated[int, Field(ge=1, le=17)]] = Field(default=None, description="SDG number")
    country: Optional[Annotated[str, Field(pattern="^[A-Za-z]{2}$")]] = Field(
        default=None, description="A country the project is deployed in (ISO 3166-1 alpha-2, DPG screening record)")
    label: Optional[Annotated[str, Field(max_length=255)]] = Field(default=None, description="Forge label name")
    state: Literal[STATES] = Field(
        default="open", description="open: still needs work; solved; closed: closed without the work; all")
    forge: Optional[values_of(ForgeKind)] = Field(default=None, description="Forge kind")
    funded: Optional[Literal[FUNDED]] = Field(default=None, description="Has a bounty (held pledges) or not")
    matched: Optional[Literal[MATCHED]] = Field(
        default=None, description="1: only items matched by a matching pool (a match or a round's share is "
                                  "held in the item's escrow)")
    training: Optional[Literal[TRAINING]] = Field(
        default=None, description="1: only training items, which implementors not yet certified for the "
                                  "project may claim under a mentor (issue 19)")
    sort: Literal[SORTS] = Field(
        default="updated", description="updated: recently updated; newest: recently opened; "
                                       "funded: largest bounty in the reporting currency")
    page: Page = 1
    cursor: Optional[Annotated[str, Field(max_length=200)]] = Field(
        default=None, description="Where the page starts: the `cursor` of the previous page's `next` "
                                  "(not with `page`); 400 for a cursor of another sort")


# Every model whose schema is a component, by name.
COMPONENTS: tuple[type[ApiModel], ...] = (
    Error, Money, Item, ItemList, Project, ProjectDetail, ProjectList, ItemLedger, LedgerSummary,
    PoolList, PoolDetail, ProjectFundView,
)
