"""A test-only RFC 9180 base-mode Seal with a caller-chosen ephemeral key.

pyca/cryptography's HPKE draws its ephemeral key itself, which is right for
the product but makes byte-exact vectors impossible. This module rebuilds the
RFC 9180 key schedule from cryptography's X25519, HKDF and AES-GCM so the
vector generator can fix the ephemeral key; the browser implementation does
the same with WebCrypto. It is checked against the RFC 9180 vectors in
tests/test_hpke_kat.py and is never used by the product.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

KEM_ID, KDF_ID, AEAD_ID = 0x0020, 0x0001, 0x0002
SUITE_KEM = b"KEM" + KEM_ID.to_bytes(2, "big")
SUITE_HPKE = (
    b"HPKE" + KEM_ID.to_bytes(2, "big") + KDF_ID.to_bytes(2, "big") + AEAD_ID.to_bytes(2, "big")
)


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


def labeled_extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite + label + ikm)


def labeled_expand(suite: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + info, length)


def key_schedule(shared_secret: bytes, info: bytes) -> tuple[bytes, bytes]:
    psk_id_hash = labeled_extract(SUITE_HPKE, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(SUITE_HPKE, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(SUITE_HPKE, shared_secret, b"secret", b"")
    key = labeled_expand(SUITE_HPKE, secret, b"key", context, 32)
    base_nonce = labeled_expand(SUITE_HPKE, secret, b"base_nonce", context, 12)
    return key, base_nonce


def seal(pk_r: bytes, info: bytes, pt: bytes, sk_e: bytes, aad: bytes = b"") -> bytes:
    """RFC 9180 SetupBaseS + Seal (sequence 0); returns enc || ct."""
    eph = X25519PrivateKey.from_private_bytes(sk_e)
    enc = eph.public_key().public_bytes_raw()
    dh = eph.exchange(X25519PublicKey.from_public_bytes(pk_r))
    eae_prk = labeled_extract(SUITE_KEM, b"", b"eae_prk", dh)
    shared = labeled_expand(SUITE_KEM, eae_prk, b"shared_secret", enc + pk_r, 32)
    key, nonce = key_schedule(shared, info)
    return enc + AESGCM(key).encrypt(nonce, pt, aad)
