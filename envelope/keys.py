"""Journalist public keys (SPEC §2.2, §2.3).

A journalist publishes a ``PublicKey``: a name, an X25519 encryption key (the
recipient) and an Ed25519 signing key (used by the journalist API, opaque
here), with a fingerprint people can read aloud to each other. The
recipient and identity types themselves live in ``envelope.recipients``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from envelope import _primitives as prim
from envelope.errors import KeyFormatError
from envelope.recipients import X25519Recipient, b64decode, b64encode

__all__ = ["PublicKey", "b64decode", "b64encode", "fingerprint", "valid_name"]

PUBLIC_KEY_TYPE = "lanterne-public-key/v1"
FINGERPRINT_GROUPS = 8  # 8 groups of 5 digits: about 133 bits


def fingerprint(encryption_key: bytes, signing_key: bytes) -> str:
    """Eight groups of five digits over both public keys, easy to compare aloud.

    SPEC §2.3: SHA-256(label || x25519 || ed25519); group i is bytes 4i..4i+3 of
    the digest, big-endian, modulo 100000, zero-padded to five digits.
    """
    return fingerprint_digits(prim.sha256(prim.LABEL_FINGERPRINT + encryption_key + signing_key))


def fingerprint_digits(digest: bytes) -> str:
    """Group i is bytes 4i..4i+3 of ``digest``, big-endian, modulo 100000, as five digits."""
    groups = (
        int.from_bytes(digest[4 * i : 4 * i + 4], "big") % 100_000
        for i in range(FINGERPRINT_GROUPS)
    )
    return " ".join(f"{g:05d}" for g in groups)


@dataclass(frozen=True)
class PublicKey:
    """A journalist's published keys: what a `.pub` file holds."""

    name: str
    recipient: X25519Recipient
    signing_key: bytes  # Ed25519, raw 32 bytes; verified by its users, opaque here

    def __post_init__(self) -> None:
        if not valid_name(self.name):
            raise KeyFormatError(
                "a key name is 1 to 64 letters, digits, dots, dashes or underscores"
            )
        if len(self.signing_key) != prim.KEY_SIZE:
            raise KeyFormatError("a signing key must be 32 bytes")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.recipient.public_bytes, self.signing_key)

    def to_json(self) -> str:
        doc = {
            "type": PUBLIC_KEY_TYPE,
            "name": self.name,
            "encryption_key": self.recipient.to_text(),
            "signing_key": b64encode(self.signing_key),
            "fingerprint": self.fingerprint,
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> PublicKey:
        try:
            doc: Any = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise KeyFormatError("not a Lanterne public key file (invalid JSON)") from exc
        if not isinstance(doc, dict) or doc.get("type") != PUBLIC_KEY_TYPE:
            raise KeyFormatError("not a Lanterne public key file")
        name = doc.get("name")
        if not isinstance(name, str):
            raise KeyFormatError("public key file without a name")
        key = cls(
            name=name,
            recipient=X25519Recipient.from_text(doc.get("encryption_key", "")),
            signing_key=b64decode(doc.get("signing_key", ""), prim.KEY_SIZE, "signing key"),
        )
        if "fingerprint" in doc and doc["fingerprint"] != key.fingerprint:
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
