"""Values sealed under a key that only their owner's secret gives.

What the instances share (server/store/ephemeral.py) is sealed with PyNaCl's
SecretBox (XSalsa20-Poly1305) under a key derived, by a labelled HMAC-SHA256,
from a secret the server does not keep: a session cookie's id, a journalist's
token. The shared store alone opens nothing.
"""

from __future__ import annotations

import hashlib
import hmac

import nacl.exceptions
import nacl.secret


def _box(label: bytes, secret: bytes) -> nacl.secret.SecretBox:
    return nacl.secret.SecretBox(hmac.new(label, secret, hashlib.sha256).digest())


def seal(label: bytes, secret: bytes, data: bytes) -> bytes:
    """``data`` encrypted and authenticated (random nonce) under the key of ``secret``."""
    return bytes(_box(label, secret).encrypt(data))


def unseal(label: bytes, secret: bytes, sealed: bytes) -> bytes | None:
    """The data, or None if ``sealed`` was not made with this secret (or was altered)."""
    try:
        return bytes(_box(label, secret).decrypt(sealed))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return None
