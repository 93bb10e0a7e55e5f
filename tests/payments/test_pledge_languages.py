"""The pledge form reads amounts typed the reader's way, and refuses an
ambiguous one with a message in the reader's language, keeping what was typed."""
from sqlalchemy import func, select

from marketplace.pledges.models import Pledge
from tests.accounts.helpers import csrf, signup
from tests.payments.test_checkout import an_item


def _pledge(client, item, amount, currency="EUR"):
    return client.post(f"/items/{item.id}/pledge", data={
        "csrf_token": csrf(client, f"/items/{item.id}"), "amount": amount, "currency": currency,
        "expiry_months": "12", "rail": "bank_transfer", "confirm_large": "y",
        "acknowledge_unmaintained": "y"})  # the seeded projects have no maintainer (issue 20)


def test_a_french_reader_pledges_1_234_50_euros_typed_with_a_space(client, session):
    item = an_item(session)
    signup(client, "awa@example.org", "Awa", funder=True)
    client.set_cookie("lang", "fr")
    response = _pledge(client, item, "1 234,50")
    assert response.status_code == 303
    pledge = session.scalars(select(Pledge)).one()
    assert (pledge.amount_minor, pledge.currency) == (123450, "EUR")


def test_a_portuguese_reader_typing_1_234_is_asked_which_they_meant_and_nothing_is_created(client, session):
    item = an_item(session)
    signup(client, "ana@example.org", "Ana", funder=True)
    client.set_cookie("lang", "pt")
    response = _pledge(client, item, "1.234")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert ("&#39;1.234&#39; pode ser lido de duas formas aqui. Digite 1.234,00 para o número inteiro, "
            "ou 1,234 para uma fração.") in page
    assert 'value="1.234"' in page  # what was typed stays in the form
    assert session.scalar(select(func.count()).select_from(Pledge)) == 0
