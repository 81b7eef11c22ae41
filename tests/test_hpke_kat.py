"""RFC 9180 known-answer tests for the envelope's HPKE suite.

The official vectors come from the ``cryptography_vectors`` package. They are
checked in both directions: cryptography's HPKE opens every vector ciphertext,
and the test-only reference Seal (used to build byte-exact envelope vectors,
and mirrored by the browser code) reproduces every ciphertext from the fixed
ephemeral key. Then the product's own ``X25519Opener`` opens reference output.
"""

from __future__ import annotations

import json
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from envelope import _primitives as prim
from tests import hpke_reference

VECTOR_FILE = Path(cryptography_vectors.__file__).parent / "HPKE" / "test-vectors.json"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def our_suite_vectors() -> list[dict]:
    allv = json.loads(VECTOR_FILE.read_text())
    return [
        v
        for v in allv
        if v["mode"] == 0 and v["kem_id"] == 0x20 and v["kdf_id"] == 1 and v["aead_id"] == 2
    ]


VECTORS = our_suite_vectors()


def test_the_suite_has_official_vectors() -> None:
    assert len(VECTORS) >= 1
    assert all(v["encryptions"] for v in VECTORS)


@pytest.mark.parametrize("v", VECTORS)
def test_key_schedule_matches(v: dict) -> None:
    key, base_nonce = hpke_reference.key_schedule(
        bytes.fromhex(v["shared_secret"]), bytes.fromhex(v["info"])
    )
    assert key.hex() == v["key"]
    assert base_nonce.hex() == v["base_nonce"]


@pytest.mark.parametrize("v", VECTORS)
def test_reference_seal_reproduces_first_encryption(v: dict) -> None:
    e = v["encryptions"][0]  # single-shot Seal is sequence number 0
    sealed = hpke_reference.seal(
        bytes.fromhex(v["pkRm"]),
        bytes.fromhex(v["info"]),
        bytes.fromhex(e["pt"]),
        bytes.fromhex(v["skEm"]),
        aad=bytes.fromhex(e["aad"]),
    )
    assert sealed == bytes.fromhex(v["enc"]) + bytes.fromhex(e["ct"])


@pytest.mark.parametrize("v", VECTORS)
def test_cryptography_opens_first_encryption(v: dict) -> None:
    e = v["encryptions"][0]
    sk = X25519PrivateKey.from_private_bytes(bytes.fromhex(v["skRm"]))
    pt = rust_openssl.hpke._decrypt_with_aad(
        SUITE,
        bytes.fromhex(v["enc"]) + bytes.fromhex(e["ct"]),
        sk,
        info=bytes.fromhex(v["info"]),
        aad=bytes.fromhex(e["aad"]),
    )
    assert pt == bytes.fromhex(e["pt"])


@pytest.mark.parametrize("v", VECTORS)
def test_product_opens_reference_seal_with_empty_aad(v: dict) -> None:
    """The envelope uses empty aad; close the loop through envelope._primitives."""
    info = bytes.fromhex(v["info"])
    sealed = hpke_reference.seal(
        bytes.fromhex(v["pkRm"]), info, b"k" * 32, bytes.fromhex(v["skEm"])
    )
    opener = prim.X25519Opener(bytes.fromhex(v["skRm"]))
    assert opener.open(sealed, info) == b"k" * 32
    with pytest.raises(prim.PrimitiveFailure):
        opener.open(sealed, info + b"x")
