"""The newsroom's signed key directory (SPEC §11).

Which journalist keys a source's files are encrypted to must not be the
server's decision alone: a seized or compromised server could add its own key.
The newsroom holds an Ed25519 signing key off the server; each change to the
journalist list is a new directory, numbered by a serial that only grows and
signed by that key. Writers (the browser, the no-JS path, the journalist CLI)
encrypt only to the keys of a directory that verifies against a newsroom key
they know beforehand, and never accept a lower serial than one they have seen.

The signature covers the payload bytes exactly as served (verify, then parse:
no canonical JSON is needed), prefixed with a label so that a signature made
for anything else can never pass as a directory.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from envelope import _primitives as prim
from envelope.errors import KeyFormatError
from envelope.keys import PublicKey, b64decode, b64encode, fingerprint_digits

__all__ = [
    "DirectoryDesk",
    "DirectoryError",
    "DowngradeError",
    "KeyDirectory",
    "newsroom_fingerprint",
    "newsroom_public_key",
    "sign_directory",
    "verify_directory",
]

DIRECTORY_TYPE = "lanterne-key-directory/v1"
PAYLOAD_TYPE = "lanterne-key-directory-payload/v1"
# v2 adds desks and the journalists who receive every desk (SPEC §11.1); a
# directory without either is still written as v1, which older readers accept.
PAYLOAD_TYPE_V2 = "lanterne-key-directory-payload/v2"
MAX_DESKS = 100
DESK_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
LABEL_SIGNATURE = prim.LABEL_DIRECTORY
MAX_DOCUMENT = 4 << 20  # 4 MiB: hundreds of hybrid keys (1.7 KiB each as base64)
MAX_JOURNALISTS = 1000
MAX_SERIAL = (1 << 53) - 1  # exact in JSON numbers and in JavaScript
SIGNATURE_SIZE = 64
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class DirectoryError(KeyFormatError):
    """The key directory is malformed, unsigned or signed by another key."""


class DowngradeError(DirectoryError):
    """The directory verifies but is older than one already seen (a replay)."""


@dataclass(frozen=True)
class DirectoryDesk:
    """A desk as the newsroom signed it: its name and the journalists it encrypts to."""

    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class KeyDirectory:
    """A verified directory: the journalist keys a writer may encrypt to."""

    serial: int
    day: str
    newsroom_key: bytes
    journalists: tuple[PublicKey, ...]
    desks: tuple[DirectoryDesk, ...] = ()
    all_desks: tuple[str, ...] = ()  # journalists who receive every desk

    @property
    def newsroom_fingerprint(self) -> str:
        return newsroom_fingerprint(self.newsroom_key)

    def find(self, name: str) -> PublicKey | None:
        return next((k for k in self.journalists if k.name == name), None)

    def desk(self, name: str) -> DirectoryDesk | None:
        return next((d for d in self.desks if d.name == name), None)

    def recipients_for(self, desk: str | None) -> tuple[PublicKey, ...]:
        """The keys what is sent to ``desk`` is encrypted to (SPEC §11.1): its
        members and the all-desk journalists, in directory order; every
        journalist for None (a source of the whole newsroom). ``DirectoryError``
        for a desk the directory does not name."""
        if desk is None:
            return self.journalists
        found = self.desk(desk)
        if found is None:
            raise DirectoryError(f"the signed key directory has no desk named {desk!r}")
        names = set(found.members) | set(self.all_desks)
        return tuple(k for k in self.journalists if k.name in names)


def newsroom_fingerprint(newsroom_key: bytes) -> str:
    """Eight groups of five digits, as journalist fingerprints (SPEC §2.3), with
    their own label so that no journalist key can share a newsroom's fingerprint."""
    return fingerprint_digits(prim.sha256(prim.LABEL_NEWSROOM_FINGERPRINT + newsroom_key))


def newsroom_public_key(seed: bytes) -> bytes:
    """The raw Ed25519 public key of a 32-byte newsroom signing seed."""
    return prim.ed25519_public(_seed(seed))


def _seed(seed: bytes) -> bytes:
    if len(seed) != prim.KEY_SIZE:
        raise KeyFormatError("a newsroom signing key must be 32 bytes")
    return seed


def sign_directory(
    journalists: Sequence[PublicKey],
    *,
    serial: int,
    day: datetime.date,
    seed: bytes,
    desks: Sequence[DirectoryDesk] = (),
    all_desks: Sequence[str] = (),
) -> bytes:
    """The served document (UTF-8 JSON) for these keys, signed with ``seed``:
    a v2 payload when there are desks or all-desk journalists, else v1."""
    if not 1 <= serial <= MAX_SERIAL:
        raise DirectoryError("a directory serial is a whole number from 1")
    names = [k.name for k in journalists]
    if len(set(names)) != len(names) or len(names) > MAX_JOURNALISTS:
        raise DirectoryError("journalist names in a directory must be unique")
    content: dict[str, Any] = {
        "type": PAYLOAD_TYPE,
        "serial": serial,
        "day": day.isoformat(),
        "journalists": [json.loads(k.to_json()) for k in journalists],
    }
    if desks or all_desks:
        content["type"] = PAYLOAD_TYPE_V2
        content["desks"] = [{"name": d.name, "members": list(d.members)} for d in desks]
        content["all_desks"] = list(all_desks)
        _check_desks(content, set(names))  # never sign what a reader would refuse
    payload = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    signature = prim.ed25519_sign(_seed(seed), LABEL_SIGNATURE + payload)
    document = {
        "type": DIRECTORY_TYPE,
        "newsroom_key": b64encode(newsroom_public_key(seed)),
        "payload": b64encode(payload),
        "signature": b64encode(signature),
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def verify_directory(
    document: bytes | str, newsroom_key: bytes, *, min_serial: int = 0
) -> KeyDirectory:
    """Check ``document`` against the newsroom key the caller already trusts.

    Raises ``DirectoryError`` unless the document is signed by exactly that key,
    and ``DowngradeError`` if its serial is below ``min_serial``. Nothing in the
    document is read before the signature has verified, except the envelope of
    the signature itself.
    """
    raw = document.encode() if isinstance(document, str) else document
    if len(raw) > MAX_DOCUMENT:
        raise DirectoryError("the key directory is too large")
    outer = _json_object(raw, "the key directory")
    if outer.get("type") != DIRECTORY_TYPE:
        raise DirectoryError("not a Lanterne key directory")
    named_key = _b64(outer.get("newsroom_key"), prim.KEY_SIZE, "newsroom key")
    if named_key != newsroom_key:
        raise DirectoryError("the key directory is signed by another newsroom key")
    payload = _b64(outer.get("payload"), None, "directory payload")
    signature = _b64(outer.get("signature"), SIGNATURE_SIZE, "directory signature")
    if not prim.ed25519_verify(newsroom_key, signature, LABEL_SIGNATURE + payload):
        raise DirectoryError("the key directory's signature does not verify")
    inner = _json_object(payload, "the directory payload")
    if inner.get("type") not in (PAYLOAD_TYPE, PAYLOAD_TYPE_V2):
        raise DirectoryError("not a Lanterne key directory payload")
    serial = inner.get("serial")
    if type(serial) is not int or not 1 <= serial <= MAX_SERIAL:
        raise DirectoryError("the directory serial is not a whole number from 1")
    if serial < min_serial:
        raise DowngradeError(
            f"this key directory (serial {serial}) is older than one already seen"
            f" (serial {min_serial}): refusing it"
        )
    day = inner.get("day")
    if not isinstance(day, str) or not _DAY.fullmatch(day) or not _is_date(day):
        raise DirectoryError("the directory day is not a date (YYYY-MM-DD)")
    entries = inner.get("journalists")
    if not isinstance(entries, list) or len(entries) > MAX_JOURNALISTS:
        raise DirectoryError("the directory has no list of journalists")
    keys: list[PublicKey] = []
    for entry in entries:
        try:
            keys.append(PublicKey.from_json(json.dumps(entry)))
        except KeyFormatError as exc:
            raise DirectoryError(f"a journalist key in the directory is invalid: {exc}") from None
    if len({k.name for k in keys}) != len(keys):
        raise DirectoryError("two journalist keys in the directory have the same name")
    desks: tuple[DirectoryDesk, ...] = ()
    all_desks: tuple[str, ...] = ()
    if inner["type"] == PAYLOAD_TYPE_V2:
        desks, all_desks = _check_desks(inner, {k.name for k in keys})
    return KeyDirectory(
        serial=serial,
        day=day,
        newsroom_key=newsroom_key,
        journalists=tuple(keys),
        desks=desks,
        all_desks=all_desks,
    )


def _check_desks(
    inner: dict[str, Any], journalists: set[str]
) -> tuple[tuple[DirectoryDesk, ...], tuple[str, ...]]:
    """A v2 payload's ``desks`` and ``all_desks`` (SPEC §11.1): every name a
    journalist of this directory, none twice."""
    entries = inner.get("desks")
    if not isinstance(entries, list) or len(entries) > MAX_DESKS:
        raise DirectoryError("the directory has no list of desks")
    desks = []
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"name", "members"}:
            raise DirectoryError("a desk in the directory is not a name and its members")
        name = entry["name"]
        if not isinstance(name, str) or not DESK_NAME.fullmatch(name):
            raise DirectoryError("a desk name in the directory is invalid")
        desks.append(DirectoryDesk(name, _names(entry["members"], journalists, f"desk {name}")))
    if len({d.name for d in desks}) != len(desks):
        raise DirectoryError("two desks in the directory have the same name")
    return tuple(desks), _names(inner.get("all_desks"), journalists, "all_desks")


def _names(value: object, journalists: set[str], what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(n, str) for n in value):
        raise DirectoryError(f"{what} in the directory is not a list of names")
    if len(set(value)) != len(value):
        raise DirectoryError(f"{what} in the directory names a journalist twice")
    unknown = [n for n in value if n not in journalists]
    if unknown:
        raise DirectoryError(f"{what} in the directory names a journalist it does not list")
    return tuple(value)


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise DirectoryError(f"{what} is not valid JSON") from None
    if not isinstance(doc, dict):
        raise DirectoryError(f"{what} is not a JSON object")
    return doc


def _b64(value: object, size: int | None, what: str) -> bytes:
    if not isinstance(value, str):
        raise DirectoryError(f"the {what} is missing")
    if size is not None:
        try:
            return b64decode(value, size, what)
        except KeyFormatError as exc:
            raise DirectoryError(str(exc)) from None
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise DirectoryError(f"the {what} is not base64url") from None
    if b64encode(data) != value:
        raise DirectoryError(f"the {what} is not canonical base64url")
    return data


def _is_date(day: str) -> bool:
    try:
        datetime.date.fromisoformat(day)
    except ValueError:
        return False
    return True
