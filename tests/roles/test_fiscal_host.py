"""Issue 20: the fiscal host is configured once and named where pages send people to it."""
from __future__ import annotations

from sqlalchemy import select

from marketplace.fiscal_host import bank_instructions, contact
from marketplace.pledges.models import Pledge
from tests.accounts.helpers import csrf, signup
from tests.payments.test_checkout import an_item


def _configured(app, **values):
    saved = {key: app.config.get(key) for key in values}
    app.config.update(values)
    return saved


def test_bank_pledge_page_names_the_fiscal_host_with_its_contact_and_the_currency_s_instructions(app, client, session):
    saved = _configured(app, FISCAL_HOST_NAME="Open Source Center Accra", FISCAL_HOST_EMAIL="host@osc.example",
                        BANK_TRANSFER_INSTRUCTIONS_BY_CURRENCY={"EUR": "IBAN DE00 1234 (EUR account)"})
    try:
        assert contact() == "Open Source Center Accra (host@osc.example)"
        assert bank_instructions("eur") == "IBAN DE00 1234 (EUR account)"
        assert bank_instructions("USD") == app.config["BANK_TRANSFER_INSTRUCTIONS"]
        item = an_item(session)
        signup(client, "funder@example.org", "Funder", funder=True)
        client.post(f"/items/{item.id}/pledge", data={
            "csrf_token": csrf(client, f"/items/{item.id}"), "amount": "30.00", "currency": "EUR",
            "expiry_months": "12", "rail": "bank_transfer", "acknowledge_unmaintained": "y"})
        pledge = session.scalars(select(Pledge)).one()
        page = client.get(f"/pledges/{pledge.id}").get_data(as_text=True)
        assert "IBAN DE00 1234 (EUR account)" in page and pledge.transfer_reference in page
        assert "Open Source Center Accra, the fiscal host, confirms the transfer" in page
        assert 'href="mailto:host@osc.example"' in page
        refused = client.post(f"/pledges/{pledge.id}/refund", data={"csrf_token": csrf(client, f"/pledges/{pledge.id}")},
                              follow_redirects=True).get_data(as_text=True)
        assert "write to Open Source Center Accra (host@osc.example) with your pledge reference" in refused
    finally:
        app.config.update(saved)
