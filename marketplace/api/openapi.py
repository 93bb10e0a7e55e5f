"""The OpenAPI 3.1 description of the read-only API, generated from the models
of :mod:`marketplace.api.schemas` (their JSON Schema, 2020-12, fills
``components.schemas`` and the query parameters). Only the operations — path,
summary, parameters, and which model answers each status — are declared here,
in :data:`OPERATIONS`, next to the routes' names."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic.json_schema import models_json_schema

from marketplace.api.report_schemas import REPORT_COMPONENTS
from marketplace.api.schemas import COMPONENTS, Error, ItemQuery, PageQuery

REF_TEMPLATE = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Operation:
    """One GET operation: its path (OpenAPI template), id, summary, the model
    of its 200 answer, the query model (or None), its path parameters
    (name → JSON Schema) and every error status it can answer with its meaning
    (each answered with an :class:`~marketplace.api.schemas.Error` body)."""

    path: str
    operation_id: str
    summary: str
    ok: str
    query: type | None = None
    path_parameters: dict[str, dict] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)


_ITEM_ID = {"id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1, "description": "The item's id"}}
_ITEM_GONE = {404: "No such item, or the forge keeps it private",
              410: "Removed on the forge (error.deleted_at gives when)"}

OPERATIONS: tuple[Operation, ...] = (
    Operation("/projects", "listProjects", "Member projects", "ProjectList", query=PageQuery,
              errors={400: "Bad parameter (error.parameter names it)"}),
    Operation("/projects/{slug}", "getProject", "One member project", "ProjectDetail",
              path_parameters={"slug": {"type": "string"}}, errors={404: "No such project"}),
    Operation("/items", "listItems", "Backlog items", "ItemList", query=ItemQuery,
              errors={400: "Bad filter value (error.parameter names it)"}),
    Operation("/items/{id}", "getItem", "One backlog item", "Item", path_parameters=_ITEM_ID,
              errors=_ITEM_GONE),
    Operation("/items/{id}/ledger", "getItemLedger",
              "Every pledge of an item with its state, escrow and refunds, and its payouts", "ItemLedger",
              path_parameters=_ITEM_ID, errors=_ITEM_GONE),
    Operation("/ledger", "getLedgerSummary", "Totals per currency and the reconciliation result",
              "LedgerSummary"),
    Operation("/pools", "listPools", "Matching pools and quadratic-funding rounds (funded or ended)", "PoolList"),
    Operation("/pools/{id}", "getPool", "One pool with its caps, eligibility and matches", "PoolDetail",
              path_parameters={"id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1,
                                      "description": "The pool's id"}},
              errors={404: "No such pool, or not funded yet"}),
    Operation("/projects/{slug}/fund", "getProjectFund",
              "A member project's fund per currency: balance, received, allotted, returned, taken back "
              "by Stripe, subscribers and allotments", "ProjectFundView", path_parameters={"slug": {"type": "string"}},
              errors={404: "No such project"}),
    # Reports (issue 17): figures per currency in minor units, recomputed at most every few minutes.
    Operation("/reports/commons", "getCommonsReport",
              "The commons report: money by month, by SDG and by recipient country, per currency", "CommonsReport"),
    Operation("/reports/projects/{slug}", "getProjectReport", "A member project's report", "ProjectReport",
              path_parameters={"slug": {"type": "string"}}, errors={404: "No such project"}),
)


def component_schemas() -> dict[str, dict]:
    """``components.schemas``: the serialization JSON Schema of every model in
    :data:`~marketplace.api.schemas.COMPONENTS` and of the models they use
    (pydantic's ``$defs`` become components; references point there)."""
    _, top = models_json_schema([(model, "serialization") for model in COMPONENTS + REPORT_COMPONENTS],
                                ref_template=REF_TEMPLATE)
    return dict(sorted(top["$defs"].items()))


def _parameter_schema(schema: dict) -> dict:
    """A query parameter's schema: absent means the default, so ``null`` is not a value."""
    schema = {key: value for key, value in schema.items() if key not in ("title", "description")}
    choices = schema.pop("anyOf", None)
    if choices is not None:
        [kept] = [choice for choice in choices if choice.get("type") != "null"]
        schema = {**kept, **schema}
    if schema.get("default", ...) is None:
        del schema["default"]
    return schema


def query_parameters(model: type) -> list[dict]:
    """The OpenAPI query parameters of a query model, one per field, all optional."""
    properties = model.model_json_schema(ref_template=REF_TEMPLATE)["properties"]
    return [
        {"name": name, "in": "query", "required": False, "schema": _parameter_schema(schema),
         "description": schema.get("description", "")}
        for name, schema in properties.items()
    ]


def _content(schema_name: str) -> dict:
    return {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=schema_name)}}}


def _operation(op: Operation) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": schema}
        for name, schema in op.path_parameters.items()
    ]
    if op.query is not None:
        parameters += query_parameters(op.query)
    responses: dict[str, dict] = {"200": {"description": "OK", "content": _content(op.ok)}}
    for status, meaning in sorted(op.errors.items()):
        responses[str(status)] = {"description": meaning, "content": _content(Error.__name__)}
    answer: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "responses": responses}
    if parameters:
        answer["parameters"] = parameters
    return answer


def openapi_document(server_url: str) -> dict:
    """Return the OpenAPI 3.1 document, with ``server_url`` as the API base."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Backlog Commons API",
            "version": "1.0.0",
            "description": (
                "Read-only access to the public backlog of digital public goods. "
                "Amounts are integers in the currency's minor unit; times are UTC. "
                "Each client address may make `RATELIMIT_API` requests (default 120 per minute and "
                "3,000 per hour); past that the answer is 429 with `Retry-After` (seconds). "
                "`/items` pages with the `cursor` of `next`; `total` is exact up to 10,000 "
                "(`total_exact`), and `page` numbers reach that far (the cursor goes on). "
                "Anonymous answers carry an `ETag`: send it as `If-None-Match` "
                "for a 304 while nothing changed."
            ),
        },
        "servers": [{"url": server_url}],
        "paths": {op.path: {"get": _operation(op)} for op in OPERATIONS},
        "components": {"schemas": component_schemas()},
    }
