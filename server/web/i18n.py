"""Languages: gettext catalogs (Babel) and one Jinja2 environment per language.

The languages are those of ``server/languages.py`` (the registry). The .po
files in ``server/locale`` are the source of truth; they are compiled in
memory when the app starts, so a fresh clone needs no ``pybabel compile`` step,
no .mo file is ever stale and none is built or shipped. The language comes from
the URL (``/en/...``, ``/ar/...``), chosen by a link: never from
Accept-Language, which Tor Browser sets to the same value for everyone.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Format

from server.languages import BY_CODE, LANGUAGES, REGISTRY, Language

LOCALE_DIR = Path(__file__).parents[1] / "locale"
TEMPLATE_DIR = Path(__file__).parents[2] / "templates"
DOMAIN = "messages"

LANGUAGE_NAMES = {language.code: language.name for language in REGISTRY}


def load_translations(lang: str) -> gettext.GNUTranslations | gettext.NullTranslations:
    """The catalog for ``lang`` compiled from its .po file; English is the msgids."""
    po_path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po_path.exists():
        return gettext.NullTranslations()
    with po_path.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


class Pages:
    """Renders templates in a language. One instance per app."""

    def __init__(self, template_dir: Path = TEMPLATE_DIR) -> None:
        self._envs: dict[str, jinja2.Environment] = {}
        self.translations: dict[str, gettext.GNUTranslations | gettext.NullTranslations] = {}
        for lang in LANGUAGES:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(template_dir),
                autoescape=True,
                undefined=jinja2.StrictUndefined,
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            trans = load_translations(lang)
            env.install_gettext_translations(trans, newstyle=True)  # type: ignore[attr-defined]
            env.globals["lang"] = lang
            env.globals["direction"] = BY_CODE[lang].direction
            env.globals["size_units"] = " ".join(BY_CODE[lang].size_units)
            env.globals["languages"] = LANGUAGE_NAMES
            env.globals["format_size"] = _size_formatter(BY_CODE[lang])
            # An admin's text (a question's label or hint) as given in this
            # language, else the catalogue's translation of its English text
            # (plain gettext: no %-formatting of the admin's text).
            env.globals["admin_text"] = _admin_text(trans)
            self._envs[lang] = env
            self.translations[lang] = trans
        for env in self._envs.values():
            # Every template compiled now: a page, the error pages above all, can
            # still be rendered when no file can be opened (out of descriptors).
            for name in env.list_templates(extensions=["html"]):
                env.get_template(name)

    def render(self, lang: str, name: str, context: Mapping[str, Any]) -> str:
        return self._envs[lang].get_template(name).render(**context)

    def add_globals(self, **values: Any) -> None:
        """Names every template sees, in every language (set up before any request)."""
        for env in self._envs.values():
            env.globals.update(values)

    def gettext(self, lang: str, message: str) -> str:
        return self.translations[lang].gettext(message)


def _admin_text(trans: gettext.NullTranslations) -> Any:
    def admin_text(text: str) -> str:
        return trans.gettext(text) if text else text  # gettext("") is the header

    return admin_text


def _size_formatter(language: Language) -> Any:
    fmt = Format(language.code)
    units = language.size_units

    def format_size(n: int) -> str:
        value = float(n)
        for unit in units:
            if value < 1024 or unit == units[-1]:
                shown = fmt.decimal(round(value, 1)) if unit != units[0] else str(int(value))
                return f"{shown} {unit}"
            value /= 1024
        raise AssertionError("unreachable")

    return format_size
