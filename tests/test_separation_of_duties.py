"""Separation of duties (issue 23): nobody decides about themselves. Every
place where an actor decides about a person, a claim or money is tried with
the actor as its subject, and refused without a change; the same decision by
someone else goes through. (Payout approval already refused a maintainer who
is a recipient: tests/payouts.)"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from marketplace.claims import certification
from marketplace.claims import service as claims
from marketplace.claims.models import Certification, Claim, ClaimState
from marketplace.money import Money
from marketplace.payouts import service as payouts
from marketplace.payouts.models import PayoutAccount, PayoutRail, ShareState
from marketplace.pledges import service as pledges
from marketplace.pledges.models import PledgeState, Rail
from marketplace.pools import service as pools
from marketplace.projects import service as projects
from marketplace.projects.models import MaintainerRequest, ProjectMaintainer
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user
from tests.payouts.helpers import AFTER_WINDOW, World


@pytest.fixture
def world(session, client):
    return World(session, client)


def _maintainer_implementor(world: World, email: str, github_id: int):
    """A maintainer of the world's project who also does paid work (certified globally)."""
    person = world.implementor(email, github_id=github_id)
    world.session.add(ProjectMaintainer(project_id=world.project.id, user_id=person.id, granted_by="test"))
    world.session.flush()
    return person


def _prefixed_csrf(client, path: str, prefix: str) -> str:
    html = client.get(path).get_data(as_text=True)
    return re.search(rf'name="{prefix}-csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def _request(world: World, item, person) -> Claim:
    return claims.request_claim(item, person, plan="Fix it.", estimate_days=3,
                                deadline=utcnow().date() + timedelta(days=10))


def test_a_maintainer_cannot_approve_their_own_claim_but_another_maintainer_can(world):
    kofi = _maintainer_implementor(world, "kofi-sod@example.org", 9101)
    claim = _request(world, world.issue(9101), kofi)
    with pytest.raises(claims.ClaimError, match="your own claim"):
        claims.approve(claim, maintainer=kofi)
    assert world.session.get(Claim, claim.id).state is ClaimState.requested
    claims.approve(claim, maintainer=world.maintainer)
    assert world.session.get(Claim, claim.id).state is ClaimState.approved


def test_approving_ones_own_claim_from_the_page_is_refused_with_a_message(world, app):
    kofi = _maintainer_implementor(world, "kofi-page@example.org", 9102)
    claim = _request(world, world.issue(9102), kofi)
    world.session.commit()  # a savepoint: the view's rollback on refusal keeps the claim
    client = as_user(app, kofi)
    page = f"/claims/{claim.id}"
    response = client.post(f"/claims/{claim.id}/approve", data={"approve-csrf_token": _prefixed_csrf(client, page, "approve")},
                           follow_redirects=True)
    assert "another maintainer or an admin decides on it" in response.get_data(as_text=True)
    assert world.session.get(Claim, claim.id).state is ClaimState.requested


def test_a_maintainer_cannot_reject_their_own_claim_and_withdraws_it_instead(world):
    kofi = _maintainer_implementor(world, "kofi-rej@example.org", 9103)
    claim = _request(world, world.issue(9103), kofi)
    with pytest.raises(claims.ClaimError, match="withdraw it instead"):
        claims.reject(claim, maintainer=kofi)
    claims.withdraw(claim, user=kofi)
    assert world.session.get(Claim, claim.id).state is ClaimState.withdrawn


def test_a_maintainer_cannot_move_an_approved_claim_to_themselves(world):
    kofi = _maintainer_implementor(world, "kofi-move@example.org", 9104)
    ama = world.implementor("ama-move@example.org", github_id=9105)
    item = world.issue(9104)
    claim = world.claim(item, ama)
    with pytest.raises(claims.ClaimError, match="to or from yourself"):
        claims.reassign(claim, kofi, maintainer=kofi)
    assert world.session.get(Claim, claim.id).state is ClaimState.approved
    assert world.session.scalar(select(Claim).where(Claim.claimant_id == kofi.id)) is None


def test_nobody_certifies_themselves_neither_maintainer_nor_admin(world):
    kofi = world.user("kofi-cert@example.org", implementor=True)
    world.session.add(ProjectMaintainer(project_id=world.project.id, user_id=kofi.id, granted_by="test"))
    admin = world.user("admin-cert@example.org", admin=True, implementor=True)
    with pytest.raises(certification.CertificationError, match="cannot certify yourself"):
        certification.grant(kofi, issuer=kofi, project_id=world.project.id)
    with pytest.raises(certification.CertificationError, match="cannot certify yourself"):
        certification.grant_by_email("admin-cert@example.org", issuer=admin, project_id=None,
                                     valid_until=utcnow().date() + timedelta(days=30))
    assert world.session.scalars(select(Certification).where(
        Certification.user_id.in_([kofi.id, admin.id]))).all() == []
    certification.grant(kofi, issuer=world.maintainer, project_id=world.project.id)
    assert certification.is_certified(kofi.id, world.project.id)


def test_certifying_oneself_from_the_projects_page_is_refused_with_a_message(world, app):
    kofi = _maintainer_implementor(world, "kofi-certpage@example.org", 9106)
    world.session.execute(Certification.__table__.delete().where(Certification.user_id == kofi.id))
    world.session.commit()  # a savepoint: the view's rollback on refusal keeps the setup
    client = as_user(app, kofi)
    slug = world.project.slug
    page = f"/projects/{slug}/payouts"
    response = client.post(f"/projects/{slug}/certifications", follow_redirects=True, data={
        "cert-csrf_token": _prefixed_csrf(client, page, "cert"), "cert-email": "kofi-certpage@example.org",
        "cert-expires_on": (utcnow().date() + timedelta(days=30)).isoformat()})
    assert "You cannot certify yourself" in response.get_data(as_text=True)
    assert not certification.is_certified(kofi.id, world.project.id)


def test_an_admin_cannot_confirm_their_own_maintainership_request(world):
    admin = world.admin
    request_row = MaintainerRequest(project_id=world.project.id, repository_id=world.repo.id, user_id=admin.id,
                                    evidence="admin on GitHub", status="requested")
    world.session.add(request_row)
    world.session.flush()
    with pytest.raises(projects.ProjectError, match="your own request"):
        projects.decide(request_row, confirm=True, admin=admin)
    assert request_row.status == "requested"
    other = world.user("admin-two@example.org", admin=True)
    projects.decide(request_row, confirm=True, admin=other)
    assert projects.is_maintainer(admin, world.project)


def test_an_admin_cannot_confirm_the_transfer_of_their_own_pledge(world):
    admin = world.admin
    item = world.issue(9107)
    pledge = pledges.create(item, admin.id, Money(5000, "USD"), rail=Rail.bank_transfer, actor=f"user:{admin.id}")
    with pytest.raises(pledges.PledgeError, match="your own"):
        pledges.confirm_transfer(pledge.id, Money(5000, "USD"), reference="REF", received_on=utcnow().date(),
                                 actor=f"user:{admin.id}")
    assert pledge.state is PledgeState.pending
    other = world.user("admin-pledge@example.org", admin=True)
    assert pledges.confirm_transfer(pledge.id, Money(5000, "USD"), reference="REF", received_on=utcnow().date(),
                                    actor=f"user:{other.id}")


def test_an_admin_cannot_confirm_the_budget_of_their_own_pool_nor_record_its_return(world):
    admin = world.admin
    now = utcnow()
    pool = pools.create_pool(admin, name="Own pool", currency="USD", budget_minor=10000,
                             starts_at=now - timedelta(hours=1), ends_at=now + timedelta(days=30))
    with pytest.raises(pools.PoolError, match="your own pool"):
        pools.confirm_budget(pool.id, Money(10000, "USD"), reference="R", received_on=now.date(), actor=admin)
    with pytest.raises(pools.PoolError, match="your own pool"):
        pools.record_return(pool.id, reference="BACK", actor=admin)
    other = world.user("admin-pool@example.org", admin=True)
    assert pools.confirm_budget(pool.id, Money(10000, "USD"), reference="R", received_on=now.date(), actor=other)


def test_an_admin_cannot_record_the_manual_payout_of_their_own_share(world):
    admin = world.user("admin-impl@example.org", admin=True, implementor=True, github_id=9108)
    certification.grant(admin, issuer=world.admin, project_id=None)
    world.session.add(PayoutAccount(user_id=admin.id, rail=PayoutRail.manual, manual_details="M-PESA 0700"))
    item = world.issue(9108)
    world.fund(item, 500)
    world.claim(item, admin)
    world.pull(19108, "Fixes #9108", author_id=9108, merged=True)
    [payout] = world.payouts_of(item)
    world.approve(payout, [(admin.id, 1)])
    assert payouts.execute(payout.id, utcnow() + AFTER_WINDOW)
    [share] = payout.shares
    with pytest.raises(payouts.PayoutError, match="This share is yours"):
        payouts.record_manual_payout(share.id, reference="MPESA-1", paid_on=utcnow().date(), admin=admin)
    assert share.state is ShareState.awaiting_manual_payout
    payouts.record_manual_payout(share.id, reference="MPESA-1", paid_on=utcnow().date(), admin=world.admin)
    assert share.state is ShareState.paid
