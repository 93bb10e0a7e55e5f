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


class TrainingRow(ApiModel):
    """Training figures of one member project or of one country of the trainees (issue 19)."""

    key: str = Field(description="By project: the project's name; by country: the trainee's country "
                                 "(ISO 3166-1 alpha-2), empty when not given")
    trainees: int = Field(ge=0, description="People who held a training claim")
    mentored_merges: int = Field(ge=0, description="Completed training claims whose change merged after "
                                                   "their mentor's approval")
    certifications: int = Field(ge=0, description="Project certifications earned through training "
                                                  "(revoked ones too)")


class TrainingTotals(ApiModel):
    """The rows by project added up (a trainee in two projects counts in each)."""

    trainees: int = Field(ge=0)
    mentored_merges: int = Field(ge=0)
    certifications: int = Field(ge=0)


class TrainingFigures(ApiModel):
    """Trainees, mentored merges and certifications earned through training, by project and by
    the trainee's country; counted when asked (never from the stored snapshot), as the report page shows them."""

    by_project: list[TrainingRow] = Field(description="Sorted by the project's name")
    by_country: list[TrainingRow] = Field(description="Sorted by country code; \"\" (not given) first")
    totals: TrainingTotals


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
    training: TrainingFigures = Field(description="Every member project's training figures")


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
    training: TrainingFigures = Field(description="The project's training figures (one row by project at most)")


REPORT_COMPONENTS = (CommonsReport, ProjectReport)
