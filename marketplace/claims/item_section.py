"""The claims' part of the item page (template ``claims/_item_section.html``):
the latest claims, and the request form for implementors."""
from __future__ import annotations

from flask import session
from flask_login import current_user
from sqlalchemy import exists

from marketplace.backlog.models import BacklogItem
from marketplace.claims.forms import ClaimRequestForm, claim_request_form
from marketplace.claims.models import Claim
from marketplace.claims.queries import item_claims
from marketplace.claims.service import item_is_solved
from marketplace.projects.queries import has_maintainer, maintainer_exists

TEMPLATE = "claims/_item_section.html"


def draft_key(item_id: int) -> str:
    """The session key under which a refused claim request on ``item_id`` waits to be shown."""
    return f"claim-draft-{item_id}"


def probes(item: BacklogItem) -> dict:
    """SQL conditions the item page asks in its one probe statement: whether the
    item has any claim (else the section reads none) and a maintainer."""
    return {"rows": exists().where(Claim.item_id == item.id),
            "maintained": maintainer_exists(item.repository.project_id)}


def section(item: BacklogItem, *, form: ClaimRequestForm | None = None, error: str | None = None,
            probed: dict | None = None) -> dict:
    """``{"rows", "form", "error", "solved", "unmaintained"}`` for ``item``: its latest claims (active
    first), the request form (only for implementors; ``form`` as typed when the claim
    view shows the page again), ``error`` the message above it, and whether it is solved.
    ``probed``: the answers to :func:`probes` when the page asked them."""
    implementor = current_user.is_authenticated and current_user.is_implementor
    if form is None and implementor:
        # A refused request was answered 303 (a reload posts nothing); it is shown here once, as typed.
        draft = session.pop(draft_key(item.id), None)
        form = claim_request_form(current_user.id, draft)
        error = error or (draft or {}).get("error")
    rows = item_claims(item.id) if probed is None or probed["rows"] else []
    maintained = probed["maintained"] if probed is not None else has_maintainer(item.repository.project_id)
    return {"rows": rows, "form": form if implementor else None, "error": error,
            "solved": item_is_solved(item), "unmaintained": not maintained}
