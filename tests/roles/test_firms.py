"""Issue 20: a local firm is paid as a firm — its own payee account, payout
account and certification; a claim made for it pays it; remittance advice for
each payout (page and CSV); the firm's page lists its earnings."""
from __future__ import annotations

from datetime import timedelta

from marketplace.claims import certification
from marketplace.claims import service as claims
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.notifications.notices import compose
from marketplace.organisations import service as organisations
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutRail, ShareState
from marketplace.roles import service as roles
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user, csrf
from tests.payouts.helpers import AFTER_WINDOW, balance


def _firm(world, owner):
    firm = organisations.create("Accra Code Works", kind="implementor", country="GH", owner=owner)
    payee = roles.ensure_payee(firm, owner=owner, legal_name="Accra Code Works Ltd")
    certification.grant(payee, issuer=world.admin, project_id=None, note="firm trained 2026")
    roles.set_firm_manual_rail(firm, "GCB Bank, account 123456, Accra", owner=owner)
    return firm, payee


def test_the_issue_example_firm_and_person_split_half_and_half_at_a_10_percent_fee(app, world, session):
    kofi = world.implementor("kofi@example.org", github_id=9201, country="GH")
    ama = world.implementor("ama@example.org", github_id=9202, country="KE")
    firm, payee = _firm(world, kofi)
    item = world.issue(811)
    world.fund(item, 20000)
    world.pull(1811, "Fixes #811", author_id=9201, merged=True)
    [payout] = world.payouts_of(item)
    approved = world.approve(payout, [(payee.id, 5000), (ama.id, 5000)])
    assert (approved.gross_minor, approved.fee_minor) == (20000, 2000)
    assert [(s.recipient_id, s.amount_minor) for s in approved.shares] == [(payee.id, 9000), (ama.id, 9000)]
    assert payouts.execute(payout.id, payout.execute_after + AFTER_WINDOW)
    firm_share = approved.shares[0]
    assert (firm_share.rail, firm_share.state) == (PayoutRail.manual, ShareState.awaiting_manual_payout)
    assert balance(AccountKind.contributor_payable, user_id=payee.id) == 9000
    payouts.record_manual_payout(firm_share.id, reference="GCB-TX-811", paid_on=utcnow().date(), admin=world.admin)
    assert balance(AccountKind.payouts_paid) >= 9000 and check() == []

    [(to, _subject, body)] = compose("share", "paid", firm_share.id)  # the firm's owner hears of it
    assert to == "kofi@example.org" and "$90.00" in body

    advice = roles.remittance(firm_share)
    assert (advice.gross_minor, advice.fee_minor, advice.net_minor) == (10000, 1000, 9000)
    assert (advice.payee_name, advice.country, advice.rail, advice.reference) == (
        "Accra Code Works Ltd", "GH", "manual", "GCB-TX-811")
    session.commit()
    owner = as_user(app, kofi)
    page = owner.get(f"/remittance/{firm_share.id}").get_data(as_text=True)
    assert "Remittance advice" in page and "Accra Code Works Ltd" in page and "$90.00" in page
    assert "GCB-TX-811" in page and "#1811" in page
    csv_text = owner.get(f"/remittance/{firm_share.id}.csv").get_data(as_text=True)
    header, line = csv_text.strip().split("\r\n")
    assert header == "payout,item,pull_request,gross,fee,net,currency,rail,reference,date,legal_name,country"
    assert line.endswith(f",100.00,10.00,90.00,USD,manual,GCB-TX-811,{utcnow().date().isoformat()},"
                         "Accra Code Works Ltd,GH")
    earnings = owner.get(f"/organisations/{firm.slug}/payouts").get_data(as_text=True)
    assert "Earnings" in earnings and "$90.00" in earnings and f"/remittance/{firm_share.id}" in earnings
    # Ama's advice is hers: a member of the firm does not see it; she does.
    assert owner.get(f"/remittance/{approved.shares[1].id}").status_code == 404
    assert "$90.00" in as_user(app, ama).get(f"/remittance/{approved.shares[1].id}").get_data(as_text=True)
    assert f'href="/remittance/{approved.shares[1].id}"' in as_user(app, ama).get("/account/payouts").get_data(
        as_text=True)


def test_a_claim_made_for_the_firm_proposes_the_payout_to_the_firm(world, session):
    kofi = world.implementor("kofi@example.org", github_id=9301)
    firm, payee = _firm(world, kofi)
    item = world.issue(812)
    claim = claims.request_claim(item, kofi, plan="We fix it.", estimate_days=3,
                                 deadline=utcnow().date() + timedelta(days=5), organisation_id=firm.id)
    claims.approve(claim, maintainer=world.maintainer)
    world.fund(item, 5000)
    world.pull(1812, "Fixes #812", author_id=9301, merged=True)
    [payout] = world.payouts_of(item)
    assert payout.suggested_recipient_id == payee.id
    assert [s.recipient_id for s in payout.shares] == [payee.id]


def test_only_an_owner_sets_how_the_firm_is_paid(app, world, session):
    kofi = world.implementor("kofi@example.org", github_id=9401)
    member = world.implementor("yaw@example.org", github_id=9402)
    firm = organisations.create("Kumasi Devs", kind="implementor", country="GH", owner=kofi)
    organisations.invite(firm, "yaw@example.org", inviter=kofi)
    organisations.accept(organisations.membership(firm, member.id), user=member)
    session.commit()
    yaw = as_user(app, member)
    token = csrf(yaw, f"/organisations/{firm.slug}/payouts")
    refused = yaw.post(f"/organisations/{firm.slug}/payouts",
                       data={"csrf_token": token, "legal_name": "Mine", "details": "my bank"})
    assert refused.status_code == 403 and firm.payee_id is None
    owner = as_user(app, kofi)
    done = owner.post(f"/organisations/{firm.slug}/payouts",
                      data={"csrf_token": csrf(owner, f"/organisations/{firm.slug}/payouts"),
                            "legal_name": "Kumasi Devs Ltd", "details": "MTN MoMo 024 000 0000"})
    assert done.status_code == 303
    session.refresh(firm)
    assert firm.legal_name == "Kumasi Devs Ltd" and firm.payee.display_name == "Kumasi Devs Ltd"
    assert firm.payee.email is None and firm.payee.password_hash is None and payouts.manual_rail(firm.payee_id)
    assert as_user(app, world.funder).get(f"/organisations/{firm.slug}/payouts").status_code == 403


def test_an_admin_certifies_the_firm_and_an_owner_sets_up_the_companys_stripe_account(app, world, session):
    from marketplace.payouts.models import PayoutAccount
    from tests.payments.fake_stripe import FakeStripe

    kofi = world.implementor("kofi@example.org", github_id=9501)
    firm = organisations.create("Tema Software", kind="implementor", country="GH", owner=kofi)
    payee = roles.ensure_payee(firm, owner=kofi)
    session.commit()
    path = f"/organisations/{firm.slug}/payouts"
    owner = as_user(app, kofi)
    page = owner.get(path).get_data(as_text=True)
    assert f"by its account id: {payee.id}" in page and "is not certified for every member project" in page
    assert owner.post(path + "/certify", data={"csrf_token": csrf(owner, path)}).status_code == 403
    admin = as_user(app, world.admin)
    assert admin.post(path + "/certify", data={"csrf_token": csrf(admin, path)}).status_code == 303
    assert certification.is_certified(payee.id, world.project.id)
    assert "The firm is certified for every member project." in owner.get(path).get_data(as_text=True)

    fake = FakeStripe()
    app.config.update(STRIPE_API_KEY="sk_test_local", STRIPE_API_BASE=fake.url)
    try:
        first = owner.post(path + "/stripe", data={"csrf_token": csrf(owner, path)})
        again = owner.post(path + "/stripe", data={"csrf_token": csrf(owner, path)})
    finally:
        app.config.update(STRIPE_API_KEY=None, STRIPE_API_BASE=None)
        fake.stop()
    assert first.status_code == again.status_code == 303 and first.headers["Location"].startswith(fake.url)
    account = session.get(PayoutAccount, payee.id)
    session.refresh(account)
    assert account.rail is PayoutRail.stripe and account.stripe_account_id in fake.accounts
    assert len(fake.accounts) == 1  # one company account, however often the owner clicks
    assert fake.accounts[account.stripe_account_id]["country"] == "GH"
    # The company's account, not a person's: Stripe's onboarding asks for the firm's registration.
    assert fake.accounts[account.stripe_account_id]["business_type"] == "company"
    assert fake.accounts[account.stripe_account_id]["company"] == {"name": "Tema Software"}
