"""axe-core finds no violation on the backlog and an item page in French, at a
phone's width (375 px) and a desktop's (issue 21).

The app is served from this test process (Werkzeug, in a thread) on the test
database; Debian's Chromium loads the pages, and axe-core (4.12, shipped
inside the axe-playwright-python package, nothing downloaded) checks them.
"""
from __future__ import annotations

import re
import threading

import pytest

from tests.conftest import make_app
from tests.e2e.test_whole_loop import CHROMIUM, CHROMIUM_ARGS, _missing

pytestmark = pytest.mark.e2e

try:
    from axe_playwright_python.sync_playwright import Axe
except ImportError:  # pragma: no cover - depends on the machine
    Axe = None


@pytest.fixture
def served(app, database_url):
    """The app on the test database, at a local address; yields its base URL."""
    from werkzeug.serving import make_server

    missing = _missing() or (None if Axe is not None else "the package axe-playwright-python is not installed")
    if missing:
        pytest.skip(f"the accessibility test needs a browser and axe-core: {missing}")
    served_app = make_app(database_url, SERVER_NAME=None, SESSION_COOKIE_SECURE=False)
    server = make_server("127.0.0.1", 0, served_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


def test_backlog_and_item_pages_in_french_have_no_axe_violations(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for width in (375, 1280):
                page = browser.new_page(locale="fr-FR", viewport={"width": width, "height": 900})
                page.goto(f"{served}/?lang=fr")
                assert page.locator("html").get_attribute("lang") == "fr"
                item = re.search(r'href="(/items/[^"]+)"', page.content()).group(1)
                for path in ("/", item):
                    page.goto(served + path)
                    assert page.locator("html").get_attribute("lang") == "fr"  # kept by the cookie
                    results = Axe().run(page)
                    assert results.violations_count == 0, (width, path, results.generate_snapshot())
                page.close()
        finally:
            browser.close()


def test_report_and_pool_pages_have_no_axe_violations_and_do_not_scroll_sideways(served):
    """The public reports (issue 17), /transparency, the projects list and the
    pools list: axe-core finds nothing, and at 375 px nothing is wider than the screen."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for width in (375, 1280):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(f"{served}/projects?lang=en")
                project = re.search(r'href="(/projects/[a-z0-9-]+)"', page.content()).group(1)
                for path in ("/reports", f"{project}/report", "/transparency", "/projects", "/pools", "/exports"):
                    response = page.goto(served + path)
                    assert response.status == 200, path
                    results = Axe().run(page)
                    assert results.violations_count == 0, (width, path, results.generate_snapshot())
                    wide = page.evaluate("document.documentElement.scrollWidth")
                    assert wide <= width, (width, path, wide)
                page.close()
        finally:
            browser.close()
