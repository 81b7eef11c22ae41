"""Every cryptographic primitive the envelope uses, and nothing else.

This is the only module in Lanterne that imports ``cryptography.hazmat``.
Each function says which part of SPEC.md it serves; every label is a named
constant here so a reviewer can check them against the spec in one place.
"""

from __future__ import annotations

import hashlib
import hmac as _stdlib_hmac
import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hpke, serialization
from cryptography.hazmat.primitives import hmac as _hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PrivateKey, MLKEM768PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# SPEC §3: labels. ASCII, no terminator; every input they are joined with has a fixed length.
LABEL_STANZA_X25519 = b"lanterne/v1/x25519-hpke"
LABEL_STANZA_XWING = b"lanterne/v1/xwing-hpke"
LABEL_HEADER = b"lanterne/v1/header"
LABEL_PAYLOAD = b"lanterne/v1/payload"
LABEL_FINGERPRINT = b"lanterne/v1/fingerprint"
LABEL_FINGERPRINT_V2 = b"lanterne/v2/fingerprint"
LABEL_DIRECTORY = b"lanterne/v1/key-directory"
LABEL_NEWSROOM_FINGERPRINT = b"lanterne/v1/newsroom-fingerprint"
# SPEC §12: submission receipts.
LABEL_RECEIPT = b"lanterne/v1/receipt"
LABEL_RECEIPT_KEY = b"lanterne/v1/receipt-key"
LABEL_RECEIPT_OBJECTS = b"lanterne/v1/receipt-objects"

FILE_KEY_SIZE = 32
KEY_SIZE = 32  # X25519 keys, AES-256 keys, HMAC-SHA256 output
TAG_SIZE = 16  # AES-GCM
NONCE_SIZE = 12  # AES-GCM: 11-byte counter + 1-byte last flag (SPEC §5)

# SPEC §4.1: RFC 9180 base mode, suite 0x0020 / 0x0001 / 0x0002.
_HPKE_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
HPKE_ENC_SIZE = 32
HPKE_SEALED_FILE_KEY_SIZE = HPKE_ENC_SIZE + FILE_KEY_SIZE + TAG_SIZE

# SPEC §4.1, stanza 0x0002: the same construction with KEM 0x647a, MLKEM768-X25519 (X-Wing).
_XWING_SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
XWING_SEED_SIZE = 32
MLKEM768_PUBLIC_SIZE = 1184
XWING_PUBLIC_SIZE = MLKEM768_PUBLIC_SIZE + KEY_SIZE  # 1216: ML-KEM-768 || X25519
XWING_ENC_SIZE = 1088 + KEY_SIZE  # 1120: ML-KEM-768 ciphertext || X25519 ephemeral
XWING_SEALED_FILE_KEY_SIZE = XWING_ENC_SIZE + FILE_KEY_SIZE + TAG_SIZE  # 1168


class PrimitiveFailure(Exception):
    """A tag, MAC or key agreement did not verify; callers turn it into their own error."""


def random_bytes(n: int) -> bytes:
    """Fresh randomness from the OS (file keys, salts)."""
    return os.urandom(n)


# --- X25519 keys (SPEC §2) ---------------------------------------------------


def x25519_generate() -> bytes:
    """A new X25519 private key, raw 32 bytes."""
    return X25519PrivateKey.generate().private_bytes_raw()


def x25519_public(private: bytes) -> bytes:
    """The raw public key for a raw private key (RFC 7748 clamping applies)."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def x25519_check_public(public: bytes) -> None:
    """Raise ValueError unless ``public`` is a 32-byte X25519 public key."""
    X25519PublicKey.from_public_bytes(public)


# --- HPKE wrapping of the file key (SPEC §4.1) -------------------------------


def hpke_seal(file_key: bytes, recipient_public: bytes, info: bytes) -> bytes:
    """HPKE base-mode single-shot seal of the file key: returns enc || ciphertext."""
    pk = X25519PublicKey.from_public_bytes(recipient_public)
    return _HPKE_SUITE.encrypt(file_key, pk, info=info)


class X25519Opener:
    """An X25519 private key parsed once, for trial decryption over many stanzas."""

    __slots__ = ("_sk",)

    def __init__(self, private: bytes) -> None:
        self._sk = X25519PrivateKey.from_private_bytes(private)

    def open(self, sealed: bytes, info: bytes) -> bytes:
        try:
            return _HPKE_SUITE.decrypt(sealed, self._sk, info=info)
        except (InvalidTag, ValueError) as exc:
            raise PrimitiveFailure from exc


# --- X-Wing (MLKEM768-X25519) keys and wrapping (SPEC §2.1, §4.1) ------------


def xwing_generate() -> bytes:
    """A new hybrid private key: a random 32-byte seed."""
    return random_bytes(XWING_SEED_SIZE)


def _xwing_expand(seed: bytes) -> tuple[MLKEM768PrivateKey, X25519PrivateKey]:
    """SPEC §2.1: SHAKE256(seed, 96) = ML-KEM-768 seed d || z (64) then the X25519 key (32)."""
    expanded = hashlib.shake_256(seed).digest(96)
    return (
        MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
        X25519PrivateKey.from_private_bytes(expanded[64:]),
    )


def xwing_public(seed: bytes) -> bytes:
    """The 1216-byte public key of a seed: ML-KEM-768 public key || X25519 public key."""
    mlkem_sk, x_sk = _xwing_expand(seed)
    return mlkem_sk.public_key().public_bytes_raw() + x_sk.public_key().public_bytes_raw()


def _xwing_public_key(public: bytes) -> hpke.MLKEM768X25519PublicKey:
    if len(public) != XWING_PUBLIC_SIZE:
        raise ValueError("an X-Wing public key is 1216 bytes")
    return hpke.MLKEM768X25519PublicKey(
        MLKEM768PublicKey.from_public_bytes(public[:MLKEM768_PUBLIC_SIZE]),
        X25519PublicKey.from_public_bytes(public[MLKEM768_PUBLIC_SIZE:]),
    )


def xwing_check_public(public: bytes) -> None:
    """Raise ValueError unless ``public`` is a valid 1216-byte X-Wing public key."""
    _xwing_public_key(public)


def xwing_seal(file_key: bytes, recipient_public: bytes, info: bytes) -> bytes:
    """HPKE base-mode single-shot seal with X-Wing: returns enc (1120) || ciphertext (48)."""
    return _XWING_SUITE.encrypt(file_key, _xwing_public_key(recipient_public), info=info)


class XWingOpener:
    """An X-Wing private key expanded once (about 250 µs), for trial decryption."""

    __slots__ = ("_sk",)

    def __init__(self, seed: bytes) -> None:
        self._sk = hpke.MLKEM768X25519PrivateKey(*_xwing_expand(seed))

    def open(self, sealed: bytes, info: bytes) -> bytes:
        try:
            return _XWING_SUITE.decrypt(sealed, self._sk, info=info)
        except (InvalidTag, ValueError) as exc:
            raise PrimitiveFailure from exc


# --- Key derivation and the header MAC (SPEC §4.2, §4.3) ---------------------


# --- Ed25519 (the newsroom's key directory, SPEC §11) --------------------------


def ed25519_public(seed: bytes) -> bytes:
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = KEY_SIZE) -> bytes:
    """RFC 5869 HKDF-SHA256 (extract then expand)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of ``data``."""
    mac = _hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare secrets without leaking where they differ."""
    return _stdlib_hmac.compare_digest(a, b)


# --- The payload STREAM (SPEC §5) --------------------------------------------


class ChunkCipher:
    """AES-256-GCM under the payload key; one instance per object, no AAD."""

    __slots__ = ("_aead",)

    def __init__(self, payload_key: bytes) -> None:
        self._aead = AESGCM(payload_key)

    def seal(self, nonce: bytes, chunk: bytes | bytearray | memoryview) -> bytes:
        return self._aead.encrypt(nonce, chunk, None)

    def seal_into(
        self, nonce: bytes, chunk: bytes | bytearray | memoryview, out: memoryview
    ) -> None:
        """Seal into ``out``, which must be exactly ``len(chunk) + TAG_SIZE`` bytes."""
        self._aead.encrypt_into(nonce, chunk, None, out)

    def open(self, nonce: bytes, sealed: bytes | memoryview) -> bytes:
        try:
            return self._aead.decrypt(nonce, sealed, None)
        except InvalidTag as exc:
            raise PrimitiveFailure from exc


# --- Fingerprints (SPEC §2.3) ------------------------------------------------


def sha256(data: bytes) -> bytes:
    """SHA-256, for fingerprints (not for authentication)."""
    return hashlib.sha256(data).digest()
