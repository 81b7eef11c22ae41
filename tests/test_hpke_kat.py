"""RFC 9180 known-answer tests for the envelope's HPKE suite.

The official vectors come from the ``cryptography_vectors`` package. They are
checked in both directions: cryptography's HPKE opens every vector ciphertext,
and the test-only reference Seal (used to build byte-exact envelope vectors,
and mirrored by the browser code) reproduces every ciphertext from the fixed
ephemeral key. Then the product's own ``X25519Opener`` opens reference output.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cryptography_vectors
import pytest
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

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


# --- X-Wing (KEM 0x647a, MLKEM768-X25519): the hybrid stanza's KEM ---------------
#
# draft-ietf-hpke-pq's vectors (hpke-pq-test-vectors.json) have 0x647a only with
# ChaCha20-Poly1305; the envelope uses AES-256-GCM, so these check the KEM (key
# derivation from the seed, the public key layout, decapsulation and the
# X-Wing combiner) and a full open with the vector's own suite. AES-256-GCM
# with 0x647a is covered by tests/vectors (Python and browser writers).

PQ_VECTOR_FILE = Path(cryptography_vectors.__file__).parent / "HPKE" / "hpke-pq-test-vectors.json"
XWING_LABEL = b"\\.//^\\"  # X-Wing's combiner label, 5c 2e 2f 2f 5e 5c
XWING_VECTORS = [v for v in json.loads(PQ_VECTOR_FILE.read_text()) if v["kem_id"] == 0x647A]
PQ_KDFS = {0x0001: hpke.KDF.HKDF_SHA256, 0x0011: hpke.KDF.SHAKE256}


def test_there_are_xwing_vectors() -> None:
    assert XWING_LABEL.hex() == "5c2e2f2f5e5c"
    assert {v["kdf_id"] for v in XWING_VECTORS} >= {0x0001}


@pytest.mark.parametrize("v", XWING_VECTORS, ids=lambda v: f"kdf{v['kdf_id']:#06x}")
def test_xwing_public_key_from_the_seed(v: dict) -> None:
    """SPEC §2.1: SHAKE256(seed, 96) -> ML-KEM d||z, X25519 key; pk = ML-KEM pk || X25519 pk."""
    assert prim.xwing_public(bytes.fromhex(v["skRm"])).hex() == v["pkRm"]


@pytest.mark.parametrize("v", XWING_VECTORS, ids=lambda v: f"kdf{v['kdf_id']:#06x}")
def test_xwing_decapsulation_and_combiner(v: dict) -> None:
    mlkem_sk, x_sk = prim._xwing_expand(bytes.fromhex(v["skRm"]))
    enc = bytes.fromhex(v["enc"])
    assert len(enc) == prim.XWING_ENC_SIZE
    ct_m, ct_x = enc[:1088], enc[1088:]
    ss_m = mlkem_sk.decapsulate(ct_m)
    ss_x = x_sk.exchange(X25519PublicKey.from_public_bytes(ct_x))
    pk_x = x_sk.public_key().public_bytes_raw()
    shared = hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + XWING_LABEL).digest()
    assert shared.hex() == v["shared_secret"]


@pytest.mark.parametrize("v", XWING_VECTORS, ids=lambda v: f"kdf{v['kdf_id']:#06x}")
def test_cryptography_opens_the_xwing_vector(v: dict) -> None:
    suite = hpke.Suite(hpke.KEM.MLKEM768_X25519, PQ_KDFS[v["kdf_id"]], hpke.AEAD.CHACHA20_POLY1305)
    sk = hpke.MLKEM768X25519PrivateKey(*prim._xwing_expand(bytes.fromhex(v["skRm"])))
    e = v["encryptions"][0]
    pt = rust_openssl.hpke._decrypt_with_aad(
        suite,
        bytes.fromhex(v["enc"]) + bytes.fromhex(e["ct"]),
        sk,
        info=bytes.fromhex(v["info"]),
        aad=bytes.fromhex(e["aad"]),
    )
    assert pt == bytes.fromhex(e["pt"])


def test_product_xwing_seal_and_open_round_trip_and_bind_info() -> None:
    seed = bytes(range(32))
    sealed = prim.xwing_seal(b"k" * 32, prim.xwing_public(seed), b"info")
    assert len(sealed) == prim.XWING_SEALED_FILE_KEY_SIZE == 1168
    opener = prim.XWingOpener(seed)
    assert opener.open(sealed, b"info") == b"k" * 32
    with pytest.raises(prim.PrimitiveFailure):
        opener.open(sealed, b"info!")
    with pytest.raises(prim.PrimitiveFailure):
        prim.XWingOpener(bytes(32)).open(sealed, b"info")
