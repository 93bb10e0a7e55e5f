"""The stored ledger summary (issue 15): money events keep its totals current,
the reconciliation fills in the check, and the public pages read one row."""
from sqlalchemy import event, select

from marketplace.extensions import db
from marketplace.ledger import summary
from marketplace.ledger.models import LedgerSummary
from marketplace.pledges.models import Pledge
from tests.ledger.test_pledges import held_pledge


def statements_of(client, url: str) -> list[str]:
    """The SQL statements one request runs."""
    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return seen


def test_a_pledge_received_moves_the_stored_totals_at_commit(session):
    summary.refresh()
    session.commit()
    before = summary.read().totals.get("USD", {}).get("held", 0)
    held_pledge(session, 4200)
    session.commit()
    after = summary.read()
    assert after.totals["USD"]["held"] == before + 4200
    assert after.totals["USD"]["received"] >= 4200
    # The stored balances equal a full pass over the entries.
    assert session.get(LedgerSummary, 1).balances == summary.balances_from_entries()


def test_a_money_event_rolled_back_leaves_the_totals_alone(session):
    before = session.get(LedgerSummary, 1).balances
    held_pledge(session, 1500)
    session.rollback()
    session.expire_all()
    assert session.get(LedgerSummary, 1).balances == before
    assert session.scalar(select(Pledge.id).where(Pledge.amount_minor == 1500)) is None


def test_refresh_recomputes_the_totals_and_records_the_check(session):
    held_pledge(session, 2500)
    session.flush()  # not committed: the incremental path has not counted it
    assert summary.refresh() == []
    session.commit()
    row = session.get(LedgerSummary, 1)
    assert row.balances == summary.balances_from_entries()
    assert row.checked_at is not None and row.violations == 0
    assert summary.read().reconciled is True


def test_ledger_check_command_stores_the_summary(runner, session):
    held_pledge(session, 900)
    session.commit()
    row = session.get(LedgerSummary, 1)
    row.checked_at = None
    session.commit()
    result = runner.invoke(args=["ledger", "check"])
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert session.get(LedgerSummary, 1).checked_at is not None


def test_transparency_and_the_ledger_api_read_one_row_and_no_entry(client, session):
    held_pledge(session, 3000)
    session.commit()
    for url in ("/transparency", "/api/v1/ledger"):
        statements = statements_of(client, url)
        sql = " ".join(statements).lower()
        assert "ledger_entry" not in sql, url
        assert sum("ledger_summary" in s.lower() for s in statements) == 1, url
        # The summary row, the data version and (for the page) the latest payouts: nothing grows with the ledger.
        assert len(statements) <= 4, (url, statements)
    body = client.get("/api/v1/ledger").get_json()
    assert body["totals"]["USD"]["held"] >= 3000
    assert body["checked_at"].endswith("Z") and body["totals_at"].endswith("Z")
    assert "Totals as of" in client.get("/transparency").get_data(as_text=True)


def test_never_checked_is_not_called_reconciled(client, session):
    row = session.get(LedgerSummary, 1)
    row.checked_at = None
    session.commit()
    assert client.get("/api/v1/ledger").get_json()["reconciled"] is False
    assert "has not been checked yet" in client.get("/transparency").get_data(as_text=True)
