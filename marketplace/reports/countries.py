"""Country names to ISO 3166-1 alpha-2 codes, and codes to names in the
reader's locale, from CLDR through Babel (no other list is kept).

The DPG Standard screening records write countries in several styles
("Palestine State", "Congo (Congo-Brazzaville)", "Czechia (Czech Republic)",
"VietNam"). A name matches when, after folding case, accents, punctuation
and a parenthesised remark, it equals one of CLDR's English names or short
or variant names, or one of the spellings in :data:`ALIASES`. Anything else
is reported, never guessed.
"""
from __future__ import annotations

import re
import unicodedata
from functools import cache

from babel import Locale
from flask_babel import get_locale

# Spellings seen in the screening records that CLDR does not use; each checked by hand.
ALIASES = {
    "palestine state": "PS",
    "congo": "CG",
    "democratic republic of the congo": "CD",
    "eswatini": "SZ",
    "holy see": "VA",
    "united states of america": "US",
    "russia": "RU",
    "south korea": "KR",
    "north korea": "KP",
    "laos": "LA",
    "syria": "SY",
    "iran": "IR",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "micronesia": "FM",
    "brunei": "BN",
    "cabo verde": "CV",
    "vietnam": "VN",
    "macao": "MO",
    "hong kong": "HK",
    "caribbean netherlands": "BQ",
    "saint helena ascension and tristan da cunha": "SH",
    "virgin islands british": "VG",
    "virgin islands us": "VI",
    "falkland islands": "FK",
    "saint martin": "MF",
    "sint maarten": "SX",
    "cocos islands": "CC",
    "united states minor outlying islands": "UM",
    "timor-leste": "TL",
    "turkey": "TR",
    "czech republic": "CZ",
    "kosovo": "XK",
    "pitcairn": "PN",
    "french southern territories": "TF",
    "south georgia and the south sandwich islands": "GS",
    "saint vincent and the grenadines": "VC",
}


def fold(name: str) -> str:
    """The comparable form of a country name: no parenthesised remark, no
    accents, lower case, "&" as "and", punctuation as spaces (hyphens kept)."""
    name = re.sub(r"\(.*?\)", " ", name)
    name = unicodedata.normalize("NFKD", name)
    name = "".join(ch for ch in name if not unicodedata.combining(ch)).casefold().replace("&", " and ")
    name = re.sub(r"[^\w\s-]", " ", name)
    # CLDR writes "St. Lucia"; the records "Saint Lucia".
    return " ".join("saint" if word == "st" else word for word in name.split())


@cache
def _english_names() -> dict[str, str]:
    en = Locale("en")
    names: dict[str, str] = {}
    for code, name in en.territories.items():
        if len(code) == 2 and code.isalpha() and code not in ("ZZ", "EU", "EZ", "UN", "QO"):
            names.setdefault(fold(name), code)
    for spelling, code in ALIASES.items():
        names.setdefault(fold(spelling), code)
    return names


def to_code(name: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of ``name`` (English, as in the screening
    records), or None when it cannot be matched with certainty."""
    names = _english_names()
    folded = fold(name)
    if not folded:
        return None
    if folded in names:
        return names[folded]
    # "VietNam": a name written without its space.
    squeezed = {key.replace(" ", ""): code for key, code in names.items()}
    return squeezed.get(folded.replace(" ", ""))


def normalise(names: list[str]) -> tuple[list[str], list[str]]:
    """(sorted unique codes, names that could not be matched, as written)."""
    codes, unmatched = set(), []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            continue
        code = to_code(name)
        if code is None:
            unmatched.append(name)
        else:
            codes.add(code)
    return sorted(codes), unmatched


def country_names(codes: list[str]) -> str:
    """ISO 3166-1 codes as names in the current locale, comma-separated (the code when CLDR has no name)."""
    territories = Locale.parse(str(get_locale())).territories
    return ", ".join(sorted(territories.get(code, code) for code in codes))
