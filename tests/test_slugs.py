"""Slugs keep names readable in every script (marketplace.slugs)."""
import pytest

from marketplace.slugs import slugify


@pytest.mark.parametrize(("name", "slug"), [
    ("Société Générale", "societe-generale"),
    ("Straße & Söhne GmbH", "strasse-sohne-gmbh"),
    ("Łódź Health Œuvre", "lodz-health-oeuvre"),
    ("OpenSRP  (v2)", "opensrp-v2"),
    ("Гражданский реестр", "гражданский-реестр"),
    ("Йошкар-Ола", "йошкар-ола"),
    ("नागरिक पंजीकरण", "नागरिक-पंजीकरण"),
    ("سجل مدني", "سجل-مدني"),
    ("snake_case__name", "snake-case-name"),
])
def test_slug_keeps_the_name_readable(name, slug):
    assert slugify(name) == slug


def test_slug_without_letters_is_the_fallback():
    assert slugify("!!! ---", fallback="organisation") == "organisation"


def test_slug_is_cut_without_a_trailing_dash():
    assert slugify("ab " * 40, max_length=8) == "ab-ab-ab"
    assert len(slugify("x" * 200)) == 80
