"""Issue 20: /projects searches names, sorts by name, open items or funded, and
hides the projects with no open item by default, saying how many."""
from __future__ import annotations

import re

from sqlalchemy import select

from marketplace.projects.models import MemberProject
from marketplace.projects.queries import funded_totals, open_item_counts


def _names(page: str) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/projects/[^"]+">([^<]+)</a>', page)


def test_projects_without_open_items_are_hidden_and_counted_and_shown_on_request(client, session):
    counts = open_item_counts()
    every = session.scalars(select(MemberProject)).all()
    empty = [p for p in every if not counts.get(p.id)]
    assert empty and len(empty) < len(every)
    page = client.get("/projects").get_data(as_text=True)
    shown = _names(page)
    assert len(shown) == len(every) - len(empty)
    assert f"{len(empty)} projects with no open item are hidden." in page or (
        len(empty) == 1 and "1 project with no open item is hidden." in page)
    assert not set(shown) & {p.name for p in empty}
    everything = client.get("/projects?all=1").get_data(as_text=True)
    assert len(_names(everything)) == len(every) and "is hidden" not in everything and "are hidden" not in everything


def test_project_search_by_name_is_case_insensitive(client, session):
    counts = open_item_counts()
    project = next(p for p in session.scalars(select(MemberProject).order_by(MemberProject.id)) if counts.get(p.id))
    needle = project.name[1:5].swapcase() if len(project.name) > 5 else project.name.upper()
    shown = _names(client.get("/projects", query_string={"q": needle, "all": "1"}).get_data(as_text=True))
    assert project.name in shown
    assert all(needle.casefold() in name.casefold() for name in shown)
    nothing = client.get("/projects", query_string={"q": "zzqq-no-such-project"}).get_data(as_text=True)
    assert _names(nothing) == [] and "No member project matches." in nothing


def test_a_project_with_held_money_comes_first_when_sorted_by_funded(client, session):
    from marketplace.accounts.models import User
    from marketplace.backlog.models import BacklogItem
    from marketplace.backlog.queries import state_condition
    from marketplace.forges.models import Repository
    from marketplace.ledger.check import check
    from marketplace.money import Money
    from marketplace.pledges import service as pledges
    from marketplace.pledges.models import Rail
    from tests.accounts.helpers import person

    counts = open_item_counts()
    by_name = _names(client.get("/projects").get_data(as_text=True))
    last = session.scalar(select(MemberProject).where(MemberProject.name == by_name[-1]))
    item = session.scalar(select(BacklogItem).join(Repository).where(
        Repository.project_id == last.id, BacklogItem.hidden.is_(False), state_condition("open")).limit(1))
    funder: User = person(session, "funder@example.org")
    pledge = pledges.create(item, funder.id, Money(98765, "USD"), rail=Rail.bank_transfer, actor="test")
    pledges.mark_received(pledge.id, Money(98765, "USD"), actor="test")
    session.commit()
    page = client.get("/projects?sort=funded").get_data(as_text=True)
    assert _names(page)[0] == last.name and "$987.65" in page
    assert counts.get(last.id)
    assert check() == []


def test_projects_sort_by_open_items_and_by_funded(client, session):
    counts = open_item_counts()
    by_open = _names(client.get("/projects?sort=open").get_data(as_text=True))
    names = {p.name: p.id for p in session.scalars(select(MemberProject))}
    opens = [counts[names[name]] for name in by_open]
    assert opens == sorted(opens, reverse=True) and len(set(opens)) > 1
    by_name = _names(client.get("/projects").get_data(as_text=True))
    assert by_name == sorted(by_name, key=str.casefold)
    funded = funded_totals("USD")
    by_funded = _names(client.get("/projects?sort=funded").get_data(as_text=True))
    amounts = [funded.get(names[name], 0) for name in by_funded]
    assert amounts == sorted(amounts, reverse=True)


def test_an_unknown_project_sort_is_refused_with_a_message(client, session):
    response = client.get("/projects?sort=price")
    assert response.status_code == 400 and "Sort by name, open items or funded." in response.get_data(as_text=True)
