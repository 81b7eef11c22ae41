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


# --- 0x0002 X-Wing-HPKE (SPEC §4.1) ----------------------------------------------

HYBRID = envelope.HybridIdentity.generate()


def test_hybrid_round_trip_with_a_single_1168_byte_stanza() -> None:
    sealed = envelope.encrypt_bytes(b"post-quantum tip", [HYBRID.recipient])
    parsed = _header.parse_header(sealed)
    assert parsed is not None
    assert [(s.type, len(s.body)) for s in parsed.stanzas] == [(0x0002, 1168)]
    assert envelope.decrypt_bytes(sealed, [HYBRID]) == b"post-quantum tip"


def test_hybrid_and_x25519_identities_pass_on_each_others_stanzas() -> None:
    x = envelope.X25519Identity.generate()
    sealed = envelope.encrypt_bytes(b"x", [x.recipient, HYBRID.recipient])
    parsed = _header.parse_header(sealed)
    assert parsed is not None
    first, second = parsed.stanzas
    assert HYBRID.unwrap(first, parsed.prefix) is None
    assert x.unwrap(second, parsed.prefix) is None
    assert HYBRID.unwrap(second, parsed.prefix) == x.unwrap(first, parsed.prefix)
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.decrypt_bytes(sealed, [envelope.HybridIdentity.generate()])


def _with_stanza_length(sealed: bytes, body: bytes) -> bytes:
    """The envelope's first (hybrid) stanza replaced by ``body``."""
    head = 27
    old_len = int.from_bytes(sealed[head + 2 : head + 4], "big")
    return sealed[: head + 2] + len(body).to_bytes(2, "big") + body + sealed[head + 4 + old_len :]


@pytest.mark.parametrize("length", [0, 80, 1167, 1169, 4000])
def test_hybrid_stanza_of_the_wrong_length_is_a_format_error(length: int) -> None:
    sealed = envelope.encrypt_bytes(b"x", [HYBRID.recipient])
    parsed = _header.parse_header(sealed)
    assert parsed is not None
    body = (parsed.stanzas[0].body * 4)[:length]
    with pytest.raises(envelope.FormatError, match="0x0002"):
        envelope.decrypt_bytes(_with_stanza_length(sealed, body), [HYBRID])


def test_hybrid_stanza_bound_to_its_type_and_prefix() -> None:
    sealed = envelope.encrypt_bytes(b"x", [HYBRID.recipient])
    parsed = _header.parse_header(sealed)
    assert parsed is not None
    stanza = parsed.stanzas[0]
    assert HYBRID.unwrap(stanza, parsed.prefix) is not None
    other_salt = parsed.prefix[:12] + bytes([parsed.prefix[12] ^ 1]) + parsed.prefix[13:]
    assert HYBRID.unwrap(stanza, other_salt) is None
    flipped = envelope.Stanza(0x0002, stanza.body[:-1] + bytes([stanza.body[-1] ^ 1]))
    assert HYBRID.unwrap(flipped, parsed.prefix) is None


def test_hybrid_keys_reject_bad_bytes() -> None:
    with pytest.raises(envelope.KeyFormatError):
        envelope.HybridRecipient(bytes(1215))
    with pytest.raises(envelope.KeyFormatError):
        envelope.HybridIdentity(bytes(31))
    text = HYBRID.recipient.to_text()
    assert envelope.HybridRecipient.from_text(text) == HYBRID.recipient
    with pytest.raises(envelope.KeyFormatError):
        envelope.HybridRecipient.from_text(text + "=")  # not canonical
    assert "seed" not in repr(HYBRID) and HYBRID.private_bytes().hex() not in repr(HYBRID)


def test_a_writer_never_writes_a_header_readers_refuse() -> None:
    """55 hybrid stanzas fit in 65536 bytes, 56 do not (SPEC §7): refused when writing."""
    recipients = [HYBRID.recipient] * 55
    sealed = envelope.encrypt_bytes(b"x", recipients)
    assert envelope.decrypt_bytes(sealed, [HYBRID]) == b"x"
    with pytest.raises(envelope.FormatError, match="header would exceed"):
        envelope.encrypt_bytes(b"x", [*recipients, HYBRID.recipient])
    with pytest.raises(envelope.FormatError, match="header would exceed"):
        envelope.Encryptor([*recipients, HYBRID.recipient])
