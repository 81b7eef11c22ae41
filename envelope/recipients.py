"""Recipients and identities: who an envelope is encrypted to (SPEC §2.1, §4.1).

As in age, the header code knows no key type. A ``Recipient`` wraps the file
key into one stanza; an ``Identity`` unwraps a stanza, or passes (returns
None) when the stanza is not of its type or not for it. Each stanza type is
one row of the table in SPEC §4.1 and one pair of classes here:

    type    label                      recipient           identity
    0x0001  lanterne/v1/x25519-hpke    X25519Recipient     X25519Identity
    0x0002  lanterne/v1/xwing-hpke     HybridRecipient     HybridIdentity  (X-Wing)

A stanza's HPKE ``info`` is its label, then the envelope's prefix (magic,
version, salt, stanza count), then its type: a stanza cannot be moved to
another envelope or reinterpreted as another type.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from typing import Protocol

from envelope import _primitives as prim
from envelope.errors import KeyFormatError

STANZA_X25519_HPKE = 0x0001
STANZA_XWING_HPKE = 0x0002

#: SPEC §4.1 and §8: every stanza type a reader knows has exactly this body size.
STANZA_BODY_SIZE = {
    STANZA_X25519_HPKE: prim.HPKE_SEALED_FILE_KEY_SIZE,  # 80
    STANZA_XWING_HPKE: prim.XWING_SEALED_FILE_KEY_SIZE,  # 1168
}

_STANZA_HEAD = struct.Struct(">HH")


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of a header: its type and its body (SPEC §3)."""

    type: int
    body: bytes

    def encode(self) -> bytes:
        return _STANZA_HEAD.pack(self.type, len(self.body)) + self.body


def stanza_info(label: bytes, prefix: bytes, stanza_type: int) -> bytes:
    """HPKE ``info``: label || prefix || u16(type), binding the stanza to its envelope."""
    return label + prefix + struct.pack(">H", stanza_type)


class Recipient(Protocol):
    """Something an envelope can be encrypted to: it wraps the file key into one stanza."""

    def wrap(self, file_key: bytes, prefix: bytes) -> Stanza:
        """The stanza carrying ``file_key`` for this recipient, bound to ``prefix``."""
        ...


class Identity(Protocol):
    """Something that can open envelopes: it unwraps a stanza, or passes with None."""

    def unwrap(self, stanza: Stanza, prefix: bytes) -> bytes | None:
        """The file key if ``stanza`` is of this identity's type and opens; else None."""
        ...


def b64encode(data: bytes) -> str:
    """Unpadded URL-safe base64, the text form of every key (SPEC §2.1)."""
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


# --- 0x0001 X25519-HPKE -------------------------------------------------------


@dataclass(frozen=True)
class X25519Recipient:
    """An X25519 public key (32 bytes): stanza type 0x0001."""

    public_bytes: bytes

    def __post_init__(self) -> None:
        try:
            prim.x25519_check_public(self.public_bytes)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError("an encryption key must be 32 bytes of X25519") from exc

    def wrap(self, file_key: bytes, prefix: bytes) -> Stanza:
        info = stanza_info(prim.LABEL_STANZA_X25519, prefix, STANZA_X25519_HPKE)
        return Stanza(STANZA_X25519_HPKE, prim.hpke_seal(file_key, self.public_bytes, info))

    def to_text(self) -> str:
        return b64encode(self.public_bytes)

    @classmethod
    def from_text(cls, text: str) -> X25519Recipient:
        return cls(b64decode(text, prim.KEY_SIZE, "encryption key"))


class X25519Identity:
    """An X25519 private key (32 bytes) that opens 0x0001 stanzas."""

    __slots__ = ("_opener", "_private", "recipient")

    def __init__(self, private_bytes: bytes) -> None:
        if not isinstance(private_bytes, bytes) or len(private_bytes) != prim.KEY_SIZE:
            raise KeyFormatError("a private key must be 32 bytes")
        self._private = private_bytes
        self._opener = prim.X25519Opener(private_bytes)
        self.recipient = X25519Recipient(prim.x25519_public(private_bytes))

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(prim.x25519_generate())

    def private_bytes(self) -> bytes:
        """The raw private key; callers must protect it at rest."""
        return self._private

    def unwrap(self, stanza: Stanza, prefix: bytes) -> bytes | None:
        if stanza.type != STANZA_X25519_HPKE:
            return None
        info = stanza_info(prim.LABEL_STANZA_X25519, prefix, STANZA_X25519_HPKE)
        try:
            return self._opener.open(stanza.body, info)
        except prim.PrimitiveFailure:
            return None

    def __repr__(self) -> str:  # never print the secret
        return f"X25519Identity(recipient={self.recipient.to_text()})"


# --- 0x0002 X-Wing-HPKE (hybrid post-quantum) ----------------------------------


@dataclass(frozen=True)
class HybridRecipient:
    """An X-Wing public key (ML-KEM-768 1184 || X25519 32 = 1216 bytes): stanza type 0x0002.

    An envelope wrapped to it can be opened only by breaking both ML-KEM-768
    and X25519.
    """

    public_bytes: bytes

    def __post_init__(self) -> None:
        try:
            prim.xwing_check_public(self.public_bytes)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(
                "a hybrid key must be 1216 bytes of ML-KEM-768 and X25519"
            ) from exc

    def wrap(self, file_key: bytes, prefix: bytes) -> Stanza:
        info = stanza_info(prim.LABEL_STANZA_XWING, prefix, STANZA_XWING_HPKE)
        return Stanza(STANZA_XWING_HPKE, prim.xwing_seal(file_key, self.public_bytes, info))

    def to_text(self) -> str:
        return b64encode(self.public_bytes)

    @classmethod
    def from_text(cls, text: str) -> HybridRecipient:
        return cls(b64decode(text, prim.XWING_PUBLIC_SIZE, "hybrid key"))


class HybridIdentity:
    """An X-Wing private key, stored as its 32-byte seed, that opens 0x0002 stanzas."""

    __slots__ = ("_opener", "_seed", "recipient")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != prim.XWING_SEED_SIZE:
            raise KeyFormatError("a hybrid private key must be a 32-byte seed")
        self._seed = seed
        self._opener = prim.XWingOpener(seed)  # expanded once: trial decryption stays cheap
        self.recipient = HybridRecipient(prim.xwing_public(seed))

    @classmethod
    def generate(cls) -> HybridIdentity:
        return cls(prim.xwing_generate())

    def private_bytes(self) -> bytes:
        """The 32-byte seed; callers must protect it at rest."""
        return self._seed

    def unwrap(self, stanza: Stanza, prefix: bytes) -> bytes | None:
        if stanza.type != STANZA_XWING_HPKE:
            return None
        info = stanza_info(prim.LABEL_STANZA_XWING, prefix, STANZA_XWING_HPKE)
        try:
            return self._opener.open(stanza.body, info)
        except prim.PrimitiveFailure:
            return None

    def __repr__(self) -> str:  # never print the secret
        return f"HybridIdentity(recipient={self.recipient.to_text()[:16]}...)"
