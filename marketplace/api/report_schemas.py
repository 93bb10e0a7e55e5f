"""The shapes of the report API (``/api/v1/reports/…``): the commons report
and a project's report, as :mod:`marketplace.reports.public` computes them.
Every amount is an integer in the minor unit of the currency beside it; no
figure adds two currencies."""
from typing import Optional

from pydantic import Field

from marketplace.api.schemas import ApiModel, CurrencyCode, MinorUnits, UtcTimestamp


class ReportTotals(ApiModel):
    """All-time figures in one currency."""

    currency: CurrencyCode
    received: MinorUnits = Field(description="From funders into escrow")
    matched: MinorUnits = Field(description="From matching pools into escrow")
    paid_out: MinorUnits = Field(description="Released from escrow by payouts (fees included), net of returned ones")
    fees: MinorUnits
    refunded: MinorUnits
    lost: MinorUnits = Field(description="Lost to disputes")
    held: MinorUnits = Field(description="In escrow now")


class ReportMonth(ApiModel):
    """One UTC month's flows in one currency."""

    month: str = Field(pattern=r"^\d{4}-\d{2}$")
    currency: CurrencyCode
    received: MinorUnits
    matched: MinorUnits
    paid_out: MinorUnits
    fees: MinorUnits
    refunded: MinorUnits
    lost: MinorUnits


class ReportSdg(ApiModel):
    """Money on items of projects citing one SDG (a project citing several counts in each)."""

    sdg: int = Field(ge=1, le=17)
    currency: CurrencyCode
    received: MinorUnits
    paid_out: MinorUnits


class ReportCountry(ApiModel):
    """Payout shares to recipients based in one country (null: not given)."""

    country: Optional[str] = Field(description="ISO 3166-1 alpha-2")
    currency: CurrencyCode
    paid_to_recipients: MinorUnits


class ReportLocalShare(ApiModel):
    """Payout shares to implementors based in the project's deployment countries, elsewhere, or not saying."""

    currency: CurrencyCode
    local: MinorUnits
    elsewhere: MinorUnits
    unknown: MinorUnits


class CommonsReport(ApiModel):
    """The commons report (``/reports``)."""

    computed_at: UtcTimestamp
    currencies: list[ReportTotals]
    by_month: list[ReportMonth]
    by_sdg: list[ReportSdg]
    by_country: list[ReportCountry]
    local_share: list[ReportLocalShare]
    items_solved_with_funding: int = Field(description="Items whose payout was executed")
    median_days_to_merge: Optional[float] = Field(description="From an item's first pledge held to the merge")


class ProjectReport(ApiModel):
    """A member project's report (``/projects/{slug}/report``)."""

    project: str = Field(description="The project's slug")
    name: str
    sdgs: list[int]
    deployment_countries: list[str] = Field(description="ISO 3166-1 alpha-2, from the DPG screening record")
    development_countries: list[str]
    computed_at: UtcTimestamp
    currencies: list[ReportTotals]
    by_month: list[ReportMonth]
    by_country: list[ReportCountry]
    local_share: list[ReportLocalShare]
    items_solved_with_funding: int
    median_days_to_merge: Optional[float]


REPORT_COMPONENTS = (CommonsReport, ProjectReport)
