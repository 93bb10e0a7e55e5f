"""Issue 20: on a 375 px wide screen no public page scrolls sideways; a wide
table scrolls inside its own box. Measured in Debian's Chromium as
``document.documentElement.scrollWidth`` against the viewport's width."""
from __future__ import annotations

import pytest

from tests.e2e.test_whole_loop import runner, sync_playwright  # noqa: F401  (the module-scoped runner fixture)

pytestmark = pytest.mark.e2e

PAGES = ["/", "/projects", "/transparency", "/sdgs", "/about", "/login", "/signup"]


def test_no_public_page_scrolls_sideways_at_375_px(runner):  # noqa: F811
    widths = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(viewport={"width": 375, "height": 800}).new_page()
            page.goto(runner.url + "/")
            item = page.locator("a[href^='/items/']").first.get_attribute("href")
            for path in PAGES + [item]:
                page.goto(runner.url + path)
                widths[path] = page.evaluate("document.documentElement.scrollWidth")
        finally:
            browser.close()
    assert {path: width for path, width in widths.items() if width > 375} == {}, widths
