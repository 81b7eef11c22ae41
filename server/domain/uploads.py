"""Who owns an upload in progress: a browser's upload cookie, not its session.

The session lives in memory and ends at a restart (or is evicted under load),
while an upload must survive both; the store keeps only a hash of the cookie's
secret part (server/store/uploads.py keeps the uploads themselves).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

_OWNER_LABEL = b"lanterne upload owner v1\x00"
_COOKIE_LABEL = b"lanterne upload cookie v1\x00"
_SECRET_BYTES = 32
_TAG_BYTES = 16


class OwnerKeys:
    """Upload cookies: a random secret and a MAC over it, so only cookies this
    instance issued are adopted (no fixation: a planted value is replaced).

    The MAC key is derived from the instance's login key, so cookies stay
    valid across restarts; the database stores only a hash of the secret.
    """

    def __init__(self, instance_key: bytes) -> None:
        self._key = hmac.new(instance_key, _COOKIE_LABEL, hashlib.sha256).digest()

    def issue(self) -> str:
        secret = secrets.token_bytes(_SECRET_BYTES)
        return _b64(secret + self._tag(secret))

    def owner_hash(self, cookie: str | None) -> bytes | None:
        """The owner hash of a valid cookie, or None for anything else."""
        if not cookie or len(cookie) > 128 or not cookie.isascii():
            return None
        try:
            raw = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _SECRET_BYTES + _TAG_BYTES:
            return None
        secret, tag = raw[:_SECRET_BYTES], raw[_SECRET_BYTES:]
        if not hmac.compare_digest(tag, self._tag(secret)):
            return None
        return hashlib.sha256(_OWNER_LABEL + secret).digest()

    def _tag(self, secret: bytes) -> bytes:
        return hmac.new(self._key, secret, hashlib.sha256).digest()[:_TAG_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
