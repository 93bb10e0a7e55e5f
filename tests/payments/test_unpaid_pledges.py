"""Issue 20: unpaid pledges (an unfinished Checkout, a transfer not sent) are no
public money; their funder can go back to Checkout or cancel."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.ledger.check import check
from marketplace.pledges.models import Pledge, PledgeState, Rail
from tests.accounts.helpers import csrf, signup
from tests.payments.test_checkout import an_item, pledge_through_the_page, stripe_server  # noqa: F401


def test_unpaid_card_and_bank_pledges_show_no_money_on_public_pages(app, client, session, stripe_server):  # noqa: F811
    item = an_item(session)
    signup(client, "funder@example.org", "Funder", funder=True)
    pledge_through_the_page(client, item, "4321.00")
    pledge_through_the_page(client, item, "8765.00", rail="bank_transfer")
    assert {p.state for p in session.scalars(select(Pledge))} == {PledgeState.pending}
    visitor = app.test_client()
    for path in ("/", f"/items/{item.id}", "/transparency", "/projects", f"/projects/{item.repository.project.slug}"):
        page = visitor.get(path).get_data(as_text=True)
        assert "4,321" not in page and "8,765" not in page, path
    assert "2 pledges, not counted until their money arrives" in visitor.get(f"/items/{item.id}").get_data(as_text=True)
    api = visitor.get(f"/api/v1/items/{item.id}").get_json()
    assert api["bounty"] == [] and api["pledges_awaiting_payment"] == 2
    assert check() == []


def test_own_unpaid_card_pledge_offers_pay_again_and_cancel_and_pay_again_returns_to_checkout(
        client, session, stripe_server):  # noqa: F811
    item = an_item(session)
    signup(client, "funder@example.org", "Funder", funder=True)
    pledge_through_the_page(client, item, "50.00")
    pledge = session.scalars(select(Pledge)).one()
    page = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert f'action="/pledges/{pledge.id}/pay"' in page and f'action="/pledges/{pledge.id}/cancel"' in page
    sessions_before = len(stripe_server.sessions)
    again = client.post(f"/pledges/{pledge.id}/pay", data={"csrf_token": csrf(client, f"/pledges/{pledge.id}")})
    assert again.status_code == 303
    assert again.headers["Location"] == f"{stripe_server.url}/pay/{pledge.checkout_session_id}"
    assert len(stripe_server.sessions) == sessions_before  # the same session, none created
    stripe_server.expire(pledge.checkout_session_id)
    ended = client.post(f"/pledges/{pledge.id}/pay", data={"csrf_token": csrf(client, f"/pledges/{pledge.id}")},
                        follow_redirects=True)
    assert "This Checkout has ended" in ended.get_data(as_text=True)
    session.refresh(pledge)
    assert pledge.state is PledgeState.pending
    assert check() == []


def test_own_unpaid_bank_pledge_offers_cancel_but_not_checkout(client, session, stripe_server):  # noqa: F811
    item = an_item(session)
    signup(client, "funder@example.org", "Funder", funder=True)
    pledge_through_the_page(client, item, "50.00", rail="bank_transfer")
    pledge = session.scalars(select(Pledge).where(Pledge.rail == Rail.bank_transfer)).one()
    page = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
    assert f'action="/pledges/{pledge.id}/cancel"' in page and f'action="/pledges/{pledge.id}/pay"' not in page
    assert pledge.transfer_reference in page
