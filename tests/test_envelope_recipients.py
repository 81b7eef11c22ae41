"""Recipients and identities as interfaces (SPEC §4.1): the header code knows no key type."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

import envelope
from envelope import _header

TOY_TYPE = 0x7A7A


def _pad(secret: bytes, prefix: bytes) -> bytes:
    # A test-only "wrap": never a real cipher, only enough to tell keys apart.
    return hashlib.sha256(secret + prefix).digest()


@dataclass(frozen=True)
class ToyRecipient:
    secret: bytes

    def wrap(self, file_key: bytes, prefix: bytes) -> envelope.Stanza:
        pad = _pad(self.secret, prefix)
        return envelope.Stanza(TOY_TYPE, bytes(a ^ b for a, b in zip(file_key, pad, strict=True)))


@dataclass(frozen=True)
class ToyIdentity:
    secret: bytes

    def unwrap(self, stanza: envelope.Stanza, prefix: bytes) -> bytes | None:
        if stanza.type != TOY_TYPE or self.secret != b"right":
            return None
        pad = _pad(self.secret, prefix)
        return bytes(a ^ b for a, b in zip(stanza.body, pad, strict=True))


def test_any_recipient_type_plugs_into_the_header() -> None:
    """A new stanza type needs a Recipient and an Identity, not a change to the header code."""
    x = envelope.X25519Identity.generate()
    sealed = envelope.encrypt_bytes(b"tip", [ToyRecipient(b"right"), x.recipient])
    stanzas = _header.parse_header(sealed)
    assert stanzas is not None
    assert [s.type for s in stanzas.stanzas] == [TOY_TYPE, 0x0001]
    assert envelope.decrypt_bytes(sealed, [ToyIdentity(b"right")]) == b"tip"
    assert envelope.decrypt_bytes(sealed, [x]) == b"tip"
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.decrypt_bytes(sealed, [ToyIdentity(b"wrong")])


def test_identities_pass_on_stanzas_of_other_types() -> None:
    x = envelope.X25519Identity.generate()
    sealed = envelope.encrypt_bytes(b"tip", [ToyRecipient(b"right")])
    parsed = _header.parse_header(sealed)
    assert parsed is not None
    assert x.unwrap(parsed.stanzas[0], parsed.prefix) is None
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.decrypt_bytes(sealed, [x])


def test_x25519_unwrap_is_bound_to_the_prefix() -> None:
    x = envelope.X25519Identity.generate()
    sealed = envelope.encrypt_bytes(b"tip", [x.recipient])
    parsed = _header.parse_header(sealed)
    assert parsed is not None
    assert x.unwrap(parsed.stanzas[0], parsed.prefix) is not None
    other_prefix = parsed.prefix[:-3] + bytes([parsed.prefix[-3] ^ 1]) + parsed.prefix[-2:]
    assert x.unwrap(parsed.stanzas[0], other_prefix) is None


def test_stanzas_follow_the_order_of_the_recipient_list() -> None:
    ids = [envelope.X25519Identity.generate() for _ in range(3)]
    toy = ToyRecipient(b"right")
    sealed = envelope.encrypt_bytes(b"x", [ids[0].recipient, toy, ids[1].recipient])
    parsed = _header.parse_header(sealed)
    assert parsed is not None
    assert [s.type for s in parsed.stanzas] == [0x0001, TOY_TYPE, 0x0001]
    assert envelope.decrypt_bytes(sealed, [ids[1]]) == b"x"
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.decrypt_bytes(sealed, [ids[2]])
