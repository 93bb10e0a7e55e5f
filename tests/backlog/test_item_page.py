"""The item page is built in one place: each domain's section gives its data and its partial."""
from sqlalchemy import select

from marketplace.backlog.item_page import SECTIONS, item_page_context
from marketplace.backlog.models import BacklogItem


def test_the_item_page_has_the_pledge_claim_and_payout_sections_in_page_order(app, session):
    assert [(s.name, s.template) for s in SECTIONS] == [
        ("pledges", "pledges/_item_section.html"),
        ("pools", "pools/_item_section.html"),
        ("training", "training/_item_section.html"),  # issue 19: whether it is a training item
        ("funds", "funds/_item_section.html"),
        ("claims", "claims/_item_section.html"),
        ("payouts", "payouts/_item_section.html"),
        ("presence", "presence/_item_section.html"),  # issue 22: the badge to copy
        ("follow", "roles/_item_section.html"),  # issue 20: follow without pledging
    ]
    for section in SECTIONS:
        app.jinja_env.get_template(section.template)  # the partial exists and parses


def test_a_visitors_item_page_context_has_each_sections_data_and_no_forms(app, session):
    item = session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))
    with app.test_request_context(f"/items/{item.id}"):
        context = item_page_context(item)
    assert context["sections"] == SECTIONS
    assert context["pledges"]["form"] is None and context["pledges"]["error"] is None
    assert context["pledges"]["closed"] is False
    assert context["pledges"]["funders"] == [] and context["pledges"]["awaiting_payment"] == 0
    assert context["claims"] == {"rows": [], "form": None, "error": None, "solved": False, "unmaintained": True}
    assert context["pledges"]["unmaintained"] is True  # issue 20: the seeded project has no maintainer
    assert context["payouts"] == {"rows": [], "paid_out": []}
    assert (context["pools"]["matched"], context["pools"]["preview"]) == ([], [])
    assert context["funds"] == {"allotments": [], "project": item.repository.project}


def test_a_form_shown_again_reaches_only_its_own_section(app, session):
    item = session.scalar(select(BacklogItem).where(BacklogItem.number == 10720))
    with app.test_request_context(f"/items/{item.id}"):
        again = {"claims": {"form": None, "error": "Please correct the marked fields."}}
        context = item_page_context(item, again=again)
    assert context["claims"]["error"] == "Please correct the marked fields."
    assert context["pledges"]["error"] is None
