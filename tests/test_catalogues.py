"""The French, Spanish and Portuguese catalogues: complete, placeholders kept,
valid for gettext, and used by the pages, the e-mails and the API."""
from __future__ import annotations

import html
import re

import pytest
from babel.messages.catalog import Message

from marketplace.catalogues import TRANSLATIONS, catalogue_paths, compile_catalogues, load, placeholders_match, status
from marketplace.sdgs import SDG_NAMES

LOCALES = ("fr", "es", "pt")


def test_every_offered_language_has_a_catalogue(app):
    assert set(catalogue_paths()) == set(LOCALES)
    assert [c for c in app.config["SUPPORTED_LOCALES"] if c != "en"] == list(LOCALES)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_catalogue_has_no_untranslated_or_fuzzy_entry(locale):
    result = status(locale, catalogue_paths()[locale])
    assert result.total > 900
    assert result.untranslated == [] and result.fuzzy == []


@pytest.mark.parametrize("locale", LOCALES)
def test_every_translation_keeps_the_placeholders_of_the_english(locale):
    assert status(locale, catalogue_paths()[locale]).placeholder_mismatches == []


@pytest.mark.parametrize("locale", LOCALES)
def test_gettext_finds_no_format_errors_in_the_catalogue(locale):
    catalog = load(catalogue_paths()[locale])
    errors = [(message.id, [str(e) for e in problems]) for message, problems in catalog.check()]
    assert errors == []


def test_a_placeholder_lost_or_renamed_is_caught():
    assert placeholders_match(Message("%(name)s maintains %(project)s.", "%(name)s maintient %(project)s."))
    assert not placeholders_match(Message("%(name)s maintains %(project)s.", "%(nom)s maintient %(project)s."))
    assert not placeholders_match(Message("Hello %(name)s,", "Bonjour,"))
    assert not placeholders_match(Message("Go to {url}", "Aller à {lien}"))
    assert placeholders_match(Message(("%(num)s day", "%(num)s days"), ("%(num)s jour", "%(num)s jours")))


def test_compiling_writes_a_catalogue_gettext_reads(tmp_path):
    target = tmp_path / "fr" / "LC_MESSAGES"
    target.mkdir(parents=True)
    (target / "messages.po").write_bytes((TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.po").read_bytes())
    [written] = compile_catalogues(tmp_path)
    import gettext

    with written.open("rb") as handle:
        french = gettext.GNUTranslations(handle)
    assert french.gettext("There is nothing at this address.") == "Il n'y a rien à cette adresse."
    assert compile_catalogues(tmp_path) == []  # up to date: not written again


@pytest.mark.parametrize("locale, known", [
    ("fr", "Comment fonctionne le commun"),
    ("es", "Cómo funciona el procomún"),
    ("pt", "Como funciona o comum"),
])
def test_a_page_renders_in_each_language(client, locale, known):
    page = client.get(f"/about?lang={locale}").get_data(as_text=True)
    assert f'<html lang="{locale}">' in page
    assert known in html.unescape(page)
    assert "How the commons works" not in page


# The registry's evidence texts (shown as written) quote goal names in English;
# the goal names themselves are checked on /sdgs, where only ours appear.
DATA_QUOTES = {str(name._args[0]) for name in SDG_NAMES.values()}


def _english_leftovers(page: str, catalog, path: str) -> list[str]:
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    text = re.sub(r"\s+", " ", text)
    leftovers = []
    for message in catalog:
        if not message.id or isinstance(message.id, tuple) or "%" in message.id or len(message.id) < 14:
            continue
        if message.id in DATA_QUOTES and not path.startswith("/sdgs"):
            continue
        if message.string and message.string != message.id and message.id in text:
            leftovers.append(message.id)
    return leftovers


PUBLIC_PAGES = ["/", "/about", "/transparency", "/projects", "/sdgs", "/sdgs/3", "/pools", "/login", "/signup",
                "/reset", "/no-such-page", "/?q=zzzzzzzz"]


@pytest.mark.parametrize("locale", LOCALES)
def test_public_pages_show_no_english_from_the_catalogue(client, locale):
    catalog = load(catalogue_paths()[locale])
    client.set_cookie("lang", locale)
    first_item = re.search(r'href="(/items/[^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    first_project = re.search(r'href="(/projects/[^"?]+)"', client.get("/projects").get_data(as_text=True)).group(1)
    for path in [*PUBLIC_PAGES, first_item, first_project]:
        response = client.get(path)
        assert response.status_code in (200, 404), path
        assert _english_leftovers(response.get_data(as_text=True), catalog, path) == [], path


@pytest.mark.parametrize("locale, message", [
    ("fr", "Il n'y a rien à cette adresse."),
    ("es", "No hay nada en esta dirección."),
    ("pt", "Não há nada neste endereço."),
    ("en", "There is nothing at this address."),
])
def test_api_errors_follow_accept_language_and_keep_english_field_names(client, locale, message):
    response = client.get("/api/v1/items/999999", headers={"Accept-Language": locale})
    assert response.status_code == 404
    assert response.get_json() == {"error": {"status": 404, "message": message}}


def test_the_api_ignores_the_pages_language_cookie(client):
    client.set_cookie("lang", "fr")
    body = client.get("/api/v1/items?sdg=0", headers={"Accept-Language": "en"}).get_json()
    assert body["error"] == {"status": 400, "parameter": "sdg", "message": "sdg must be a number from 1 to 17."}
    body = client.get("/api/v1/items?sdg=0", headers={"Accept-Language": "pt-BR"}).get_json()
    assert body["error"]["parameter"] == "sdg"
    assert body["error"]["message"] != "sdg must be a number from 1 to 17."


SIGNED_IN_PAGES = ["/account", "/account/profile", "/account/claims", "/account/payouts", "/admin/",
                   "/admin/users", "/admin/organisations", "/admin/certifications", "/admin/deliveries",
                   "/admin/pledges", "/admin/payouts", "/admin/projects", "/admin/maintainer-requests",
                   "/admin/sync", "/pools/new", "/organisations/new"]


@pytest.mark.parametrize("locale", LOCALES)
def test_account_and_admin_pages_show_no_english_from_the_catalogue(client, session, locale):
    from tests.admin.test_admin import make_user, sign_in_as

    person = make_user(session, "root@example.org", admin=True)
    person.is_funder = person.is_implementor = True
    sign_in_as(client, person)
    client.set_cookie("lang", locale)
    catalog = load(catalogue_paths()[locale])
    for path in [*SIGNED_IN_PAGES, f"/people/{person.id}"]:
        response = client.get(path)
        assert response.status_code == 200, path
        page = response.get_data(as_text=True)
        assert f'<html lang="{locale}">' in page, path
        assert _english_leftovers(page, catalog, path) == [], path


def test_french_punctuation_never_breaks_from_its_word():
    for message in load(catalogue_paths()["fr"]):
        if not message.id:
            continue  # the header
        for string in (message.string if isinstance(message.string, tuple) else (message.string,)):
            assert not re.search(r" [;:?!»]|« ", string or ""), string


def test_the_report_counts_what_needs_work_and_the_command_compiles(tmp_path, capsys):
    from marketplace.catalogues import main, report

    target = tmp_path / "xx" / "LC_MESSAGES"
    target.mkdir(parents=True)
    (target / "messages.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n"Language: xx\\n"\n\n'
        'msgid "Save"\nmsgstr "Salvar"\n\n'
        '#, fuzzy\nmsgid "Open"\nmsgstr "Aberto"\n\n'
        'msgid "Close"\nmsgstr ""\n\n'
        '#, python-format\nmsgid "Hello %(name)s,"\nmsgstr "Olá,"\n', encoding="utf-8")
    assert report(tmp_path) == 3
    assert capsys.readouterr().out == ("xx: 2/4 translated (50.0%), 1 untranslated, 1 fuzzy, "
                                       "1 with placeholders unlike the English\n")
    assert main(["compile", str(tmp_path)]) == 0
    assert (target / "messages.mo").exists()
    assert main([]) == 2


def test_a_locale_without_its_compiled_catalogue_is_named_at_start(app, tmp_path):
    from flask import Flask

    from marketplace.i18n import missing_catalogues

    assert missing_catalogues(app) == []
    bare = Flask("bare", root_path=str(tmp_path))
    bare.config["SUPPORTED_LOCALES"] = ["en", "fr", "sw"]
    assert missing_catalogues(bare) == ["fr", "sw"]
