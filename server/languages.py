"""The languages of the source interface: the one place that lists them.

Adding a language is one ``Language`` below plus its catalogue,
``server/locale/<code>/LC_MESSAGES/messages.po`` (docs/SOURCE_INTERFACE.md,
"Adding a language"). Everything else reads this registry: the URL prefixes,
``<html lang dir>``, the language menu, sizes shown to sources, the codename
word list a new source gets, the config's ``default_language``. A test
(tests/test_source_languages.py) fails if another module lists languages.

Journalist designations ("wise otter") are not here: they are shown by the
journalist CLI in the journalist's language, and journalist_cli never imports
server/ (DESIGN.md §3), so their languages live in journalist_cli/designations.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["ltr", "rtl"]


@dataclass(frozen=True)
class Language:
    """One language of the source pages."""

    code: str  # URL prefix (/es/...), <html lang>, catalogue folder, Babel locale
    name: str  # its own name, as the language menu shows it
    direction: Direction  # <html dir>; the stylesheet uses logical properties
    size_units: tuple[str, str, str, str]  # bytes, KiB, MiB, GiB as a source reads them
    wordlist: str  # server/wordlists/<wordlist>.txt: the codenames of new sources


# The order is the language menu's; the first is the fallback (config defaults,
# texts an admin wrote in that language only). Never remove a code: a source's
# bookmarked address and the config's default_language name it.
REGISTRY: tuple[Language, ...] = (
    Language("en", "English", "ltr", ("B", "KB", "MB", "GB"), "en"),
    Language("fr", "Français", "ltr", ("o", "Ko", "Mo", "Go"), "fr"),
    Language("es", "Español", "ltr", ("B", "KB", "MB", "GB"), "es"),
    Language("it", "Italiano", "ltr", ("B", "KB", "MB", "GB"), "it"),
    # No official BIP-39 list in German or Arabic: new sources get the English
    # list (docs/SOURCE_INTERFACE.md, "Codename word lists", says why).
    Language("de", "Deutsch", "ltr", ("B", "KB", "MB", "GB"), "en"),
    Language("ar", "العربية", "rtl", ("بايت", "كيلوبايت", "ميغابايت", "غيغابايت"), "en"),
)

BY_CODE: dict[str, Language] = {language.code: language for language in REGISTRY}
LANGUAGES: tuple[str, ...] = tuple(language.code for language in REGISTRY)
FALLBACK = REGISTRY[0]


def language(code: str) -> Language:
    """The registry entry for ``code`` (KeyError for a code not in the registry)."""
    return BY_CODE[code]


def wordlists() -> tuple[str, ...]:
    """The codename word lists, each once, in registry order.

    ``codenames.parse`` tries them in this order, so a list added later never
    changes how an older source's codename parses.
    """
    return tuple(dict.fromkeys(language.wordlist for language in REGISTRY))
