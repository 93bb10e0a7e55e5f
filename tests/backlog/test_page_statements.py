"""What the public pages cost in SQL statements (issue 15): counted, so that a
change adding a query per section or per row fails here rather than in the
benchmark."""
from sqlalchemy import event, select

from marketplace.backlog.item_page import BODY_CACHE
from marketplace.backlog.models import (
    BacklogItem,
    ItemLink,
    ItemLinkKind,
    LinkSource,
    PullRequest,
    PullRequestState,
)
from marketplace.extensions import db


def statements(client, url: str) -> tuple[object, list[str]]:
    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = client.get(url)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return response, seen


def an_item(session) -> BacklogItem:
    return session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))


def test_an_item_page_reads_the_item_and_one_probe_of_its_sections(client, session):
    item = an_item(session)
    url = f"/items/{item.id}"
    client.get(url)  # renders the body (its references may look items up)
    response, seen = statements(client, url)
    assert response.status_code == 200
    # The data version (tests read it every time), the item with its repository,
    # project, labels, funding and solver in one statement, and one probe of
    # every section (pledges, pools, claims, payouts, pull requests): none of
    # them has rows here, so none reads more.
    assert len(seen) == 3, seen
    assert "data_version" in seen[0]
    assert "item_label" in seen[1] and "item_funding" in seen[1] and "member_project" in seen[1]
    assert all(table in seen[2] for table in ("pledge", "pool_match", "claim", "payout", "item_link"))


def test_an_item_page_still_reads_the_sections_that_have_rows(client, session):
    item = an_item(session)
    pull = PullRequest(repository_id=item.repository_id, forge_host=item.forge_host, forge_id=99_000_001,
                       number=99_001, title="Fix the thing", state=PullRequestState.open,
                       html_url="https://github.com/medic/cht-core/pull/99001",
                       forge_created_at=item.forge_created_at, forge_updated_at=item.forge_updated_at)
    session.add(pull)
    session.flush()
    session.add(ItemLink(pull_request_id=pull.id, item_id=item.id, target_host=item.forge_host,
                         target_path="medic/cht-core", target_number=item.number, kind=ItemLinkKind.closes,
                         source=LinkSource.keyword))
    session.flush()
    BODY_CACHE._entries.clear()
    client.get(f"/items/{item.id}")
    response, seen = statements(client, f"/items/{item.id}")
    assert "Fix the thing" in response.get_data(as_text=True)
    # The version, the item, the probe, then the links with their pull requests and those' repositories.
    assert len(seen) == 6, seen
    assert "item_link" in seen[3] and "pull_request" in seen[4] and "repository" in seen[5]


def test_the_list_page_costs_a_fixed_number_of_statements(client, session):
    response, seen = statements(client, "/")
    assert response.status_code == 200
    # The data version, the capped count, the page of items (repository,
    # project, labels, funding and solvers' pull requests joined: one
    # statement), and the filter's choices (projects, deployment countries;
    # remembered per data version outside tests).
    assert len(seen) == 6, seen
    assert sum("item_label" in s and "item_funding" in s and "member_project" in s for s in seen) == 1
    again, seen_again = statements(client, "/?page=2")
    assert again.status_code == 200 and len(seen_again) <= len(seen)
    # A list page never reads the items' bodies.
    [page_query] = [s for s in seen if "LIMIT" in s.upper() and "backlog_item.title" in s]
    assert "backlog_item.body" not in page_query
