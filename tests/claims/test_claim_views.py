"""Claims through the pages: requested on the item page, decided on the claim
page by a maintainer, listed for the project and for the implementor."""
from __future__ import annotations

from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from marketplace.backlog.models import BacklogItem
from marketplace.claims.models import Certification, Claim, ClaimState
from marketplace.projects.models import MemberProject, ProjectMaintainer
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user, csrf, person


class Scene:
    """An open ODK item, a maintainer of ODK and two implementors."""

    def __init__(self, app, session):
        self.app, self.session = app, session
        self.item = session.scalar(select(BacklogItem).where(BacklogItem.number == 1887))  # getodk/central
        self.project = session.scalar(select(MemberProject).where(MemberProject.slug == "odk"))
        self.maintainer = person(session, "keeper@example.org")
        session.add(ProjectMaintainer(project_id=self.project.id, user_id=self.maintainer.id, granted_by="test"))
        self.ama = self.implementor("ama@example.org")
        self.kofi = self.implementor("kofi@example.org")
        session.commit()

    def implementor(self, email):
        user = person(self.session, email)
        user.is_implementor = True
        self.session.commit()
        return user

    def client(self, user):
        return as_user(self.app, user)

    def request(self, client, **fields):
        data = {"claim-plan": "Add the export endpoint, with tests.", "claim-estimate_days": "5",
                "claim-deadline": (utcnow().date() + timedelta(days=14)).isoformat(), "claim-organisation_id": ""}
        data.update(fields)
        # As a browser sends it: the token only under the form's prefix.
        data["claim-csrf_token"] = csrf(client, f"/items/{self.item.id}")
        return client.post(f"/items/{self.item.id}/claims", data=data)

    def claims(self):
        return self.session.scalars(select(Claim).where(Claim.item_id == self.item.id).order_by(Claim.id)).all()


@pytest.fixture
def scene(app, session):
    return Scene(app, session)


PREFIXES = ("", "claim-", "approve-", "reject-", "reassign-", "cert-")


def with_token(client, data: dict) -> dict:
    """``data`` with the session's CSRF token under each form prefix (a prefixed form reads its own)."""
    token = csrf(client, "/account")
    return {**data, **{f"{prefix}csrf_token": token for prefix in PREFIXES}}


def post(client, path, **data):
    return client.post(path, data=with_token(client, data))


def test_a_requested_claim_is_listed_approved_by_a_maintainer_and_seen_approved_by_its_claimant(scene):
    ama = scene.client(scene.ama)
    response = scene.request(ama)
    assert response.status_code == 303
    [claim] = scene.claims()
    assert response.headers["Location"].endswith(f"/claims/{claim.id}")
    assert (claim.claimant_id, claim.state, claim.estimate_days) == (scene.ama.id, ClaimState.requested, 5)

    item_page = scene.client(scene.kofi).get(f"/items/{scene.item.id}").get_data(as_text=True)
    assert "ama" in item_page and f"/claims/{claim.id}" in item_page and "requested" in item_page

    keeper = scene.client(scene.maintainer)
    assert f"/claims/{claim.id}" in keeper.get("/projects/odk/claims").get_data(as_text=True)
    assert "Approve the claim" in keeper.get(f"/claims/{claim.id}").get_data(as_text=True)
    assert post(keeper, f"/claims/{claim.id}/approve", **{"approve-note": "Go ahead."}).status_code == 303
    scene.session.refresh(claim)
    assert (claim.state, claim.decided_by_id, claim.decision_note) == (
        ClaimState.approved, scene.maintainer.id, "Go ahead.")

    page = ama.get(f"/claims/{claim.id}").get_data(as_text=True)
    assert "approved" in page and "Go ahead." in page and "Withdraw my claim" in page
    assert "Approve the claim" not in page
    mine = ama.get("/account/claims").get_data(as_text=True)
    assert str(escape(scene.item.title)) in mine and "approved" in mine


def test_a_second_approval_says_it_was_decided_already(scene):
    scene.request(scene.client(scene.ama))
    [claim] = scene.claims()
    keeper = scene.client(scene.maintainer)
    post(keeper, f"/claims/{claim.id}/approve")
    response = post(keeper, f"/claims/{claim.id}/approve")
    assert response.status_code == 303
    assert "This claim was decided already." in keeper.get(f"/claims/{claim.id}").get_data(as_text=True)


@pytest.mark.parametrize("fields, message", [
    ({"claim-deadline": (utcnow().date() - timedelta(days=1)).isoformat()},
     "The deadline must be between today and one year from today."),
    ({"claim-plan": "   "}, "This field is required."),
    ({"claim-estimate_days": "0"}, "Number must be between 1 and 365."),
    ({"claim-deadline": "next week"}, "Not a valid date value."),
])
def test_bad_input_shows_the_error_on_the_item_page_and_creates_nothing(scene, fields, message):
    ama = scene.client(scene.ama)
    response = scene.request(ama, **fields)
    # Issue 20: refused with a 303 back to the form, so a reload posts nothing; shown once, as typed.
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/items/{scene.item.id}#claim-request")
    html = ama.get(f"/items/{scene.item.id}").get_data(as_text=True)
    assert message in html
    assert message not in ama.get(f"/items/{scene.item.id}").get_data(as_text=True)
    assert "Add the export endpoint" in html or fields.get("claim-plan") == "   "  # what was typed stays
    assert scene.claims() == []


def test_only_implementors_are_offered_the_claim_form(scene):
    funder = person(scene.session, "funder@example.org")
    assert "Ask to do this item" not in scene.client(funder).get(f"/items/{scene.item.id}").get_data(as_text=True)
    assert "Ask to do this item" in scene.client(scene.ama).get(f"/items/{scene.item.id}").get_data(as_text=True)
    client = scene.client(funder)
    response = scene.request(client)
    assert response.status_code == 303
    assert "Only implementors can claim items." in client.get(response.headers["Location"]).get_data(as_text=True)
    assert scene.claims() == []


def test_reject_with_a_note_then_the_claimant_cannot_withdraw_a_closed_claim(scene):
    ama = scene.client(scene.ama)
    scene.request(ama)
    [claim] = scene.claims()
    keeper = scene.client(scene.maintainer)
    assert post(keeper, f"/claims/{claim.id}/reject", **{"reject-note": "Out of scope."}).status_code == 303
    scene.session.refresh(claim)
    assert (claim.state, claim.decision_note) == (ClaimState.rejected, "Out of scope.")
    post(ama, f"/claims/{claim.id}/withdraw")
    assert "This claim is closed already." in ama.get(f"/claims/{claim.id}").get_data(as_text=True)
    assert scene.session.get(Claim, claim.id).state is ClaimState.rejected


def test_the_claimant_withdraws_and_others_cannot(scene):
    ama = scene.client(scene.ama)
    scene.request(ama)
    [claim] = scene.claims()
    assert post(scene.client(scene.kofi), f"/claims/{claim.id}/withdraw").status_code == 403
    assert post(ama, f"/claims/{claim.id}/withdraw").status_code == 303
    scene.session.refresh(claim)
    assert claim.state is ClaimState.withdrawn


def test_reassign_to_an_implementor_who_asked_for_the_item(scene):
    scene.request(scene.client(scene.ama))
    scene.request(scene.client(scene.kofi))
    first, second = scene.claims()
    keeper = scene.client(scene.maintainer)
    post(keeper, f"/claims/{first.id}/approve")
    page = keeper.get(f"/claims/{first.id}").get_data(as_text=True)
    assert f'<option value="{scene.kofi.id}">kofi</option>' in page
    response = post(keeper, f"/claims/{first.id}/reassign", **{"reassign-to_user_id": str(scene.kofi.id)})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/claims/{second.id}")
    scene.session.refresh(first)
    scene.session.refresh(second)
    assert (first.state, second.state) == (ClaimState.rejected, ClaimState.approved)


def test_reassign_by_an_unknown_e_mail_changes_nothing(scene):
    scene.request(scene.client(scene.ama))
    [claim] = scene.claims()
    keeper = scene.client(scene.maintainer)
    post(keeper, f"/claims/{claim.id}/approve")
    post(keeper, f"/claims/{claim.id}/reassign", **{"reassign-email": "nobody@example.org"})
    assert "No implementor account uses that e-mail address." in keeper.get(
        f"/claims/{claim.id}").get_data(as_text=True)
    assert [c.state for c in scene.claims()] == [ClaimState.approved]


def test_opening_an_item_to_a_team_lets_a_maintainer_approve_two_claims(scene):
    scene.request(scene.client(scene.ama))
    scene.request(scene.client(scene.kofi))
    first, second = scene.claims()
    keeper = scene.client(scene.maintainer)
    post(keeper, f"/claims/{first.id}/approve")
    post(keeper, f"/claims/{second.id}/approve")
    assert "Another claim on this item is approved already" in keeper.get(
        f"/claims/{second.id}").get_data(as_text=True)
    assert post(keeper, f"/items/{scene.item.id}/claims/team", open="1").status_code == 303
    post(keeper, f"/claims/{second.id}/approve")
    assert [c.state for c in scene.claims()] == [ClaimState.approved, ClaimState.approved]
    # Closing it again is refused while two claims hold the item.
    post(keeper, f"/items/{scene.item.id}/claims/team", open="0")
    scene.session.refresh(scene.item)
    assert scene.item.open_to_team is True


def test_the_team_switch_takes_only_0_or_1_and_changes_nothing_otherwise(scene):
    keeper = scene.client(scene.maintainer)
    for value in ("2", "yes", ""):
        assert post(keeper, f"/items/{scene.item.id}/claims/team", open=value).status_code == 400
    scene.session.refresh(scene.item)
    assert scene.item.open_to_team is False


def test_a_maintainer_certifies_for_the_project_and_revokes(scene):
    keeper = scene.client(scene.maintainer)
    until = (utcnow().date() + timedelta(days=90)).isoformat()
    response = post(keeper, "/projects/odk/certifications",
                    **{"cert-email": "ama@example.org", "cert-expires_on": until, "cert-note": "Trusted."})
    assert response.status_code == 303
    cert = scene.session.scalar(select(Certification).where(Certification.user_id == scene.ama.id))
    assert (cert.project_id, cert.issued_by_id, cert.note) == (scene.project.id, scene.maintainer.id, "Trusted.")
    assert cert.expires_at.date().isoformat() > until  # valid through the whole day
    profile = scene.client(scene.kofi).get(f"/people/{scene.ama.id}").get_data(as_text=True)
    assert "Trusted." in profile and scene.project.name in profile
    # A funder (not an implementor) is not certified.
    person(scene.session, "funder@example.org")
    post(keeper, "/projects/odk/certifications", **{"cert-email": "funder@example.org", "cert-expires_on": until})
    assert scene.session.scalar(select(func.count()).select_from(Certification)) == 1
    assert post(keeper, f"/projects/odk/certifications/{cert.id}/revoke").status_code == 303
    scene.session.refresh(cert)
    assert cert.revoked_at is not None
