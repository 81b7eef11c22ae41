"""Keys: X25519 identities and recipients, and journalist public keys (SPEC §2).

A journalist publishes a ``PublicKey``: a name, an X25519 encryption key (the
recipient) and an Ed25519 signing key (used by the journalist API, opaque
here), with a fingerprint people can read aloud to each other.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from envelope import _primitives as prim
from envelope.errors import KeyFormatError

PUBLIC_KEY_TYPE = "lanterne-public-key/v1"
FINGERPRINT_GROUPS = 8  # 8 groups of 5 digits: about 133 bits


def b64encode(data: bytes) -> str:
    """Unpadded URL-safe base64, the text form of every key."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str, expected_len: int, what: str) -> bytes:
    """Strict inverse of ``b64encode``; KeyFormatError on anything else."""
    if not isinstance(text, str) or not text.isascii():
        raise KeyFormatError(f"{what}: not a base64 string")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise KeyFormatError(f"{what}: not valid base64") from exc
    if len(raw) != expected_len or b64encode(raw) != text:
        raise KeyFormatError(f"{what}: expected {expected_len} bytes in canonical base64")
    return raw


@dataclass(frozen=True)
class Recipient:
    """An X25519 public key that envelopes can be encrypted to."""

    public_bytes: bytes

    def __post_init__(self) -> None:
        try:
            prim.x25519_check_public(self.public_bytes)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError("an encryption key must be 32 bytes of X25519") from exc

    def to_text(self) -> str:
        return b64encode(self.public_bytes)

    @classmethod
    def from_text(cls, text: str) -> Recipient:
        return cls(b64decode(text, prim.KEY_SIZE, "encryption key"))


class Identity:
    """An X25519 private key that can open envelopes addressed to its recipient."""

    __slots__ = ("_private", "recipient")

    def __init__(self, private_bytes: bytes) -> None:
        if not isinstance(private_bytes, bytes) or len(private_bytes) != prim.KEY_SIZE:
            raise KeyFormatError("a private key must be 32 bytes")
        self._private = private_bytes
        self.recipient = Recipient(prim.x25519_public(private_bytes))

    @classmethod
    def generate(cls) -> Identity:
        return cls(prim.x25519_generate())

    def private_bytes(self) -> bytes:
        """The raw private key; callers must protect it at rest."""
        return self._private

    def __repr__(self) -> str:  # never print the secret
        return f"Identity(recipient={self.recipient.to_text()})"


def fingerprint(encryption_key: bytes, signing_key: bytes) -> str:
    """Eight groups of five digits over both public keys, easy to compare aloud.

    SPEC §2.3: SHA-256(label || x25519 || ed25519); group i is bytes 4i..4i+3 of
    the digest, big-endian, modulo 100000, zero-padded to five digits.
    """
    digest = prim.sha256(prim.LABEL_FINGERPRINT + encryption_key + signing_key)
    groups = (
        int.from_bytes(digest[4 * i : 4 * i + 4], "big") % 100_000
        for i in range(FINGERPRINT_GROUPS)
    )
    return " ".join(f"{g:05d}" for g in groups)


@dataclass(frozen=True)
class PublicKey:
    """A journalist's published keys: what a `.pub` file holds."""

    name: str
    recipient: Recipient
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
            recipient=Recipient.from_text(doc.get("encryption_key", "")),
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
