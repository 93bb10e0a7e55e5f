import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from pydantic import ValidationError

from marketplace.api.openapi import openapi_document
from marketplace.api.schemas import Money


@pytest.fixture(scope="module")
def document():
    return openapi_document("http://localhost/api/v1")


def check(document, schema_name: str, instance) -> None:
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    Draft202012Validator(root).validate(instance)


def test_openapi_document_is_valid(client):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    validate(served.get_json())
    assert set(served.get_json()["paths"]) == {"/projects", "/projects/{slug}", "/items", "/items/{id}",
                                               "/items/{id}/ledger", "/ledger", "/pools", "/pools/{id}",
                                               "/reports/commons", "/reports/projects/{slug}",
                                               "/projects/{slug}/fund"}


def test_item_list_matches_its_schema_and_links_the_next_page(client, document):
    first = client.get("/api/v1/items?state=all&project=odk").get_json()
    check(document, "ItemList", first)
    assert first["total"] == 44  # getodk/central 14 + getodk/collect 30
    assert first["total_exact"] is True
    assert len(first["items"]) == 25
    assert first["next"].startswith("http://localhost/api/v1/items?project=odk&state=all&cursor=")
    second = client.get(first["next"]).get_json()
    assert len(second["items"]) == 19 and second["next"] is None
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    by_page = client.get("/api/v1/items?state=all&project=odk&page=2").get_json()
    assert [i["id"] for i in by_page["items"]] == [i["id"] for i in second["items"]]


def test_one_item_matches_its_schema(client, document):
    listed = client.get("/api/v1/items?q=shared+device").get_json()["items"][0]
    item = client.get(f"/api/v1/items/{listed['id']}").get_json()
    check(document, "Item", item)
    assert item["title"] == "Multi-User Support on a Shared Device (Offline-Capable)"
    assert item["forge"]["url"] == "https://github.com/medic/cht-core/issues/10720"
    assert item["repository"]["full_name"] == "medic/cht-core"
    assert item["project"]["slug"] == "community-health-toolkit"
    assert item["labels"] == ["Type: Feature"]
    assert item["created_at"].endswith("Z")


def test_projects_list_and_detail(client, document):
    listed = client.get("/api/v1/projects").get_json()
    check(document, "ProjectList", listed)
    assert listed["total"] == 228
    assert len(listed["projects"]) == 100
    assert listed["next"] == "http://localhost/api/v1/projects?page=2"
    last = client.get("/api/v1/projects?page=3").get_json()
    assert len(last["projects"]) == 28 and last["next"] is None
    sormas = client.get(
        "/api/v1/projects/surveillance-outbreak-response-management-and-analysis-system"
    ).get_json()
    check(document, "ProjectDetail", sormas)
    assert [(r["full_name"], r["former_names"]) for r in sormas["repositories"]] == [
        ("SORMAS-Foundation/SORMAS-Project", ["hzi-braunschweig/SORMAS-Project"])
    ]
    assert sormas["open_items"] == 7


@pytest.mark.parametrize(
    "path",
    ["/api/v1/items/999999", "/api/v1/items/0", "/api/v1/items/99999999999999999999",
     "/api/v1/items/abc", "/api/v1/projects/no-such", "/api/v1/nothing"],
)
def test_unknown_ids_are_json_404(client, document, path):
    response = client.get(path)
    assert response.status_code == 404
    check(document, "Error", response.get_json())


def test_bad_filter_is_json_400_naming_the_parameter(client, document):
    response = client.get("/api/v1/items?sdg=0")
    assert response.status_code == 400
    body = response.get_json()
    check(document, "Error", body)
    assert body["error"] == {"status": 400, "parameter": "sdg", "message": "sdg must be a number from 1 to 17."}


def test_projects_page_out_of_range_is_400(client):
    assert client.get("/api/v1/projects?page=0").status_code == 400


def served_response_schema(document: dict, path: str, status: int) -> dict:
    """The schema the served document gives for ``status`` of GET ``path`` (a template), with its components."""
    responses = document["paths"][path]["get"]["responses"]
    assert str(status) in responses, f"GET {path} answered {status}, which the document does not list"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


# Every operation, with the answers the representative data gives: (template, URL, status).
def every_operation(data) -> list[tuple[str, str, int]]:
    return [
        ("/projects", "/api/v1/projects", 200),
        ("/projects", "/api/v1/projects?page=3", 200),
        ("/projects", "/api/v1/projects?page=0", 400),
        ("/projects/{slug}", f"/api/v1/projects/{data.project}", 200),
        ("/projects/{slug}", "/api/v1/projects/surveillance-outbreak-response-management-and-analysis-system", 200),
        ("/projects/{slug}", "/api/v1/projects/no-such", 404),
        ("/items", "/api/v1/items", 200),
        ("/items", f"/api/v1/items?project={data.project}&state=all&sort=funded&funded=funded", 200),
        ("/items", "/api/v1/items?state=solved&sort=newest&forge=github", 200),
        ("/items", "/api/v1/items?funded=unfunded&sort=funded&page=2", 200),
        ("/items", "/api/v1/items?sdg=0", 400),
        ("/items", "/api/v1/items?project=no-such", 400),
        ("/items", "/api/v1/items?sort=", 400),
        ("/items/{id}", f"/api/v1/items/{data.paid_item}", 200),
        ("/items/{id}", f"/api/v1/items/{data.funded_item}", 200),
        ("/items/{id}", f"/api/v1/items/{data.deleted_item}", 410),
        ("/items/{id}", "/api/v1/items/999999", 404),
        ("/items/{id}/ledger", f"/api/v1/items/{data.paid_item}/ledger", 200),
        ("/items/{id}/ledger", f"/api/v1/items/{data.funded_item}/ledger", 200),
        ("/items/{id}/ledger", f"/api/v1/items/{data.deleted_item}/ledger", 410),
        ("/items/{id}/ledger", "/api/v1/items/999999/ledger", 404),
        ("/ledger", "/api/v1/ledger", 200),
        ("/pools", "/api/v1/pools", 200),
        ("/pools/{id}", f"/api/v1/pools/{data.pool}", 200),
        ("/pools/{id}", "/api/v1/pools/999999", 404),
        ("/reports/commons", "/api/v1/reports/commons", 200),
        ("/reports/projects/{slug}", "/api/v1/reports/projects/odk", 200),
        ("/reports/projects/{slug}", "/api/v1/reports/projects/no-such-project", 404),
        ("/projects/{slug}/fund", f"/api/v1/projects/{data.project}/fund", 200),
        ("/projects/{slug}/fund", "/api/v1/projects/no-such-project/fund", 404),
    ]


def test_every_operation_answers_as_the_served_document_says(client, api_data):
    served = client.get("/api/v1/openapi.json").get_json()
    answered = set()
    for template, url, status in every_operation(api_data):
        response = client.get(url)
        assert response.status_code == status, url
        assert response.mimetype == "application/json", url
        Draft202012Validator(served_response_schema(served, template, status)).validate(response.get_json())
        answered.add(template)
    assert answered == set(served["paths"])


def test_the_ledger_endpoints_show_the_money(client, api_data):
    paid = client.get(f"/api/v1/items/{api_data.paid_item}/ledger").get_json()
    assert [(p["state"], p["amount_minor"], p["held_minor"]) for p in paid["pledges"]] == [("released", 10000, 0)]
    [payout] = paid["payouts"]
    assert (payout["state"], payout["gross_minor"], payout["fee_minor"]) == ("paid", 10000, 1000)
    assert [(s["recipient"], s["amount_minor"]) for s in payout["shares"]] == [("ama", 9000)]
    assert paid["escrow"] == [] and payout["executed_at"].endswith("Z")
    funded = client.get(f"/api/v1/items/{api_data.funded_item}/ledger").get_json()
    assert [(p["funder"], p["currency"], p["held_minor"], p["refunded_minor"]) for p in funded["pledges"]] == [
        ("funder", "USD", 2500, 0), (None, "EUR", 3000, 1000)]
    assert funded["escrow"] == [{"currency": "EUR", "amount_minor": 3000}, {"currency": "USD", "amount_minor": 2500}]
    assert funded["pledges_awaiting_payment"] == 1 and funded["payouts"] == []
    summary = client.get("/api/v1/ledger").get_json()
    assert summary["reconciled"] is True and summary["violations"] == 0
    assert (summary["totals"]["EUR"]["received"], summary["totals"]["EUR"]["refunded"]) == (4000, 1000)


def test_an_item_removed_on_the_forge_is_410_with_the_date(client, api_data):
    body = client.get(f"/api/v1/items/{api_data.deleted_item}").get_json()
    assert body["error"]["status"] == 410 and body["error"]["deleted_at"].endswith("Z")


@pytest.mark.parametrize("path", ["/api/v1/items", "/api/v1/items/1", "/api/v1/items/1/ledger", "/api/v1/ledger",
                                  "/api/v1/projects", "/api/v1/projects/odk", "/api/v1/pools", "/api/v1/pools/1"])
def test_an_unsupported_method_is_405_naming_the_allowed_ones(client, path):
    response = client.post(path)
    assert response.status_code == 405
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}
    assert response.get_json()["error"]["status"] == 405


def test_the_funded_filter_with_the_most_funded_sort_lists_funded_items_first(client, api_data):
    body = client.get("/api/v1/items?state=all&funded=funded&sort=funded").get_json()
    assert [item["id"] for item in body["items"]] == [api_data.funded_item]
    unfunded = client.get("/api/v1/items?state=all&funded=unfunded&sort=funded").get_json()
    assert api_data.funded_item not in [item["id"] for item in unfunded["items"]] and unfunded["total"] > 0


@pytest.mark.parametrize("parameter", ["sort", "state", "forge", "funded", "sdg", "page"])
def test_an_empty_choice_is_400_naming_the_parameter(client, parameter):
    response = client.get(f"/api/v1/items?{parameter}=%20")
    assert response.status_code == 400
    assert response.get_json()["error"]["parameter"] == parameter


def test_models_refuse_fields_the_document_does_not_have():
    with pytest.raises(ValidationError):
        Money(currency="USD", amount_minor=1, amount=0.01)
