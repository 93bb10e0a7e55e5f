"""Claim refusals (marketplace/claims/service.py) on items that take no claims:
hidden by a maintainer, deleted on the forge, solved or closed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.claims import service as claims
from marketplace.claims.models import Claim, ClaimState
from marketplace.timeutil import utcnow
from tests.claims.test_claim_views import Scene, post


@pytest.fixture
def scene(app, session):
    return Scene(app, session)


def ask(scene, user=None) -> Claim:
    return claims.request_claim(scene.item, user or scene.ama, plan="Add the export endpoint.", estimate_days=5,
                                deadline=utcnow().date() + timedelta(days=14))


def no_claims(scene) -> bool:
    return scene.session.scalars(select(Claim).where(Claim.item_id == scene.item.id)).all() == []


def test_a_hidden_item_cannot_be_claimed(scene):
    scene.item.hidden = True
    with pytest.raises(claims.ClaimError, match="^This item cannot be claimed.$"):
        ask(scene)
    assert no_claims(scene)


def test_an_item_deleted_on_the_forge_cannot_be_claimed(scene):
    scene.item.deleted_at = utcnow()
    with pytest.raises(claims.ClaimError, match="^This item cannot be claimed.$"):
        ask(scene)
    assert no_claims(scene)


def test_a_closed_item_cannot_be_claimed(scene):
    scene.item.state = ItemState.closed
    with pytest.raises(claims.ClaimError, match="already solved or closed; it cannot be claimed"):
        ask(scene)
    assert no_claims(scene)


def test_a_claim_requested_while_open_cannot_be_approved_once_the_item_is_closed(scene):
    claim = ask(scene)
    scene.session.flush()
    scene.item.state = ItemState.closed
    with pytest.raises(claims.ClaimError, match="already solved or closed"):
        claims.approve(claim, maintainer=scene.maintainer)
    assert scene.session.get(Claim, claim.id).state is ClaimState.requested


def test_the_claim_form_on_a_hidden_item_changes_nothing(scene):
    scene.item.hidden = True
    scene.session.commit()
    response = post(scene.client(scene.ama), f"/items/{scene.item.id}/claims", **{
        "claim-plan": "Add the export endpoint.", "claim-estimate_days": "5",
        "claim-deadline": (utcnow().date() + timedelta(days=14)).isoformat(), "claim-organisation_id": ""})
    assert response.status_code == 404, response.status_code
    assert scene.session.scalar(select(BacklogItem.hidden).where(BacklogItem.id == scene.item.id)) is True
    assert no_claims(scene)
