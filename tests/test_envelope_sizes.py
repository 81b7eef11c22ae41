"""``envelope.ciphertext_size`` and ``envelope.header_size``: the public sizes the
server checks uploads with (server/store/uploads.py), against real envelopes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envelope
from server.store.uploads import is_envelope_length, max_upload_length

IDENTITIES = [envelope.X25519Identity.generate() for _ in range(3)]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 300_000), recipients=st.integers(1, 3))
def test_ciphertext_size_is_the_length_of_a_real_envelope(size: int, recipients: int) -> None:
    sealed = envelope.encrypt_bytes(b"x" * size, [i.recipient for i in IDENTITIES[:recipients]])
    header = envelope.header_size(sealed)
    assert header is not None and 0 < header < len(sealed)
    assert len(sealed) == envelope.ciphertext_size(size, header)
    assert len(sealed) <= envelope.ciphertext_size(size) <= max_upload_length(size)
    assert is_envelope_length(len(sealed), header)
    assert not is_envelope_length(len(sealed) - 1, header)
    assert not is_envelope_length(len(sealed) + 1, header)


def test_header_size_wants_more_bytes_or_refuses_what_is_not_an_envelope() -> None:
    sealed = envelope.encrypt_bytes(b"tip", [IDENTITIES[0].recipient])
    header = envelope.header_size(sealed)
    assert header is not None
    assert envelope.header_size(sealed[: header - 1]) is None
    assert envelope.header_size(b"") is None
    with pytest.raises(envelope.FormatError):
        envelope.header_size(b"%PDF-1.7 not an envelope")


def test_only_envelope_lengths_pass() -> None:
    """Every length up to a few buckets: exactly the lengths some plaintext gives."""
    header = 100
    lengths = {envelope.ciphertext_size(n, header) for n in range(0, 20_000)}
    for total in range(0, max(lengths) + 2):
        assert is_envelope_length(total, header) == (total in lengths), total
