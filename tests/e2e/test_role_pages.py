"""Issue 20's "Done when", in Debian's Chromium: axe-core finds no violation on
the funder's, implementor's, maintainer's and admin's pages, each with and
without a flash message (a status and an error), and at 375 px no page of the
backlog, an item, the projects, /transparency, a claim and the admin's pledges
scrolls sideways.

The app is served from this test process (Werkzeug, in a thread) on the test
database; the people and their money are committed there through the
services, as the browser's requests commit theirs.
"""
from __future__ import annotations

import secrets
import threading
from datetime import timedelta

import pytest

from tests.conftest import make_app
from tests.e2e.test_whole_loop import CHROMIUM, CHROMIUM_ARGS, _missing

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"

try:
    from axe_playwright_python.sync_playwright import Axe
except ImportError:  # pragma: no cover - depends on the machine
    Axe = None


def _people(served_app) -> dict:
    """A maintainer, a funder, a certified implementor and an admin on a seeded
    item's project; a held pledge, an approved and a requested claim. Committed."""
    from sqlalchemy import select

    from marketplace.accounts.models import ForgeIdentity, User
    from marketplace.backlog.models import BacklogItem
    from marketplace.claims import certification
    from marketplace.claims import service as claims
    from marketplace.extensions import db
    from marketplace.money import Money
    from marketplace.pledges import service as pledges
    from marketplace.pledges.models import Rail
    from marketplace.projects.models import ProjectMaintainer
    from marketplace.roles import service as roles
    from marketplace.timeutil import utcnow

    tag = secrets.token_hex(3)
    with served_app.app_context():
        def person(role: str, **flags) -> User:
            user = User(display_name=f"{role.title()} {tag}", email_verified_at=utcnow(), **flags)
            user.set_email(f"{role}-{tag}@example.org")
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.flush()
            return user

        items = list(db.session.scalars(select(BacklogItem).where(
            BacklogItem.hidden.is_(False), BacklogItem.deleted_at.is_(None), BacklogItem.solved_by_id.is_(None),
            BacklogItem.state == "open").order_by(BacklogItem.id).limit(2)))
        keeper, funder = person("keeper"), person("funder", is_funder=True)
        maker, admin = person("maker", is_implementor=True), person("admin", is_admin=True)
        project_id = items[0].repository.project_id
        db.session.add(ProjectMaintainer(project_id=project_id, user_id=keeper.id, granted_by="e2e"))
        db.session.add(ForgeIdentity(user_id=maker.id, forge="github", host=items[0].forge_host,
                                     forge_user_id=int(tag, 16) + 10_000_000, login=f"maker{tag}"))
        certification.grant(maker, issuer=admin, project_id=None, note="e2e")
        pledge = pledges.create(items[0], funder.id, Money(2500, "USD"), rail=Rail.card, actor="e2e")
        pledge.payment_intent_id = f"pi_e2e_{tag}"
        pledges.mark_received(pledge.id, Money(2500, "USD"), actor="e2e")
        roles.follow(items[0], funder)
        today = utcnow().date()
        approved = claims.request_claim(items[0], maker, plan="Fix it, with tests.", estimate_days=3,
                                        deadline=today + timedelta(days=5))
        claims.approve(approved, maintainer=keeper)
        requested = claims.request_claim(items[1], maker, plan="The second one.", estimate_days=2,
                                         deadline=today + timedelta(days=4))
        db.session.commit()
        return {"keeper": keeper.email, "funder": funder.email, "maker": maker.email, "admin": admin.email,
                "item": f"/items/{items[0].id}", "other": f"/items/{items[1].id}", "claim": f"/claims/{approved.id}",
                "waiting": f"/claims/{requested.id}"}


@pytest.fixture
def served(app, database_url):
    """The app on the test database at a local address, with the people of
    :func:`_people`; yields (base URL, people)."""
    from werkzeug.serving import make_server

    missing = _missing() or (None if Axe is not None else "the package axe-playwright-python is not installed")
    if missing:
        pytest.skip(f"the role pages' browser test needs a browser and axe-core: {missing}")
    served_app = make_app(database_url, SERVER_NAME=None, SESSION_COOKIE_SECURE=False)
    people = _people(served_app)
    server = make_server("127.0.0.1", 0, served_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", people
    server.shutdown()
    thread.join(timeout=5)


def _sign_in(page, base: str, email: str) -> None:
    page.goto(f"{base}/login?lang=en")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_load_state()


def _check(page, base: str, path: str, width: int, *, flash: str | None = None) -> None:
    response = page.goto(base + path) if path else None
    assert response is None or response.status == 200, (path, response.status)
    if flash is not None:
        assert page.locator(f".flashes [role={flash}]").count() >= 1, (path, page.content()[:2000])
    results = Axe().run(page)
    assert results.violations_count == 0, (width, path or page.url, flash, results.generate_snapshot())


def _submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def _post(page, base: str, path: str, back: str) -> None:
    """POST a button's form (with the page's CSRF token, in the browser's
    session), then open the page it sends back to, with its flash."""
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    response = page.context.request.post(base + path, form={"csrf_token": token}, max_redirects=0)
    assert response.status in (302, 303), (path, response.status)
    page.goto(base + back)


def _context(browser, width: int):
    return browser.new_context(viewport={"width": width, "height": 900}).new_page()


def test_role_pages_have_no_axe_violations_with_and_without_a_flash(served):
    from playwright.sync_api import sync_playwright

    base, people = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for width in (375, 1280):
                # The funder: their pledges, account and an item they funded; a status flash
                # (following another item) and an error flash (a refused form).
                page = _context(browser, width)
                _sign_in(page, base, people["funder"])
                for path in ("/account/pledges", "/account", people["item"]):
                    _check(page, base, path, width)
                page.goto(base + people["other"])
                _submit(page, "#follow-heading ~ form button[type=submit]")  # follow, or stop (second width)
                _check(page, base, "", width, flash="status")
                page.goto(base + "/account/pledges")
                pledge = page.locator("main a[href^='/pledges/']").first.get_attribute("href")
                _post(page, base, pledge + "/cancel", "/account/pledges")  # held: nothing to cancel
                _check(page, base, "", width, flash="alert")
                page.context.close()

                # The implementor: items for me, their claims, payouts, a claim page; both flashes.
                page = _context(browser, width)
                _sign_in(page, base, people["maker"])
                for path in ("/account/items-for-me", "/account/claims", "/account/payouts", people["claim"]):
                    _check(page, base, path, width)
                page.goto(base + people["item"])
                _submit(page, "#follow-heading ~ form button[type=submit]")  # follow, or stop (second width)
                _check(page, base, "", width, flash="status")
                if width == 1280:  # last: the claim is given up
                    _post(page, base, people["claim"] + "/withdraw", people["claim"])
                    _check(page, base, "", width, flash="status")
                    _post(page, base, people["claim"] + "/withdraw", people["claim"])  # again: refused
                    _check(page, base, "", width, flash="alert")
                page.context.close()

                # The maintainer: To decide and the claim waiting there; approving it (a status
                # flash), then approving it again (refused: an error flash).
                page = _context(browser, width)
                _sign_in(page, base, people["keeper"])
                _check(page, base, "/to-decide", width)
                waiting = people["waiting"]
                if width == 375:
                    assert page.locator(f"main a[href='{waiting}']").count() == 1
                _check(page, base, waiting, width)
                if width == 375:
                    _submit(page, "form[action$='/approve'] button[type=submit]")
                    _check(page, base, "", width, flash="status")
                    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
                    page.context.request.post(base + waiting + "/approve", form={"csrf_token": token},
                                              max_redirects=0)
                    _check(page, base, waiting, width, flash="alert")
                _check(page, base, "/to-decide", width)
                page.context.close()

                # The admin: overview, pledges, payouts, the fiscal host; a status flash (saved), and
                # the page again with a field's error.
                page = _context(browser, width)
                _sign_in(page, base, people["admin"])
                for path in ("/admin", "/admin/pledges", "/admin/payouts", "/admin/fiscal-host"):
                    _check(page, base, path, width)
                _submit(page, "main form button[type=submit]")
                _check(page, base, "", width, flash="status")
                page.fill("input[name=email]", "not an address")
                page.evaluate("document.querySelector('main form').noValidate = true")  # the server refuses it
                _submit(page, "main form button[type=submit]")
                assert page.locator(".field-error").count() == 1
                _check(page, base, "", width)
                page.context.close()
        finally:
            browser.close()


def test_role_and_public_pages_do_not_scroll_sideways_at_375_px(served):
    from playwright.sync_api import sync_playwright

    base, people = served
    widths = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 375, "height": 800}).new_page()
            for path in ("/", people["item"], "/projects", "/transparency"):
                page.goto(base + path)
                widths[path] = page.evaluate("document.documentElement.scrollWidth")
            _sign_in(page, base, people["maker"])
            for path in (people["claim"], "/account/claims", "/account/items-for-me"):
                page.goto(base + path)
                widths[path] = page.evaluate("document.documentElement.scrollWidth")
            page.context.close()
            page = browser.new_context(viewport={"width": 375, "height": 800}).new_page()
            _sign_in(page, base, people["admin"])
            for path in ("/admin/pledges", "/admin/fiscal-host"):
                page.goto(base + path)
                widths[path] = page.evaluate("document.documentElement.scrollWidth")
        finally:
            browser.close()
    assert len(widths) == 9
    assert {path: width for path, width in widths.items() if width > 375} == {}, widths
