"""Reports: funder statements, grants and their audit packs, public project and
commons reports, and their CSV forms. Services flush, never commit.

Money is integers in minor units per currency everywhere; CSV shows it as a
decimal in major units beside its ISO 4217 code (never a float), and no
figure adds two currencies.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from babel.numbers import is_currency
from flask_babel import gettext as _
from sqlalchemy import select

from marketplace.accounts.models import Organisation, User
from marketplace.audit import service as audit
from marketplace.claims.certification import is_certified
from marketplace.errors import DomainError
from marketplace.extensions import db
from marketplace.money import exponent
from marketplace.pledges.models import Pledge
from marketplace.reports import queries
from marketplace.reports.models import Grant, GrantPledge
from marketplace.reports.statements import Context, Statement, build, payout_id_of

CHECKSUM_PREFIX = "# sha256="
_REFERENCE = re.compile(r"^[\w./ -]{1,100}$")


class ReportError(DomainError):
    """A request a report cannot answer; the message is for the person."""


def cell(text: str | None) -> str:
    """Free text (a title, a name) for a CSV cell: one that a spreadsheet would
    run as a formula (starting with = + - @, a tab or a carriage return) gets a
    leading apostrophe (OWASP "CSV injection"). Amounts are never passed here."""
    text = text or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def major(amount_minor: int, currency: str) -> str:
    """``amount_minor`` as an exact decimal in major units ("1234.50" for 123450 USD, "1234" for JPY)."""
    return format(Decimal(amount_minor).scaleb(-exponent(currency)), "f")


# --- periods -----------------------------------------------------------------------------

def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, the day after ``end`` 00:00) in UTC, both dates included.
    Raises :class:`ReportError` when ``end`` is before ``start``."""
    if end < start:
        raise ReportError(_("The period ends before it starts."))
    return datetime.combine(start, time.min), datetime.combine(end + timedelta(days=1), time.min)


# --- statements --------------------------------------------------------------------------

def _context(rows) -> Context:
    payout_ids = sorted({payout_id_of(txn) for link, _id, txn in rows if link == "payout_pledge"})
    payouts = queries.payout_details(payout_ids)
    recipients = sorted({s.recipient_id for p in payouts.values() for s in p.shares})
    certified = {(p.id, s.recipient_id): is_certified(s.recipient_id, p.item.repository.project_id,
                                                      at=p.executed_at or p.approved_at)
                 for p in payouts.values() for s in p.shares}
    return Context(payouts=payouts, recipient_country=queries.recipient_countries(recipients), certified=certified)


def statement(title: str, pledges: list[Pledge], start: datetime, end: datetime) -> Statement:
    """The statement of ``pledges`` for [start, end) (UTC), per currency (see
    :mod:`marketplace.reports.statements` for the figures and their identity)."""
    rows = queries.transactions_behind([p.id for p in pledges])
    return build(title, pledges, rows, start, end, _context(rows))


def person_statement(user: User, start: datetime, end: datetime) -> Statement:
    """What ``user``'s own pledges (not those on behalf of an organisation) did in the period."""
    return statement(user.display_name, queries.pledges_of_person(user.id), start, end)


def organisation_statement(org: Organisation, start: datetime, end: datetime) -> Statement:
    """What the pledges made on behalf of ``org`` did in the period."""
    return statement(org.name, queries.pledges_of_organisation(org.id), start, end)


def grant_statement(grant: Grant, start: datetime | None = None, end: datetime | None = None) -> Statement:
    """What the pledges tagged with ``grant`` did; the grant's own period unless another is given."""
    default_start, default_end = period_bounds(grant.starts_on, grant.ends_on)
    return statement(f"{grant.name} ({grant.reference})", queries.pledges_of_grant(grant.id),
                     start or default_start, end or default_end)


def may_see_organisation(user, org: Organisation) -> bool:
    """Members (accepted) and admins see an organisation's statements and grants."""
    return bool(user.is_authenticated and (user.is_admin or queries.is_member(org.id, user.id)))


# --- grants ------------------------------------------------------------------------------

def create_grant(org: Organisation, *, name: str, reference: str, starts_on: date, ends_on: date, currency: str,
                 actor: User) -> Grant:
    """A new grant of ``org`` (a funder organisation). Raises :class:`ReportError`
    for an empty name, a reference outside letters, digits and ``./ -``, a
    period that ends before it starts, an unknown currency, or a reference the
    organisation used already. Audited as ``grant.created``."""
    name, reference, currency = name.strip(), reference.strip(), currency.strip().upper()
    if not name or len(name) > 200:
        raise ReportError(_("Give the grant a name (at most 200 characters)."))
    if not _REFERENCE.match(reference):
        raise ReportError(_("The reference may hold letters, digits, spaces and . / - (at most 100)."))
    if ends_on < starts_on:
        raise ReportError(_("The grant's period ends before it starts."))
    if not is_currency(currency):  # ISO 4217, as CLDR knows it
        raise ReportError(_("%(currency)s is not a currency code.", currency=currency))
    if db.session.scalar(select(Grant.id).where(Grant.organisation_id == org.id, Grant.reference == reference)):
        raise ReportError(_("This organisation has a grant with reference %(ref)s already.", ref=reference))
    grant = Grant(organisation_id=org.id, name=name, reference=reference, starts_on=starts_on, ends_on=ends_on,
                  currency=currency, created_by_id=actor.id)
    db.session.add(grant)
    db.session.flush()
    audit.record("grant.created", "grant", grant.id, actor=f"user:{actor.id}", actor_user_id=actor.id,
                 details={"organisation": org.id, "reference": reference})
    return grant


def tag_pledges(grant: Grant, pledge_ids: list[int], *, actor: User) -> int:
    """Tag ``pledge_ids`` with ``grant``; returns how many were newly tagged.

    Only pledges made on behalf of the grant's organisation, in the grant's
    currency, and not tagged with another grant can be tagged; otherwise
    :class:`ReportError` names the first refused pledge and nothing is
    tagged. Tagging a pledge with its own grant again changes nothing.
    Audited as ``grant.pledges_tagged``."""
    pledges = {p.id: p for p in db.session.scalars(select(Pledge).where(Pledge.id.in_(pledge_ids)))}
    tagged = queries.grant_of_pledges(list(pledges))
    new = []
    for pledge_id in sorted(set(pledge_ids)):
        pledge = pledges.get(pledge_id)
        if pledge is None or pledge.organisation_id != grant.organisation_id:
            raise ReportError(_("Pledge %(id)s was not made on behalf of this organisation.", id=pledge_id))
        if pledge.currency != grant.currency:
            raise ReportError(_("Pledge %(id)s is in %(currency)s; the grant is in %(grant)s.", id=pledge_id,
                                currency=pledge.currency, grant=grant.currency))
        if tagged.get(pledge_id, grant.id) != grant.id:
            raise ReportError(_("Pledge %(id)s is tagged with another grant.", id=pledge_id))
        if pledge_id not in tagged:
            new.append(pledge_id)
    for pledge_id in new:
        db.session.add(GrantPledge(pledge_id=pledge_id, grant_id=grant.id, tagged_by_id=actor.id))
    db.session.flush()
    if new:
        audit.record("grant.pledges_tagged", "grant", grant.id, actor=f"user:{actor.id}", actor_user_id=actor.id,
                     details={"pledges": new})
    return len(new)


# --- CSV ---------------------------------------------------------------------------------

def _csv(rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(rows)
    return out.getvalue()


def with_checksum(body: str) -> str:
    """``body`` followed by a line ``# sha256=<hex of body's UTF-8 bytes> lines=<lines in body>``."""
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return f"{body}{CHECKSUM_PREFIX}{digest} lines={body.count(chr(10))}\n"


def verify_checksum(text: str) -> bool:
    """Whether ``text`` ends with a checksum line that matches everything before it
    (a removed, added or changed line makes it False)."""
    body, _sep, last = text.rstrip("\n").rpartition("\n")
    body += "\n"
    match = re.fullmatch(r"# sha256=([0-9a-f]{64}) lines=(\d+)", last)
    if match is None:
        return False
    return (hashlib.sha256(body.encode("utf-8")).hexdigest() == match.group(1)
            and body.count("\n") == int(match.group(2)))


STATEMENT_HEADER = ["section", "currency", "amount", "date", "transaction", "pledge", "project", "item",
                    "pull_request", "recipient", "recipient_country", "certified", "fee"]


def statement_csv(st: Statement) -> str:
    """The statement as CSV (UTF-8, header row): a ``figure`` row per currency
    and figure, then every line with its ledger transaction id; amounts in
    major units with the currency code. Ends with a checksum line."""
    rows: list[list] = [STATEMENT_HEADER]
    for currency, cs in st.currencies.items():
        for name, value in cs.figures.items():
            rows.append([f"figure:{name}", currency, major(value, currency)] + [""] * 10)
        for line in cs.money_lines:
            rows.append([line.kind, currency, major(line.amount_minor, currency), line.at.date().isoformat(),
                         line.transaction_id, line.pledge_id or "", "", line.item_id, "", "", "", "", ""])
        for pl in cs.payout_lines:
            rows.append(["payout_fee", currency, major(pl.fee_minor, currency), pl.at.date().isoformat(),
                         pl.transaction_id, "", cell(pl.project), pl.item_id, cell(pl.pull_request_url), "", "", "",
                         ""])
            for r in pl.recipients:
                rows.append(["payout", currency, major(r.amount_minor, currency), pl.at.date().isoformat(),
                             pl.transaction_id, "", cell(pl.project), pl.item_id, cell(pl.pull_request_url),
                             cell(r.name),
                             r.country or "", "yes" if r.certified else "no", ""])
    return with_checksum(_csv(rows))


ENTRIES_HEADER = ["transaction", "transaction_kind", "idempotency_key", "created_at", "entry", "account",
                  "currency", "amount", "amount_minor"]


def entries_csv(st: Statement) -> str:
    """Every ledger entry of every transaction behind the statement (opening
    balance included), whole transactions so each sums to zero per currency,
    by transaction then entry id; ends with a checksum line an auditor can
    recompute (SHA-256 of the bytes above it, and their line count)."""
    load = queries.transactions_by_id(st.transaction_ids)
    rows: list[list] = [ENTRIES_HEADER]
    for txn in load:
        for e in txn.entries:
            rows.append([txn.id, txn.kind, txn.idempotency_key, txn.created_at.isoformat() + "Z", e.id,
                         e.account.code, e.currency, major(e.amount_minor, e.currency), e.amount_minor])
    return with_checksum(_csv(rows))


def grants_of(org: Organisation) -> list[Grant]:
    """The organisation's grants, newest period first."""
    return queries.grants_of(org.id)


def taggable_pledges(grant: Grant) -> list[Pledge]:
    """The organisation's pledges in the grant's currency that no grant tags yet (by id)."""
    pledges = [p for p in queries.pledges_of_organisation(grant.organisation_id) if p.currency == grant.currency]
    tagged = queries.grant_of_pledges([p.id for p in pledges])
    return [p for p in pledges if p.id not in tagged]


# --- an optional reporting conversion ------------------------------------------------------

@dataclass(frozen=True)
class Rate:
    """One unit of ``currency`` is ``rate`` units of the reporting currency, as of ``on``."""

    currency: str
    rate: Decimal
    on: date


def parse_rates(text: str) -> dict[str, Rate]:
    """``REPORTING_RATES`` ("EUR=1.0832@2026-11-30,KES=0.00775@2026-11-30") as rates by
    currency. Raises :class:`ReportError` naming a malformed entry."""
    rates: dict[str, Rate] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        match = re.fullmatch(r"([A-Za-z]{3})=(\d+(?:\.\d+)?)@(\d{4}-\d{2}-\d{2})", part)
        if match is None:
            raise ReportError(f"REPORTING_RATES: {part!r} is not CODE=RATE@YYYY-MM-DD")
        code = match.group(1).upper()
        rates[code] = Rate(code, Decimal(match.group(2)), date.fromisoformat(match.group(3)))
    return rates


@dataclass(frozen=True)
class Conversion:
    """``amounts`` converted into ``currency``: ``total_minor`` (None when a rate is
    missing), the rates used (each with its date) and the currencies without one."""

    currency: str
    total_minor: int | None
    used: list[Rate]
    missing: list[str]


def convert(amounts: dict[str, int], target: str, rates: dict[str, Rate]) -> Conversion:
    """The sum of ``amounts`` (minor units by currency) in ``target``: each amount in
    major units times its rate, added exactly, then rounded once to ``target``'s
    minor unit (half to even). Amounts in ``target`` need no rate. Without a rate
    for some currency there is no total: figures are never added without one."""
    used, missing, total = [], [], Decimal(0)
    for currency, minor in sorted(amounts.items()):
        value = Decimal(minor).scaleb(-exponent(currency))
        if currency == target:
            total += value
        elif currency in rates:
            used.append(rates[currency])
            total += value * rates[currency].rate
        else:
            missing.append(currency)
    if missing:
        return Conversion(target, None, used, missing)
    minor_total = int((total.scaleb(exponent(target))).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return Conversion(target, minor_total, used, [])
