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
# {% set a, b = url_pattern(...), url_pattern(...) %}: a page's row links built by url_for once.
URL_PATTERNS = re.compile(r"\{%\s*set\s+([\w\s,]+?)\s*=\s*(url_pattern\(.*?)%\}")


def url_pattern_names(template: str) -> set[str]:
    names: set[str] = set()
    for targets, values in URL_PATTERNS.findall(template):
        targets = [t.strip() for t in targets.split(",")]
        if values.count("url_pattern(") == len(targets):
            names.update(targets)
    return names


def test_the_link_check_knows_url_patterns():
    template = "{% set a, b = url_pattern('x', 'id'), url_pattern('y') %}{% set c = other('z') %}"
    assert url_pattern_names(template) == {"a", "b"}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_every_link_goes_through_url_for_or_the_url_check(path):
    text = path.read_text()
    patterns = url_pattern_names(text)
    for expression in HREF.findall(text):
        built = expression.strip().split("(")[0] in patterns
        assert "url_for(" in expression or "|http_url" in expression or built, expression
