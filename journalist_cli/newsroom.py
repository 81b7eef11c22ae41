"""The newsroom key, pinned (envelope/SPEC.md §11, docs/JOURNALIST_GUIDE.md).

``lanterne config --newsroom FINGERPRINT`` pins the fingerprint the newsroom
publishes outside this server (in print, on its website). From then on the
journalist keys that notes and replies are encrypted to come only from the
server's key directory, verified against the newsroom key with that
fingerprint: a server cannot slip in a key, and there is nothing to accept by
hand. The highest serial seen is remembered (an older directory is a replay
and is refused), and every change to the journalists' keys since the last
directory this CLI saw is shown, loudly, on every command that fetches it.

Without a pinned fingerprint the CLI keeps the older rule of trust on first use
and ``lanterne journalists --accept`` (journalist_cli/outbox.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import envelope
from envelope.keys import b64decode, b64encode
from journalist_cli.errors import UsageProblem
from journalist_cli.workflow_errors import ServerError

STATE_NAME = "newsroom.json"
_FINGERPRINT = re.compile(r"\d{5}( \d{5}){7}")


class DirectoryRefused(ServerError):
    """The server's key directory is not one the pinned newsroom key signed."""


def check_fingerprint(text: str) -> str:
    """A newsroom fingerprint as typed (spaces or not), normalised to 8 groups."""
    digits = "".join(text.split())
    if not digits.isascii() or not digits.isdigit() or len(digits) != 40:
        raise UsageProblem("--newsroom takes the newsroom's fingerprint: 8 groups of 5 digits")
    fingerprint = " ".join(digits[i : i + 5] for i in range(0, 40, 5))
    assert _FINGERPRINT.fullmatch(fingerprint)
    return fingerprint


@dataclass
class PinState:
    """What this CLI has seen of the newsroom's directory."""

    newsroom_key: bytes | None = None
    serial: int = 0
    journalists: dict[str, str] = field(default_factory=dict)  # name -> key fingerprint

    @classmethod
    def load(cls, home: Path) -> PinState:
        path = home / STATE_NAME
        try:
            doc: Any = json.loads(path.read_text(encoding="utf-8"))
            key = doc.get("newsroom_key")
            serial = doc.get("serial", 0)
            names = doc.get("journalists", {})
            if (
                type(serial) is not int
                or not isinstance(names, dict)
                or not all(isinstance(v, str) for v in names.values())
            ):
                raise ValueError("bad fields")
            return cls(b64decode(key, 32, "newsroom key") if key else None, serial, names)
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, AttributeError, envelope.KeyFormatError) as exc:
            raise UsageProblem(
                f"{path} is damaged; delete it and run `lanterne pull` to pin again"
            ) from exc

    def save(self, home: Path) -> None:
        doc = {
            "newsroom_key": b64encode(self.newsroom_key) if self.newsroom_key else None,
            "serial": self.serial,
            "journalists": self.journalists,
        }
        with envelope.atomic_output(home / STATE_NAME, mode=0o600) as out:
            out.write((json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def verify(
    home: Path, fingerprint: str, document: bytes
) -> tuple[envelope.KeyDirectory, list[str]]:
    """Check ``document`` against the pinned newsroom fingerprint and the state;
    returns the directory and the changes since the last one, and records it."""
    state = PinState.load(home)
    try:
        doc = json.loads(document)
        key = b64decode(doc["newsroom_key"], 32, "newsroom key")
    except (ValueError, TypeError, KeyError, envelope.KeyFormatError):
        raise DirectoryRefused("the server's key directory is malformed") from None
    if envelope.newsroom_fingerprint(key) != fingerprint or (
        state.newsroom_key is not None and state.newsroom_key != key
    ):
        raise DirectoryRefused(
            "the server's key directory is signed by another newsroom key"
            f" ({envelope.newsroom_fingerprint(key)}, pinned: {fingerprint}): do not send"
            " notes or replies; tell the newsroom's admin, the server may be compromised"
        )
    try:
        directory = envelope.verify_directory(document, key, min_serial=state.serial)
    except envelope.DowngradeError as exc:
        raise DirectoryRefused(
            f"{exc}; the server may be replaying an old journalist list"
        ) from None
    except envelope.DirectoryError as exc:
        raise DirectoryRefused(f"the server's key directory is refused: {exc}") from None
    now = {k.name: k.fingerprint for k in directory.journalists}
    changes = _changes(state.journalists, now) if state.newsroom_key is not None else []
    PinState(key, directory.serial, now).save(home)
    return directory, changes


def _changes(before: dict[str, str], now: dict[str, str]) -> list[str]:
    lines = [f"new journalist key: {n} {now[n]}" for n in sorted(now.keys() - before.keys())]
    lines += [f"journalist removed: {n}" for n in sorted(before.keys() - now.keys())]
    lines += [
        f"journalist key CHANGED: {n} {before[n]} -> {now[n]}"
        for n in sorted(now.keys() & before.keys())
        if now[n] != before[n]
    ]
    return lines
