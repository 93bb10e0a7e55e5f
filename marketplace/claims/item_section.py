"""The claims' part of the item page (template ``claims/_item_section.html``):
the latest claims, and the request form for implementors."""
from __future__ import annotations

from flask_login import current_user

from marketplace.backlog.models import BacklogItem
from marketplace.claims.forms import ClaimRequestForm, claim_request_form
from marketplace.claims.queries import item_claims
from marketplace.claims.service import item_is_solved

TEMPLATE = "claims/_item_section.html"


def section(item: BacklogItem, *, form: ClaimRequestForm | None = None, error: str | None = None) -> dict:
    """``{"rows", "form", "error", "solved"}`` for ``item``: its latest claims (active
    first), the request form (only for implementors; ``form`` as typed when the claim
    view shows the page again), ``error`` the message above it, and whether it is solved."""
    implementor = current_user.is_authenticated and current_user.is_implementor
    if form is None and implementor:
        form = claim_request_form(current_user.id)
    return {"rows": item_claims(item.id), "form": form if implementor else None, "error": error,
            "solved": item_is_solved(item)}
