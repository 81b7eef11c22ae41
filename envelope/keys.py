"""Journalist public keys: the ``.pub`` file and its fingerprint (SPEC §2.2, §2.3).

A journalist publishes a ``PublicKey``: a name, an X25519 key, an Ed25519
signing key (used by the journalist API, opaque here) and, for every key made
since hybrid keys exist, an X-Wing key (ML-KEM-768 + X25519), with a
fingerprint over all of them that people can read aloud to each other.

Writers encrypt to ``PublicKey.recipient``: the hybrid key when there is one,
else the X25519 key. The X25519 key of a hybrid journalist is kept only so
that envelopes written before the upgrade still open.

Two versions of the file exist: ``lanterne-public-key/v1`` (X25519 and
Ed25519) and ``lanterne-public-key/v2`` (typed keys, with the hybrid key).
Both load; a key is written as v2 exactly when it has a hybrid key.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from envelope import _primitives as prim
from envelope.errors import KeyFormatError
from envelope.recipients import (
    HybridRecipient,
    Recipient,
    X25519Recipient,
    b64decode,
    b64encode,
)

__all__ = [
    "PUBLIC_KEY_TYPE",
    "PUBLIC_KEY_TYPE_V2",
    "PublicKey",
    "b64decode",
    "b64encode",
    "fingerprint",
    "fingerprint_digits",
    "valid_name",
]

PUBLIC_KEY_TYPE = "lanterne-public-key/v1"
PUBLIC_KEY_TYPE_V2 = "lanterne-public-key/v2"
FINGERPRINT_GROUPS = 8  # 8 groups of 5 digits: about 133 bits

# SPEC §2.2: the typed keys of a v2 file, in the one order writers emit and readers accept.
KEY_X25519, KEY_XWING, KEY_ED25519 = "x25519", "xwing", "ed25519"
_V2_KEY_SIZES = {
    KEY_X25519: prim.KEY_SIZE,
    KEY_XWING: prim.XWING_PUBLIC_SIZE,
    KEY_ED25519: prim.KEY_SIZE,
}
_V2_ORDER = (KEY_X25519, KEY_XWING, KEY_ED25519)
_V2_FIELDS = {"type", "name", "keys", "fingerprint"}


def fingerprint_digits(digest: bytes) -> str:
    """Group i is bytes 4i..4i+3 of ``digest``, big-endian, modulo 100000, as five digits."""
    groups = (
        int.from_bytes(digest[4 * i : 4 * i + 4], "big") % 100_000
        for i in range(FINGERPRINT_GROUPS)
    )
    return " ".join(f"{g:05d}" for g in groups)


def fingerprint(encryption_key: bytes, signing_key: bytes, hybrid_key: bytes | None = None) -> str:
    """Eight groups of five digits over every public key, easy to compare aloud.

    SPEC §2.3. Without a hybrid key (v1): SHA-256("lanterne/v1/fingerprint" ||
    x25519 || ed25519). With one (v2): SHA-256("lanterne/v2/fingerprint" || for
    each of x25519, xwing, ed25519 in this order: u8(len(type)) || type ||
    u16(len(key)) || key). Group i is digest bytes 4i..4i+3, big-endian, modulo
    100000, as five digits. Raw key bytes are hashed, never their text form.
    """
    if hybrid_key is None:
        return fingerprint_digits(
            prim.sha256(prim.LABEL_FINGERPRINT + encryption_key + signing_key)
        )
    data = prim.LABEL_FINGERPRINT_V2
    for name, key in zip(_V2_ORDER, (encryption_key, hybrid_key, signing_key), strict=True):
        label = name.encode("ascii")
        data += struct.pack(">B", len(label)) + label + struct.pack(">H", len(key)) + key
    return fingerprint_digits(prim.sha256(data))


@dataclass(frozen=True)
class PublicKey:
    """A journalist's published keys: what a `.pub` file holds."""

    name: str
    x25519: X25519Recipient
    signing_key: bytes  # Ed25519, raw 32 bytes; verified by its users, opaque here
    hybrid: HybridRecipient | None = None

    def __post_init__(self) -> None:
        if not valid_name(self.name):
            raise KeyFormatError(
                "a key name is 1 to 64 letters, digits, dots, dashes or underscores"
            )
        if not isinstance(self.signing_key, bytes) or len(self.signing_key) != prim.KEY_SIZE:
            raise KeyFormatError("a signing key must be 32 bytes")

    @property
    def recipient(self) -> Recipient:
        """What writers encrypt to (SPEC §2.2): the hybrid key if there is one, else X25519."""
        return self.hybrid if self.hybrid is not None else self.x25519

    @property
    def fingerprint(self) -> str:
        return fingerprint(
            self.x25519.public_bytes,
            self.signing_key,
            None if self.hybrid is None else self.hybrid.public_bytes,
        )

    def typed_keys(self) -> list[dict[str, str]]:
        """The keys as SPEC §2.2 lists them: ``[{"type": ..., "key": base64url}, ...]``."""
        keys = [{"type": KEY_X25519, "key": self.x25519.to_text()}]
        if self.hybrid is not None:
            keys.append({"type": KEY_XWING, "key": self.hybrid.to_text()})
        keys.append({"type": KEY_ED25519, "key": b64encode(self.signing_key)})
        return keys

    def to_doc(self) -> dict[str, Any]:
        """The `.pub` JSON object: v2 with typed keys if hybrid, else v1 as before."""
        if self.hybrid is None:
            return {
                "type": PUBLIC_KEY_TYPE,
                "name": self.name,
                "encryption_key": self.x25519.to_text(),
                "signing_key": b64encode(self.signing_key),
                "fingerprint": self.fingerprint,
            }
        return {
            "type": PUBLIC_KEY_TYPE_V2,
            "name": self.name,
            "keys": self.typed_keys(),
            "fingerprint": self.fingerprint,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_doc(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> PublicKey:
        try:
            doc: Any = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise KeyFormatError("not a Lanterne public key file (invalid JSON)") from exc
        return cls.from_doc(doc)

    @classmethod
    def from_doc(cls, doc: Any) -> PublicKey:
        """Read a parsed `.pub` object, checking everything SPEC §2.2 asks readers to check."""
        if not isinstance(doc, dict) or doc.get("type") not in (
            PUBLIC_KEY_TYPE,
            PUBLIC_KEY_TYPE_V2,
        ):
            raise KeyFormatError("not a Lanterne public key file")
        name = doc.get("name")
        if not isinstance(name, str):
            raise KeyFormatError("public key file without a name")
        if doc.get("type") == PUBLIC_KEY_TYPE:
            key = cls(
                name=name,
                x25519=X25519Recipient.from_text(doc.get("encryption_key", "")),
                signing_key=b64decode(doc.get("signing_key", ""), prim.KEY_SIZE, "signing key"),
            )
            if "fingerprint" in doc and doc["fingerprint"] != key.fingerprint:
                raise KeyFormatError("the fingerprint in the file does not match its keys")
            return key
        return cls._from_v2(doc, name)

    @classmethod
    def _from_v2(cls, doc: dict[str, Any], name: str) -> PublicKey:
        if set(doc) != _V2_FIELDS:
            raise KeyFormatError("a v2 public key file has exactly: type, name, keys, fingerprint")
        keys = doc["keys"]
        if not isinstance(keys, list) or len(keys) != len(_V2_ORDER):
            raise KeyFormatError("a v2 public key file lists x25519, xwing and ed25519 keys")
        raw: dict[str, bytes] = {}
        for expected, entry in zip(_V2_ORDER, keys, strict=True):
            if not isinstance(entry, dict) or set(entry) != {"type", "key"}:
                raise KeyFormatError("each key is an object with a type and a key")
            if entry["type"] != expected:
                raise KeyFormatError("the keys must be x25519, xwing, ed25519, in this order")
            raw[expected] = b64decode(entry["key"], _V2_KEY_SIZES[expected], f"{expected} key")
        key = cls(
            name=name,
            x25519=X25519Recipient(raw[KEY_X25519]),
            signing_key=raw[KEY_ED25519],
            hybrid=HybridRecipient(raw[KEY_XWING]),
        )
        if doc["fingerprint"] != key.fingerprint:
            raise KeyFormatError("the fingerprint in the file does not match its keys")
        return key


def valid_name(name: str) -> bool:
    """Key names become file names, so they are kept to a safe alphabet."""
    return (
        0 < len(name) <= 64
        and name.isascii()
        and all(c.isalnum() or c in "._-" for c in name)
        and not name.startswith(".")
    )
