"""``make demo``: a month of the commons played through the real services, on a database of its own.

``python -m marketplace.standins.demo [--database PATH] [--port P]`` rebuilds
the demo database (default ``instance/demo/demo.sqlite3``, never ``make
run``'s ``instance/backlog.sqlite3``) from nothing: the migrations, the DPG
registry and the recorded issues (what ``make seed`` loads). Then it plays a
month:

- funders (four people and a foundation) pledge by card, through the item
  page's form, the local Stripe's Checkout and its signed
  ``checkout.session.completed``; and by bank transfer, confirmed by the
  fiscal host; in USD and EUR;
- implementors (a Nairobi firm of two, people in Brazil and India) claim;
  maintainers approve one claim per item and reject another;
- pull requests merge: GitHub ``pull_request`` deliveries, signed as GitHub
  signs them, reach ``/webhooks/github``; the app proposes the payouts;
- a maintainer approves a payout split 60/40 between two people; payouts go
  by Stripe Connect (after the recipient's onboarding at the local Stripe)
  and by the manual rail (M-Pesa transfers the fiscal host records);
- one funder takes a pledge back, one pledge expires and is refunded by the
  real cron job, one card payment is charged back (a lost dispute);
- co-investment (issue 16): the Northwind Health Foundation pays a 1:1
  matching pool for SDG 3 items by card (500.00, at most 100.00 per pledge
  and 150.00 per funder) and its window of a few seconds plays the issue's
  scenario: matches of 80.00, 70.00 (funder cap), none (an SDG 16 item),
  100.00 (pledge cap); the first pledge taken back returns its match to the
  pool; at the end the real cron job refunds the 330.00 left to the
  foundation's card. Then a quadratic-funding round of 1,000.00 (paid by
  bank transfer) gets one funder × 100.00 on one item, four × 25.00 on
  another and a hundred neighbours × 1.00 on a third: its page publishes
  the distribution (raw 0 / 300.00 / 9,900.00; shares 0 / 29.41 / 970.59).
- the commons on the forge (issue 22): ODK's maintainer turns the living
  comment and the ``bounty`` label on for ``getodk/central`` (:data:`PRESENCE`);
  the local forge takes the comment when its items are funded, and every
  later state (claimed, solved, paid) edits it: ``make run`` then shows it on
  the local forge's issue page, and the item page links to it;
- recurring funding (issue 18): the Community Health Toolkit's fund gets two
  monthly subscribers — the foundation by card (200.00, Stripe Billing: the
  local Stripe's Checkout in subscription mode, its signed
  ``customer.subscription.created`` and ``invoice.paid``, then a second
  month's invoice) and a funder by standing bank transfer (50.00, recorded
  by the fiscal host) — and its maintainer allots 150.00 to an item through
  the fund page's form, attributed 120.00 / 30.00 to them.

Then it runs the ledger check (``flask ledger check``) and prints "ledger ok"
and the month's figures per currency, read from the ledger. The local
Stripe's objects are saved where ``python -m marketplace.standins.serve``
finds them (``<database dir>/standins/local-stripe.json``), as are the local
forge's comments and labels (``local-forge.json``), with the e-mails
sent (``<database dir>/standins/mail``, shown at ``/dev/mail``), so the
served demo knows its Checkout Sessions, accounts and transfers.

How it plays. The app is served on a free port inside this process, so that
the local Stripe's events and the forge's deliveries reach its webhook
endpoints over HTTP, exactly as in production. People act through the pages
where a browser would (pledge forms and a funder's refund button, through the
Flask test client signed in as them) and through the domain services
(``marketplace/*/service.py``) for the rest, each step committed as a view
commits. Time: the month plays in about a minute, and every timestamp is of
today. Where the app waits for time to pass, the demo sets values that pass
naturally: the payout dispute window is 0 minutes
(``PAYOUT_DISPUTE_WINDOW_MINUTES=0``, so an approved payout is executed when
its approval commits), and one pledge is made (through the pledge service:
the form offers whole months) with an expiry a few seconds ahead; once it has
passed, the real cron job ``jobs.money.refund_expired_pledges`` refunds it.

Everyone here is made up: the people, the firm, the foundation, their
e-mail addresses (example.org), GitHub accounts, pull requests, bank and
M-Pesa references. The items are real issues of the seed snapshot.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import re
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask
from flask_migrate import upgrade
from rq.utils import import_attribute
from sqlalchemy import func, select
from werkzeug.serving import make_server

from marketplace import config as config_module
from marketplace import create_app
from marketplace.accounts import service as accounts
from marketplace.accounts.models import User
from marketplace.accounts.roles import grant_admin
from marketplace.accounts.tokens import make_email_token
from marketplace.backlog.models import BacklogItem
from marketplace.backlog.snapshot import load_snapshot
from marketplace.claims import certification
from marketplace.claims import service as claims
from marketplace.claims.models import Claim
from marketplace.extensions import db
from marketplace.forges.service import find_repository
from marketplace.funds import queries as fund_queries
from marketplace.funds import service as funds
from marketplace.funds.models import FundSubscription, ProjectFund
from marketplace.i18n import format_money
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind, LedgerAccount, LedgerEntry
from marketplace.money import Money
from marketplace.notifications.links import url_for_public
from marketplace.organisations import service as organisations
from marketplace.payments import stripe_client
from marketplace.payouts import service as payouts
from marketplace.payouts.models import Payout, PayoutShare, ShareState
from marketplace.pledges import service as pledges
from marketplace.pledges.models import Pledge, Rail
from marketplace.pools import queries as pool_queries
from marketplace.pools import service as pools
from marketplace.pools.models import MatchingPool, PoolKind
from marketplace.presence import service as presence
from marketplace.projects import service as projects
from marketplace.projects.models import MemberProject
from marketplace.projects.registry import import_registry, load_registry_file
from marketplace.reports.screening import import_screening, load_screening_file
from marketplace.scheduling.service import schedule
from marketplace.standins import refusals
from marketplace.standins.forge import LocalForge
from marketplace.standins.serve import derived_secret
from marketplace.standins.stripe import LocalStripe
from marketplace.timeutil import utcnow

log = logging.getLogger("marketplace.standins.demo")

# Every demo account signs in with this password (printed at the end, for a newcomer).
PASSWORD = "commons-demo-2026"
# Where `make demo` keeps its database: a directory of its own, so that the
# stand-ins' state kept beside it (standins/) is never `make run`'s.
DEFAULT_DATABASE = config_module.INSTANCE_DIR / "demo" / "demo.sqlite3"
SEED = config_module.ROOT / "seed"
# Seconds ahead of its payment that the one expiring pledge expires.
EXPIRY_SECONDS = 3
# The ratio pool's window, in seconds from its creation: long enough for its four pledges.
POOL_WINDOW_SECONDS = 10


@dataclass(frozen=True)
class Person:
    """A made-up person of the demo; ``github`` is (numeric id, login) of a made-up GitHub account."""

    key: str
    name: str
    email: str
    country: str | None = None
    funder: bool = False
    implementor: bool = False
    github: tuple[int, str] | None = None
    skills: tuple[str, ...] = ()


CAST = (
    Person("host", "Wanjiru Kamau", "wanjiru.kamau@example.org", "KE"),  # the fiscal host's admin
    Person("priya", "Priya Raman", "priya.raman@example.org", "IN"),  # maintains the Community Health Toolkit
    Person("tomas", "Tomás Herrera", "tomas.herrera@example.org", "ES"),  # maintains ODK
    Person("ifeoma", "Ifeoma Chukwu", "ifeoma.chukwu@example.org", "NG"),  # maintains OpenCRVS
    Person("lena", "Lena Fischer", "lena.fischer@example.org", "DE", funder=True),
    Person("daniel", "Daniel Mensah", "daniel.mensah@example.org", "GH", funder=True),
    Person("grace", "Grace Liu (Northwind Health Foundation)", "grace.liu@example.org", "NL", funder=True),
    Person("sofia", "Sofia Marino", "sofia.marino@example.org", "IT", funder=True),
    Person("kwame", "Kwame Asante", "kwame.asante@example.org", "US", funder=True),
    Person("otieno", "Otieno Ouma", "otieno.ouma@example.org", "KE", implementor=True,
           github=(91_000_101, "otieno-ouma"), skills=("JavaScript", "CouchDB", "PouchDB")),
    Person("achieng", "Achieng Njeri", "achieng.njeri@example.org", "KE", implementor=True,
           github=(91_000_102, "achieng-njeri"), skills=("JavaScript", "testing")),
    Person("ana", "Ana Souza", "ana.souza@example.org", "BR", implementor=True,
           github=(91_000_103, "anasouza-dev"), skills=("Node.js", "PostgreSQL")),
    Person("rahul", "Rahul Verma", "rahul.verma@example.org", "IN", implementor=True,
           github=(91_000_104, "rahulverma-codes"), skills=("TypeScript", "React", "Elasticsearch")),
)

# The repository whose maintainer turns the living comment and label on (issue 22), and who.
PRESENCE = ("getodk/central", "tomas")
# The GitHub App installation the local forge plays for it (made up: no App token is bought
# without GITHUB_APP_ID, so the writes reach the local forge at GITHUB_API_URL unauthenticated).
PRESENCE_INSTALLATION_ID = 1

# Real items of the seed snapshot: key → (repository, issue number, its default branch on GitHub).
ITEMS = {
    "pouchdb": ("medic/cht-core", 9534, "master"),
    "entities": ("getodk/central", 688, "master"),
    "workqueue": ("opencrvs/opencrvs-core", 12427, "develop"),
    "formpack": ("kobotoolbox/kpi", 810, "main"),
    "drought": ("ushahidi/platform", 5048, "develop"),
    "credentials": ("OpenFn/lightning", 3583, "main"),
    # Co-investment: the ratio pool's items X, Y (SDG 3) and Z (SDG 16), and the round's A, B, C.
    "pool-x": ("medic/cht-core", 10720, "master"),
    "pool-y": ("medic/cht-core", 10109, "master"),
    "pool-z": ("opencrvs/opencrvs-core", 11703, "develop"),
    "round-a": ("getodk/central", 1887, "master"),
    "round-b": ("getodk/collect", 3027, "master"),
    "round-c": ("medic/cht-core", 8120, "master"),
}


class DemoError(RuntimeError):
    """A step of the demo did not have the outcome it must have (the app refused or failed)."""


@dataclass
class Outcome:
    """What the month produced: row ids by the demo's keys, and the ledger's figures
    (``{currency: {"received": …, "held": …}}`` in minor units, see :func:`ledger_figures`)."""

    people: dict[str, int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    pledges: dict[str, int] = field(default_factory=dict)
    payouts: dict[str, int] = field(default_factory=dict)
    pools: dict[str, int] = field(default_factory=dict)
    figures: dict[str, dict[str, int]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


def ledger_figures() -> dict[str, dict[str, int]]:
    """Per currency, in minor units, from the ledger entries alone: ``received``
    from funders, ``held`` in escrow, ``fees``, ``owed`` to recipients (not yet
    paid), ``paid`` out, ``refunded``, ``lost`` to disputes; and the matching
    pools' ``pools_in`` (paid in by sponsors), ``pools_held`` (not yet matched
    or returned) and ``pools_returned`` (back to sponsors). Sources are negative
    in the ledger; every figure here is the money's amount (positive)."""
    rows = db.session.execute(
        select(LedgerAccount.kind, LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .group_by(LedgerAccount.kind, LedgerEntry.currency)).all()
    names = {AccountKind.funder_payments: "received", AccountKind.item_escrow: "held",
             AccountKind.platform_fees: "fees", AccountKind.contributor_payable: "owed",
             AccountKind.payouts_paid: "paid", AccountKind.refunds: "refunded", AccountKind.disputes: "lost",
             AccountKind.sponsor_payments: "pools_in", AccountKind.matching_pool: "pools_held",
             AccountKind.sponsor_returns: "pools_returned", AccountKind.subscriber_payments: "funds_in",
             AccountKind.project_fund: "funds_held"}
    sources = (AccountKind.funder_payments, AccountKind.sponsor_payments, AccountKind.subscriber_payments)
    out: dict[str, dict[str, int]] = {}
    for kind, currency, total in rows:
        figures = out.setdefault(currency, dict.fromkeys(names.values(), 0))
        if kind in names:
            value = int(total or 0)
            figures[names[kind]] += -value if kind in sources else value
    return dict(sorted(out.items()))


def github_signature(body: bytes, secret: str) -> str:
    """GitHub's ``X-Hub-Signature-256`` of ``body``: ``sha256=`` + HMAC-SHA256 hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Month:
    """The demo's actors and the stand-ins they use; :meth:`play` plays the month."""

    def __init__(self, app: Flask, stripe: LocalStripe, app_url: str, say: Callable[[str], None]):
        self.app, self.stripe, self.app_url, self.say = app, stripe, app_url, say
        self.outcome = Outcome()
        self.clients: dict[str, object] = {}
        self._pull_numbers = iter(range(1, 1000))

    # --- plumbing -------------------------------------------------------------------

    @contextmanager
    def step(self):
        """One unit of work in its own application context, committed at the end (as a view commits)."""
        with self.app.app_context():
            yield
            db.session.commit()

    def user(self, key: str) -> User:
        return db.session.get(User, self.outcome.people[key])

    def item(self, key: str) -> BacklogItem:
        return db.session.get(BacklogItem, self.outcome.items[key])

    def money(self, amount_minor: int, currency: str) -> str:
        with self.app.app_context():
            return format_money(amount_minor, currency)

    def browser(self, key: str):
        """A test client signed in as ``key`` (the session a browser holds after signing in)."""
        if key not in self.clients:
            client = self.app.test_client()
            with self.app.app_context():
                session_id = self.user(key).get_id()
            with client.session_transaction() as session:
                session["_user_id"], session["_fresh"] = session_id, True
            self.clients[key] = client
        return self.clients[key]

    def form_token(self, client, path: str) -> str:
        page = client.get(path)
        found = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.get_data(as_text=True))
        if page.status_code != 200 or found is None:
            raise DemoError(f"GET {path} answered {page.status_code} without a form")
        return found.group(1)

    def post_json(self, path: str, body: dict, headers: dict) -> int:
        raw = json.dumps(body).encode()
        request = urllib.request.Request(self.app_url + path, data=raw, method="POST",
                                         headers={"Content-Type": "application/json", **headers})
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status

    def stripe_event(self, event_type: str, obj: dict) -> None:
        """The local Stripe sends a signed event to the app's ``/webhooks/stripe``."""
        status = self.stripe.send_event(event_type, obj)
        if status not in (200, 202):
            raise DemoError(f"the app answered {status} to Stripe's {event_type}")

    # --- the cast -------------------------------------------------------------------

    def cast(self) -> None:
        """Everyone signs up and confirms their address; the fiscal host is an admin,
        maintainers maintain their projects, implementors fill in their profiles."""
        for person in CAST:
            with self.step():
                user = accounts.create_account(person.email, PASSWORD, person.name, funder=person.funder,
                                               implementor=person.implementor)
                accounts.verify_email(make_email_token(user, user.email))  # the link of the e-mail, opened
                self.outcome.people[person.key] = user.id
        with self.step():
            grant_admin(self.user("host"), actor="demo: the fiscal host's admin")
            for key, slug in (("priya", "community-health-toolkit"), ("tomas", "odk"), ("ifeoma", "opencrvs")):
                project = db.session.scalar(select(MemberProject).where(MemberProject.slug == slug))
                projects.add_maintainer(project, self.user(key), granted_by=f"user:{self.outcome.people['host']}",
                                        actor_user_id=self.outcome.people["host"])
        with self.step():
            for key, (repository, number, _branch) in ITEMS.items():
                owner, name = repository.split("/")
                repo = find_repository("github.com", owner, name)
                item_id = db.session.scalar(select(BacklogItem.id).where(
                    BacklogItem.repository_id == repo.id, BacklogItem.number == number))
                if item_id is None:
                    raise DemoError(f"{repository}#{number} is not in the seed snapshot")
                self.outcome.items[key] = item_id
        with self.step():
            # Two funders' organisations and a local firm.
            organisations.create("Northwind Health Foundation", kind="funder", country="NL", owner=self.user("grace"))
            firm = organisations.create("Nairobi Code Collective", kind="implementor", country="KE",
                                        owner=self.user("otieno"))
            organisations.invite(firm, "achieng.njeri@example.org", inviter=self.user("otieno"))
            organisations.accept(organisations.membership(firm, self.outcome.people["achieng"]),
                                 user=self.user("achieng"))
            self.outcome.people["firm"] = firm.id
            host = self.user("host")
            for person in CAST:
                if not person.implementor:
                    continue
                user = self.user(person.key)
                accounts.save_profile(user, country=person.country,
                                      organisation_id=firm.id if person.country == "KE" else None,
                                      skills=list(person.skills), languages=["en"], bio="", public_earnings=True)
                # Signing in with GitHub at the local forge would record this identity.
                accounts.link_identity(user, forge="github", host="github.com", forge_user_id=person.github[0],
                                       login=person.github[1])
                certification.grant(user, issuer=host, project_id=None,
                                    note="Commons contributor training, November cohort")
        self.say("Day 1   13 people sign up (made up; see marketplace/standins/demo.py): a fiscal host, three "
                 "maintainers, five funders, four implementors; the Nairobi Code Collective and the Northwind "
                 "Health Foundation are created; the implementors are certified")

    def forge_presence(self) -> None:
        """The maintainer of :data:`PRESENCE` turns the living comment and label on for it
        (the App's installation is the local forge's), as on the project's forge settings page."""
        repository, maintainer = PRESENCE
        owner, name = repository.split("/")
        with self.step():
            repo = find_repository("github.com", owner, name)
            repo.installation_id = PRESENCE_INSTALLATION_ID
            presence.set_presence(repo, True, actor=self.user(maintainer))
        self.say(f"        ODK's maintainer turns the bounty comment and label on for {repository}: "
                 "the local forge shows them on its issues")

    # --- money in -------------------------------------------------------------------

    def card_pledge(self, key: str, funder: str, item: str, amount: str, currency: str) -> None:
        """``funder`` pledges through the item page's form, pays on the local Stripe's
        Checkout, and Stripe's signed ``checkout.session.completed`` holds the money."""
        client = self.browser(funder)
        path = f"/items/{self.outcome.items[item]}"
        response = client.post(f"{path}/pledge", data={
            "csrf_token": self.form_token(client, path), "amount": amount, "currency": currency,
            "expiry_months": "12", "rail": "card", "show_name": "y", "acknowledge_unmaintained": "y"})
        location = response.headers.get("Location", "")
        if response.status_code != 303 or "/pay/" not in location:
            raise DemoError(f"the card pledge form answered {response.status_code}, not Stripe's Checkout")
        session = self.stripe.pay(urlsplit(location).path.rsplit("/", 1)[-1])
        self.stripe_event("checkout.session.completed", session)
        with self.step():
            pledge_id = db.session.scalar(select(Pledge.id).where(Pledge.checkout_session_id == session["id"]))
        self.outcome.pledges[key] = pledge_id
        self._said_pledge(funder, item, pledge_id, "by card")

    def transfer_pledge(self, key: str, funder: str, item: str, amount: str, currency: str, *,
                        arrives: str | None) -> None:
        """``funder`` pledges by bank transfer through the form; when the transfer
        ``arrives`` (the bank's reference), the fiscal host confirms it."""
        client = self.browser(funder)
        path = f"/items/{self.outcome.items[item]}"
        response = client.post(f"{path}/pledge", data={
            "csrf_token": self.form_token(client, path), "amount": amount, "currency": currency,
            "expiry_months": "12", "rail": "bank_transfer", "show_name": "y",
            "acknowledge_unmaintained": "y"})
        if response.status_code != 303:
            raise DemoError(f"the bank transfer pledge form answered {response.status_code}")
        pledge_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
        self.outcome.pledges[key] = pledge_id
        if arrives is None:
            self._said_pledge(funder, item, pledge_id, "by bank transfer (the transfer is still on its way)")
            return
        with self.step():
            pledge = db.session.get(Pledge, pledge_id)
            if not pledges.confirm_transfer(pledge_id, Money(pledge.amount_minor, pledge.currency), reference=arrives,
                                            received_on=utcnow().date(), actor=f"user:{self.outcome.people['host']}"):
                raise DemoError(f"pledge {pledge_id} was not held")
        self._said_pledge(funder, item, pledge_id, f"by bank transfer, confirmed by the fiscal host ({arrives})")

    def expiring_pledge(self, key: str, funder: str, item: str, amount_minor: int, currency: str) -> None:
        """A card pledge whose expiry is :data:`EXPIRY_SECONDS` ahead, made through the
        pledge service and Stripe Checkout as the pledge form makes one (the form offers months)."""
        with self.step():
            pledge = pledges.create(self.item(item), self.outcome.people[funder], Money(amount_minor, currency),
                                    rail=Rail.card, show_name=True,
                                    expires_at=utcnow() + timedelta(seconds=EXPIRY_SECONDS),
                                    actor=f"user:{self.outcome.people[funder]}")
            pledge_id = pledge.id
        with self.step(), self.app.test_request_context():
            session_id, _url = stripe_client.create_checkout_session(
                pledge_id, Money(amount_minor, currency), item_title=self.item(item).title,
                success_url=url_for_public("pledges.thanks", pledge_id=pledge_id) + "?session_id={CHECKOUT_SESSION_ID}",
                cancel_url=url_for_public("backlog.item", item_id=self.outcome.items[item]), locale="auto")
            pledges.record_checkout_session(pledge_id, session_id)
        self.stripe_event("checkout.session.completed", self.stripe.pay(session_id))
        self.outcome.pledges[key] = pledge_id
        self._said_pledge(funder, item, pledge_id, f"by card, to be refunded if not done within {EXPIRY_SECONDS} s")

    def _said_pledge(self, funder: str, item: str, pledge_id: int, how: str) -> None:
        with self.step():
            pledge = db.session.get(Pledge, pledge_id)
            repository, number, _branch = ITEMS[item]
            self.say(f"        {self.user(funder).display_name} pledges "
                     f"{format_money(pledge.amount_minor, pledge.currency)} to {repository}#{number} {how}: "
                     f"{pledge.state.value}")

    # --- claims and merges ------------------------------------------------------------

    def claim(self, who: str, item: str, plan: str, days: int, *, firm: bool = False) -> int:
        with self.step():
            claim = claims.request_claim(self.item(item), self.user(who), plan=plan, estimate_days=days,
                                         deadline=utcnow().date() + timedelta(days=days + 14),
                                         organisation_id=self.outcome.people["firm"] if firm else None)
            return claim.id

    def decide(self, claim_id: int, maintainer: str, *, approve: bool, note: str | None = None) -> None:
        with self.step():
            claim = db.session.get(Claim, claim_id)
            (claims.approve if approve else claims.reject)(claim, maintainer=self.user(maintainer), note=note)

    def pull_request(self, item: str, author: str, title: str, *, merged: bool) -> int:
        """The forge's part: a pull request saying "Fixes #N" is opened, or merged, on the
        item's repository; GitHub's signed ``pull_request`` delivery reaches ``/webhooks/github``.
        Returns the pull request's number."""
        repository, number, branch = ITEMS[item]
        owner, name = repository.split("/")
        person = next(p for p in CAST if p.key == author)
        pull_number = 20_000 + next(self._pull_numbers)
        now = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        account = {"login": person.github[1], "id": person.github[0], "type": "User"}
        pull = {
            "id": 3_100_000_000 + pull_number, "number": pull_number, "title": title,
            "body": f"Fixes #{number}\n\nTests added; reviewed with the maintainers.",
            "state": "closed" if merged else "open", "merged": merged, "merged_at": now if merged else None,
            "html_url": f"https://github.com/{repository}/pull/{pull_number}", "user": account, "labels": [],
            "base": {"ref": branch, "repo": {"full_name": repository}},
            "head": {"ref": f"fix-{number}", "repo": {"full_name": repository}},
            "created_at": now, "updated_at": now, "closed_at": now if merged else None,
        }
        # The repository's numeric id is left out: the commons learns it from the first
        # real delivery (a made-up one here would not be the local forge's).
        payload = {"action": "closed" if merged else "opened", "number": pull_number, "pull_request": pull,
                   "repository": {"name": name, "full_name": repository, "private": False, "default_branch": branch,
                                  "owner": {"login": owner, "type": "Organization"}},
                   "sender": account}
        raw = json.dumps(payload).encode()
        secret = self.app.config["GITHUB_WEBHOOK_SECRET"]
        status = self.post_json("/webhooks/github", payload, {
            "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": github_signature(raw, secret)})
        if status not in (200, 202):
            raise DemoError(f"the app answered {status} to the pull_request delivery")
        return pull_number

    # --- payout rails -----------------------------------------------------------------

    def stripe_onboarding(self, who: str) -> None:
        """``who`` sets up Stripe Connect (an Express account at the local Stripe) and
        completes the onboarding page; Stripe's ``account.updated`` tells the app."""
        with self.step(), self.app.test_request_context():
            user = self.user(who)
            profile_country = next(p.country for p in CAST if p.key == who)
            account_id = payouts.ensure_stripe_account(user, profile_country)
            link = stripe_client.create_account_link(account_id, refresh_url=url_for_public("payouts.settings"),
                                                     return_url=url_for_public("payouts.settings"))
        # The person presses "Complete onboarding" on Stripe's page (a POST to the link).
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            opener.open(urllib.request.Request(link, data=b"", method="POST"), timeout=60)
        except urllib.error.HTTPError as answer:
            if answer.code != 303:
                raise DemoError(f"the onboarding page answered {answer.code}") from None

    def manual_rail(self, who: str, details: str) -> None:
        with self.step():
            payouts.choose_manual_rail(self.outcome.people[who], details)

    def approve_payouts(self, key: str, item: str, maintainer: str, split: list[tuple[str, int]]) -> None:
        """The maintainer approves every payout proposed for ``item`` (one per currency),
        with ``split`` as (person, percentage) pairs."""
        with self.step():
            proposed = db.session.scalars(select(Payout).where(Payout.item_id == self.outcome.items[item])
                                          .order_by(Payout.currency)).all()
            if not proposed:
                raise DemoError(f"no payout was proposed for {item}")
            ids = [(p.id, p.currency) for p in proposed]
        for payout_id, currency in ids:
            with self.step():
                payouts.approve(payout_id, maintainer=self.user(maintainer),
                                recipients=[(self.outcome.people[who], percent * 100) for who, percent in split],
                                note="Merged and deployed on the demo server; thank you!")
            self.outcome.payouts[f"{key}-{currency.lower()}"] = payout_id

    def record_manual_payouts(self, prefix: str) -> None:
        """The fiscal host sends each share waiting for the manual rail and records its reference."""
        with self.step():
            shares = db.session.scalars(select(PayoutShare).where(
                PayoutShare.state == ShareState.awaiting_manual_payout).order_by(PayoutShare.id)).all()
            for share in shares:
                payouts.record_manual_payout(share.id, reference=f"{prefix}{share.id:05d}",
                                             paid_on=utcnow().date(), admin=self.user("host"))

    def say_proposed(self, item: str, author: str) -> None:
        with self.step():
            proposed = db.session.scalars(select(Payout).where(Payout.item_id == self.outcome.items[item])
                                          .order_by(Payout.id)).all()
            repository, number, _branch = ITEMS[item]
            amounts = " and ".join(format_money(sum(p.held_minor for p in pledges_of), payout.currency)
                                   for payout in proposed
                                   for pledges_of in [payouts.undisputed_pledges(payout.item_id, payout.currency)])
            self.say(f"        {author}'s pull request fixing {repository}#{number} merges: the app proposes "
                     f"{len(proposed)} payouts ({amounts}) to the claimant")

    def say_payout(self, key: str) -> None:
        with self.step():
            payout = db.session.get(Payout, self.outcome.payouts[key])
            shares = ", ".join(f"{share.recipient.display_name} {format_money(share.amount_minor, payout.currency)}"
                               f" ({share.rail.value if share.rail else '-'}: {share.state.value})"
                               for share in payout.shares)
            self.say(f"        payout {payout.id}: {format_money(payout.gross_minor, payout.currency)} gross, "
                     f"{format_money(payout.fee_minor, payout.currency)} fee: {shares} → {payout.state.value}")

    # --- co-investment ------------------------------------------------------------------

    def pool_figures(self, key: str) -> dict:
        with self.step():
            return pool_queries.figures(db.session.get(MatchingPool, self.outcome.pools[key]))

    def say_match(self, key: str, pledge_key: str) -> None:
        with self.step():
            pledge = db.session.get(Pledge, self.outcome.pledges[pledge_key])
            matched = sum(m.amount_minor for m in pool_queries.pledge_matches(pledge.id))
            pool = db.session.get(MatchingPool, self.outcome.pools[key])
            self.say(f"          → matched {format_money(matched, 'USD')}; the pool holds "
                     f"{format_money(pools.pool_balance(pool), 'USD')}")

    def ratio_pool(self) -> None:
        """The issue's ratio scenario, played live: the foundation pays the pool by
        card on its page, four pledges are matched, one is taken back, the window
        ends and the cron job refunds what is left to the foundation's card."""
        with self.step():
            grace = self.user("grace")
            pool = pools.create_pool(
                grace, name="Northwind SDG 3 match", currency="USD", budget_minor=50000,
                description="Northwind Health Foundation doubles gifts to health (SDG 3) items.",
                starts_at=utcnow() - timedelta(minutes=1), ends_at=utcnow() + timedelta(seconds=POOL_WINDOW_SECONDS),
                ratio_percent=100, cap_per_pledge_minor=10000, cap_per_funder_minor=15000, sdgs=[3])
            self.outcome.pools["ratio"] = pool.id
        client = self.browser("grace")
        path = f"/pools/{self.outcome.pools['ratio']}"
        response = client.post(f"{path}/checkout", data={"csrf_token": self.form_token(client, path)})
        location = response.headers.get("Location", "")
        if response.status_code != 303 or "/pay/" not in location:
            raise DemoError(f"the pool's card button answered {response.status_code}, not Stripe's Checkout")
        self.stripe_event("checkout.session.completed", self.stripe.pay(urlsplit(location).path.rsplit("/", 1)[-1]))
        if self.pool_figures("ratio")["remaining"] != 50000:
            raise DemoError("the pool's card payment did not fund it")
        self.say("Co-investment: the Northwind Health Foundation pays a 1:1 matching pool for SDG 3 items by card: "
                 "$500.00, at most $100.00 per pledge and $150.00 per funder")
        self.card_pledge("daniel-x", "daniel", "pool-x", "80.00", "USD")
        self.say_match("ratio", "daniel-x")
        self.card_pledge("daniel-y", "daniel", "pool-y", "100.00", "USD")
        self.say_match("ratio", "daniel-y")
        self.transfer_pledge("kwame-z", "kwame", "pool-z", "50.00", "USD", arrives="US-ACH-5521-77")
        self.say_match("ratio", "kwame-z")
        self.transfer_pledge("kwame-x", "kwame", "pool-x", "400.00", "USD", arrives="US-ACH-5521-78")
        self.say_match("ratio", "kwame-x")
        self.say("        Daniel Mensah takes his first pledge back: he gets $80.00, its match goes back to the pool")
        client = self.browser("daniel")
        path = f"/pledges/{self.outcome.pledges['daniel-x']}"
        response = client.post(f"{path}/refund", data={"csrf_token": self.form_token(client, path)})
        if response.status_code not in (302, 303):
            raise DemoError(f"the refund button answered {response.status_code}")
        with self.step():
            pool = db.session.get(MatchingPool, self.outcome.pools["ratio"])
            wait = (pool.ends_at - utcnow()).total_seconds()
        if wait > 0:
            time.sleep(wait + 0.1)
        with self.app.app_context():
            entry = next(entry for entry in schedule() if entry.name == "end-pools")
            ended = import_attribute(entry.func)()
        figures = self.pool_figures("ratio")
        if ended != [self.outcome.pools["ratio"]] or (figures["matched"], figures["returned"], figures["remaining"]) \
                != (17000, 33000, 0):
            raise DemoError(f"the pool ended as {ended} with {figures}")
        self.say("        The pool's window ends: the cron job refunds the $330.00 left to the foundation's card "
                 "(matched $170.00, returned $330.00)")

    def quadratic_round(self) -> None:
        """The issue's round: 1,000.00 by bank transfer; one funder × 100.00, four
        × 25.00, a hundred × 1.00; its page publishes the distribution."""
        with self.step():
            now = utcnow()
            pool = pools.create_pool(
                self.user("grace"), name="Northwind open-source health round", currency="USD", budget_minor=100000,
                kind=PoolKind.quadratic, starts_at=now, ends_at=now + timedelta(days=30),
                description="Divided at the end of the month by quadratic funding: many small gifts weigh most.")
            pools.confirm_budget(pool.id, Money(100000, "USD"), reference="NWHF-ROUND-2612",
                                 received_on=now.date(), actor=self.user("host"))
            self.outcome.pools["round"] = pool.id
        self.say("        A quadratic-funding round of $1,000.00 opens (paid by bank transfer)")
        self.transfer_pledge("lena-round-a", "lena", "round-a", "100.00", "USD", arrives="SEPA-DE-44-0240")
        for funder in ("daniel", "sofia", "kwame", "lena"):
            self.transfer_pledge(f"{funder}-round-b", funder, "round-b", "25.00", "USD",
                                 arrives=f"ROUND-B-{funder.upper()}")
        with self.step():
            host = self.user("host")
            for n in range(1, 101):
                neighbour = User(display_name=f"Neighbour {n}", email_verified_at=utcnow(), is_funder=True)
                neighbour.set_email(f"neighbour{n:03d}@example.org")
                db.session.add(neighbour)
                db.session.flush()
                pledge = pledges.create(self.item("round-c"), neighbour.id, Money(100, "USD"),
                                        rail=Rail.bank_transfer, actor=f"user:{neighbour.id}")
                pledges.give_transfer_reference(pledge)
                pledges.confirm_transfer(pledge.id, Money(100, "USD"), reference=f"NEIGHBOUR-{n:03d}",
                                         received_on=utcnow().date(), actor=f"user:{host.id}")
        self.say("        A hundred neighbours give $1.00 each to medic/cht-core#8120")
        with self.step():
            lines, left = pools.round_distribution(db.session.get(MatchingPool, self.outcome.pools["round"]))
            shares = [(line.item.id, line.raw_minor, line.share_minor) for line in lines]
        expected = [(self.outcome.items[key], raw, share) for key, raw, share in (
            ("round-a", 0, 0), ("round-b", 30000, 2941), ("round-c", 990000, 97059))]
        if sorted(shares) != sorted(expected) or left != 0:
            raise DemoError(f"the round's distribution is {shares}, {left} left")
        self.say("        The round's page publishes its distribution: raw matches $0.00, $300.00, $9,900.00; "
                 "shares $0.00, $29.41, $970.59")

    def project_fund(self) -> None:
        """Issue 18: two monthly subscribers to the Community Health Toolkit's fund
        (the foundation by card through Stripe Billing, Daniel Mensah by standing
        transfer) and an allotment by its maintainer through the fund page's form."""
        path = "/projects/community-health-toolkit/fund"
        client = self.browser("grace")
        response = client.post(f"{path}/subscribe", data={
            "csrf_token": self.form_token(client, path), "amount": "200.00", "currency": "USD", "rail": "card",
            "show_name": "y"})
        location = response.headers.get("Location", "")
        if response.status_code != 303 or "/pay/" not in location:
            raise DemoError(f"the subscribe form answered {response.status_code}, not Stripe's Checkout")
        session = self.stripe.pay(urlsplit(location).path.rsplit("/", 1)[-1])
        for event_type, obj in self.stripe.subscription_events(session):
            self.stripe_event(event_type, obj)
        self.say("Recurring funding: the Northwind Health Foundation subscribes $200.00 a month to the Community "
                 "Health Toolkit's fund by card (Stripe Billing); the first invoice is paid")
        client = self.browser("daniel")
        response = client.post(f"{path}/subscribe", data={
            "csrf_token": self.form_token(client, path), "amount": "50.00", "currency": "USD",
            "rail": "bank_transfer", "show_name": "y"})
        if response.status_code != 303:
            raise DemoError(f"the subscribe form answered {response.status_code}")
        sub_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
        with self.step():
            funds.record_transfer(sub_id, Money(5000, "USD"), reference="US-ACH-FUND-2612-01",
                                  received_on=utcnow().date(), actor=self.user("host"))
        self.say("        Daniel Mensah subscribes $50.00 a month by standing transfer; the fiscal host records "
                 "the first one")
        client = self.browser("priya")
        token = self.form_token(client, path)
        response = client.post(f"{path}/USD/allot", data={
            "usd-csrf_token": token, "usd-token": uuid.uuid4().hex, "usd-item": str(self.outcome.items["pool-y"]),
            "usd-amount": "150.00", "usd-reason": "Offline forms for community health workers: the most asked-for"})
        if response.status_code != 303 or "/funds/allotments/" not in response.headers.get("Location", ""):
            raise DemoError(f"the allot form answered {response.status_code}")
        with self.step():
            card = db.session.scalar(select(FundSubscription).where(FundSubscription.checkout_session_id
                                                                    == session["id"]))
            stripe_subscription, fund_id = card.stripe_subscription_id, card.fund_id
            parts = sorted(a["amount_minor"] for a in fund_queries.attribution_of(
                fund_queries.allotments_of(card.fund)[0]))
        if parts != [3000, 12000]:
            raise DemoError(f"the allotment was attributed {parts}")
        self.say("        Priya Raman allots $150.00 of the fund to medic/cht-core#10109 on the fund's page: "
                 "attributed $120.00 to the foundation and $30.00 to Daniel Mensah")
        if self.stripe.bill(stripe_subscription) is None:
            raise DemoError("the local Stripe made no second invoice")
        with self.step():
            held = funds.fund_balance(db.session.get(ProjectFund, fund_id))
        if held != 25000 - 15000 + 20000:
            raise DemoError(f"the fund holds {held}")
        self.say(f"        Month 2: the foundation's invoice is paid; the fund holds {self.money(held, 'USD')}")

    # --- the month ----------------------------------------------------------------------

    def play(self) -> Outcome:
        """Play the month; return what it produced. Raises :class:`DemoError` when the app
        does not do what a step expects."""
        self.cast()
        self.forge_presence()
        self.say("Week 1  Funders pledge")
        self.card_pledge("lena-pouchdb", "lena", "pouchdb", "250.00", "EUR")
        self.card_pledge("daniel-pouchdb", "daniel", "pouchdb", "100.00", "USD")
        self.transfer_pledge("grace-pouchdb", "grace", "pouchdb", "1500.00", "USD", arrives="NWHF-GRANT-2611-01")
        self.card_pledge("daniel-entities", "daniel", "entities", "400.00", "USD")
        self.transfer_pledge("lena-entities", "lena", "entities", "150.00", "EUR", arrives="SEPA-DE-44-0193")
        self.transfer_pledge("grace-workqueue", "grace", "workqueue", "2000.00", "USD",
                             arrives="NWHF-GRANT-2611-02")
        self.card_pledge("sofia-formpack", "sofia", "formpack", "80.00", "EUR")
        self.card_pledge("lena-formpack", "lena", "formpack", "120.00", "EUR")
        self.card_pledge("kwame-credentials", "kwame", "credentials", "120.00", "USD")
        self.card_pledge("daniel-credentials", "daniel", "credentials", "75.00", "USD")
        self.expiring_pledge("sofia-drought", "sofia", "drought", 6000, "USD")
        self.transfer_pledge("grace-drought", "grace", "drought", "300.00", "USD", arrives=None)

        self.say("        Ana Souza completes Stripe Connect onboarding; Otieno Ouma and Achieng Njeri "
                 "choose M-Pesa, paid by the fiscal host")
        self.stripe_onboarding("ana")
        self.manual_rail("otieno", "M-Pesa +254 712 000 101 (Otieno Ouma)")
        self.manual_rail("achieng", "M-Pesa +254 712 000 102 (Achieng Njeri)")

        self.say("Week 2  Implementors claim; maintainers decide")
        firm_claim = self.claim("otieno", "pouchdb", "Nairobi Code Collective: upgrade PouchDB to 9 with the "
                                "IndexedDB adapter behind a feature flag, migrate the existing databases, "
                                "and test on low-end Android phones.", 12, firm=True)
        rival = self.claim("rahul", "pouchdb", "Upgrade PouchDB and rewrite the adapter layer.", 20)
        self.decide(firm_claim, "priya", approve=True)
        self.decide(rival, "priya", approve=False, note="The Nairobi team's plan covers the migration; "
                    "have a look at the OpenCRVS workqueue search instead?")
        ana_claim = self.claim("ana", "entities", "Record entity processing errors as conflicts and show "
                               "them on the entity's page, with a migration for existing errors.", 8)
        self.decide(ana_claim, "tomas", approve=True)
        rahul_claim = self.claim("rahul", "workqueue", "Search box on the workqueue backed by the existing "
                                 "Elasticsearch index; filters by status and location.", 15)
        self.decide(rahul_claim, "ifeoma", approve=True)
        self.say("        Nairobi Code Collective (Otieno Ouma) claims cht-core#9534, approved; Rahul Verma's "
                 "claim on it is rejected with a note; Ana Souza claims central#688 and Rahul Verma "
                 "opencrvs-core#12427: approved")

        self.say("        Sofia Marino takes her kpi#810 pledge back while nobody works on it yet")
        client = self.browser("sofia")
        path = f"/pledges/{self.outcome.pledges['sofia-formpack']}"
        response = client.post(f"{path}/refund", data={"csrf_token": self.form_token(client, path)})
        if response.status_code not in (302, 303):
            raise DemoError(f"the refund button answered {response.status_code}")

        self.say("Week 3  Pull requests merge on GitHub (signed deliveries to /webhooks/github)")
        self.pull_request("pouchdb", "otieno", "Upgrade PouchDB to 9.0 with the IndexedDB adapter", merged=True)
        self.say_proposed("pouchdb", "Otieno Ouma")
        self.pull_request("entities", "ana", "Surface entity processing errors as conflicts", merged=True)
        self.say_proposed("entities", "Ana Souza")
        number = self.pull_request("workqueue", "rahul", "Workqueue search (work in progress)", merged=False)
        with self.step():
            state = db.session.get(Claim, rahul_claim).state.value
        self.say(f"        Rahul Verma opens opencrvs/opencrvs-core#{number} (\"Fixes #12427\"): his claim is {state}")
        self.say("        Kwame Asante's bank disputes his card payment (a chargeback)")
        with self.step():
            intent = db.session.get(Pledge, self.outcome.pledges["kwame-credentials"]).payment_intent_id
        self.stripe_event("charge.dispute.created", self.stripe.dispute(intent))

        self.say("Week 4  Maintainers approve the payouts (dispute window: 0 minutes in the demo)")
        self.approve_payouts("pouchdb", "pouchdb", "priya", [("otieno", 60), ("achieng", 40)])
        self.record_manual_payouts("MPESA-QK")
        self.approve_payouts("entities", "entities", "tomas", [("ana", 100)])
        for key in sorted(self.outcome.payouts, key=self.outcome.payouts.get):
            self.say_payout(key)
        self.say("        The chargeback is lost: the disputed money leaves escrow")
        self.stripe_event("charge.dispute.closed", self.stripe.dispute(intent, status="lost"))
        with self.step():
            pledge = db.session.get(Pledge, self.outcome.pledges["sofia-drought"])
            wait = (pledge.expires_at - utcnow()).total_seconds()
        if wait > 0:
            time.sleep(wait + 0.1)
        with self.app.app_context():
            # The cron job, found by its schedule entry and run as the in-process scheduler runs it.
            entry = next(entry for entry in schedule() if entry.name == "refund-expired-pledges")
            refunded = import_attribute(entry.func)()
        if refunded != [self.outcome.pledges["sofia-drought"]]:
            raise DemoError(f"the expiry cron refunded {refunded}")
        self.say("        Sofia Marino's ushahidi#5048 pledge expires: the cron job refunds it through Stripe")
        self.ratio_pool()
        self.quadratic_round()
        self.project_fund()
        with self.step():
            self.outcome.figures = ledger_figures()
            self.outcome.violations = [str(v) for v in check()]
        return self.outcome


def rebuild(app: Flask, say: Callable[[str], None]) -> None:
    """Migrations, the DPG registry and the recorded issues (``make seed``) on ``app``'s empty database."""
    with app.app_context():
        logging.disable(logging.INFO)  # the migrations' own log lines (alembic.ini turns them on)
        try:
            upgrade()
        finally:
            logging.disable(logging.NOTSET)
        import_registry(load_registry_file(SEED / "dpg" / "registry.json"))
        import_screening(load_screening_file(SEED / "dpg" / "screening.json"))  # deployment countries
        summaries = load_snapshot(SEED / "dpg-issues")
        db.session.commit()
        items = db.session.scalar(select(func.count(BacklogItem.id)))
    say(f"Seeded: the DPG registry and {len(summaries)} repositories' recorded issues ({items} items)")


def play(database_url: str, *, secret_key: str, state_dir: Path, public_url: str,
         say: Callable[[str], None] = print) -> Outcome:
    """Rebuild ``database_url`` (which must be empty) and play the month on it.

    ``state_dir`` receives the local Stripe's state (``local-stripe.json``),
    the local forge's (``local-forge.json``: the living comments and labels)
    and the e-mails sent (``mail/``): what ``serve.py`` reads beside the
    database. ``public_url`` is where the demo will be served (links in
    e-mails and Stripe's return addresses). Webhook secrets are derived from
    ``secret_key`` as :mod:`marketplace.standins.serve` derives them. Returns
    the :class:`Outcome`; raises :class:`DemoError` when a step fails.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    stripe_secret = "whsec_" + derived_secret(secret_key, "stripe")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": secret_key, "REDIS_URL": None,
        "STRIPE_API_KEY": "sk_test_local", "STRIPE_WEBHOOK_SECRET": stripe_secret,
        "GITHUB_WEBHOOK_SECRET": derived_secret(secret_key, "github"), "GITHUB_TOKEN": None,
        "GITHUB_APP_ID": None, "MAIL_SERVER": None, "MAIL_OUTBOX_DIR": str(state_dir / "mail"),
        "PUBLIC_URL": public_url, "SESSION_COOKIE_SECURE": False, "REMEMBER_COOKIE_SECURE": False,
        "PAYOUT_DISPUTE_WINDOW_MINUTES": 0, "PAYOUT_MANUAL_COUNTRIES": [], "DEMO": True,
        "RATELIMIT_ENABLED": False,
    })
    reasons = refusals(app.config)
    if reasons:
        raise DemoError("The demo cannot run here: " + "; ".join(reasons) + ".")
    rebuild(app, say)
    # The migrations configure logging (alembic.ini); the demo's own lines are what to read.
    for name in ("alembic", "werkzeug", app.logger.name):
        logging.getLogger(name).setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app_url = f"http://127.0.0.1:{server.server_port}"
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    stripe = LocalStripe(webhook_url=app_url + "/webhooks/stripe", webhook_secret=stripe_secret,
                         state_path=str(state_dir / "local-stripe.json"))
    app.config["STRIPE_API_BASE"] = stripe.url
    # The living comment's writes (issue 22) go to the local forge, whose state serve.py loads.
    forge = LocalForge(webhook_url=app_url + "/webhooks/github", webhook_secret=app.config["GITHUB_WEBHOOK_SECRET"],
                       state_path=str(state_dir / "local-forge.json"))
    app.config["GITHUB_API_URL"] = forge.url
    try:
        outcome = Month(app, stripe, app_url, say).play()
    finally:
        stripe.save()
        stripe.stop()
        forge.save()
        forge.stop()
        server.shutdown()
        server.server_close()
        with app.app_context():
            db.engine.dispose()
    return outcome


def summary_lines(outcome: Outcome) -> list[str]:
    """The month's figures per currency (from :attr:`Outcome.figures`), one line each."""
    lines = []
    for currency, figures in outcome.figures.items():
        parts = [f"{label} {format_money(figures[name], currency)}" for name, label in (
            ("received", "received"), ("held", "held in escrow"), ("paid", "paid out"), ("owed", "owed"),
            ("fees", "fees"), ("refunded", "refunded"), ("lost", "lost to a chargeback"),
            ("pools_in", "paid into matching pools"), ("pools_held", "held by pools"),
            ("pools_returned", "returned to sponsors"), ("funds_in", "paid into project funds"),
            ("funds_held", "held by project funds")) if figures[name] or
            name in ("received", "held", "paid", "refunded")]
        lines.append(f"  {currency}: " + ", ".join(parts))
    return lines


def _database_path(text: str) -> Path:
    path = Path(text).resolve()
    if path == (config_module.INSTANCE_DIR / "backlog.sqlite3").resolve():
        raise SystemExit("That is make run's database; the demo keeps its own (default instance/demo/demo.sqlite3).")
    return path


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv``, rebuild the demo database, play the month and print its figures.
    Exits 1 when a step fails or the ledger check finds a violation."""
    parser = argparse.ArgumentParser(prog="python -m marketplace.standins.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--database", default=str(DEFAULT_DATABASE),
                        help="SQLite file, deleted and built again (default: %(default)s)")
    parser.add_argument("--port", type=int, default=5001, help="where the demo will be served (for links)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    path = _database_path(args.database)
    config = config_module.from_environment()
    if not config.get("SECRET_KEY"):
        raise SystemExit("Set SECRET_KEY (make demo uses instance/secret_key).")
    path.parent.mkdir(parents=True, exist_ok=True)
    state_dir = path.parent / "standins"
    path.unlink(missing_ok=True)
    shutil.rmtree(state_dir, ignore_errors=True)  # the stand-ins' memory of the previous demo
    public_url = f"http://127.0.0.1:{args.port}"
    started = time.monotonic()
    print(f"Playing a month of Backlog Commons on {path} (rebuilt from scratch)", flush=True)
    try:
        outcome = play(f"sqlite:///{path}", secret_key=config["SECRET_KEY"], state_dir=state_dir,
                       public_url=public_url, say=lambda line: print(line, flush=True))
    except DemoError as exc:
        raise SystemExit(f"The demo stopped: {exc}") from None
    for violation in outcome.violations:
        print(violation, file=sys.stderr)
    if outcome.violations:
        raise SystemExit(f"{len(outcome.violations)} ledger invariant violations")
    print("ledger ok: every invariant holds")
    print("The month in figures, from the ledger:")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}", "SECRET_KEY": config["SECRET_KEY"]})
    with app.app_context():
        print("\n".join(summary_lines(outcome)))
    print(f"Played in {time.monotonic() - started:.0f} s. Sign in at {public_url}/login as a maintainer "
          f"(priya.raman@example.org), a funder (lena.fischer@example.org), an implementor "
          f"(ana.souza@example.org) or the fiscal host's admin (wanjiru.kamau@example.org); "
          f"password: {PASSWORD}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
