"""The translation catalogues: compiling them, and saying how complete they are.

``marketplace/translations/<locale>/LC_MESSAGES/messages.po`` are kept in git;
the compiled ``messages.mo`` beside each is built from it (``make`` does it
before serving, seeding and testing; it is not committed, so a catalogue and
its compiled form can never disagree in the repository). Run as
``python -m marketplace.catalogues compile|report [directory]`` (or
``python marketplace/catalogues.py ...``, which needs only Babel): ``report``
prints per language the messages translated, untranslated and fuzzy, and
the entries whose placeholders differ from the English.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
# %(name)s, %(n)d, %s, %% and {name}: what a translation must keep exactly.
_PLACEHOLDER = re.compile(r"%(?:\([A-Za-z_][A-Za-z0-9_]*\))?[-#0 +]*[0-9]*(?:\.[0-9]+)?[sdifr%]"
                          r"|\{[A-Za-z_][A-Za-z0-9_]*\}")


@dataclass
class Status:
    """How complete one catalogue is: counts of messages, and the msgids of
    problem entries."""

    locale: str
    total: int = 0
    translated: int = 0
    untranslated: list[str] = field(default_factory=list)
    fuzzy: list[str] = field(default_factory=list)
    placeholder_mismatches: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.translated / self.total if self.total else 100.0


def catalogue_paths(directory: Path = TRANSLATIONS) -> dict[str, Path]:
    """``{locale: path of its messages.po}`` for every catalogue in ``directory``."""
    return {p.parent.parent.name: p for p in sorted(directory.glob("*/LC_MESSAGES/messages.po"))}


def load(path: Path) -> Catalog:
    """The catalogue at ``path`` (a .po file)."""
    with path.open("rb") as handle:
        return read_po(handle)


def placeholders(text: str) -> list[str]:
    """The placeholders of ``text``, sorted: ``["%(name)s", "{url}"]`` (``%%`` left out)."""
    return sorted(p for p in _PLACEHOLDER.findall(text) if p != "%%")


def _ids(message: Message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def _strings(message: Message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def placeholders_match(message: Message) -> bool:
    """True when every non-empty translation of ``message`` has the placeholders
    of its msgid (of the plural msgid for plural forms other than the first,
    where the singular may spell the number out, as English "one" does)."""
    ids = _ids(message)
    expected = [placeholders(i) for i in ids]
    for index, string in enumerate(_strings(message)):
        if not string:
            continue
        found = placeholders(string)
        if len(ids) == 1:
            if found != expected[0]:
                return False
        # Plural forms: each form must use a subset of the plural msgid's placeholders,
        # and all of the singular's named ones except the count.
        elif not set(found) <= set(expected[0]) | set(expected[-1]):
            return False
    return True


def status(locale: str, path: Path) -> Status:
    """Counts and problem entries of the catalogue ``path`` for ``locale``."""
    result = Status(locale)
    for message in load(path):
        if not message.id:
            continue  # the header
        result.total += 1
        msgid = _ids(message)[0]
        strings = _strings(message)
        if message.fuzzy:
            result.fuzzy.append(msgid)
        elif not all(strings):
            result.untranslated.append(msgid)
        else:
            result.translated += 1
        if not placeholders_match(message):
            result.placeholder_mismatches.append(msgid)
    return result


def compile_catalogues(directory: Path = TRANSLATIONS, force: bool = False) -> list[Path]:
    """Write ``messages.mo`` beside each ``messages.po`` that is newer than it
    (or every one with ``force``); fuzzy entries are left out, as by
    ``pybabel compile``. Returns the files written."""
    written = []
    for path in catalogue_paths(directory).values():
        target = path.with_suffix(".mo")
        if not force and target.exists() and target.stat().st_mtime >= path.stat().st_mtime:
            continue
        catalog = load(path)
        tmp = target.with_suffix(".mo.tmp")
        with tmp.open("wb") as handle:
            write_mo(handle, catalog)
        tmp.replace(target)  # atomic: a server reading it never sees half a file
        written.append(target)
    return written


def report(directory: Path = TRANSLATIONS) -> int:
    """Print one line per catalogue; returns the number of entries needing work."""
    needing = 0
    for locale, path in catalogue_paths(directory).items():
        s = status(locale, path)
        needing += len(s.untranslated) + len(s.fuzzy) + len(s.placeholder_mismatches)
        print(f"{locale}: {s.translated}/{s.total} translated ({s.percent:.1f}%), "
              f"{len(s.untranslated)} untranslated, {len(s.fuzzy)} fuzzy, "
              f"{len(s.placeholder_mismatches)} with placeholders unlike the English")
    return needing


def main(argv: list[str]) -> int:
    """``compile [--force] [directory]`` or ``report [directory]``; exit status 0."""
    if not argv or argv[0] not in ("compile", "report"):
        print("usage: python -m marketplace.catalogues compile [--force] | report [directory]", file=sys.stderr)
        return 2
    force = "--force" in argv
    rest = [a for a in argv[1:] if a != "--force"]
    directory = Path(rest[0]) if rest else TRANSLATIONS
    if argv[0] == "compile":
        for written in compile_catalogues(directory, force=force):
            print(f"compiled {written}")
        return 0
    report(directory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
