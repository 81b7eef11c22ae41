"""Fuzzing the envelope reader, one-shot and streaming (issue 13, item 5).

Inputs are valid envelopes mutated every way hypothesis can find (bit flips,
overwritten, inserted and deleted runs, cuts, spliced copies of themselves,
envelopes of other sizes or recipients) and plain random bytes. Whatever comes
in, the reader raises only its own typed errors (``envelope.EnvelopeError``),
and releases nothing that is not the original plaintext:

- one shot (``decrypt_bytes``): the whole plaintext, or an error;
- streaming (``Decryptor`` fed in arbitrary pieces): what it releases before
  an error is a prefix of the original plaintext, chunk by chunk verified;
- to a file (``decrypt_file``): the whole file, or no file and no temporary.

The CI run is bounded (``LANTERNE_FUZZ_EXAMPLES``, default 2,000 inputs per
test, about a minute on the project machine); a longer run sets it higher:

    LANTERNE_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/test_fuzz_envelope.py -q
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import envelope

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("LANTERNE_FUZZ_EXAMPLES", "2000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ME = envelope.X25519Identity.generate()
OTHER = envelope.X25519Identity.generate()
# Sizes around the 64 KiB chunk: no chunk boundary, one, two.
PLAINTEXTS = [os.urandom(n) for n in (0, 1, 1000, 65536, 70_000, 140_000)]
SEALED = [envelope.encrypt_bytes(p, [ME.recipient]) for p in PLAINTEXTS]
SEALED += [envelope.encrypt_bytes(PLAINTEXTS[2], [OTHER.recipient, ME.recipient])]
PLAINTEXTS += [PLAINTEXTS[2]]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[int, bytes]:
    """(index of the original, the mutated bytes): one to four mutations of a valid envelope."""
    index = draw(st.integers(0, len(SEALED) - 1))
    data = bytearray(SEALED[index])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut", "splice", "graft"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            run = draw(st.binary(min_size=1, max_size=64))
            data[at : at + len(run)] = run
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 70_000))]
        elif kind == "cut":
            del data[at:]
        elif kind == "splice":  # a piece of the envelope copied elsewhere in it
            start = draw(st.integers(0, len(data)))
            piece = bytes(data[start : start + draw(st.integers(1, 65_552))])
            data[at:at] = piece
        else:  # the start of one envelope, the rest of another
            other = SEALED[draw(st.integers(0, len(SEALED) - 1))]
            data = data[:at] + other[min(at, len(other)) :]
    return index, bytes(data)


inputs = st.one_of(
    mutated(),
    st.binary(max_size=4096).map(lambda b: (-1, b)),
    # Random bytes behind a real header: the payload reader on its own.
    st.tuples(st.integers(0, len(SEALED) - 1), st.binary(max_size=70_000)).map(
        lambda t: (t[0], SEALED[t[0]][:200] + t[1])
    ),
)


def genuine(data: bytes) -> bytes | None:
    """The plaintext of ``data`` if it is byte for byte one of the genuine envelopes.

    Only these may ever be accepted: a mutation can give one back (a byte set
    to its own value, the start of one envelope grafted onto the rest of
    another at a byte they share), never make a new one."""
    for sealed, plain in zip(SEALED, PLAINTEXTS, strict=True):
        if data == sealed:
            return plain
    return None


@FUZZ
@given(inputs)
def test_one_shot_gives_the_whole_plaintext_or_a_typed_error(case: tuple[int, bytes]) -> None:
    _, data = case
    try:
        out = envelope.decrypt_bytes(data, [ME])
    except envelope.EnvelopeError:
        return
    assert genuine(data) == out


@FUZZ
@given(inputs, st.lists(st.integers(1, 90_000), max_size=12))
def test_streaming_releases_only_a_prefix_of_the_plaintext(
    case: tuple[int, bytes], cuts: list[int]
) -> None:
    _, data = case
    dec = envelope.Decryptor([ME])
    released = bytearray()
    pieces, at = [], 0
    for n in cuts:
        pieces.append(data[at : at + n])
        at += n
    pieces.append(data[at:])
    try:
        for piece in pieces:
            for out in dec.update(piece):
                released += out
        for out in dec.finish():
            released += out
    except envelope.EnvelopeError:
        assert any(p.startswith(released) for p in PLAINTEXTS)
        return
    assert genuine(data) == released


@settings(FUZZ, max_examples=max(EXAMPLES // 3, 20))
@given(inputs)
def test_decrypting_to_a_file_leaves_the_whole_file_or_nothing(case: tuple[int, bytes]) -> None:
    _, data = case
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in"), Path(tmp, "out")
        src.write_bytes(data)
        try:
            envelope.decrypt_file(src, dst, [ME])
        except envelope.EnvelopeError:
            assert sorted(os.listdir(tmp)) == ["in"]  # no output, no temporary file
            return
        assert genuine(data) == dst.read_bytes()
