"""A subscriber's fund statement (issue 18): for each of their subscriptions
to project funds, what it paid in, what its money paid for — its part of each
allotment, attributed in proportion to the subscribers' parts of the fund's
balance when the maintainers allotted it — and where that money is now (in
escrow on the item, paid out, back in the fund), and what went back to them
from a fund whose project left. Amounts are minor units of each fund's currency."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from marketplace.funds import queries
from marketplace.funds.models import FundSubscription
from marketplace.reports.service import cell


@dataclass(frozen=True)
class AttributedLine:
    """The subscription's part of one allotment."""

    allotment_id: int
    at: datetime
    item_id: int
    item_title: str
    reason: str
    state: str  # held | released | returned
    allotment_minor: int
    share_minor: int


@dataclass
class SubscriptionStatement:
    """One subscription's money: ``paid_minor`` in, ``allotted_minor`` of it
    allotted (still allotted or paid out), ``paid_out_minor`` paid out,
    ``in_fund_minor`` still in the fund, ``returned_minor`` back to the subscriber."""

    subscription: FundSubscription
    project: str
    currency: str
    receipts: list = field(default_factory=list)
    lines: list[AttributedLine] = field(default_factory=list)
    paid_minor: int = 0
    allotted_minor: int = 0
    paid_out_minor: int = 0
    returned_minor: int = 0

    @property
    def in_fund_minor(self) -> int:
        return self.paid_minor - self.allotted_minor - self.returned_minor

    @property
    def organisation(self) -> str | None:
        """The organisation the subscription was made for (its name), or None: the person's own."""
        org = self.subscription.organisation
        return org.name if org is not None else None


def subscriber_statement(user_id: int) -> list[SubscriptionStatement]:
    """Every subscription ``user_id`` made (their own, and those for an
    organisation, which name it), newest first, with its receipts and attributed allotments."""
    return statements_of(queries.my_subscriptions(user_id))


def organisation_statement(organisation_id: int) -> list[SubscriptionStatement]:
    """Every subscription made for the organisation, by any of its members, newest first."""
    return statements_of(queries.organisation_subscriptions(organisation_id))


def statements_of(subscriptions: list[FundSubscription]) -> list[SubscriptionStatement]:
    """One statement per subscription, in the order given."""
    out = []
    for sub in subscriptions:
        st = SubscriptionStatement(subscription=sub, project=sub.fund.project.name, currency=sub.currency,
                                   receipts=queries.receipts_of(sub))
        st.paid_minor = sum(r.amount_minor for r in st.receipts)
        for attribution in queries.attributions_of(sub):
            allotment = attribution.allotment
            st.lines.append(AttributedLine(allotment.id, allotment.created_at, allotment.item_id,
                                           allotment.item.title, allotment.reason, allotment.state.value,
                                           allotment.amount_minor, attribution.amount_minor))
            if allotment.state.value in ("held", "released"):
                st.allotted_minor += attribution.amount_minor
            if allotment.state.value == "released":
                st.paid_out_minor += attribution.amount_minor
        st.returned_minor = sum(r.amount_minor for r in queries.returns_of(sub) if r.state.value == "returned")
        out.append(st)
    return out


def statement_csv(statements: list[SubscriptionStatement]) -> str:
    """The statement as CSV: one row per receipt and per attributed allotment (amounts in minor units).
    Free text (the project's name, a maintainer's reason, a transfer's reference) is guarded against
    running as a spreadsheet formula (:func:`marketplace.reports.service.cell`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["subscription", "project", "currency", "kind", "date", "reference", "item", "reason",
                     "state", "amount_minor", "allotment_minor", "for_organisation"])
    for st in statements:
        org = cell(st.organisation or "")
        for receipt in st.receipts:
            writer.writerow([st.subscription.id, cell(st.project), st.currency, "paid_in",
                             receipt.received_at.date(), cell(receipt.external_id), "", "", "", receipt.amount_minor,
                             "", org])
        for line in st.lines:
            writer.writerow([st.subscription.id, cell(st.project), st.currency, "allotted", line.at.date(),
                             f"allotment-{line.allotment_id}", line.item_id, cell(line.reason), line.state,
                             line.share_minor, line.allotment_minor, org])
    return buffer.getvalue()
