"""Signed-challenge login for journalists (docs/JOURNALIST_API.md, "Authentication").

A journalist proves possession of their Ed25519 signing key by signing a fresh,
single-use challenge bound to the host they connect to; they get a short-lived
random token. Challenges and tokens live in memory only, with hard caps, and
the server stores no password and no token in the clear.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from server.sources import Clock

AUTH_LABEL = b"lanterne/v1/api-auth\x00"
CHALLENGE_BYTES = 32
CHALLENGE_SECONDS = 60
TOKEN_SECONDS = 900
MAX_OUTSTANDING = 10_000


def signed_message(challenge: bytes, host: str) -> bytes:
    """What the CLI signs: label, challenge, and the Host header it sends."""
    return AUTH_LABEL + challenge + host.encode("ascii", errors="strict")


class AuthFailed(Exception):
    """The challenge, signature or token is not acceptable (always reported as 401)."""


@dataclass(frozen=True)
class Session:
    journalist_id: int
    expires_at: float


class Authenticator:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._challenges: dict[bytes, float] = {}
        self._tokens: dict[bytes, Session] = {}

    def _expire(self) -> None:
        now = self._clock.monotonic()
        self._challenges = {c: t for c, t in self._challenges.items() if t > now}
        self._tokens = {k: s for k, s in self._tokens.items() if s.expires_at > now}

    def new_challenge(self) -> bytes:
        self._expire()
        if len(self._challenges) >= MAX_OUTSTANDING:
            raise AuthFailed("too many outstanding challenges")
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        self._challenges[challenge] = self._clock.monotonic() + CHALLENGE_SECONDS
        return challenge

    def redeem(
        self, challenge: bytes, signature: bytes, host: str, journalist_id: int, signing_key: bytes
    ) -> bytes:
        """Check the signature and spend the challenge; returns a new token."""
        expires = self._challenges.pop(challenge, None)  # single use, even when it fails
        if expires is None or expires <= self._clock.monotonic():
            raise AuthFailed("unknown or expired challenge")
        try:
            nacl.signing.VerifyKey(signing_key).verify(signed_message(challenge, host), signature)
        except (nacl.exceptions.BadSignatureError, ValueError, UnicodeEncodeError) as exc:
            raise AuthFailed("bad signature") from exc
        self._expire()
        if len(self._tokens) >= MAX_OUTSTANDING:
            raise AuthFailed("too many sessions")
        token = secrets.token_bytes(32)
        self._tokens[_digest(token)] = Session(
            journalist_id, self._clock.monotonic() + TOKEN_SECONDS
        )
        return token

    def session(self, token: bytes) -> Session:
        # Looked up by SHA-256: lookup timing can only tell about hashes, which an
        # attacker cannot turn back into tokens.
        sess = self._tokens.get(_digest(token))
        if sess is None or sess.expires_at <= self._clock.monotonic():
            raise AuthFailed("unknown or expired token")
        return sess


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()
