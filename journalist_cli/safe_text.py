"""Text from the server or a source, made harmless before it is shown or written.

Everything a compromised server controls (journalist and assignee names,
roles, error messages, designations it could make collide, manifest answers
and names) may carry terminal escape sequences (ESC, CSI in its 8-bit form
U+009B, OSC that sets the window title or writes the clipboard), bidi
overrides (U+202E makes ``fdp.exe`` look like ``exe.pdf``) or other
invisible format characters. This module is the one place that neutralises
them; every print of such a string goes through ``terminal``, every text file
written from it through ``file_text``, every JSON file through ``json_text``.

- ``terminal`` shows each dangerous character as its code point,
  ``<U+1B>``: visible, never obeyed. Newlines and tabs stay unless
  ``one_line`` (names, tags and labels are one line).
- ``rich`` returns a ``rich.text.Text``: rich never parses markup in a Text,
  so ``[bold]`` in a tag prints literally.
- ``json_text`` keeps the text lossless (JSON ``\\uXXXX`` escapes), so the
  exact bytes a source sent stay recoverable while ``cat`` shows no escape.
"""

from __future__ import annotations

import json
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

# Control (C0, C1, DEL), format (bidi overrides and isolates, zero-width
# joiners, BOM...), surrogates, private use, unassigned, line/paragraph separators.
DANGEROUS_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
KEPT = frozenset("\n\t")


def _dangerous(ch: str) -> bool:
    return unicodedata.category(ch) in DANGEROUS_CATEGORIES


def terminal(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control or format character shown as ``<U+XX>``.

    Newlines and tabs are kept unless ``one_line``.
    """
    # str.isprintable is False for every dangerous character (and for a few
    # harmless spaces): the common case is checked at C speed (a message can be 1 MiB).
    plain = text if one_line else text.replace("\n", "").replace("\t", "")
    if plain.isprintable():
        return text
    out = []
    for ch in text:
        if ch in KEPT and not one_line:
            out.append(ch)
        elif _dangerous(ch):
            out.append(f"<U+{ord(ch):X}>")
        else:
            out.append(ch)
    return "".join(out)


def rich(text: str, style: str = "", *, one_line: bool = False) -> Text:
    """A rich ``Text`` of ``terminal(text)``: markup in it is printed, not applied."""
    from rich.text import Text  # rich costs an import; error messages do not need it

    return Text(terminal(text, one_line=one_line), style=style)


def file_text(text: str) -> str:
    """Text for a plain file someone will ``cat``: the same rule as the terminal."""
    return terminal(text)


def json_text(doc: Any) -> str:
    """Indented JSON (UTF-8, not ASCII-escaped) where every dangerous character
    is a ``\\uXXXX`` escape: lossless, and harmless to ``cat``."""
    raw = json.dumps(doc, indent=2, ensure_ascii=False)
    # Outside strings JSON is ASCII, so every such character sits in a string,
    # where a \\uXXXX escape means the same character (UTF-16 for astral ones).
    out: list[str] = []
    for ch in raw:
        if _dangerous(ch) and ch not in "\n":
            encoded = ch.encode("utf-16-be", errors="surrogatepass")
            out.extend(
                f"\\u{int.from_bytes(encoded[i : i + 2], 'big'):04x}"
                for i in range(0, len(encoded), 2)
            )
        else:
            out.append(ch)
    return "".join(out) + "\n"
