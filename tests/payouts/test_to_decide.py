"""Issue 20: a maintainer is told by e-mail when named, and finds what waits for
them on "To decide", counted in the navigation."""
from __future__ import annotations

from marketplace.claims import service as claims
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user, csrf
from tests.accounts.test_accounts import wait_for


def test_a_person_named_maintainer_by_an_admin_gets_an_email_with_the_project_link(app, world, session, smtp_server):
    keeper = world.user("newkeeper@example.org")
    session.commit()
    admin = as_user(app, world.admin)
    slug = world.project.slug
    response = admin.post(f"/admin/projects/{slug}/maintainers",
                          data={"csrf_token": csrf(admin, "/admin/projects"), "email": "newkeeper@example.org"})
    assert response.status_code == 303
    [message] = wait_for(smtp_server, 1)
    assert message["To"] == "newkeeper@example.org"
    assert message["Subject"] == f"You now maintain {world.project.name} on Backlog Commons"
    body = message.get_content()
    assert f"/projects/{slug}" in body and "/to-decide" in body
    # Named again: nothing changes, no second e-mail.
    admin.post(f"/admin/projects/{slug}/maintainers",
               data={"csrf_token": csrf(admin, "/admin/projects"), "email": "newkeeper@example.org"})
    assert len(smtp_server) == 1
    assert keeper.id


def test_to_decide_lists_waiting_claims_and_payouts_and_the_navigation_counts_them(app, world, session):
    from datetime import timedelta

    claimed, merged = world.issue(601), world.issue(602)
    world.fund(merged, 5000)
    ama = world.implementor("ama@example.org", github_id=8001)
    claims.request_claim(claimed, ama, plan="Plan", estimate_days=2, deadline=utcnow().date() + timedelta(days=9))
    world.pull(1602, "Fixes #602", author_id=8001, merged=True)
    [payout] = world.payouts_of(merged)
    session.commit()
    keeper = as_user(app, world.maintainer)
    page = keeper.get("/to-decide").get_data(as_text=True)
    assert "1 claim waits for approval" in page and f"ama asks to do \"{claimed.title}\"" in page
    assert "1 payout waits for approval" in page and f"/payouts/{payout.id}" in page
    assert 'href="/to-decide">To decide (2)</a>' in page
    funder_page = as_user(app, world.funder).get("/").get_data(as_text=True)
    assert "To decide" not in funder_page
    assert "You maintain no member project" in as_user(app, world.funder).get("/to-decide").get_data(as_text=True)
