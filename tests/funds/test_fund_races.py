"""A fund raced in two real PostgreSQL sessions: two maintainers allotting
the last money of a fund at once — one allotment is made, the other refused."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.backlog.models import BacklogItem, ItemState
from marketplace.extensions import db
from marketplace.forges.models import ForgeKind, Repository
from marketplace.funds import service as funds
from marketplace.funds.models import Allotment, ProjectFund, SubscriptionRail
from marketplace.ledger import service as ledger
from marketplace.ledger.check import check
from marketplace.ledger.models import AccountKind
from marketplace.money import Money
from marketplace.projects.models import MemberProject, ProjectMaintainer, RegistryStatus
from marketplace.timeutil import utcnow
from tests.races import at_once, race_database_app


@pytest.fixture
def race_app(database_url):
    with race_database_app(database_url, f"{sa.make_url(database_url).database}_fund_race") as app:
        yield app


def _person(email: str, admin: bool = False) -> User:
    user = User(display_name=email.split("@")[0], is_admin=admin, email_verified_at=utcnow())
    user.set_email(email)
    db.session.add(user)
    db.session.flush()
    return user


@pytest.mark.postgres
def test_two_maintainers_allotting_the_last_30_of_a_fund_at_once_make_one_allotment(race_app, monkeypatch):
    with race_app.app_context():
        now = utcnow()
        project = MemberProject(slug="race-fund", name="Race", registry_status=RegistryStatus.active, admitted_at=now)
        repo = Repository(project=project, forge=ForgeKind.github, host="github.com", owner="race", name="fund",
                          path_key="race/fund", url="https://github.com/race/fund")
        db.session.add_all([project, repo])
        db.session.flush()
        maintainers = [_person(f"m{n}@example.org") for n in range(2)]
        for person in maintainers:
            db.session.add(ProjectMaintainer(project_id=project.id, user_id=person.id, granted_by="test"))
        items = []
        for n in range(2):
            item = BacklogItem(repository=repo, forge_host="github.com", forge_id=990000 + n, number=n + 1,
                               title=f"Race {n}", state=ItemState.open, html_url=f"https://github.com/race/fund/{n}",
                               forge_created_at=now, forge_updated_at=now)
            db.session.add(item)
            db.session.flush()
            items.append(item.id)
            # Made beforehand: two sessions creating one row at once would wait on its unique key, hiding the race.
            ledger.account(AccountKind.item_escrow, item_id=item.id)
            ledger.funding_row(item.id, "USD")
        fund = funds.fund_of(project, "USD")
        sub = funds.subscribe(fund, _person("sub@example.org"), 3000, rail=SubscriptionRail.bank_transfer)
        funds.record_transfer(sub.id, Money(3000, "USD"), reference="RACE", received_on=now.date(),
                              actor=_person("host@example.org", admin=True))
        db.session.commit()
        fund_id, maintainer_ids = fund.id, [m.id for m in maintainers]
        db.session.remove()

    # Each session, once it has read what the fund holds, waits for the other to
    # have read it too: without the fund's row lock both read 30.00 and allot it.
    # With it, the second cannot read before the first commits; the first stops
    # waiting after a second and goes on.
    read_both = threading.Barrier(2, timeout=1)
    balance = funds.fund_balance

    def balance_then_wait(fund):
        amount = balance(fund)
        try:
            read_both.wait()
        except threading.BrokenBarrierError:
            pass
        return amount

    monkeypatch.setattr(funds, "fund_balance", balance_then_wait)

    def allot(n):
        def run():
            with race_app.app_context():
                try:
                    item = db.session.get(BacklogItem, items[n])
                    funds.allot(fund_id, item, 3000, reason=f"race {n}",
                                maintainer=db.session.get(User, maintainer_ids[n]))
                    db.session.commit()
                    return "allotted"
                except funds.FundError:
                    db.session.rollback()
                    return "refused"
                finally:
                    db.session.remove()
        return run

    assert sorted(at_once(allot(0), allot(1))) == ["allotted", "refused"]
    with race_app.app_context():
        assert [a.amount_minor for a in db.session.scalars(select(Allotment))] == [3000]
        assert funds.fund_balance(db.session.get(ProjectFund, fund_id)) == 0
        assert check() == []
