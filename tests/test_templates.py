"""Every user-facing string in the templates is wrapped for translation."""
import re

import pytest

from tests.conftest import ROOT

TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
TAG = re.compile(r"<[^>]*>", re.S)
ENTITY = re.compile(r"&[a-z]+;|&#\d+;")
TEXT_ATTRIBUTE = re.compile(r'\b(?:aria-label|title|alt|placeholder)="([^"]*)"')


def untranslated(template: str) -> list[str]:
    """Words of visible text or text attributes that are not inside a Jinja expression."""
    without_code = JINJA.sub(" ", template)
    words = [w for w in ENTITY.sub(" ", TAG.sub(" ", without_code)).split() if re.search(r"[A-Za-z]", w)]
    words += [v for v in TEXT_ATTRIBUTE.findall(without_code) if re.search(r"[A-Za-z]", v)]
    return words


def test_the_check_finds_bare_text():
    assert untranslated('<p>{{ _("Fine") }}</p>') == []
    assert untranslated("<p>Hello {{ name }}</p>") == ["Hello"]
    assert untranslated('<nav aria-label="Main">{{ _("x") }}</nav>') == ["Main"]
    assert untranslated('<nav aria-label="{{ _(\'Main\') }}"></nav>') == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_no_bare_text_outside_translation_calls(path):
    assert untranslated(path.read_text()) == []


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_no_inline_script_or_style(path):
    text = path.read_text().lower()
    assert "<script" not in text and "style=" not in text and "<style" not in text


HREF = re.compile(r'\b(?:href|src)="\{\{(.*?)\}\}"')


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_every_link_goes_through_url_for_or_the_url_check(path):
    for expression in HREF.findall(path.read_text()):
        assert "url_for(" in expression or "|http_url" in expression, expression
