"""Payouts through the pages: a maintainer previews and approves a split, a
recipient chooses how they are paid, the fiscal host pays by hand and refunds
after payout."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from marketplace.accounts.models import ImplementorProfile
from marketplace.audit.models import AuditEvent
from marketplace.backlog.models import BacklogItem
from marketplace.claims import certification
from marketplace.claims.models import Certification
from marketplace.ledger.check import check
from marketplace.money import Money
from marketplace.payouts import service as payouts
from marketplace.payouts.models import Payout, PayoutAccount, PayoutRail, PayoutState, ShareState
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, PledgeState, Rail
from marketplace.projects.models import MemberProject, ProjectMaintainer
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user, csrf, person

AFTER_WINDOW = timedelta(days=8)  # past the default 7-day dispute window
PREFIXES = ("", "cancel-", "manual-", "cert-")


class Scene:
    """An ODK item (10% fee) whose escrow holds $100.00 from a bank transfer, a
    proposed payout, a maintainer, an admin and two certified implementors."""

    def __init__(self, app, session):
        self.app, self.session = app, session
        self.item = session.scalar(select(BacklogItem).where(BacklogItem.number == 1887))  # getodk/central
        self.project = session.scalar(select(MemberProject).where(MemberProject.slug == "odk"))
        self.project.fee_rate_bps = 1000
        self.maintainer = person(session, "keeper@example.org")
        session.add(ProjectMaintainer(project_id=self.project.id, user_id=self.maintainer.id, granted_by="test"))
        self.admin = person(session, "host@example.org", admin=True)
        self.funder = person(session, "funder@example.org")
        self.ama = self.implementor("ama@example.org")
        self.kofi = self.implementor("kofi@example.org")
        self.pledge = pledges.create(self.item, self.funder.id, Money(10000, "USD"), rail=Rail.bank_transfer,
                                     actor="test")
        pledges.confirm_transfer(self.pledge.id, Money(10000, "USD"), reference="BANK-1",
                                 received_on="2026-01-05", actor="test")
        [self.payout] = payouts.propose(self.item, reason="closed_completed")
        session.commit()

    def implementor(self, email, *, certified=True):
        user = person(self.session, email)
        user.is_implementor = True
        if certified:
            certification.grant(user, issuer=self.admin, project_id=None, note="training 2026")
        self.session.commit()
        return user

    def client(self, user):
        return as_user(self.app, user)

    def split(self, **extra) -> dict:
        data = {"rows-0-recipient": str(self.ama.id), "rows-0-percent": "70",
                "rows-1-recipient": "kofi@example.org", "rows-1-percent": "30"}
        data.update(extra)
        return data


@pytest.fixture
def scene(app, session):
    return Scene(app, session)


def post(client, url, /, **data):
    token = csrf(client, "/account")
    return client.post(url, data={**data, **{f"{prefix}csrf_token": token for prefix in PREFIXES}})


def approvals(payout_id: int) -> int:
    from marketplace.extensions import db

    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "payout.approved", AuditEvent.object_id == str(payout_id)))


def test_the_public_page_shows_the_proposal_and_only_maintainers_get_the_form(scene, client):
    assert f"/payouts/{scene.payout.id}" in client.get(f"/items/{scene.item.id}").get_data(as_text=True)
    page = client.get(f"/payouts/{scene.payout.id}").get_data(as_text=True)
    assert "$100.00" in page and "$10.00" in page and "proposed" in page
    assert "Approve the payout" not in page
    assert "Approve the payout" not in scene.client(scene.ama).get(f"/payouts/{scene.payout.id}").get_data(
        as_text=True)
    keeper = scene.client(scene.maintainer).get(f"/payouts/{scene.payout.id}").get_data(as_text=True)
    assert "Approve the payout" in keeper and 'name="seen_gross" type="hidden" value="10000"' in keeper


def test_preview_shows_each_net_of_a_70_30_split_and_approves_nothing(scene):
    keeper = scene.client(scene.maintainer)
    response = post(keeper, f"/payouts/{scene.payout.id}/approve", **scene.split(preview="Preview"))
    # Issue 20: a preview answers 303, so reloading the page shows it again and posts nothing.
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/payouts/{scene.payout.id}#approve")
    html = keeper.get(f"/payouts/{scene.payout.id}").get_data(as_text=True)
    # $100.00 escrow, 10% fee: $90.00 net, split 70/30.
    assert "$90.00" in html and "$63.00" in html and "$27.00" in html
    assert 'name="seen_gross" type="hidden" value="10000"' in html
    assert scene.session.get(Payout, scene.payout.id).state is PayoutState.proposed
    assert approvals(scene.payout.id) == 0


def test_approving_twice_says_approved_already_and_approves_once(scene):
    keeper = scene.client(scene.maintainer)
    data = scene.split(approve="Approve", seen_gross="10000")
    first = post(keeper, f"/payouts/{scene.payout.id}/approve", **data)
    assert first.status_code == 303
    second = post(keeper, f"/payouts/{scene.payout.id}/approve", **data)
    assert second.status_code == 303
    page = keeper.get(f"/payouts/{scene.payout.id}").get_data(as_text=True)
    assert "This payout was approved already." in page and "Approve the payout" not in page
    payout = scene.session.get(Payout, scene.payout.id)
    assert payout.state is PayoutState.approved
    assert (payout.gross_minor, payout.fee_minor) == (10000, 1000)
    assert [(s.recipient_id, s.amount_minor) for s in payout.shares] == [(scene.ama.id, 6300), (scene.kofi.id, 2700)]
    assert approvals(payout.id) == 1
    assert payout.execute_after is not None


@pytest.mark.parametrize("extra, message, status", [
    ({"rows-1-percent": "20"}, "the percentages must add up to 100", 303),
    ({"rows-1-recipient": "nobody@example.org"}, "no implementor has the account id or e-mail", 303),
    ({"rows-1-recipient": "", "rows-1-percent": "30"}, "Row 2 has a percentage but no recipient.", 303),
    ({"seen_gross": "9999"}, "The escrow changed since the page was shown", 303),
])
def test_a_bad_split_or_a_changed_escrow_approves_nothing(scene, extra, message, status):
    keeper = scene.client(scene.maintainer)
    data = {**scene.split(approve="Approve", seen_gross="10000"), **extra}
    response = post(keeper, f"/payouts/{scene.payout.id}/approve", **data)
    assert response.status_code == status  # issue 20: refused, then shown by a GET that a reload repeats safely
    page = keeper.get(f"/payouts/{scene.payout.id}").get_data(as_text=True)
    assert message in page
    assert data["rows-1-recipient"] in page or not data["rows-1-recipient"]  # what was typed stays
    assert message not in keeper.get(f"/payouts/{scene.payout.id}").get_data(as_text=True)  # shown once
    assert scene.session.get(Payout, scene.payout.id).state is PayoutState.proposed
    assert approvals(scene.payout.id) == 0


def test_an_uncertified_recipient_is_flagged_in_the_preview_and_refused_at_approval(scene):
    yaw = scene.implementor("yaw@example.org", certified=False)
    keeper = scene.client(scene.maintainer)
    data = scene.split(**{"rows-1-recipient": str(yaw.id)})
    post(keeper, f"/payouts/{scene.payout.id}/approve", **data, preview="Preview")
    assert "not certified yet" in keeper.get(f"/payouts/{scene.payout.id}").get_data(as_text=True)
    response = post(keeper, f"/payouts/{scene.payout.id}/approve", **data, approve="Approve", seen_gross="10000")
    assert response.status_code == 303
    assert "is not certified yet" in keeper.get(f"/payouts/{scene.payout.id}").get_data(as_text=True)
    assert scene.session.get(Payout, scene.payout.id).state is PayoutState.proposed


def test_an_equal_split_needs_no_percentages(scene):
    keeper = scene.client(scene.maintainer)
    data = {"rows-0-recipient": str(scene.ama.id), "rows-1-recipient": str(scene.kofi.id), "equal": "y",
            "approve": "Approve", "seen_gross": "10000"}
    assert post(keeper, f"/payouts/{scene.payout.id}/approve", **data).status_code == 303
    payout = scene.session.get(Payout, scene.payout.id)
    assert [s.amount_minor for s in payout.shares] == [4500, 4500]


def test_cancel_needs_a_note_and_keeps_the_escrow(scene):
    keeper = scene.client(scene.maintainer)
    post(keeper, f"/payouts/{scene.payout.id}/cancel")
    assert scene.session.get(Payout, scene.payout.id).state is PayoutState.proposed
    assert post(keeper, f"/payouts/{scene.payout.id}/cancel", **{"cancel-note": "Duplicate."}).status_code == 303
    payout = scene.session.get(Payout, scene.payout.id)
    assert (payout.state, payout.note) == (PayoutState.cancelled, "Duplicate.")
    assert scene.session.get(Pledge, scene.pledge.id).state is PledgeState.held


def test_the_project_payouts_page_lists_the_payout_for_maintainers_only(scene):
    assert scene.client(scene.ama).get("/projects/odk/payouts").status_code == 403
    page = scene.client(scene.maintainer).get("/projects/odk/payouts").get_data(as_text=True)
    assert f"/payouts/{scene.payout.id}" in page and "Certify" in page


def test_a_recipient_in_a_manual_rail_country_is_offered_no_stripe(scene, app, monkeypatch):
    monkeypatch.setitem(app.config, "PAYOUT_MANUAL_COUNTRIES", ["KE"])
    scene.session.add(ImplementorProfile(user_id=scene.ama.id, country="KE"))
    scene.session.commit()
    ama = scene.client(scene.ama)
    page = ama.get("/account/payouts").get_data(as_text=True)
    assert "Set up Stripe payouts" not in page and 'value="stripe"' not in page
    assert "Stripe pays out to no one in your country" in page
    post(ama, "/account/payouts", form="stripe")
    assert scene.session.get(PayoutAccount, scene.ama.id) is None
    details = "M-Pesa 0700 000 000, Ama Mensah"
    assert post(ama, "/account/payouts", form="manual", **{"manual-details": details}).status_code == 303
    account = scene.session.get(PayoutAccount, scene.ama.id)
    assert (account.rail, account.manual_details, account.stripe_account_id) == (PayoutRail.manual, details, None)
    assert details in ama.get("/account/payouts").get_data(as_text=True)


def test_manual_details_are_required_and_limited(scene):
    ama = scene.client(scene.ama)
    assert post(ama, "/account/payouts", form="manual", **{"manual-details": "x" * 2001}).status_code == 400
    assert post(ama, "/account/payouts", form="manual").status_code == 400
    assert scene.session.get(PayoutAccount, scene.ama.id) is None


@pytest.fixture
def stripe_api(app):
    from marketplace.standins.stripe import LocalStripe

    server = LocalStripe()
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=server.url)
    yield server
    app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
    server.stop()


def test_stripe_set_up_makes_one_account_and_sends_the_person_to_onboarding(scene, stripe_api):
    scene.session.add(ImplementorProfile(user_id=scene.kofi.id, country="DE"))
    scene.session.commit()
    kofi = scene.client(scene.kofi)
    assert "Set up Stripe payouts" in kofi.get("/account/payouts").get_data(as_text=True)
    first = post(kofi, "/account/payouts", form="stripe")
    assert first.status_code == 303
    account = scene.session.get(PayoutAccount, scene.kofi.id)
    assert account.rail is PayoutRail.stripe and account.stripe_account_id
    assert first.headers["Location"] == f"{stripe_api.url}/onboard/{account.stripe_account_id}"
    link = stripe_api.account_links[account.stripe_account_id]
    assert link["return_url"] == link["refresh_url"] == "http://localhost/account/payouts"
    # Again (the link expired, a second click): the same account, a new link.
    assert post(kofi, "/account/payouts", form="stripe").status_code == 303
    assert list(stripe_api.accounts) == [account.stripe_account_id]
    assert "cannot receive transfers yet" in kofi.get("/account/payouts").get_data(as_text=True)
    stripe_api.activate(account.stripe_account_id)
    post(kofi, "/account/payouts", form="refresh")
    scene.session.refresh(account)
    assert account.transfers_active is True
    assert "can receive transfers" in kofi.get("/account/payouts").get_data(as_text=True)


def test_stripe_unavailable_sets_up_nothing(scene):
    scene.session.add(ImplementorProfile(user_id=scene.kofi.id, country="DE"))
    scene.session.commit()
    kofi = scene.client(scene.kofi)
    assert post(kofi, "/account/payouts", form="stripe").status_code == 303
    assert scene.session.get(PayoutAccount, scene.kofi.id) is None
    assert "Stripe could not set up your account" in kofi.get("/account/payouts").get_data(as_text=True)


def test_the_fiscal_host_pays_a_manual_share_once_and_refunds_after_payout_once(scene, app, monkeypatch):
    monkeypatch.setitem(app.config, "PAYOUT_MANUAL_COUNTRIES", ["KE"])
    scene.session.add(ImplementorProfile(user_id=scene.ama.id, country="KE", public_earnings=True))
    scene.session.add(PayoutAccount(user_id=scene.ama.id, rail=PayoutRail.manual, manual_details="M-Pesa 0700"))
    scene.session.commit()
    keeper = scene.client(scene.maintainer)
    post(keeper, f"/payouts/{scene.payout.id}/approve", **scene.split(approve="Approve", seen_gross="10000"))
    assert payouts.execute(scene.payout.id, utcnow() + AFTER_WINDOW)
    scene.session.commit()
    payout = scene.session.get(Payout, scene.payout.id)
    share = payout.shares[0]
    assert share.state is ShareState.awaiting_manual_payout

    host = scene.client(scene.admin)
    page = host.get("/admin/payouts").get_data(as_text=True)
    assert "M-Pesa 0700" in page and "$63.00" in page and f"/admin/payouts/shares/{share.id}/paid" in page
    form = {"reference": "MPESA-77", "paid_on": utcnow().date().isoformat()}
    assert post(host, f"/admin/payouts/shares/{share.id}/paid", **form).status_code == 303
    assert post(host, f"/admin/payouts/shares/{share.id}/paid", **form).status_code == 303
    assert "not waiting for a manual payout" in host.get("/admin/payouts").get_data(as_text=True)
    scene.session.refresh(share)
    assert (share.state, share.manual_reference) == (ShareState.paid, "MPESA-77")
    assert "$63.00" in scene.client(scene.kofi).get(f"/people/{scene.ama.id}").get_data(as_text=True)
    assert "$63.00" in scene.client(scene.ama).get("/account/payouts").get_data(as_text=True)

    # The funder asks for $10.00 back: the commons refunds it, Ama owes it back.
    assert f"/admin/pledges/{scene.pledge.id}/refund-after-payout" in host.get("/admin/pledges").get_data(
        as_text=True)
    refund = {"amount": "10.00", "share_id": str(share.id), "path": "receivable", "reference": "BACK-1",
              "seen_refunded": "0"}
    assert post(host, f"/admin/pledges/{scene.pledge.id}/refund-after-payout", **refund).status_code == 303
    assert post(host, f"/admin/pledges/{scene.pledge.id}/refund-after-payout", **refund).status_code == 303
    assert "refunded meanwhile" in host.get("/admin/pledges").get_data(as_text=True)
    assert scene.session.get(Pledge, scene.pledge.id).refunded_minor == 1000
    assert check() == []


def test_an_admin_certifies_globally_by_e_mail_and_revokes(scene):
    yaw = scene.implementor("yaw@example.org", certified=False)
    host = scene.client(scene.admin)
    page = host.get("/admin/certifications").get_data(as_text=True)
    default = (utcnow() + certification.DEFAULT_VALIDITY).date().isoformat()
    assert f'value="{default}"' in page  # two years by default
    response = post(host, "/admin/certifications",
                    **{"cert-email": "yaw@example.org", "cert-expires_on": default, "cert-note": "Cohort 3"})
    assert response.status_code == 303
    cert = scene.session.scalar(select(Certification).where(Certification.user_id == yaw.id))
    assert (cert.project_id, cert.note) == (None, "Cohort 3")
    assert certification.is_certified(yaw.id, scene.project.id)
    profile = scene.client(scene.kofi).get(f"/people/{yaw.id}").get_data(as_text=True)
    assert "Cohort 3" in profile and "Every member project" in profile
    past = (utcnow().date() - timedelta(days=2)).isoformat()
    response = post(host, "/admin/certifications", **{"cert-email": "yaw@example.org", "cert-expires_on": past})
    assert response.status_code == 400 and "The expiry must be in the future." in response.get_data(as_text=True)
    assert post(host, f"/admin/certifications/{cert.id}/revoke").status_code == 303
    assert not certification.is_certified(yaw.id, scene.project.id)


def test_a_solved_item_takes_no_new_pledge_and_shows_what_was_paid_out(world, app, session):
    from marketplace.payouts import service as payouts
    from marketplace.payouts.models import PayoutAccount, PayoutRail
    from marketplace.pledges.models import Pledge
    from marketplace.timeutil import utcnow
    from tests.accounts.helpers import as_user
    from tests.payouts.helpers import AFTER_WINDOW

    item = world.issue(501)
    world.fund(item, 10000)
    ama = world.implementor("ama@example.org", github_id=9501)
    session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    world.claim(item, ama)
    world.pull(1501, "Fixes #501", author_id=9501, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    session.commit()
    funder = as_user(app, world.funder)
    page = funder.get(f"/items/{item.id}").get_data(as_text=True)
    assert "Solved" in page and "takes no new pledges" in page and 'action="/items/%d/pledge"' % item.id not in page
    assert "Paid out</dt><dd>$100.00" in page
    anonymous = app.test_client().get(f"/items/{item.id}").get_data(as_text=True)
    assert "it cannot be claimed" in anonymous and "Sign in to claim" not in anonymous
    assert "Fund this item" not in anonymous
    before = session.query(Pledge).count()
    from tests.accounts.helpers import csrf

    response = funder.post(f"/items/{item.id}/pledge", data={"amount": "10", "currency": "USD", "rail": "card",
                                                              "expiry_months": "12", "csrf_token": csrf(funder, "/account")})
    assert response.status_code == 303 and session.query(Pledge).count() == before


def test_the_pledge_page_says_why_the_funder_cannot_take_it_back_once_a_claim_is_approved(world, app, session):
    from tests.accounts.helpers import as_user

    item = world.issue(502)
    pledge = world.fund(item, 2500)
    session.commit()
    funder = as_user(app, world.funder)
    assert "Take my pledge back ($25.00)" in funder.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    world.claim(item, world.implementor("ama@example.org", github_id=9502))
    session.commit()
    page = funder.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert "Take my pledge back" not in page
    assert "A claim on this item is approved: someone is doing the work. To be refunded, write to the fiscal host." in page


def test_pages_trace_the_money_item_funders_claim_payout_and_admin_history(world, app, session):
    from marketplace.payouts import service as payouts
    from marketplace.payouts.models import PayoutAccount, PayoutRail
    from marketplace.pledges import service as pledges
    from marketplace.timeutil import utcnow
    from tests.accounts.helpers import as_user
    from tests.payouts.helpers import AFTER_WINDOW

    item = world.issue(503)
    named = world.fund(item, 6000)
    named.show_name = True
    world.fund(item, 4000)
    ama = world.implementor("ama@example.org", github_id=9503)
    session.add(PayoutAccount(user_id=ama.id, rail=PayoutRail.manual))
    claim = world.claim(item, ama)
    world.pull(1503, "Fixes #503", author_id=9503, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    payouts.record_manual_payout(payout.shares[0].id, reference="MPESA-77", paid_on=utcnow().date(),
                                 admin=world.admin)
    session.commit()
    page = app.test_client().get(f"/items/{item.id}").get_data(as_text=True)
    assert "funder: $60.00" in page and "anonymous: $40.00" in page
    claim_page = app.test_client().get(f"/claims/{claim.id}").get_data(as_text=True)
    assert "Codertocat/Hello-World#1503" in claim_page and f'href="/payouts/{payout.id}">$100.00</a> · paid' in claim_page
    admin_page = as_user(app, world.admin).get("/admin/payouts").get_data(as_text=True)
    assert "MPESA-77" in admin_page and "$90.00" in admin_page
    assert pledges.self_refund_refusal(named) == ("This pledge was paid out; only the fiscal host can refund it now: "
                                                  "write to the fiscal host.")


def test_the_recipient_field_asks_for_an_account_id_or_e_mail_and_names_the_matched_person(scene):
    keeper = scene.client(scene.maintainer)
    page = keeper.get(f"/payouts/{scene.payout.id}").get_data(as_text=True)
    assert "Recipient: account id or e-mail" in page and "account number" not in page
    post(keeper, f"/payouts/{scene.payout.id}/approve", **scene.split(preview="Preview"))
    page = keeper.get(f"/payouts/{scene.payout.id}").get_data(as_text=True)
    assert f'<span class="matched">is {scene.ama.display_name}</span>' in page
    assert f'<span class="matched">is {scene.kofi.display_name}</span>' in page
