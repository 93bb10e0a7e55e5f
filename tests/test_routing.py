"""Links built once for a page of rows (marketplace.routing.url_pattern) are
the links url_for builds, character for character."""
import pytest
from flask import url_for

from marketplace.routing import url_pattern

AWKWARD = ["bug", "good first issue", "a&b=c", "50% +1", "#tag?x", "été/ñ", ":bee: docs 🐝", "a'b(c)*,;@!$",
           "back\\slash", "tab\there", "~tilde_-.", ""]


@pytest.mark.parametrize("value", AWKWARD)
def test_query_values_are_encoded_as_url_for_encodes_them(app, value):
    with app.test_request_context("/"):
        label_href = url_pattern("backlog.index", "project", "label")
        assert label_href("odk", value) == url_for("backlog.index", project="odk", label=value)
        assert label_href(value, "bug") == url_for("backlog.index", project=value, label="bug")


@pytest.mark.parametrize("value", [v for v in AWKWARD if v])
def test_path_values_are_quoted_as_url_for_quotes_them(app, value):
    with app.test_request_context("/"):
        assert url_pattern("projects.project", "slug")(value) == url_for("projects.project", slug=value)


def test_ids_external_links_and_a_script_root(app):
    with app.test_request_context("/", base_url="https://example.org/commons/"):
        item_href = url_pattern("backlog.item", "item_id")
        api_href = url_pattern("api.item", "item_id", _external=True)
        assert item_href(1) == url_for("backlog.item", item_id=1) == "/commons/items/1"
        assert [item_href(i) for i in (7, 1987654320, 2**31 - 1)] == [
            url_for("backlog.item", item_id=i) for i in (7, 1987654320, 2**31 - 1)]
        assert api_href(42) == url_for("api.item", item_id=42, _external=True)
        assert api_href(42).startswith("https://") and api_href(42).endswith("/commons/api/v1/items/42")
        assert url_pattern("backlog.index")() == url_for("backlog.index")


def test_names_in_another_order_than_the_url_still_build_the_same_link(app):
    with app.test_request_context("/"):
        # The query keeps the order given; a path value after a query value falls back to url_for.
        assert url_pattern("backlog.index", "label", "project")("bug", "odk") == "/?label=bug&project=odk"
        href = url_pattern("api.item", "lang", "item_id")
        assert href("fr", 3) == url_for("api.item", lang="fr", item_id=3) == "/api/v1/items/3?lang=fr"
