"""Languages: how a page's language is chosen and remembered, the footer's
choice without JavaScript, ``<html lang>``, money, numbers and dates written
and read each language's way, and the JSON API's error messages."""
from __future__ import annotations

import re
from datetime import date

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from marketplace.accounts.models import User
from marketplace.i18n import format_money
from marketplace.money import Money, MoneyError, parse_amount
from tests.accounts.helpers import csrf, login, signup

NBSP, NNBSP = "\u00a0", "\u202f"


def html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)">', response.get_data(as_text=True)).group(1)


@pytest.mark.parametrize("header, expected", [
    ("fr-FR,fr;q=0.9,en;q=0.5", "fr"),
    ("pt-BR,pt;q=0.9", "pt"),
    ("es-MX", "es"),
    ("de-DE,de;q=0.9", "en"),  # not offered: English
    ("", "en"),
])
def test_accept_language_chooses_the_page_language(client, header, expected):
    assert html_lang(client.get("/about", headers={"Accept-Language": header})) == expected


def test_lang_in_a_link_wins_and_later_pages_keep_it(client):
    response = client.get("/about?lang=es", headers={"Accept-Language": "fr"})
    assert html_lang(response) == "es"
    assert "lang=es" in response.headers["Set-Cookie"]
    # The next page, with no ?lang=, stays in Spanish whatever the browser asks for.
    assert html_lang(client.get("/projects", headers={"Accept-Language": "fr"})) == "es"


def test_an_unknown_lang_is_ignored_and_not_remembered(client):
    response = client.get("/about?lang=xx", headers={"Accept-Language": "pt"})
    assert html_lang(response) == "pt"
    assert "Set-Cookie" not in response.headers or "lang=" not in response.headers["Set-Cookie"]


def test_footer_offers_every_language_as_plain_links_to_visitors(client):
    page = client.get("/about?x=1").get_data(as_text=True)
    nav = re.search(r'<nav class="languages".*?</nav>', page, re.S).group(0)
    links = re.findall(r'<a href="([^"]+)" hreflang="(\w+)" lang="(\w+)"[^>]*>([^<]+)</a>', nav)
    assert links == [("/about?x=1&amp;lang=en", "en", "en", "English"),
                     ("/about?x=1&amp;lang=fr", "fr", "fr", "français"),
                     ("/about?x=1&amp;lang=es", "es", "es", "español"),
                     ("/about?x=1&amp;lang=pt", "pt", "pt", "português")]
    assert "<script" not in page and 'name="csrf_token"' not in page


def test_footer_offers_every_language_as_a_plain_form_when_signed_in(client, session):
    signup(client, "footer@example.org", "Footer")
    page = client.get("/about").get_data(as_text=True)
    form = re.search(r'<form method="post" action="/language" class="languages".*?</form>', page, re.S).group(0)
    buttons = re.findall(r'<button type="submit" name="lang" value="(\w+)" lang="(\w+)"[^>]*>([^<]+)</button>', form)
    assert buttons == [("en", "en", "English"), ("fr", "fr", "français"), ("es", "es", "español"),
                       ("pt", "pt", "português")]
    assert '<input type="hidden" name="next" value="/about">' in form


def test_the_footer_choice_is_kept_in_a_cookie_and_goes_back_to_the_page(client):
    response = client.post("/language", data={"lang": "pt", "next": "/projects?page=2",
                                              "csrf_token": csrf(client, "/login")})
    assert (response.status_code, response.headers["Location"]) == (303, "/projects?page=2")
    assert html_lang(client.get("/about", headers={"Accept-Language": "fr"})) == "pt"


def test_the_footer_refuses_an_unknown_language_and_a_foreign_next(client):
    token = csrf(client, "/login")
    assert client.post("/language", data={"lang": "xx", "csrf_token": token}).status_code == 400
    response = client.post("/language", data={"lang": "fr", "next": "//evil.example/", "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_a_signed_in_choice_becomes_the_accounts_language_on_every_device(app, client, session):
    signup(client, "lina@example.org", "Lina")
    client.post("/language", data={"lang": "fr", "next": "/about", "csrf_token": csrf(client, "/login")})
    user = session.scalar(select(User).where(User.email == "lina@example.org"))
    assert user.preferred_language == "fr"
    other = app.test_client()  # another browser: no cookie, English asked for
    login(other, "lina@example.org")
    assert html_lang(other.get("/about", headers={"Accept-Language": "en"})) == "fr"
    assert "Les pages et les e-mails sont en français." in other.get("/account").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/", "/about", "/projects", "/sdgs", "/transparency", "/login", "/signup",
                                  "/no-such-page"])
def test_html_lang_is_the_chosen_language_on_every_page(client, path):
    client.set_cookie("lang", "es")
    assert html_lang(client.get(path)) == "es"


@pytest.mark.parametrize("locale, minor, currency, written", [
    ("fr", 123450, "EUR", f"1{NNBSP}234,50{NBSP}€"),
    ("pt", 123450, "BRL", f"R${NBSP}1.234,50"),
    ("es", 1234550, "USD", f"12.345,50{NBSP}US$"),
    ("en", 123450, "USD", "$1,234.50"),
    ("fr", 1234, "JPY", f"1{NNBSP}234{NBSP}JPY"),
])
def test_money_is_written_each_languages_way(app, locale, minor, currency, written):
    with app.test_request_context("/"), force_locale(locale):
        assert format_money(minor, currency) == written


def test_dates_and_numbers_follow_the_page_language(client, app):
    env = app.jinja_env
    for locale, day, number in [("fr", "1 déc. 2026", f"1{NNBSP}234,5"), ("pt", "1 de dez. de 2026", "1.234,5"),
                                ("es", "1 dic 2026", "1.234,5"), ("en", "Dec 1, 2026", "1,234.5")]:
        with app.test_request_context("/"), force_locale(locale):
            assert env.from_string("{{ d|date }}").render(d=date(2026, 12, 1)) == day
            assert env.from_string("{{ n|number }}").render(n=1234.5) == number


@pytest.mark.parametrize("text, locale, minor", [
    ("1 234,50", "fr", 123450),  # typed with an ordinary space
    (f"1{NBSP}234,50", "fr", 123450),
    (f"1{NNBSP}234,50", "fr", 123450),
    ("1234,5", "fr", 123450),
    ("1 234 567,89", "fr", 123456789),
    ("1.234,50", "pt", 123450),
    ("1.234,50", "es", 123450),
    ("50", "pt", 5000),
    ("12,5", "es", 1250),
    ("1.234.567", "pt", 123456700),
])
def test_amounts_typed_the_local_way_are_read(text, locale, minor):
    assert parse_amount(text, "EUR", locale, ("EUR",)) == Money(minor, "EUR")


@pytest.mark.parametrize("text, locale, message", [
    ("1.234", "pt", "'1.234' can be read two ways here. Type 1.234,00 for the whole number, or 1,234 for a fraction."),
    ("1,234", "es", "'1,234' can be read two ways here. Type 1.234,00 for the whole number, or 1,234 for a fraction."),
    ("1.234", "fr", f"'1.234' can be read two ways here. Type 1{NNBSP}234,00 for the whole number, or 1,234 for a "
                    "fraction."),
    ("1,234.50", "pt", "'1,234.50' is not written the way amounts are written here; type 1.234,50."),
    ("1,234.50", "fr", f"'1,234.50' is not written the way amounts are written here; type 1{NNBSP}234,50."),
    ("12.5", "es", "'12.5' is not written the way amounts are written here; type 12,50."),
    ("1.234,50", "en", "'1.234,50' is not written the way amounts are written here; type 1,234.50."),
    ("1,2,3", "fr", "'1,2,3' is not an amount."),
])
def test_ambiguous_or_foreign_amounts_are_refused_with_the_local_way(text, locale, message):
    with pytest.raises(MoneyError) as refused:
        parse_amount(text, "EUR", locale, ("EUR",))
    assert str(refused.value) == message


@pytest.mark.parametrize("text, expected", [
    ("The form should be saved when the user is offline, and it is not possible to submit it from the app.", "en"),
    ("Le formulaire doit être enregistré lors de la perte du réseau, et il n'est pas possible de le soumettre "
     "avec une connexion lente pour les agents de santé.", "fr"),
    ("El formulario no se guarda cuando la conexión se pierde y los datos de la encuesta se borran para el "
     "usuario.", "es"),
    ("O formulário não é salvo quando a conexão cai e os dados da pesquisa são apagados para o agente de saúde.",
     "pt"),
    ("Improve workqueue performance", None),  # too short to tell
    ("", None),
])
def test_the_language_of_forge_text_is_told_only_when_clear(app, text, expected):
    from marketplace.i18n import text_language

    with app.app_context():
        assert text_language(text) == expected


def test_the_item_page_marks_the_issue_text_with_its_language(client):
    client.set_cookie("lang", "fr")
    listing = client.get("/").get_data(as_text=True)
    for path in re.findall(r'href="(/items/[^"]+)"', listing):
        page = client.get(path).get_data(as_text=True)
        if '<div class="markdown" lang="en">' in page:
            assert re.search(r'<h1 lang="en">', page)
            assert '<html lang="fr">' in page
            break
    else:
        pytest.fail("no item of the seed data has an English description detected as such")


def test_answers_vary_by_language_for_caches(client):
    assert {"Accept-Language", "Cookie"} <= set(client.get("/about").vary)
    assert "Accept-Language" in client.get("/api/v1/projects").vary


def test_a_page_translates_with_its_locale_and_an_email_inside_it_with_its_own(app):
    # Templates' _() remembers the page's translations (marketplace.i18n.page_translations):
    # force_locale inside the request (an e-mail in the recipient's language) and
    # refresh() after a language change must still be followed.
    from flask_babel import refresh

    render = app.jinja_env.from_string('{{ _("Search") }}|{{ ngettext("%(num)s item", "%(num)s items", 2) }}').render
    with app.test_request_context("/", headers={"Accept-Language": "fr"}):
        page = render()
        with force_locale("pt"):
            email = render()
        again = render()
        with force_locale("fr"):
            same = render()
    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        spanish = render()
        refresh()
        spanish_again = render()
    assert page == again == same == "Rechercher|2 tickets"
    assert email == "Buscar|2 itens"
    assert spanish == spanish_again == "Buscar|2 ítems"
