"""The OpenAPI 3.1 description of the read-only API (schemas are JSON Schema 2020-12)."""
from __future__ import annotations

from marketplace.backlog.search import FUNDED, MAX_PAGE, MAX_QUERY_LENGTH, SORTS, STATES

_money = {
    "type": "object",
    "required": ["currency", "amount_minor"],
    "properties": {
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"},
        "amount_minor": {
            "type": "integer",
            "description": "Amount in the currency's minor unit (cents for USD, yen for JPY)",
        },
    },
}
_nullable_str = {"type": ["string", "null"]}
_timestamp = {"type": "string", "format": "date-time", "description": "UTC"}

SCHEMAS = {
    "Money": _money,
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {
                    "status": {"type": "integer"},
                    "message": {"type": "string"},
                    "parameter": {"type": "string"},
                },
            }
        },
    },
    "Item": {
        "type": "object",
        "required": [
            "id", "url", "page_url", "title", "body", "state", "solved", "forge_state", "state_reason",
            "close_reason", "labels",
            "author", "forge", "repository", "project", "created_at", "updated_at",
            "closed_at", "comments", "priority", "funding_goal", "solved_by", "bounty", "pledges_awaiting_payment",
        ],
        "properties": {
            "id": {"type": "integer"},
            "url": {"type": "string", "format": "uri"},
            "page_url": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "body": {**_nullable_str, "description": "Markdown as written on the forge; unsanitised"},
            "state": {"enum": ["open", "solved", "closed"],
                      "description": "open: still needs work; solved: a merged change closes it, or closed as "
                                     "completed; closed: closed without the work. The `state` filter's values."},
            "solved": {"type": "boolean", "description": "true exactly when state is solved"},
            "forge_state": {"enum": ["open", "closed"], "description": "The issue's state on its forge"},
            "state_reason": {**_nullable_str, "description": "As the forge gave it (GitHub state_reason; "
                                                             "moved/duplicate from GitLab)"},
            "close_reason": {"enum": ["completed", "not_planned", "duplicate", "moved", "deleted", "unknown", None]},
            "labels": {"type": "array", "items": {"type": "string"}},
            "author": {
                "type": "object",
                "required": ["login", "forge_id"],
                "properties": {"login": _nullable_str, "forge_id": {"type": ["integer", "null"]}},
            },
            "forge": {
                "type": "object",
                "required": ["kind", "host", "id", "number", "url"],
                "properties": {
                    "kind": {"enum": ["github", "gitlab"]},
                    "host": {"type": "string"},
                    "id": {"type": "integer"},
                    "number": {"type": "integer"},
                    "url": {"type": "string"},
                },
            },
            "repository": {
                "type": "object",
                "required": ["full_name", "url"],
                "properties": {"full_name": {"type": "string"}, "url": {"type": "string"}},
            },
            "project": {
                "type": "object",
                "required": ["slug", "name"],
                "properties": {"slug": {"type": "string"}, "name": {"type": "string"}},
            },
            "created_at": _timestamp,
            "updated_at": _timestamp,
            "closed_at": {"type": ["string", "null"], "format": "date-time"},
            "comments": {"type": "integer"},
            "priority": {"type": ["integer", "null"]},
            "funding_goal": {"oneOf": [{"$ref": "#/components/schemas/Money"}, {"type": "null"}]},
            "solved_by": {
                "description": "The merged pull/merge request that closed the item, from the linking rules",
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["repository", "number", "url", "merged_at"],
                        "properties": {
                            "repository": {"type": "string"},
                            "number": {"type": "integer"},
                            "url": {"type": ["string", "null"]},
                            "merged_at": {"type": ["string", "null"], "format": "date-time"},
                        },
                    },
                    {"type": "null"},
                ],
            },
            "bounty": {
                "type": "array",
                "description": "Held (escrowed) pledges per currency; the item's bounty",
                "items": {"$ref": "#/components/schemas/Money"},
            },
            "pledges_awaiting_payment": {
                "type": "integer",
                "description": "How many pledges wait for their money; their amounts are never shown or counted",
            },
        },
    },
    "ItemList": {
        "type": "object",
        "required": ["items", "total", "page", "next"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "next": {"type": ["string", "null"], "format": "uri"},
        },
    },
    "Project": {
        "type": "object",
        "required": [
            "slug", "name", "url", "page_url", "website", "registry_stage",
            "registry_status", "sdgs", "open_items",
        ],
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "url": {"type": "string", "format": "uri"},
            "page_url": {"type": "string", "format": "uri"},
            "website": _nullable_str,
            "registry_stage": _nullable_str,
            "registry_status": {"enum": ["active", "archived", "excluded"]},
            "sdgs": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 17}},
            "open_items": {"type": "integer"},
        },
    },
    "ProjectDetail": {
        "allOf": [
            {"$ref": "#/components/schemas/Project"},
            {
                "type": "object",
                "required": [
                    "description", "aliases", "licences", "types", "organisations",
                    "sdg_evidence", "repositories", "links",
                ],
                "properties": {
                    "description": {"type": "string"},
                    "aliases": {"type": "array", "items": {"type": "string"}},
                    "licences": {"type": "array", "items": {"type": "object"}},
                    "types": {"type": "array", "items": {"type": "string"}},
                    "organisations": {"type": "array", "items": {"type": "object"}},
                    "sdg_evidence": {"type": "array", "items": {"type": "object"}},
                    "repositories": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["forge", "host", "full_name", "url", "forge_id", "former_names"],
                            "properties": {
                                "forge": {"enum": ["github", "gitlab"]},
                                "host": {"type": "string"},
                                "full_name": {"type": "string"},
                                "url": {"type": "string"},
                                "forge_id": {"type": ["integer", "null"]},
                                "former_names": {"type": "array", "items": {"type": "string"}},
                            },
                        },
                    },
                    "links": {"type": "array", "items": {"type": "object"}},
                },
            },
        ]
    },
    "ProjectList": {
        "type": "object",
        "required": ["projects", "total", "page", "next"],
        "properties": {
            "projects": {"type": "array", "items": {"$ref": "#/components/schemas/Project"}},
            "total": {"type": "integer"},
            "page": {"type": "integer"},
            "next": {"type": ["string", "null"], "format": "uri"},
        },
    },
}


def _param(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_page = _param("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "Page number, from 1")


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(schema: str) -> dict:
    return {
        "description": "OK",
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def openapi_document(server_url: str) -> dict:
    """Return the OpenAPI 3.1 document, with ``server_url`` as the API base."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Backlog Commons API",
            "version": "1.0.0",
            "description": (
                "Read-only access to the public backlog of digital public goods. "
                "Amounts are integers in the currency's minor unit; times are UTC."
            ),
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/projects": {
                "get": {
                    "operationId": "listProjects",
                    "summary": "Member projects",
                    "parameters": [_page],
                    "responses": {"200": _ok("ProjectList"), "400": _error("Bad parameter")},
                }
            },
            "/projects/{slug}": {
                "get": {
                    "operationId": "getProject",
                    "summary": "One member project",
                    "parameters": [
                        {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {"200": _ok("ProjectDetail"), "404": _error("No such project")},
                }
            },
            "/items": {
                "get": {
                    "operationId": "listItems",
                    "summary": "Backlog items",
                    "parameters": [
                        _param("q", {"type": "string", "maxLength": MAX_QUERY_LENGTH},
                               "Full-text search over title and body; every word must match"),
                        _param("project", {"type": "string"}, "Member project slug"),
                        _param("sdg", {"type": "integer", "minimum": 1, "maximum": 17}, "SDG number"),
                        _param("label", {"type": "string"}, "Forge label name"),
                        _param("state", {"enum": list(STATES), "default": "open"},
                               "open: still needs work; solved; closed: closed without the work; all"),
                        _param("forge", {"enum": ["github", "gitlab"]}, "Forge kind"),
                        _param("funded", {"enum": list(FUNDED)}, "Has a bounty (held pledges) or not"),
                        _param("sort", {"enum": list(SORTS), "default": "updated"},
                               "updated: recently updated; newest: recently opened; "
                               "funded: largest bounty in the reporting currency"),
                        _page,
                    ],
                    "responses": {"200": _ok("ItemList"), "400": _error("Bad filter value")},
                }
            },
            "/items/{id}/ledger": {
                "get": {
                    "operationId": "getItemLedger",
                    "summary": "Every pledge of an item with its state, escrow and refunds, and its payouts",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                    ],
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["item", "escrow", "pledges", "payouts"]}}}},
                        "404": _error("No such item, or the forge keeps it private"),
                        "410": _error("Removed on the forge (error.deleted_at gives when)")},
                }
            },
            "/ledger": {
                "get": {
                    "operationId": "getLedgerSummary",
                    "summary": "Totals per currency and the reconciliation result",
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["totals", "reconciled", "violations"]}}}}},
                }
            },
            "/items/{id}": {
                "get": {
                    "operationId": "getItem",
                    "summary": "One backlog item",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
                    ],
                    "responses": {"200": _ok("Item"), "404": _error("No such item, or the forge keeps it private"),
                        "410": _error("Removed on the forge (error.deleted_at gives when)")},
                }
            },
        },
        "components": {"schemas": SCHEMAS},
    }
