"""Issue 20: an item of a project with no maintainer says nobody can approve its
claims or payouts; claims are refused with that reason; a pledge needs an explicit
acknowledgement."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.claims import service as claims
from marketplace.pledges.models import Pledge
from marketplace.projects.models import ProjectMaintainer
from marketplace.projects.queries import has_maintainer
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user, csrf, person, signup
from tests.payments.test_checkout import an_item, stripe_server  # noqa: F401

NOTICE = "Nobody can approve claims or payouts for this project yet: it has no maintainer."


def test_an_unmaintained_item_says_so_and_a_pledge_without_the_acknowledgement_is_refused(
        client, session, stripe_server):  # noqa: F811
    item = an_item(session)
    assert not has_maintainer(item.repository.project_id)
    signup(client, "funder@example.org", "Funder", funder=True)
    page = client.get(f"/items/{item.id}").get_data(as_text=True)
    assert page.count(NOTICE) == 2  # where a funder and an implementor would act
    assert 'name="acknowledge_unmaintained"' in page
    data = {"csrf_token": csrf(client, f"/items/{item.id}"), "amount": "30.00", "currency": "USD",
            "expiry_months": "12", "rail": "bank_transfer"}
    refused = client.post(f"/items/{item.id}/pledge", data=data)
    assert refused.status_code == 400
    assert "This project has no maintainer yet: tick this box to pledge anyway." in refused.get_data(as_text=True)
    assert session.scalars(select(Pledge)).all() == []
    accepted = client.post(f"/items/{item.id}/pledge", data={**data, "acknowledge_unmaintained": "y"})
    assert accepted.status_code == 303
    assert len(session.scalars(select(Pledge)).all()) == 1


def test_a_claim_on_an_unmaintained_item_is_refused_with_that_reason_and_allowed_once_it_has_one(app, session):
    item = an_item(session)
    ama = person(session, "ama@example.org")
    ama.is_implementor = True
    session.commit()
    assert "Ask to do this item" not in as_user(app, ama).get(f"/items/{item.id}").get_data(as_text=True)
    deadline = utcnow().date() + timedelta(days=10)
    with pytest.raises(claims.ClaimError, match="Nobody can approve claims or payouts for this project yet"):
        claims.request_claim(item, ama, plan="Plan", estimate_days=2, deadline=deadline)
    keeper = person(session, "keeper@example.org")
    session.add(ProjectMaintainer(project_id=item.repository.project_id, user_id=keeper.id, granted_by="test"))
    session.flush()
    assert claims.request_claim(item, ama, plan="Plan", estimate_days=2, deadline=deadline).id
    page = as_user(app, ama).get(f"/items/{item.id}").get_data(as_text=True)
    assert NOTICE not in page
