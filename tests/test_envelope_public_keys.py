"""The .pub file (v1 and v2) and fingerprints over every key (SPEC §2.2, §2.3)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

import envelope
from envelope.keys import b64encode

X = envelope.X25519Identity(bytes(range(32)))
H = envelope.HybridIdentity(bytes(range(32, 64)))
SIGNING = bytes(range(64, 96))


def hybrid_key() -> envelope.PublicKey:
    return envelope.PublicKey("alice", X.recipient, SIGNING, H.recipient)


def groups(digest: bytes) -> str:
    return " ".join(f"{int.from_bytes(digest[4 * i : 4 * i + 4], 'big') % 100000:05d}"
                    for i in range(8))  # fmt: skip


def test_v2_fingerprint_is_exactly_the_spec() -> None:
    """Recomputed here from SPEC §2.3's words, independently of envelope.keys."""
    data = b"lanterne/v2/fingerprint"
    for label, key in (
        (b"x25519", X.recipient.public_bytes),
        (b"xwing", H.recipient.public_bytes),
        (b"ed25519", SIGNING),
    ):
        data += bytes([len(label)]) + label + len(key).to_bytes(2, "big") + key
    assert hybrid_key().fingerprint == groups(hashlib.sha256(data).digest())


def test_v1_fingerprint_is_unchanged() -> None:
    key = envelope.PublicKey("alice", X.recipient, SIGNING)
    digest = hashlib.sha256(b"lanterne/v1/fingerprint" + X.recipient.public_bytes + SIGNING)
    assert key.fingerprint == groups(digest.digest())
    assert key.fingerprint != hybrid_key().fingerprint


def test_the_fingerprint_covers_the_hybrid_key() -> None:
    other = envelope.PublicKey(
        "alice", X.recipient, SIGNING, envelope.HybridIdentity.generate().recipient
    )
    assert other.fingerprint != hybrid_key().fingerprint


def test_v2_file_round_trip_and_layout() -> None:
    key = hybrid_key()
    doc = json.loads(key.to_json())
    assert doc == {
        "type": "lanterne-public-key/v2",
        "name": "alice",
        "keys": [
            {"type": "x25519", "key": b64encode(X.recipient.public_bytes)},
            {"type": "xwing", "key": b64encode(H.recipient.public_bytes)},
            {"type": "ed25519", "key": b64encode(SIGNING)},
        ],
        "fingerprint": key.fingerprint,
    }
    assert envelope.PublicKey.from_json(key.to_json()) == key
    assert key.recipient == H.recipient  # writers encrypt to the hybrid key


def test_v1_files_keep_loading_and_are_written_as_v1() -> None:
    v1 = envelope.PublicKey("bob", X.recipient, SIGNING)
    doc = json.loads(v1.to_json())
    assert doc["type"] == "lanterne-public-key/v1"
    assert set(doc) == {"type", "name", "encryption_key", "signing_key", "fingerprint"}
    loaded = envelope.PublicKey.from_json(v1.to_json())
    assert loaded == v1 and loaded.hybrid is None and loaded.recipient == X.recipient


def _doc() -> dict:
    return json.loads(hybrid_key().to_json())


def _swap(doc: dict) -> dict:
    doc["keys"][0], doc["keys"][1] = doc["keys"][1], doc["keys"][0]
    return doc


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d | {"fingerprint": "00000 " * 7 + "00000"}, "fingerprint"),
        (lambda d: {k: v for k, v in d.items() if k != "fingerprint"}, "exactly"),
        (lambda d: d | {"encryption_key": d["keys"][0]["key"]}, "exactly"),
        (_swap, "in this order"),
        (lambda d: d | {"keys": d["keys"][::2]}, "lists x25519, xwing and ed25519"),
        (lambda d: d | {"keys": [*d["keys"], d["keys"][0]]}, "lists x25519, xwing and ed25519"),
        (lambda d: d | {"keys": [d["keys"][0] | {"extra": 1}, *d["keys"][1:]]}, "type and a key"),
        (
            lambda d: (
                d
                | {
                    "keys": [
                        d["keys"][0],
                        {"type": "xwing", "key": d["keys"][0]["key"]},
                        d["keys"][2],
                    ]
                }
            ),
            "xwing key",
        ),
        (lambda d: d | {"keys": "x"}, "lists"),
        (lambda d: d | {"name": "../x"}, "key name"),
    ],
)
def test_v2_readers_check_everything(damage, message: str) -> None:
    with pytest.raises(envelope.KeyFormatError, match=message):
        envelope.PublicKey.from_json(json.dumps(damage(_doc())))


def test_a_hybrid_key_that_is_not_a_valid_key_is_refused() -> None:
    doc = _doc()
    doc["keys"][1]["key"] = b64encode(os.urandom(1184) + bytes(32))
    # A random ML-KEM half may parse; the fingerprint then no longer matches.
    with pytest.raises(envelope.KeyFormatError):
        envelope.PublicKey.from_json(json.dumps(doc))
