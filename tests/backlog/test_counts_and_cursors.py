"""Counts that stop at a cap and keyset cursors (issue 15)."""
import pytest
from sqlalchemy import event

from marketplace.backlog import search
from marketplace.backlog.search import BacklogFilters, count_items, decode_cursor, find_items
from marketplace.extensions import db


def test_count_is_exact_below_the_cap_and_capped_above(session):
    everything = BacklogFilters(state="all")
    total, exact = count_items(everything)
    assert (total, exact) == (228, True)
    assert count_items(everything, cap=228) == (228, True)
    assert count_items(everything, cap=100) == (100, False)


def test_the_count_reads_ids_only(client, session):
    seen = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        count_items(BacklogFilters(sdg=3, label="bug"))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    [sql] = [s for s in seen if "count(" in s.lower()]
    assert "count(" in sql.lower() and "LIMIT" in sql.upper()
    inner = sql.lower().split("from", 2)[1]  # the SELECT list of the subquery
    assert inner.strip().startswith("(select backlog_item.id") and "body" not in inner


def test_a_broad_list_says_more_than_the_cap(client, monkeypatch):
    monkeypatch.setattr(search, "COUNT_CAP", 50)
    monkeypatch.setattr(count_items, "__defaults__", (50,))
    page = client.get("/?state=all").get_data(as_text=True)
    assert "More than 50 items" in page
    assert "Page 1 of more than 2" in page
    body = client.get("/api/v1/items?state=all").get_json()
    assert (body["total"], body["total_exact"]) == (50, False)
    assert body["next"] is not None
    # Page numbers stop at the cap; the cursor goes on.
    deep = client.get("/?state=all&page=3").get_data(as_text=True)
    assert "Page numbers stop after 50 items" in deep


def test_the_cursor_walks_past_the_capped_count(client, monkeypatch):
    monkeypatch.setattr(count_items, "__defaults__", (30,))
    seen, url = [], "/api/v1/items?state=all&sort=funded"
    while url:
        body = client.get(url).get_json()
        seen += [i["id"] for i in body["items"]]
        url = body["next"]
    assert len(seen) == 228 == len(set(seen))


@pytest.mark.parametrize("cursor", ["x", "WyJuZXdlc3QiLDFd", "W10", "!!!", "a" * 300,
                                    "WyJ1cGRhdGVkIiwibm90IGEgZGF0ZSIsMV0"])
def test_a_cursor_the_server_did_not_give_is_a_400(client, cursor):
    response = client.get(f"/api/v1/items?cursor={cursor}")
    assert response.status_code == 400
    assert "cursor" in response.get_json()["error"]["message"]


def test_a_cursor_and_a_page_together_are_a_400(client):
    first = client.get("/api/v1/items?state=all").get_json()
    response = client.get(first["next"] + "&page=2")
    assert response.status_code == 400


def test_a_cursor_of_another_sort_is_refused(session):
    page = find_items(BacklogFilters(state="all"), page_size=5, reporting_currency="USD")
    with pytest.raises(search.BadCursor):
        decode_cursor(page.next_cursor, "newest")


@pytest.mark.postgres
def test_a_search_count_runs_without_parallel_workers_and_a_list_count_keeps_them(session):
    from sqlalchemy import text

    def workers() -> str:
        return db.session.scalar(text("SHOW max_parallel_workers_per_gather"))

    default = workers()
    assert default != "0"
    count_items(BacklogFilters(state="all"))
    assert workers() == default
    assert count_items(BacklogFilters(q="form", state="all"))[1] is True
    assert workers() == "0"  # SET LOCAL: until this transaction ends
