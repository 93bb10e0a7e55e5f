"""The whole loop on one laptop, in a real browser, as issue 13's "Done when" says:
``make run``'s runner with nothing but its stand-ins, and people clicking.

It follows the README's "Try the whole loop in five minutes": a maintainer
signs up (the link from the outbox page), makes herself an admin of the local
site on /dev and names herself a maintainer of ODK → a funder signs up and
pledges by card through the local Stripe's Checkout → an implementor signs
up, connects GitHub through the local forge, sets up Stripe payouts on the
local Stripe, and claims → the maintainer approves the claim from the item
page → the implementor's pull request ("Fixes #1887") is opened and merged
on the local forge → the payout is proposed to the claimant automatically →
the maintainer certifies him for the project and approves → paid when the
dispute window (1 minute here) has passed and the schedule runs (/dev's "Run
what is due now") → the payout page says paid and ``flask ledger check``
prints "ledger ok". No command but the runner's setup (``flask db upgrade``
and the seed imports, as ``make run`` does).

Playwright drives Debian's Chromium (``/usr/bin/chromium``); Playwright's own
browsers are never downloaded. Select with ``pytest -m e2e``. Screenshots
(375 px wide, as on a phone, and 1280 px) are saved in the test's tmp dir.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "correct horse battery staple"
SEED_FILE = "getodk__central.json"  # ODK's Central: one repository, a few open issues
ITEM_TITLE = re.compile("Entity create or update form")  # getodk/central#1887
WINDOW_MINUTES = 1  # the payout dispute window, in minutes for the walkthrough

pytestmark = pytest.mark.e2e

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None


def _missing() -> str | None:
    if sync_playwright is None:
        return "the Python package playwright is not installed (pip install playwright)"
    if not os.path.exists(CHROMIUM):
        return f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Runner:
    """``python -m marketplace.standins.serve`` on its own SQLite database."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith(("DATABASE_URL", "REDIS_URL", "STRIPE_", "GITHUB_", "GITLAB_", "MAIL_",
                                            "PUBLIC_URL", "PAYOUT_", "SCHEDULE_", "FLASK_"))}
        self.env.update(DATABASE_URL=f"sqlite:///{directory / 'backlog.sqlite3'}", SECRET_KEY="e2e-secret-key",
                        FLASK_APP=str(ROOT / "wsgi.py"), PYTHONPATH=str(ROOT),
                        PAYOUT_DISPUTE_WINDOW_MINUTES=str(WINDOW_MINUTES))
        self.process = None
        self.log = directory / "serve.log"

    def flask(self, *args: str) -> str:
        """Run ``flask ARGS`` on the runner's database; returns its output. Fails the test on an error."""
        done = subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def seed(self) -> None:
        snapshot = self.directory / "seed"
        snapshot.mkdir()
        shutil.copy(ROOT / "seed" / "dpg-issues" / SEED_FILE, snapshot)
        index = json.loads((ROOT / "seed" / "dpg-issues" / "index.json").read_text())
        (snapshot / "index.json").write_text(json.dumps([e for e in index if e["file"] == SEED_FILE]))
        self.flask("db", "upgrade")
        self.flask("registry", "import", str(ROOT / "seed" / "dpg" / "registry.json"))
        self.flask("backlog", "load-snapshot", str(snapshot))

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "marketplace.standins.serve", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        for _ in range(300):
            if self.process.poll() is not None:
                raise AssertionError(f"the runner stopped:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):  # noqa: S310  (our own runner)
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"the runner did not answer in a minute:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    missing = _missing()
    if missing:
        pytest.skip(f"the end-to-end test needs a browser: {missing}")
    runner = Runner(tmp_path_factory.mktemp("whole-loop"))
    runner.seed()
    runner.start()
    yield runner
    runner.stop()


class People:
    """One browser, a context (own cookies) per person, screenshots numbered in order."""

    def __init__(self, browser, runner: Runner, shots: Path):
        self.browser, self.runner, self.shots = browser, runner, shots
        self.count = 0

    def person(self, width: int = 1280):
        context = self.browser.new_context(viewport={"width": width, "height": 900})
        context.set_default_timeout(30_000)
        return context.new_page()

    def shot(self, page, name: str) -> None:
        self.count += 1
        page.screenshot(path=str(self.shots / f"{self.count:02d}-{name}.png"), full_page=True)

    def sign_up(self, page, name: str, email: str, role: str | None = None) -> None:
        """Sign up through the form, confirm the address with the link from the outbox page, sign in."""
        page.goto(self.runner.url + "/signup")
        page.get_by_label("Your name").fill(name)
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        if role:
            page.get_by_label(role).check()
        page.get_by_role("button", name="Create the account").click()
        expect(page.get_by_text(f"We sent a message to {email}")).to_be_visible()
        page.goto(self.runner.url + "/dev/mail")
        self.shot(page, "outbox")
        page.get_by_role("listitem").filter(has_text=f"to {email}").get_by_role(
            "link", name=re.compile("Confirm your e-mail address")).first.click()
        page.locator("a[href*='/verify/']").click()
        expect(page.get_by_text(f"Your e-mail address {email} is confirmed.")).to_be_visible()
        self.sign_in(page, email)

    def sign_in(self, page, email: str) -> None:
        if "/login" not in page.url:
            page.goto(self.runner.url + "/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name=re.compile("Sign out"))).to_be_visible()

    def connect_github(self, page, login: str) -> None:
        """"Connect GitHub" on the account page, answered by the local forge's authorize page."""
        page.goto(self.runner.url + "/account")
        page.get_by_role("button", name="Connect GitHub").click()
        expect(page.get_by_text("Local stand-in for GitHub.")).to_be_visible()
        self.shot(page, f"forge-authorize-{login}")
        page.get_by_label("GitHub login").fill(login)
        page.get_by_role("button", name="Authorize").click()
        expect(page.get_by_text(re.compile(f"GitHub.*{login}"))).to_be_visible()


def _open_item(page, runner: Runner) -> str:
    page.goto(runner.url + "/")
    page.get_by_role("link", name=ITEM_TITLE).click()
    return page.url


def test_the_whole_loop_from_sign_up_to_paid_in_a_browser(runner, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            _play(People(browser, runner, shots), runner)
        finally:
            browser.close()
    print(f"screenshots in {shots}")
    assert "ledger ok" in runner.flask("ledger", "check")


def _play(people: People, runner: Runner) -> None:
    # The maintainer, who also plays the fiscal host: signs up, makes herself an admin of
    # this local site on /dev, and names herself a maintainer of ODK on the admin pages.
    maria = people.person()
    people.sign_up(maria, "Maria Maintainer", "maria@example.org")
    maria.goto(runner.url + "/dev/")
    maria.get_by_role("button", name="Make me an admin of this local site").click()
    maria.goto(runner.url + "/admin/projects?q=ODK")
    odk = maria.get_by_role("row", name=re.compile(r"\bODK\b"))
    odk.get_by_label("E-mail of the maintainer").fill("maria@example.org")
    odk.get_by_role("button", name="Name maintainer").click()
    people.shot(maria, "maintainer-named")
    maria.goto(runner.url + "/projects/odk/maintainers")
    # Named without a link: only implementors have a public profile page (issue 23).
    expect(maria.locator("main li", has_text="Maria Maintainer")).to_be_visible()

    # A funder signs up and pledges 50 USD by card through the local Stripe.
    funder = people.person()
    people.sign_up(funder, "Fatima Funder", "fatima@example.org", "I want to fund work")
    item_url = _open_item(funder, runner)
    funder.get_by_label("Amount", exact=True).fill("50")
    funder.get_by_role("button", name="Pledge").click()
    expect(funder.get_by_text("Local stand-in for Stripe.")).to_be_visible()
    people.shot(funder, "stripe-checkout")
    funder.get_by_role("button", name=re.compile("Pay 50.00 USD")).click()
    people.shot(funder, "pledge-thanks")
    funder.goto(item_url)
    expect(funder.locator("dl.facts dt:text-is('Bounty') + dd")).to_have_text("$50.00")

    # An implementor (on a phone) signs up, connects GitHub through the local forge,
    # says where he is paid (Stripe onboarding on the local Stripe) and claims the item.
    kofi = people.person(width=375)
    people.sign_up(kofi, "Kofi Implementor", "kofi@example.org", "I want to do paid work")
    people.connect_github(kofi, "kofi-codes")
    kofi.goto(runner.url + "/account/profile")
    kofi.get_by_label("Country").select_option("KE")
    kofi.get_by_role("button", name="Save the profile").click()
    kofi.goto(runner.url + "/account/payouts")
    kofi.get_by_role("button", name="Set up Stripe payouts").click()
    expect(kofi.get_by_text("Local stand-in for Stripe.")).to_be_visible()
    people.shot(kofi, "stripe-onboarding-375")
    kofi.get_by_role("button", name="Complete onboarding").click()
    expect(kofi.get_by_text("Your account can receive transfers.")).to_be_visible()
    kofi.goto(item_url)
    people.shot(kofi, "item-375")
    kofi.get_by_label(re.compile("plan", re.I)).fill("Create the entity before applying the update, with a test.")
    kofi.get_by_label(re.compile("Estimate", re.I)).fill("5")
    kofi.get_by_label(re.compile("Deadline", re.I)).fill((date.today() + timedelta(days=30)).isoformat())
    kofi.get_by_role("button", name="Ask to do this item").click()
    people.shot(kofi, "claim-requested-375")

    # The maintainer approves the claim from the item page.
    maria.goto(item_url)
    maria.get_by_role("row", name=re.compile("Kofi Implementor")).get_by_role("link").click()
    maria.get_by_role("button", name="Approve the claim").click()
    people.shot(maria, "claim-approved")

    # Kofi's pull request merges on the local forge ("Fixes #1887").
    kofi.goto(item_url)
    kofi.get_by_role("link", name="Open a pull request on the local forge").click()
    expect(kofi.get_by_text("Local stand-in for GitHub.")).to_be_visible()
    kofi.get_by_label("Author (a GitHub login)").fill("kofi-codes")
    kofi.get_by_role("button", name="Open pull request").click()
    people.shot(kofi, "forge-pull-request-375")
    kofi.get_by_role("button", name="Merge pull request").click()
    expect(kofi.get_by_text("Merged", exact=True)).to_be_visible()
    people.shot(kofi, "forge-merged-375")

    # The payout was proposed to Kofi automatically. He is not certified yet: the maintainer
    # certifies him for the project, then approves the payout.
    maria.goto(runner.url + "/projects/odk/payouts")
    row = maria.get_by_role("row", name=ITEM_TITLE)
    expect(row).to_contain_text("Kofi Implementor")
    expect(row).to_contain_text("waiting for the recipient's certification")
    people.shot(maria, "payout-proposed")
    maria.get_by_label("E-mail of the implementor").fill("kofi@example.org")
    maria.get_by_label(re.compile("Note")).fill("Reviewed his earlier ODK contributions.")
    maria.get_by_role("button", name="Certify").click()
    maria.goto(runner.url + "/projects/odk/payouts")
    maria.get_by_role("link", name=ITEM_TITLE).first.click()
    payout_url = maria.url
    maria.get_by_role("button", name="Approve the payout").click()
    people.shot(maria, "payout-approved")
    state = maria.locator("dl.facts dt:text-is('State') + dd")
    expect(state).to_have_text(re.compile("approved", re.I))

    # Paid when the dispute window ends: /dev's "Run what is due now" runs the schedule
    # (the in-process scheduler would too, within a minute).
    deadline = time.monotonic() + WINDOW_MINUTES * 60 + 120
    while True:
        maria.goto(runner.url + "/dev/")
        maria.get_by_role("button", name="Run what is due now").click()
        maria.goto(payout_url)
        if state.inner_text().strip() == "paid":
            break
        assert time.monotonic() < deadline, f"the payout is still {state.inner_text()!r} after its window"
        maria.wait_for_timeout(5_000)
    people.shot(maria, "payout-paid")
    expect(maria.get_by_role("row", name=re.compile("Kofi Implementor"))).to_contain_text("paid")
    kofi.goto(item_url)
    expect(kofi.get_by_text(re.compile(r"Solved by getodk/central#\d+"))).to_be_visible()
    people.shot(kofi, "item-solved-375")
