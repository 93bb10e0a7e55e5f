"""Issue 20: following an item and unfollowing from the e-mail; "Items for me";
what makes the merge count on the claim page; To decide's new lists; the fiscal
host's admin page."""
from __future__ import annotations

import re
import time
from datetime import timedelta

from sqlalchemy import select

from marketplace.accounts.models import ImplementorProfile
from marketplace.audit.models import AuditEvent
from marketplace.backlog.models import ItemLabel
from marketplace.claims import certification
from marketplace.claims import service as claims
from marketplace.fiscal_host import bank_instructions, contact, forget
from marketplace.payouts import service as payouts
from marketplace.roles import service as roles
from marketplace.roles.models import ItemFollow
from marketplace.timeutil import utcnow
from tests.accounts.helpers import as_user, csrf
from tests.payouts.helpers import AFTER_WINDOW
from tests.roles.helpers import last_id, mails


def test_follow_without_pledging_then_solved_and_paid_notices_and_one_click_unfollow(app, world, session,
                                                                                    smtp_server):
    item = world.issue(821)
    watcher = world.user("watcher@example.org")
    session.commit()
    browser = as_user(app, watcher)
    page = browser.get(f"/items/{item.id}").get_data(as_text=True)
    assert "Follow this item" in page
    assert browser.post(f"/items/{item.id}/follow").status_code == 400  # no CSRF token: nothing
    done = browser.post(f"/items/{item.id}/follow", data={"csrf_token": csrf(browser, f"/items/{item.id}")})
    assert done.status_code == 303 and roles.is_following(item.id, watcher.id)
    assert "You follow this item." in browser.get(f"/items/{item.id}").get_data(as_text=True)

    ama = world.implementor("ama@example.org", github_id=9501)
    world.claim(item, ama)
    world.fund(item, 3000)
    before = last_id(session)
    world.pull(1821, "Fixes #821", author_id=9501, merged=True)
    [solved] = mails(session, before, "watcher@example.org")
    assert solved.subject == '"Issue 821" is solved'

    [payout] = world.payouts_of(item)
    world.approve(payout, [(ama.id, 1)])
    payouts.execute(payout.id, payout.execute_after + AFTER_WINDOW)
    assert roles.tell_solved(item) == 0 and roles.tell_paid(payout) == 0  # once per event
    [solved_again, paid] = mails(session, before, "watcher@example.org")
    assert solved_again.id == solved.id
    assert paid.subject == '"Issue 821" was paid'
    session.commit()  # the outbox sends both now
    received = {}
    for _ in range(100):
        received = {m["Subject"]: m.get_content() for m in list(smtp_server) if m["To"] == "watcher@example.org"}
        if len(received) == 2:
            break
        time.sleep(0.05)
    assert "PR #1821 solved" in received['"Issue 821" is solved']
    assert "($30.00) paid for PR #1821 by ama" in received['"Issue 821" was paid']
    link = re.search(r"(https?://\S+/unfollow/\S+)", received['"Issue 821" was paid']).group(1)
    path = link[link.index("/unfollow/"):]

    stranger = app.test_client()  # not signed in: the link is the authority
    confirm = stranger.get(path)
    assert confirm.status_code == 200 and 'Stop the e-mails about "Issue 821"?' in confirm.get_data(as_text=True)
    assert roles.is_following(item.id, watcher.id)  # GET changes nothing (link scanners)
    assert stranger.post(path).status_code == 200  # one click, no CSRF token (RFC 8058)
    assert session.scalar(select(ItemFollow).where(ItemFollow.user_id == watcher.id)) is None
    assert stranger.get(path[:-3] + "xyz").status_code == 404  # a forged token


def test_items_for_me_filters_by_skills_and_certified_projects_and_is_linked_for_implementors_only(
        app, world, session):
    python_item, other_item, unfunded = world.issue(831), world.issue(832), world.issue(833)
    session.add(ItemLabel(item_id=python_item.id, name="python"))
    world.fund(python_item, 4000)
    world.fund(other_item, 9000)
    ama = world.implementor("ama@example.org", github_id=9601, certified=False)
    session.add(ImplementorProfile(user_id=ama.id, skills=["Python"], languages=[]))
    session.flush()
    found = roles.items_for(ama)
    assert [i.id for i in found["items"]] == [python_item.id]
    assert not found["certified_globally"] and found["projects"] == []
    certification.grant(ama, issuer=world.maintainer, project_id=world.project.id, note="trusted")
    assert [p.id for p in roles.items_for(ama)["projects"]] == [world.project.id]
    session.commit()
    page = as_user(app, ama).get("/account/items-for-me").get_data(as_text=True)
    assert "Issue 831" in page and "Issue 832" not in page and "Issue 833" not in page and "$40.00" in page
    assert 'href="/account/items-for-me"' in page
    assert as_user(app, world.funder).get("/account/items-for-me").status_code == 403
    assert "Items for me" not in as_user(app, world.funder).get("/").get_data(as_text=True)
    assert unfunded.id


def test_the_claim_page_says_what_makes_the_merge_count_and_its_status(app, world, session):
    item = world.issue(841)
    ama = world.implementor("ama@example.org", github_id=9701)
    kwame = world.implementor("kwame@example.org", github_id=None)
    claim = world.claim(item, ama)
    other = claims.request_claim(world.issue(842), kwame, plan="Plan", estimate_days=2,
                                 deadline=utcnow().date() + timedelta(days=4))
    world.pull(1841, "Fixes #841", author_id=9701, merged=False, state="open")
    session.commit()
    page = as_user(app, ama).get(f"/claims/{claim.id}").get_data(as_text=True)
    assert "What makes the merge count" in page and "verified forge account on github.com" in page
    assert "Forge account linked: yes (ama)" in page
    assert re.search(r"A linked pull request by that account seen: <a [^>]*>#1841</a>", page)
    assert "Merged: not yet" in page
    world.pull(1841, "Fixes #841", author_id=9701, merged=True)
    session.commit()
    assert "Merged: yes" in as_user(app, ama).get(f"/claims/{claim.id}").get_data(as_text=True)
    lonely = as_user(app, kwame).get(f"/claims/{other.id}").get_data(as_text=True)
    assert "Forge account linked: no" in lonely and "A linked pull request by that account seen: not yet" in lonely


def test_to_decide_lists_items_solved_without_attribution_and_flagged_reopenings(app, world, session):
    from tests.webhooks.helpers import payload, post_github

    unattributed, reopened = world.issue(851), world.issue(852)
    world.fund(unattributed, 1000)
    world.pull(1851, "Fixes #851", author_id=424242, merged=True)  # an author with no account here
    ama = world.implementor("ama@example.org", github_id=9801)
    world.claim(reopened, ama)
    world.fund(reopened, 2000)
    world.pull(1852, "Fixes #852", author_id=9801, merged=True)
    [paid] = world.payouts_of(reopened)
    world.approve(paid, [(ama.id, 1)])
    payouts.execute(paid.id, paid.execute_after + AFTER_WINDOW)
    for action, stamp in (("closed", "2019-05-16T10:00:00Z"), ("reopened", "2019-05-17T10:00:00Z")):
        body = payload(f"github/webhooks/issues/{action}.json")
        body["issue"].update(number=852, id=700852, title="Issue 852", updated_at=stamp,
                             html_url="https://github.com/Codertocat/Hello-World/issues/852")
        assert post_github(world.client, "issues", body).status_code == 202
    session.refresh(paid)
    assert paid.flagged_at is not None
    session.commit()
    page = as_user(app, world.maintainer).get("/to-decide").get_data(as_text=True)
    assert "1 item solved without attribution" in page and "1 flagged reopening" in page
    [unattributed_payout] = world.payouts_of(unattributed)
    assert f"/payouts/{unattributed_payout.id}" in page and f"/payouts/{paid.id}" in page
    # Waiting payouts (1, the unattributed one) + flagged reopenings (1).
    assert 'href="/to-decide">To decide (2)</a>' in page


def test_the_fiscal_host_page_overrides_the_environment_and_is_audited(app, world, session):
    app.config.update(FISCAL_HOST_NAME="Env Host", FISCAL_HOST_EMAIL="env@example.org")
    try:
        session.commit()
        admin = as_user(app, world.admin)
        assert as_user(app, world.funder).get("/admin/fiscal-host").status_code in (403, 404)
        response = admin.post("/admin/fiscal-host", data={
            "csrf_token": csrf(admin, "/admin/fiscal-host"), "legal_name": "Open Source Center Ltd",
            "email": "money@osc.example.org", "address": "1 Commons Road, Accra", "bank_KES": "KCB, acc 42"})
        assert response.status_code == 303
        assert contact() == "Open Source Center Ltd (money@osc.example.org)"
        assert bank_instructions("KES") == "KCB, acc 42"
        assert bank_instructions("USD") == app.config["BANK_TRANSFER_INSTRUCTIONS_BY_CURRENCY"].get(
            "USD", app.config["BANK_TRANSFER_INSTRUCTIONS"])
        event = session.scalar(select(AuditEvent).where(AuditEvent.action == "fiscal_host.updated"))
        assert event.actor_user_id == world.admin.id
        assert event.details["changed"] == ["address", "bank_instructions", "email", "legal_name"]
        page = admin.get("/admin/fiscal-host").get_data(as_text=True)
        assert 'href="mailto:money@osc.example.org"' in page
        assert admin.post("/admin/fiscal-host", data={
            "csrf_token": csrf(admin, "/admin/fiscal-host"), "email": "not an address"}).status_code == 400
    finally:
        app.config.update(FISCAL_HOST_NAME=None, FISCAL_HOST_EMAIL=None)
        with app.app_context():
            forget()  # the saved row is rolled back with the test


def test_the_follow_section_reads_nothing_when_its_probe_says_nobody_follows(app, world, session):
    from marketplace.roles import item_section

    item = world.issue(861)
    with app.test_request_context(f"/items/{item.id}"):
        assert item_section.section(item, probed={"followed": False}) == {"following": None, "followers": 0}
        roles.follow(item, world.funder)
        followed = session.scalar(select(item_section.probes(item)["followed"]))
        assert followed is True
        assert item_section.section(item, probed={"followed": followed}) == {"following": None, "followers": 1}
