"""Funder statements, grants and audit packs: every figure is recomputed here
from the ledger entries alone (sums over accounts and dated transactions),
not from the statement code's own attribution."""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from marketplace.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from marketplace.reports import service as reports
from marketplace.reports.service import ReportError


def ledger_sum(kind: AccountKind, *, item_ids=None, before=None, since=None, txn_kind=None, keys=None,
               currency="USD") -> int:
    """Sum of entries on accounts of ``kind`` (of ``item_ids``), in transactions dated in [since, before)."""
    query = (select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
             .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
             .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
             .where(LedgerAccount.kind == kind, LedgerEntry.currency == currency))
    if item_ids is not None:
        query = query.where(LedgerAccount.item_id.in_(item_ids))
    if before is not None:
        query = query.where(LedgerTransaction.created_at < before)
    if since is not None:
        query = query.where(LedgerTransaction.created_at >= since)
    if txn_kind is not None:
        query = query.where(LedgerTransaction.kind == txn_kind)
    if keys is not None:
        query = query.where(LedgerTransaction.idempotency_key.in_(keys))
    from marketplace.extensions import db

    return int(db.session.scalar(query))


def test_organisation_statement_for_march_to_december_matches_sums_of_ledger_entries(year):
    start, end = reports.period_bounds(date(2026, 3, 1), date(2026, 12, 31))
    st = reports.organisation_statement(year.org, start, end)
    assert set(st.currencies) == {"USD", "EUR"}  # never added together
    usd = st.currencies["USD"].figures
    solo = [year.items[n].id for n in (901, 902, 903)]  # funded by the organisation alone
    d_item = year.items[904].id
    # D: 6000 of the organisation's and 4000 of another funder's; its payout released both.
    d_share = Decimal(6000) / Decimal(6000 + 4000)
    d_released = -ledger_sum(AccountKind.item_escrow, item_ids=[d_item], txn_kind="payout_released")
    d_fee = ledger_sum(AccountKind.platform_fees, keys=[f"payout:{year.payout_d.id}:released"])
    assert (d_released, d_fee) == (10000, 1000)

    expected_opening = (ledger_sum(AccountKind.item_escrow, item_ids=solo, before=start)
                        + int(d_share * ledger_sum(AccountKind.item_escrow, item_ids=[d_item], before=start)))
    expected_received = ledger_sum(AccountKind.item_escrow, item_ids=solo + [d_item], since=start, before=end,
                                   txn_kind="pledge_received")
    expected_paid = (-ledger_sum(AccountKind.item_escrow, item_ids=solo, since=start, before=end,
                                 txn_kind="payout_released") + int(d_share * d_released))
    expected_fees = (ledger_sum(AccountKind.platform_fees, keys=[f"payout:{year.payout_a.id}:released"])
                     + int(d_share * d_fee))
    expected_refunded = ledger_sum(AccountKind.refunds, since=start, before=end)
    expected_held = ledger_sum(AccountKind.item_escrow, item_ids=solo, before=end)

    assert (expected_opening, expected_received, expected_paid, expected_fees, expected_refunded,
            expected_held) == (24000, 0, 16000, 1600, 1000, 7000)
    assert usd["opening"] == expected_opening
    assert usd["received"] == expected_received
    assert usd["paid_out"] == expected_paid
    assert usd["fees"] == expected_fees
    assert usd["to_recipients"] == expected_paid - expected_fees
    assert usd["refunded"] == expected_refunded
    assert (usd["lost"], usd["covered_by_commons"], usd["matched"]) == (0, 0, 0)
    assert usd["held_at_close"] == expected_held == sum(p.held_minor for p in (year.a, year.b, year.c, year.d_org))
    assert st.currencies["USD"].reconciles
    eur = st.currencies["EUR"].figures
    assert (eur["received"], eur["held_at_close"]) == (
        ledger_sum(AccountKind.item_escrow, currency="EUR", since=start), 2000)

    # Payout lines name the item, the merged pull request, the recipient, country and certification.
    lines = {line.item_id: line for line in st.currencies["USD"].payout_lines}
    a_line = lines[year.items[901].id]
    assert (a_line.amount_minor, a_line.fee_minor) == (10000, 1000)
    assert a_line.pull_request_url == "https://github.com/Codertocat/Hello-World/pull/1901"
    [ama] = a_line.recipients
    assert (ama.name, ama.country, ama.certified, ama.amount_minor) == ("ama", "KE", True, 9000)
    [bo] = lines[d_item].recipients
    assert (bo.country, bo.amount_minor, lines[d_item].fee_minor) == ("IN", 5400, 600)
    assert st.currencies["USD"].by_country == {"KE": 9000, "IN": 5400}
    assert st.currencies["USD"].by_project == {year.world.project.name: 16000}
    # Each line is traceable: its transaction is the payout's release.
    released = {t.idempotency_key: t.id for t in year.world.session.scalars(select(LedgerTransaction))}
    assert a_line.transaction_id == released[f"payout:{year.payout_a.id}:released"]


def test_statement_of_january_and_february_has_no_opening_and_everything_received(year):
    st = reports.organisation_statement(year.org, *reports.period_bounds(date(2026, 1, 1), date(2026, 2, 28)))
    usd = st.currencies["USD"].figures
    assert (usd["opening"], usd["received"], usd["paid_out"], usd["held_at_close"]) == (0, 24000, 0, 24000)
    assert usd["received"] == ledger_sum(AccountKind.refunds, currency="USD") * 0 + sum(
        p.amount_minor for p in (year.a, year.b, year.c, year.d_org))
    assert "EUR" not in st.currencies


def test_person_statement_covers_only_their_own_pledges(year):
    st = reports.person_statement(year.other, *reports.period_bounds(date(2026, 1, 1), date(2026, 12, 31)))
    usd = st.currencies["USD"].figures
    d_fee = ledger_sum(AccountKind.platform_fees, keys=[f"payout:{year.payout_d.id}:released"])
    assert (usd["received"], usd["paid_out"], usd["fees"], usd["held_at_close"]) == (4000, 4000, d_fee * 4 // 10, 0)


def test_grant_statement_covers_its_tagged_pledges_in_its_period(year):
    world = year.world
    grant = reports.create_grant(year.org, name="Health data 2026", reference="G-2026/01", starts_on=date(2026, 1, 1),
                                 ends_on=date(2026, 12, 31), currency="usd", actor=world.funder)
    assert reports.tag_pledges(grant, [year.a.id, year.b.id], actor=world.funder) == 2
    assert reports.tag_pledges(grant, [year.a.id], actor=world.funder) == 0  # once
    st = reports.grant_statement(grant)
    usd = st.currencies["USD"].figures
    a_b = [year.items[901].id, year.items[902].id]
    assert usd["received"] == ledger_sum(AccountKind.item_escrow, item_ids=a_b, txn_kind="pledge_received") == 15000
    assert usd["refunded"] == ledger_sum(AccountKind.refunds) == 1000
    assert usd["paid_out"] == -ledger_sum(AccountKind.item_escrow, item_ids=a_b, txn_kind="payout_released") == 10000
    assert usd["held_at_close"] == ledger_sum(AccountKind.item_escrow, item_ids=a_b) == 4000
    assert list(st.currencies) == ["USD"]


def test_grant_refuses_pledges_of_another_currency_funder_or_grant_and_tags_none(year):
    world = year.world
    grant = reports.create_grant(year.org, name="G", reference="G-1", starts_on=date(2026, 1, 1),
                                 ends_on=date(2026, 6, 30), currency="USD", actor=world.funder)
    other = reports.create_grant(year.org, name="H", reference="H-1", starts_on=date(2026, 1, 1),
                                 ends_on=date(2026, 6, 30), currency="USD", actor=world.funder)
    with pytest.raises(ReportError, match="EUR"):
        reports.tag_pledges(grant, [year.a.id, year.e.id], actor=world.funder)
    with pytest.raises(ReportError, match="on behalf"):
        reports.tag_pledges(grant, [year.d_other.id], actor=world.funder)
    assert reports.tag_pledges(other, [year.c.id], actor=world.funder) == 1
    with pytest.raises(ReportError, match="another grant"):
        reports.tag_pledges(grant, [year.c.id], actor=world.funder)
    assert reports.grant_statement(grant).currencies == {}
    with pytest.raises(ReportError, match="already"):
        reports.create_grant(year.org, name="G again", reference="G-1", starts_on=date(2026, 1, 1),
                             ends_on=date(2026, 6, 30), currency="USD", actor=world.funder)
    with pytest.raises(ReportError, match="XYZ is not a currency"):
        reports.create_grant(year.org, name="G", reference="G-8", starts_on=date(2026, 1, 1),
                             ends_on=date(2026, 6, 30), currency="xyz", actor=world.funder)
    with pytest.raises(ReportError, match="ends before"):
        reports.create_grant(year.org, name="G", reference="G-9", starts_on=date(2026, 7, 1),
                             ends_on=date(2026, 6, 30), currency="USD", actor=world.funder)


def _rows(text: str) -> list[dict]:
    body = "".join(line + "\n" for line in text.splitlines() if not line.startswith("# sha256="))
    return list(csv.DictReader(io.StringIO(body)))


def test_audit_pack_csvs_add_up_and_the_checksum_detects_a_removed_line(year):
    world = year.world
    grant = reports.create_grant(year.org, name="Health data 2026", reference="G-2026/01", starts_on=date(2026, 1, 1),
                                 ends_on=date(2026, 12, 31), currency="USD", actor=world.funder)
    reports.tag_pledges(grant, [year.a.id, year.b.id, year.c.id], actor=world.funder)
    st = reports.grant_statement(grant)
    statement_text = reports.statement_csv(st)
    entries_text = reports.entries_csv(st)
    assert reports.verify_checksum(statement_text) and reports.verify_checksum(entries_text)

    rows = _rows(statement_text)
    figures = {r["section"].split(":")[1]: Decimal(r["amount"]) for r in rows if r["section"].startswith("figure:")}
    paid = sum(Decimal(r["amount"]) for r in rows if r["section"] in ("payout", "payout_fee"))
    fees = sum(Decimal(r["amount"]) for r in rows if r["section"] == "payout_fee")
    received = sum(Decimal(r["amount"]) for r in rows if r["section"] == "received")
    assert (figures["paid_out"], paid, fees, figures["received"], received) == (
        Decimal("100.00"), Decimal("100.00"), Decimal("10.00"), Decimal("180.00"), Decimal("180.00"))
    assert {r["currency"] for r in rows} == {"USD"}

    entries = _rows(entries_text)
    by_txn: dict[str, int] = defaultdict(int)
    for r in entries:
        by_txn[r["transaction"]] += int(r["amount_minor"])
        assert Decimal(r["amount"]) * 100 == int(r["amount_minor"])
    assert by_txn and all(total == 0 for total in by_txn.values())  # whole transactions, each balanced
    escrow_in = sum(int(r["amount_minor"]) for r in entries
                    if r["account"].startswith("item_escrow") and r["transaction_kind"] == "pledge_received")
    assert escrow_in == 18000

    lines = entries_text.splitlines(keepends=True)
    for removed in (1, len(lines) // 2, len(lines) - 2):
        assert not reports.verify_checksum("".join(lines[:removed] + lines[removed + 1:]))
    changed = entries_text.replace(",-100.00,", ",-10.00,", 1)
    assert changed != entries_text and not reports.verify_checksum(changed)


def test_period_ending_before_it_starts_is_refused():
    with pytest.raises(ReportError):
        reports.period_bounds(date(2026, 2, 1), date(2026, 1, 1))
    assert reports.period_bounds(date(2026, 1, 1), date(2026, 1, 31)) == (datetime(2026, 1, 1), datetime(2026, 2, 1))


def test_matched_money_is_shown_apart_and_a_refund_after_payout_is_covered_by_the_commons(world):
    """A pool matches the funder's pledge 1:1; the payout releases both; a refund
    after payout made outside the commons is paid by the commons' funds."""
    from datetime import timedelta

    from marketplace.money import Money
    from marketplace.payouts.after_payout import record_refund_after_payout_elsewhere
    from marketplace.pools import service as pools
    from marketplace.timeutil import utcnow
    from tests.payouts.helpers import AFTER_WINDOW

    now = utcnow()
    sponsor = world.user("sponsor-pool@example.org")  # the fiscal host (an admin) confirms another's pool
    pool = pools.create_pool(sponsor, name="Match", currency="USD", budget_minor=50000,
                             starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=30))
    assert pools.confirm_budget(pool.id, Money(50000, "USD"), reference="SP-1", received_on=now.date(),
                                actor=world.admin)
    ama = world.implementor("ama-pool@example.org", github_id=9201, country="KE")
    item = world.issue(951)
    pledge = world.fund(item, 5000)
    world.claim(item, ama)
    world.pull(1951, "Fixes #951", author_id=9201, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    from marketplace.payouts import service as payouts

    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    assert record_refund_after_payout_elsewhere(pledge.id, 1200, refund_id="re_after_1")

    st = reports.person_statement(world.funder, *reports.period_bounds(date(2000, 1, 1), date(2100, 1, 1)))
    usd = st.currencies["USD"].figures
    matched = ledger_sum(AccountKind.item_escrow, item_ids=[item.id], txn_kind="pool_match")
    released = -ledger_sum(AccountKind.item_escrow, item_ids=[item.id], txn_kind="payout_released")
    fee = ledger_sum(AccountKind.platform_fees, keys=[f"payout:{payout.id}:released"])
    commons = -ledger_sum(AccountKind.commons_funds)
    assert (matched, released, fee, commons) == (5000, 10000, 1000, 1200)
    assert usd["matched"] == matched
    assert usd["paid_out"] == released * 5000 // (5000 + matched) == 5000  # the pledge's part, not the pool's
    assert usd["fees"] == fee * 5000 // 10000
    assert (usd["refunded"], usd["covered_by_commons"]) == (1200, commons)
    assert usd["held_at_close"] == 0 and st.currencies["USD"].reconciles
    [refund_line] = [line for line in st.currencies["USD"].money_lines if line.kind == "refunded"]
    assert refund_line.from_escrow is False
