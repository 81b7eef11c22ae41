"""Property tests: round trips and every kind of tampering (hypothesis)."""

from __future__ import annotations

import asyncio
import io
import itertools
import os
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envelope
from envelope import _stream

IDENTITIES = [envelope.X25519Identity.generate() for _ in range(16)]
SEALED = _stream.SEALED_CHUNK_SIZE
EDGE_SIZES = [0, 1, 65535, 65536, 65537]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sizes = st.one_of(st.sampled_from(EDGE_SIZES), st.integers(0, 300_000))
recipient_counts = st.integers(1, 16)


def seal(data: bytes, n: int = 1) -> bytes:
    return envelope.encrypt_bytes(data, [i.recipient for i in IDENTITIES[:n]])


def header_size(n: int) -> int:
    return 27 + n * 84 + 32


@pytest.mark.parametrize("size", EDGE_SIZES)
def test_edge_sizes_round_trip(size: int) -> None:
    data = os.urandom(size)
    assert envelope.decrypt_bytes(seal(data), IDENTITIES[:1]) == data


@FAST
@given(size=sizes, n=recipient_counts, data=st.data())
def test_round_trip_any_size_any_recipient(size: int, n: int, data: st.DataObject) -> None:
    plaintext = os.urandom(size)
    sealed = seal(plaintext, n)
    who = data.draw(st.integers(0, n - 1))
    assert envelope.decrypt_bytes(sealed, [IDENTITIES[who]]) == plaintext
    # The envelope only grows to the padding bucket plus fixed overheads.
    padded = _stream.padded_size(size + 1)
    chunks = -(-padded // _stream.CHUNK_SIZE)
    assert len(sealed) == header_size(n) + padded + 16 * chunks


@FAST
@given(size=sizes, cuts=st.lists(st.integers(0, 400_000), max_size=8))
def test_streaming_in_arbitrary_pieces_matches_one_shot(size: int, cuts: list[int]) -> None:
    plaintext = os.urandom(size)
    enc = envelope.Encryptor([IDENTITIES[0].recipient])
    bounds = sorted({0, size, *(c % (size + 1) for c in cuts)})
    out = [enc.header]
    for a, b in itertools.pairwise(bounds):
        out.append(enc.update(plaintext[a:b]))
    out.extend(enc.finish())
    sealed = b"".join(out)
    dec = envelope.Decryptor(IDENTITIES[:1])
    got: list[bytes] = []
    cbounds = sorted({0, len(sealed), *(c % (len(sealed) + 1) for c in cuts)})
    for a, b in itertools.pairwise(cbounds):
        got.extend(dec.update(sealed[a:b]))
    got.extend(dec.finish())
    assert b"".join(got) == plaintext


@FAST
@given(
    size=st.one_of(st.sampled_from([0, 65536, 17 * 65536 + 3]), st.integers(0, 2_500_000)),
    cuts=st.lists(st.integers(0, 2_500_000), max_size=6),
)
def test_reused_output_buffers_give_the_same_envelope(size: int, cuts: list[int]) -> None:
    """update_views (one reused buffer, batches of 16 chunks) writes exactly
    what update_chunks writes, for pieces of any size, more than a batch included."""
    plaintext = os.urandom(size)
    fixed = {"file_key": bytes(range(32)), "salt": bytes(16)}
    recipients = [IDENTITIES[0].recipient]
    one = envelope.Encryptor(recipients, **fixed)
    expected = b"".join([*one.update_chunks(plaintext), *one.finish()])
    views = envelope.Encryptor(recipients, **fixed)
    out = bytearray()  # payloads only: each header has its own HPKE ephemeral key
    bounds = sorted({0, size, *(c % (size + 1) for c in cuts)})
    for a, b in itertools.pairwise(bounds):
        for view in views.update_views(plaintext[a:b]):
            out += view
    for piece in views.finish():
        out += piece
    assert bytes(out) == expected


def _expect_rejected(sealed: bytes, n: int = 1) -> None:
    with pytest.raises(envelope.EnvelopeError):
        envelope.decrypt_bytes(sealed, IDENTITIES[:n])


@FAST
@given(size=st.sampled_from([0, 1, 5000, 65536, 140_000]), data=st.data())
def test_any_bit_flip_is_rejected(size: int, data: st.DataObject) -> None:
    sealed = bytearray(seal(os.urandom(size)))
    pos = data.draw(st.integers(0, len(sealed) - 1))
    sealed[pos] ^= 1 << data.draw(st.integers(0, 7))
    _expect_rejected(bytes(sealed))


@FAST
@given(size=st.sampled_from([0, 70_000, 140_000]), data=st.data())
def test_any_truncation_is_rejected(size: int, data: st.DataObject) -> None:
    sealed = seal(os.urandom(size))
    cut = data.draw(st.integers(0, len(sealed) - 1))
    _expect_rejected(sealed[:cut])


@FAST
@given(size=st.sampled_from([0, 70_000]), extra=st.binary(min_size=1, max_size=70_000))
def test_any_trailing_data_is_rejected(size: int, extra: bytes) -> None:
    _expect_rejected(seal(os.urandom(size)) + extra)


@FAST
@given(data=st.data())
def test_chunk_swap_or_drop_is_rejected(data: st.DataObject) -> None:
    sealed = seal(os.urandom(4 * 65536))
    h = header_size(1)
    chunks = [sealed[i : i + SEALED] for i in range(h, len(sealed), SEALED)]
    i, j = data.draw(st.integers(0, len(chunks) - 1)), data.draw(st.integers(0, len(chunks) - 1))
    if i == j:
        del chunks[i]
    else:
        chunks[i], chunks[j] = chunks[j], chunks[i]
    _expect_rejected(sealed[:h] + b"".join(chunks))


def test_wrong_key_is_no_match_and_errors_are_uniform() -> None:
    sealed = seal(b"secret")
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.decrypt_bytes(sealed, [envelope.X25519Identity.generate()])
    messages = set()
    for pos in (27 + 84 + 5, len(sealed) - 1, len(sealed) - 20):  # MAC, tag, ciphertext
        bad = bytearray(sealed)
        bad[pos] ^= 1
        with pytest.raises(envelope.AuthenticationError) as info:
            envelope.decrypt_bytes(bytes(bad), IDENTITIES[:1])
        messages.add(str(info.value))
    assert len(messages) == 1


def test_nothing_is_released_before_its_tag_verifies() -> None:
    plaintext = os.urandom(3 * 65536)
    sealed = bytearray(seal(plaintext))
    h = header_size(1)
    sealed[h + SEALED + 10] ^= 1  # corrupt chunk 1
    dec = envelope.Decryptor(IDENTITIES[:1])
    released = b"".join(dec.update(bytes(sealed[: h + SEALED + 1])))
    assert released == plaintext[:65536]  # chunk 0 verified; chunk 1 not yet complete
    with pytest.raises(envelope.AuthenticationError):
        list(dec.update(bytes(sealed[h + SEALED + 1 :])))


def test_unknown_version_and_zero_recipients_are_format_errors() -> None:
    sealed = seal(b"x")
    with pytest.raises(envelope.FormatError, match="version"):
        envelope.decrypt_bytes(sealed[:8] + b"\x09" + sealed[9:], IDENTITIES[:1])
    with pytest.raises(envelope.FormatError):
        envelope.encrypt_bytes(b"x", [])
    with pytest.raises(envelope.FormatError, match="not a Lanterne envelope"):
        envelope.decrypt_bytes(b"%PDF-1.7 hello", IDENTITIES[:1])


def test_file_objects_stream_round_trip() -> None:
    plaintext = os.urandom(3 * 1024 * 1024 + 17)
    sealed, out = io.BytesIO(), io.BytesIO()
    envelope.encrypt(io.BytesIO(plaintext), sealed, [IDENTITIES[0].recipient])
    sealed.seek(0)
    envelope.decrypt(sealed, out, IDENTITIES[:1])
    assert out.getvalue() == plaintext


def test_async_iterators_round_trip() -> None:
    plaintext = os.urandom(200_003)

    async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i : i + size]

    async def run() -> bytes:
        sealed = b"".join(
            [
                c
                async for c in envelope.encrypt_aiter(
                    pieces(plaintext, 7777), [IDENTITIES[3].recipient]
                )
            ]
        )
        return b"".join(
            [c async for c in envelope.decrypt_aiter(pieces(sealed, 12345), [IDENTITIES[3]])]
        )

    assert asyncio.run(run()) == plaintext


def test_long_zero_runs_after_a_marker_byte_come_back() -> None:
    """Data that looks like padding across many chunks must not be cut."""
    plaintext = b"data\x80" + bytes(5 * 65536) + b"tail\x80" + bytes(3 * 65536)
    assert envelope.decrypt_bytes(seal(plaintext), IDENTITIES[:1]) == plaintext


def test_padded_size_buckets() -> None:
    assert _stream.padded_size(1) == 4096
    assert _stream.padded_size(4096) == 4096
    assert _stream.padded_size(4097) == 4352
    for n in [5000, 10**6, 10**8, 2**30 + 1]:
        b = _stream.padded_size(n)
        assert n <= b <= n * 1.12
    assert _stream.padded_size(2**30 + 1) - (2**30 + 1) < 2**30 * 0.032
