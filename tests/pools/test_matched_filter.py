"""The backlog's "matched items" filter (``matched=1``) on the page and the API:
items whose escrow holds a matching pool's money, and no others."""
import pytest

from marketplace.pledges import service as pledges
from tests.pools.helpers import person


@pytest.fixture
def matched_world(pw):
    pool = pw.pool(50000, sdgs=[3])
    matched, unmatched, refunded = pw.item(3), pw.item(4), pw.item(3)
    pw.pledge(person("a@example.org"), matched, 2000)
    pw.pledge(person("b@example.org"), unmatched, 2000)  # SDG 4: the pool does not cover it
    # Matched, then the pledge refunded: its match went back, so the item is no longer matched.
    gone = pw.pledge(person("c@example.org"), refunded, 3000)
    pledges.refund(gone.id, 3000, refund_id="re_matched_filter", actor="test")
    return pool, matched, unmatched, refunded


def test_the_api_lists_only_matched_items_with_matched_1(client, matched_world):
    _pool, matched, unmatched, refunded = matched_world
    body = client.get(f"/api/v1/items?matched=1&project={matched.repository.project.slug}").get_json()
    assert [item["id"] for item in body["items"]] == [matched.id]
    body = client.get("/api/v1/items?matched=1").get_json()
    ids = [item["id"] for item in body["items"]]
    assert matched.id in ids and unmatched.id not in ids and refunded.id not in ids
    everything = client.get(f"/api/v1/items?project={matched.repository.project.slug}").get_json()
    assert {matched.id, refunded.id} <= {item["id"] for item in everything["items"]}


def test_the_backlog_page_filters_matched_items_and_keeps_the_box_ticked(client, matched_world):
    _pool, matched, unmatched, refunded = matched_world
    html = client.get("/?matched=1").get_data(as_text=True)
    assert f"/items/{matched.id}\"" in html
    assert f"/items/{unmatched.id}\"" not in html and f"/items/{refunded.id}\"" not in html
    assert 'name="matched" value="1" checked' in html
    assert 'name="matched" value="1" checked' not in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/api/v1/items?matched=yes", "/?matched=yes"])
def test_another_matched_value_is_refused_naming_the_parameter(client, path):
    response = client.get(path)
    assert response.status_code == 400
    if path.startswith("/api"):
        assert response.get_json()["error"]["parameter"] == "matched"


def test_the_openapi_document_describes_the_matched_filter(client):
    document = client.get("/api/v1/openapi.json").get_json()
    parameters = {p["name"]: p for p in document["paths"]["/items"]["get"]["parameters"]}
    assert "matched" in parameters and "1" in str(parameters["matched"]["schema"])
