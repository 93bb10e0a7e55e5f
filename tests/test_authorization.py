"""The authorisation matrix: every route × role, with the outcome expected.

Roles: visitor (signed out), funder, implementor, maintainer of this project
(ODK), maintainer of another project (OpenCRVS), admin. Outcomes:
- ``ok``: allowed (a page, a redirect elsewhere than sign-in, or a form error);
- ``login``: sent to sign in;
- ``403``: refused; ``404``: not theirs to see; ``401``: webhook without signature.
A test fails when a route exists that the table does not list.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from marketplace.accounts.models import ForgeIdentity, Organisation, OrganisationMember, User
from marketplace.backlog.models import BacklogItem, ItemLink, ItemLinkKind, LinkSource, PullRequest, PullRequestState
from marketplace.projects.models import MaintainerRequest, MemberProject, ProjectMaintainer
from marketplace.timeutil import utcnow
from marketplace.webhooks.models import WebhookDelivery

ROLES = ("visitor", "funder", "implementor", "maintainer", "other_maintainer", "admin")
PUBLIC = dict.fromkeys(ROLES, "ok")
SIGNED_IN = {**PUBLIC, "visitor": "login"}
ADMIN = {"visitor": "login", "funder": "403", "implementor": "403", "maintainer": "403",
         "other_maintainer": "403", "admin": "ok"}
MANAGERS = {**ADMIN, "maintainer": "ok"}  # maintainers of this project and admins
OWNER_OF_IDENTITY = {"visitor": "login", "funder": "404", "implementor": "ok", "maintainer": "404",
                     "other_maintainer": "404", "admin": "404"}
OWNER_OF_ORGANISATION = {"visitor": "login", "funder": "ok", "implementor": "403", "maintainer": "403",
                         "other_maintainer": "403", "admin": "403"}
MEMBER_OF_ORGANISATION = {"visitor": "login", "funder": "ok", "implementor": "404", "maintainer": "404",
                          "other_maintainer": "404", "admin": "404"}
OWNER_OF_PLEDGE = {"visitor": "login", "funder": "ok", "implementor": "404", "maintainer": "404",
                   "other_maintainer": "404", "admin": "ok"}
ORGANISATION_MEMBERS_AND_ADMINS = {"visitor": "login", "funder": "ok", "implementor": "403", "maintainer": "403",
                                   "other_maintainer": "403", "admin": "ok"}
CLAIMANT = {"visitor": "login", "funder": "403", "implementor": "ok", "maintainer": "403",
            "other_maintainer": "403", "admin": "403"}
WEBHOOK = dict.fromkeys(ROLES, "401")
SPONSOR_OF_POOL = {**ADMIN, "funder": "ok"}  # the pool's sponsor (the funder here) and admins
SIGNED_IN_404 = {**dict.fromkeys(ROLES, "404"), "visitor": "login"}
FUND_MAINTAINERS = {**ADMIN, "maintainer": "ok", "admin": "403"}  # a project's maintainers allot its fund
IMPLEMENTORS = {**ADMIN, "implementor": "ok", "admin": "403"}
# Issue 20: the firm pages of a funder organisation, and the remittance advice of a share
# not executed, exist for nobody (tests/roles test who sees a firm's and a share's own).
NOBODYS = {**dict.fromkeys(ROLES, "404"), "visitor": "login"}

# (endpoint, method): (URL template filled from the fixture objects, expectations)
MATRIX = {
    ("backlog.index", "GET"): ("/", PUBLIC),
    ("backlog.item", "GET"): ("/items/{item}", PUBLIC),
    ("pages.about", "GET"): ("/about", PUBLIC),
    ("health.healthz", "GET"): ("/healthz", PUBLIC),
    ("health.readyz", "GET"): ("/readyz", PUBLIC),
    ("pages.transparency", "GET"): ("/transparency", PUBLIC),
    ("api.item_ledger", "GET"): ("/api/v1/items/{item}/ledger", PUBLIC),
    ("api.ledger_summary", "GET"): ("/api/v1/ledger", PUBLIC),
    ("projects.projects", "GET"): ("/projects", PUBLIC),
    ("projects.project", "GET"): ("/projects/odk", PUBLIC),
    ("projects.maintainers", "GET"): ("/projects/odk/maintainers", PUBLIC),
    ("projects.invite_maintainer", "POST"): ("/projects/odk/maintainers/invite", MANAGERS),
    ("projects.request_maintainership", "POST"): ("/projects/odk/maintainers/request", SIGNED_IN),
    ("projects.invitation", "GET"): ("/invitations/{invitation}", SIGNED_IN),
    ("projects.invitation", "POST"): ("/invitations/{invitation}", SIGNED_IN),
    ("projects.sdgs", "GET"): ("/sdgs", PUBLIC),
    ("projects.sdg", "GET"): ("/sdgs/3", PUBLIC),
    ("api.items", "GET"): ("/api/v1/items", PUBLIC),
    ("api.item", "GET"): ("/api/v1/items/{item}", PUBLIC),
    ("api.projects", "GET"): ("/api/v1/projects", PUBLIC),
    ("api.project", "GET"): ("/api/v1/projects/odk", PUBLIC),
    ("api.openapi", "GET"): ("/api/v1/openapi.json", PUBLIC),
    ("accounts.signup", "GET"): ("/signup", PUBLIC),
    ("accounts.signup", "POST"): ("/signup", PUBLIC),
    ("accounts.login", "GET"): ("/login", PUBLIC),
    ("accounts.login", "POST"): ("/login", PUBLIC),
    ("accounts.logout", "POST"): ("/logout", SIGNED_IN),
    ("accounts.set_language", "POST"): ("/language", PUBLIC),
    ("projects.to_decide", "GET"): ("/to-decide", SIGNED_IN),
    ("pledges.mine", "GET"): ("/account/pledges", SIGNED_IN),
    ("accounts.verify", "GET"): ("/verify/not-a-token", PUBLIC),
    ("accounts.reset_request", "GET"): ("/reset", PUBLIC),
    ("accounts.reset_request", "POST"): ("/reset", PUBLIC),
    ("accounts.reset_password", "GET"): ("/reset/not-a-token", PUBLIC),
    ("accounts.reset_password", "POST"): ("/reset/not-a-token", PUBLIC),
    ("accounts.settings", "GET"): ("/account", SIGNED_IN),
    ("accounts.settings", "POST"): ("/account", SIGNED_IN),
    ("accounts.profile", "GET"): ("/account/profile", SIGNED_IN),
    ("accounts.profile", "POST"): ("/account/profile", SIGNED_IN),
    ("accounts.remove_identity", "POST"): ("/account/identities/{identity}/remove", OWNER_OF_IDENTITY),
    ("accounts.person", "GET"): ("/people/{implementor}", PUBLIC),
    ("accounts.connect", "POST"): ("/connect/github", SIGNED_IN),
    ("accounts.connect_callback", "GET"): ("/connect/github/callback", SIGNED_IN),
    ("accounts.new_organisation", "GET"): ("/organisations/new", SIGNED_IN),
    ("accounts.new_organisation", "POST"): ("/organisations/new", SIGNED_IN),
    ("accounts.organisation", "GET"): ("/organisations/{organisation}", PUBLIC),
    ("accounts.organisation", "POST"): ("/organisations/{organisation}", OWNER_OF_ORGANISATION),
    ("accounts.accept_membership", "POST"): ("/organisations/{organisation}/accept", MEMBER_OF_ORGANISATION),
    ("admin.index", "GET"): ("/admin/", ADMIN),
    ("admin.deliveries", "GET"): ("/admin/deliveries", ADMIN),
    ("admin.replay", "POST"): ("/admin/deliveries/{delivery}/replay", ADMIN),
    ("admin.sync", "GET"): ("/admin/sync", ADMIN),
    ("admin.sync_now", "POST"): ("/admin/sync/{repository}", ADMIN),
    ("admin.projects", "GET"): ("/admin/projects", ADMIN),
    ("admin.admit_project", "POST"): ("/admin/projects/odk/admit", ADMIN),
    ("admin.name_maintainer", "POST"): ("/admin/projects/odk/maintainers", ADMIN),
    ("admin.maintainer_requests", "GET"): ("/admin/maintainer-requests", ADMIN),
    ("admin.decide_maintainer_request", "POST"): ("/admin/maintainer-requests/{claim}/reject", ADMIN),
    ("admin.users", "GET"): ("/admin/users", ADMIN),
    ("admin.set_admin_role", "POST"): ("/admin/users/{funder}/admin", ADMIN),
    ("admin.organisations", "GET"): ("/admin/organisations", ADMIN),
    ("admin.audit_log", "GET"): ("/admin/audit", ADMIN),
    ("projects.link_pull_request", "POST"): ("/items/{item}/links", MANAGERS),
    ("projects.unlink", "POST"): ("/links/{link}/remove", MANAGERS),
    ("projects.decide_close", "POST"): ("/items/{item}/close-decision", MANAGERS),
    ("projects.set_work_target", "POST"): ("/items/{item}/work-target", MANAGERS),
    ("webhooks.github", "POST"): ("/webhooks/github", WEBHOOK),
    ("webhooks.gitlab", "POST"): ("/webhooks/gitlab", WEBHOOK),
    ("webhooks.stripe_webhook", "POST"): ("/webhooks/stripe", WEBHOOK),
    ("pledges.create", "POST"): ("/items/{item}/pledge", SIGNED_IN),
    ("pledges.show", "GET"): ("/pledges/{pledge}", OWNER_OF_PLEDGE),
    ("pledges.thanks", "GET"): ("/pledges/{pledge}/thanks", OWNER_OF_PLEDGE),
    ("pledges.self_refund", "POST"): ("/pledges/{pledge}/refund", OWNER_OF_PLEDGE),
    ("pledges.cancel", "POST"): ("/pledges/{pledge}/cancel", OWNER_OF_PLEDGE),
    ("pledges.pay_again", "POST"): ("/pledges/{pledge}/pay", OWNER_OF_PLEDGE),
    ("pledges.move", "POST"): ("/pledges/{pledge}/move", OWNER_OF_PLEDGE),
    ("admin.pledges_list", "GET"): ("/admin/pledges", ADMIN),
    ("admin.confirm_pledge", "POST"): ("/admin/pledges/{pledge}/confirm", ADMIN),
    ("admin.refund_pledge", "POST"): ("/admin/pledges/{pledge}/refund", ADMIN),
    ("admin.refund_after_payout", "POST"): ("/admin/pledges/{pledge}/refund-after-payout", ADMIN),
    ("admin.certifications", "GET"): ("/admin/certifications", ADMIN),
    ("admin.certifications", "POST"): ("/admin/certifications", ADMIN),
    ("admin.revoke_certification", "POST"): ("/admin/certifications/{certification}/revoke", ADMIN),
    ("admin.payouts", "GET"): ("/admin/payouts", ADMIN),
    ("admin.record_manual_payout", "POST"): ("/admin/payouts/shares/{share}/paid", ADMIN),
    ("admin.return_manual_payout", "POST"): ("/admin/payouts/{payout}/returned", ADMIN),
    ("claims.request_claim", "POST"): ("/items/{item}/claims", SIGNED_IN),
    ("claims.set_open_to_team", "POST"): ("/items/{item}/claims/team", MANAGERS),
    ("claims.show", "GET"): ("/claims/{item_claim}", PUBLIC),
    ("claims.approve", "POST"): ("/claims/{item_claim}/approve", MANAGERS),
    ("claims.reject", "POST"): ("/claims/{item_claim}/reject", MANAGERS),
    ("claims.reassign", "POST"): ("/claims/{item_claim}/reassign", MANAGERS),
    ("claims.withdraw", "POST"): ("/claims/{item_claim}/withdraw", CLAIMANT),
    ("claims.project_claims", "GET"): ("/projects/odk/claims", MANAGERS),
    ("claims.mine", "GET"): ("/account/claims", SIGNED_IN),
    ("claims.grant_project_certification", "POST"): ("/projects/odk/certifications", MANAGERS),
    ("claims.revoke_project_certification", "POST"): (
        "/projects/odk/certifications/{certification}/revoke", MANAGERS),
    ("payouts.show", "GET"): ("/payouts/{payout}", PUBLIC),
    ("payouts.approve", "POST"): ("/payouts/{payout}/approve", MANAGERS),
    ("payouts.cancel", "POST"): ("/payouts/{payout}/cancel", MANAGERS),
    ("payouts.project_payouts", "GET"): ("/projects/odk/payouts", MANAGERS),
    ("payouts.settings", "GET"): ("/account/payouts", SIGNED_IN),
    ("payouts.settings", "POST"): ("/account/payouts", SIGNED_IN),
    ("pools.index", "GET"): ("/pools", PUBLIC),
    ("pools.show", "GET"): ("/pools/{pool}", PUBLIC),
    ("pools.new", "GET"): ("/pools/new", SIGNED_IN),
    ("pools.new", "POST"): ("/pools/new", SIGNED_IN),
    ("pools.confirm", "POST"): ("/pools/{pool}/confirm", ADMIN),
    ("pools.record_return", "POST"): ("/pools/{pool}/return", ADMIN),
    ("pools.exclude", "POST"): ("/pools/{pool}/exclude", ADMIN),
    ("pools.checkout", "POST"): ("/pools/{pool}/checkout", SPONSOR_OF_POOL),
    ("pools.paid", "GET"): ("/pools/{pool}/paid", SPONSOR_OF_POOL),
    ("pools.cancel", "POST"): ("/pools/{pool}/cancel", SPONSOR_OF_POOL),
    ("pools.refund", "POST"): ("/pools/{pool}/refund", ADMIN),
    ("api.pools", "GET"): ("/api/v1/pools", PUBLIC),
    ("api.pool", "GET"): ("/api/v1/pools/{pool}", PUBLIC),
    ("reports.my_statement", "GET"): ("/statements/me", SIGNED_IN),
    ("reports.organisation_statement", "GET"): ("/organisations/{organisation}/statement",
                                                ORGANISATION_MEMBERS_AND_ADMINS),
    ("reports.grants", "GET"): ("/organisations/{organisation}/grants", ORGANISATION_MEMBERS_AND_ADMINS),
    ("reports.grants", "POST"): ("/organisations/{organisation}/grants", ORGANISATION_MEMBERS_AND_ADMINS),
    ("reports.grant", "GET"): ("/grants/{grant}", ORGANISATION_MEMBERS_AND_ADMINS),
    ("reports.grant", "POST"): ("/grants/{grant}", ORGANISATION_MEMBERS_AND_ADMINS),
    ("reports.audit_pack", "GET"): ("/grants/{grant}/audit-pack", ORGANISATION_MEMBERS_AND_ADMINS),
    ("reports.audit_statement_csv", "GET"): ("/grants/{grant}/audit-pack/statement.csv",
                                             ORGANISATION_MEMBERS_AND_ADMINS),
    ("reports.audit_entries_csv", "GET"): ("/grants/{grant}/audit-pack/entries.csv",
                                           ORGANISATION_MEMBERS_AND_ADMINS),
    ("reports.commons_report", "GET"): ("/reports", PUBLIC),
    ("reports.project_report", "GET"): ("/projects/odk/report", PUBLIC),
    ("reports.exports", "GET"): ("/exports", PUBLIC),
    ("reports.export_archive", "GET"): ("/exports/backlog-commons-1999-01-01.zip", dict.fromkeys(ROLES, "404")),
    ("api_reports.commons", "GET"): ("/api/v1/reports/commons", PUBLIC),
    ("api_reports.project", "GET"): ("/api/v1/reports/projects/odk", PUBLIC),
    # Issue 19 (training). The matrix's claim is an ordinary one: its mentor routes answer 404.
    ("training.mark_item", "POST"): ("/items/{item}/training", MANAGERS),
    ("training.project", "GET"): ("/projects/odk/training", PUBLIC),
    ("training.set_rule", "POST"): ("/projects/odk/training/rule", MANAGERS),
    ("training.name_mentor", "POST"): ("/projects/odk/training/mentors", MANAGERS),
    ("training.remove_mentor", "POST"): ("/projects/odk/training/mentors/{implementor}/remove", MANAGERS),
    ("training.revoke", "POST"): ("/projects/odk/training/certifications/{certification}/revoke",
                                  {**MANAGERS, "maintainer": "404", "admin": "404"}),
    ("training.approve_claim", "POST"): ("/claims/{item_claim}/mentor/approve", {**SIGNED_IN_404}),
    ("training.review", "POST"): ("/claims/{item_claim}/mentor/review", {**SIGNED_IN_404}),
    ("training.take_over", "POST"): ("/claims/{item_claim}/mentor/take-over", {**SIGNED_IN_404}),
    ("training.progress", "GET"): ("/account/training", SIGNED_IN),
    # Issue 22: badges are public; the forge comment and label are the project's managers'.
    ("presence.item_badge", "GET"): ("/items/{item}/badge.svg", PUBLIC),
    ("presence.project_badge", "GET"): ("/projects/odk/badge.svg", PUBLIC),
    ("presence.settings", "GET"): ("/projects/odk/forge", MANAGERS),
    ("presence.change", "POST"): ("/projects/odk/forge/{repository}", MANAGERS),
    ("presence.restore", "POST"): ("/projects/odk/forge/items/{item}/restore", MANAGERS),
    # Project funds (issue 18): the funder subscribes to ODK's fund by bank transfer.
    ("funds.show", "GET"): ("/projects/odk/fund", PUBLIC),
    ("funds.subscribe", "POST"): ("/projects/odk/fund/subscribe", SIGNED_IN),
    ("funds.subscription", "GET"): ("/funds/subscriptions/{fund_subscription}", OWNER_OF_PLEDGE),
    ("funds.thanks", "GET"): ("/funds/subscriptions/{fund_subscription}/thanks", OWNER_OF_PLEDGE),
    ("funds.checkout", "POST"): ("/funds/subscriptions/{fund_subscription}/checkout", OWNER_OF_PLEDGE),
    ("funds.pause", "POST"): ("/funds/subscriptions/{fund_subscription}/pause", OWNER_OF_PLEDGE),
    ("funds.resume", "POST"): ("/funds/subscriptions/{fund_subscription}/resume", OWNER_OF_PLEDGE),
    ("funds.cancel", "POST"): ("/funds/subscriptions/{fund_subscription}/cancel", OWNER_OF_PLEDGE),
    ("funds.allot", "POST"): ("/projects/odk/fund/USD/allot", FUND_MAINTAINERS),
    ("funds.allotment", "GET"): ("/funds/allotments/{allotment}", PUBLIC),
    ("funds.statement", "GET"): ("/statements/me/funds", SIGNED_IN),
    ("funds.organisation_statement", "GET"): ("/organisations/{organisation}/fund-statement",
                                              ORGANISATION_MEMBERS_AND_ADMINS),
    ("funds.host", "GET"): ("/funds/host", ADMIN),
    ("funds.record_transfer", "POST"): ("/funds/subscriptions/{fund_subscription}/transfer", ADMIN),
    ("funds.record_return", "POST"): ("/funds/returns/{fund_return}", ADMIN),
    ("funds.close", "POST"): ("/projects/odk/fund/USD/close", ADMIN),
    ("api.project_fund", "GET"): ("/api/v1/projects/odk/fund", PUBLIC),
    ("roles.follow", "POST"): ("/items/{item}/follow", SIGNED_IN),
    ("roles.unfollow_signed_in", "POST"): ("/items/{item}/unfollow", SIGNED_IN),
    ("roles.unfollow", "GET"): ("/unfollow/not-a-signed-token", dict.fromkeys(ROLES, "404")),
    ("roles.unfollow", "POST"): ("/unfollow/not-a-signed-token", dict.fromkeys(ROLES, "404")),
    ("roles.items_for_me", "GET"): ("/account/items-for-me", IMPLEMENTORS),
    ("roles.firm_payouts", "GET"): ("/organisations/{organisation}/payouts", NOBODYS),
    ("roles.firm_payouts", "POST"): ("/organisations/{organisation}/payouts", NOBODYS),
    ("roles.firm_stripe", "POST"): ("/organisations/{organisation}/payouts/stripe", NOBODYS),
    ("roles.firm_certify", "POST"): ("/organisations/{organisation}/payouts/certify", NOBODYS),
    ("roles.firm_earnings_csv", "GET"): ("/organisations/{organisation}/earnings.csv", NOBODYS),
    ("roles.remittance", "GET"): ("/remittance/{share}", NOBODYS),
    ("roles.remittance_csv", "GET"): ("/remittance/{share}.csv", NOBODYS),
    ("admin.fiscal_host_settings", "GET"): ("/admin/fiscal-host", ADMIN),
    ("admin.fiscal_host_settings", "POST"): ("/admin/fiscal-host", ADMIN),
}


def test_every_route_is_in_the_matrix(app):
    routes = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes - set(MATRIX) == set(), "routes missing from the authorisation matrix"
    assert set(MATRIX) - routes == set(), "the matrix lists routes that do not exist"


@pytest.fixture
def world(app, session):
    """One person per role, and one object of each kind the routes act on."""
    from marketplace.projects.service import invite

    people = {}
    for role in ROLES[1:]:
        person = User(display_name=role, email_verified_at=utcnow(),
                      is_funder=role == "funder", is_implementor=role == "implementor", is_admin=role == "admin")
        person.set_email(f"{role}@example.org")
        session.add(person)
        people[role] = person
    session.flush()
    odk = session.scalar(select(MemberProject).where(MemberProject.slug == "odk"))
    opencrvs = session.scalar(select(MemberProject).where(MemberProject.slug == "opencrvs"))
    session.add_all([
        ProjectMaintainer(project=odk, user=people["maintainer"], granted_by="test"),
        ProjectMaintainer(project=opencrvs, user=people["other_maintainer"], granted_by="test"),
    ])
    item = session.scalar(select(BacklogItem).where(BacklogItem.number == 1887))  # getodk/central
    pull = PullRequest(repository=item.repository, forge_host="github.com", number=99001, title="t",
                       state=PullRequestState.open, html_url="https://github.com/getodk/central/pull/99001",
                       forge_created_at=utcnow(), forge_updated_at=utcnow())
    pull.links.append(ItemLink(target_host="github.com", target_path="getodk/central", target_number=1887,
                               kind=ItemLinkKind.mention, source=LinkSource.keyword, item=item))
    identity = ForgeIdentity(user=people["implementor"], forge="github", host="github.com", forge_user_id=4242,
                             login="implementor")
    organisation = Organisation(slug="funders-united", name="Funders United", kind="funder",
                                owner_id=people["funder"].id)
    organisation.members.append(OrganisationMember(user_id=people["funder"].id, role="owner", accepted_at=utcnow()))
    delivery = WebhookDelivery(source="github", delivery_id="matrix-1", event="ping", body="{}")
    claim = MaintainerRequest(project=odk, user=people["implementor"], repository=item.repository,
                                evidence="test")
    from marketplace.money import Money
    from marketplace.pledges.models import Rail
    from marketplace.pledges.service import create as create_pledge

    session.add_all([pull, identity, organisation, delivery, claim])
    session.flush()
    pledge = create_pledge(item, people["funder"].id, Money(500, "USD"), rail=Rail.bank_transfer, actor="test")
    token = "matrix-invitation-token"
    invitation = invite(odk, "implementor@example.org", inviter=people["maintainer"])
    import hashlib

    invitation.token_hash = hashlib.sha256(token.encode()).hexdigest()
    from datetime import timedelta

    from marketplace.claims.models import Certification, Claim
    from marketplace.payouts.models import Payout, PayoutShare, PayoutState

    item_claim = Claim(item_id=item.id, claimant_id=people["implementor"].id, plan="A plan.", estimate_days=5,
                       deadline=utcnow().date() + timedelta(days=10))
    certification = Certification(user_id=people["implementor"].id, project_id=odk.id,
                                  issued_by_id=people["maintainer"].id, expires_at=utcnow() + timedelta(days=30))
    payout = Payout(item_id=item.id, currency="USD", state=PayoutState.proposed, open_key=f"{item.id}:USD",
                    reason="merged", suggested_recipient_id=people["implementor"].id,
                    shares=[PayoutShare(recipient_id=people["implementor"].id, weight=1)])
    session.add_all([item_claim, certification, payout])
    session.flush()
    from marketplace.pools import service as pools

    pool = pools.create_pool(people["funder"], name="Matrix pool", currency="USD", budget_minor=10000,
                             starts_at=utcnow() - timedelta(hours=1), ends_at=utcnow() + timedelta(days=30))
    pools.confirm_budget(pool.id, Money(10000, "USD"), reference="MATRIX", received_on=utcnow().date(),
                         actor=people["admin"])
    from datetime import date

    from marketplace.reports.models import Grant

    grant = Grant(organisation_id=organisation.id, name="Matrix grant", reference="M-1", starts_on=date(2026, 1, 1),
                  ends_on=date(2026, 12, 31), currency="USD", created_by_id=people["funder"].id)
    session.add(grant)
    session.flush()
    from marketplace.funds import service as funds
    from marketplace.funds.models import FundReturn, SubscriptionRail

    fund = funds.fund_of(odk, "USD")
    fund_subscription = funds.subscribe(fund, people["funder"], 1000, rail=SubscriptionRail.bank_transfer,
                                        show_name=True)
    funds.record_transfer(fund_subscription.id, Money(1000, "USD"), reference="MATRIX-F",
                          received_on=utcnow().date(), actor=people["admin"])
    allotment = funds.allot(fund.id, item, 400, reason="Matrix", maintainer=people["maintainer"])
    fund_return = FundReturn(fund_id=fund.id, subscription_id=fund_subscription.id, number=1,
                             rail=SubscriptionRail.bank_transfer, currency="USD", amount_minor=100)
    session.add(fund_return)
    session.flush()
    # Committed (a savepoint of the test transaction): a view that rolls back
    # its own work must not take the fixture's rows with it.
    session.commit()
    app.config.update(GITHUB_OAUTH_CLIENT_ID="matrix-client", GITHUB_OAUTH_CLIENT_SECRET="secret")
    yield {
        "people": people,
        "ids": {"item": item.id, "identity": identity.id, "implementor": people["implementor"].id,
                "funder": people["funder"].id, "organisation": organisation.slug, "delivery": delivery.id,
                "repository": item.repository_id, "claim": claim.id, "link": pull.links[0].id,
                "invitation": token, "pledge": pledge.id, "item_claim": item_claim.id,
                "certification": certification.id, "payout": payout.id, "share": payout.shares[0].id,
                "pool": pool.id, "grant": grant.id, "fund_subscription": fund_subscription.id,
                "allotment": allotment.id, "fund_return": fund_return.id},
    }
    app.config.update(GITHUB_OAUTH_CLIENT_ID=None, GITHUB_OAUTH_CLIENT_SECRET=None)


def outcome(response) -> str:
    if response.status_code in (401, 403, 404):
        return str(response.status_code)
    if response.status_code in (301, 302, 303) and response.headers["Location"].startswith("/login"):
        return "login"
    if response.status_code >= 500:
        return str(response.status_code)
    return "ok"


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[1]} {r[0]}")
def test_route_outcome_for_every_role(app, world, route):
    import re

    template, expected = MATRIX[route]
    url = template.format(**world["ids"])
    got = {}
    for role in ROLES:
        client = app.test_client()
        if role != "visitor":
            with client.session_transaction() as flask_session:
                flask_session["_user_id"] = world["people"][role].get_id()
                flask_session["_fresh"] = True
        if route[1] == "GET":
            response = client.get(url)
        else:
            page = client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
            response = client.post(url, data={"csrf_token": token})
        got[role] = outcome(response)
    assert got == expected
