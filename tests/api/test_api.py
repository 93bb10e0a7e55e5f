import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from marketplace.api.openapi import openapi_document


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
                                               "/items/{id}/ledger", "/ledger"}


def test_item_list_matches_its_schema_and_links_the_next_page(client, document):
    first = client.get("/api/v1/items?state=all&project=odk").get_json()
    check(document, "ItemList", first)
    assert first["total"] == 44  # getodk/central 14 + getodk/collect 30
    assert len(first["items"]) == 25
    assert first["next"] == "http://localhost/api/v1/items?project=odk&state=all&page=2"
    second = client.get(first["next"]).get_json()
    assert len(second["items"]) == 19 and second["next"] is None


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
