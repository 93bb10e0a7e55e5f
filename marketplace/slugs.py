"""Readable URL slugs from names in any script.

Latin letters lose their accents ("Société Générale" → ``societe-generale``);
letters of other scripts are kept as they are (lower-cased), so a name in
Cyrillic, Devanagari or Arabic keeps a slug its readers can read (browsers
show it decoded; it is percent-encoded on the wire, RFC 3987)."""
from __future__ import annotations

import re
import unicodedata

# Latin letters that Unicode does not decompose into a base letter and a mark.
_LATIN_FOLDS = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "ł": "l",
                              "þ": "th", "ı": "i", "ħ": "h", "ŧ": "t", "ŋ": "n"})
_SEPARATORS = re.compile(r"-+")


def _strip_latin_accents(text: str) -> str:
    """Drop combining marks that sit on an ASCII letter; keep every other mark
    (a Devanagari vowel sign or a Cyrillic breve is part of the letter)."""
    kept: list[str] = []
    base_is_ascii = False
    for char in unicodedata.normalize("NFKD", text):
        if unicodedata.category(char) == "Mn":
            if base_is_ascii:
                continue
        else:
            base_is_ascii = char.isascii()
        kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def slugify(name: str, *, max_length: int = 80, fallback: str = "item") -> str:
    """A lower-case slug of ``name``: runs of anything but letters and digits
    become one ``-``; at most ``max_length`` characters, never ending in ``-``;
    ``fallback`` when nothing readable is left (e.g. a name of punctuation)."""
    text = _strip_latin_accents(name.lower().translate(_LATIN_FOLDS))
    # Letters, digits and marks (a vowel sign is part of its letter) stay; the rest separates.
    text = "".join(c if unicodedata.category(c)[0] in "LNM" else "-" for c in text)
    slug = _SEPARATORS.sub("-", text).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or fallback
