"""Submission receipts (envelope/receipt.py, SPEC §12): the vectors, and the
format attacked (altered values, uncertified keys, other newsrooms)."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path

import pytest

import envelope
from tests.vectors.receipts import generate

VECTORS = sorted(Path(generate.HERE).glob("*.json"))


def test_the_generator_reproduces_every_vector() -> None:
    made = {str(v["name"]): generate.render(v) for v in generate.vectors()}
    assert sorted(made) == [p.stem for p in VECTORS]
    for path in VECTORS:
        assert path.read_text(encoding="utf-8") == made[path.stem], path.name


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path: Path) -> None:
    vector = json.loads(path.read_text(encoding="utf-8"))
    trusted = bytes.fromhex(vector["newsroom_key"])
    if vector["expect"] == "error":
        with pytest.raises(envelope.ReceiptError):
            envelope.verify_receipt(vector["receipt"], trusted)
        return
    receipt = envelope.verify_receipt(vector["receipt"], trusted)
    assert receipt.received_by == vector["received_by"]
    assert receipt.day == vector["day"]
    assert receipt.objects == vector["objects"]
    hashes = [bytes.fromhex(h) for h in vector["object_sha256"]]
    assert receipt.sha256 == envelope.receipt_objects_hash(hashes).hex()
    assert receipt.sha256 == envelope.receipt_objects_hash(reversed(hashes)).hex()


SEED = hashlib.sha256(b"newsroom").digest()
RECEIPT_SEED = hashlib.sha256(b"receipt").digest()


def make(name: str = "Lanterne", objects: tuple[bytes, ...] = (b"a", b"b")) -> str:
    cert = envelope.certify_receipt_key(
        envelope.newsroom_public_key(RECEIPT_SEED), day=datetime.date(2026, 12, 1), seed=SEED
    )
    return envelope.sign_receipt(
        received_by=name,
        day=datetime.date(2026, 12, 4),
        object_hashes=[hashlib.sha256(o).digest() for o in objects],
        certificate=cert,
        seed=RECEIPT_SEED,
    )


def test_a_receipt_is_short_and_names_nobody() -> None:
    text = make()
    lines = text.splitlines()
    assert len(lines) == 12 and max(len(line) for line in lines) <= 100
    assert envelope.verify_receipt(text.encode(), envelope.newsroom_public_key(SEED)).objects == 2


def test_every_single_character_change_is_refused() -> None:
    text = make()
    trusted = envelope.newsroom_public_key(SEED)
    start = text.index("\n") + 1
    end = text.index("-----END")
    for i in range(start, end):
        if text[i] in "\n ":
            continue
        for replacement in {"0", "x"} - {text[i]}:
            altered = text[:i] + replacement + text[i + 1 :]
            with pytest.raises(envelope.ReceiptError):
                envelope.verify_receipt(altered, trusted)


def test_signing_refuses_what_would_not_verify() -> None:
    cert = envelope.certify_receipt_key(
        envelope.newsroom_public_key(RECEIPT_SEED), day=datetime.date(2026, 12, 1), seed=SEED
    )
    day = datetime.date(2026, 12, 4)
    with pytest.raises(envelope.ReceiptError, match="another receipt key"):
        envelope.sign_receipt(
            received_by="x", day=day, object_hashes=[bytes(32)], certificate=cert, seed=SEED
        )
    for bad_name in ("", " padded", "two\nlines", "x" * 201, "bell\x07"):
        with pytest.raises(envelope.ReceiptError):
            make(name=bad_name)
    with pytest.raises(envelope.ReceiptError):
        make(objects=())
    with pytest.raises(envelope.ReceiptError):
        envelope.receipt_objects_hash([b"short"])


def test_hostile_inputs_are_refused_cleanly() -> None:
    trusted = envelope.newsroom_public_key(SEED)
    for hostile in (b"", b"\xff\xfe", b"x" * (64 * 1024 + 1), "no receipt here"):
        with pytest.raises(envelope.ReceiptError):
            envelope.verify_receipt(hostile, trusted)
