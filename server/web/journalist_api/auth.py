"""Signed-challenge login for journalists (docs/JOURNALIST_API.md, "Authentication").

A journalist proves possession of their Ed25519 signing key by signing a fresh,
single-use challenge bound to the journalist onion address the server is
configured to serve; they get a short-lived random token, bound to that key.

Invariants:

* Challenges cost the server no memory: one is ``expiry || nonce || tag``,
  the tag an HMAC under a per-process key, so an anonymous flood of challenge
  requests has nothing to fill and cannot lock journalists out. Single use is
  enforced by remembering the challenges of successful logins only, until they
  expire: only a journalist's key can add to that set.
* A token names the journalist's row id AND the signing key that logged in;
  the route checks both against the database at every request, so removing a
  journalist or replacing their key ends their tokens at once, and a token can
  never act for a later journalist (ids are never reused either).
* The shared dictionaries are guarded by one lock (requests run in threads).
* The server stores no password and no token in the clear (tokens by SHA-256).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from server.domain.clock import Clock

AUTH_LABEL = b"lanterne/v1/api-auth\x00"
_CHALLENGE_LABEL = b"lanterne/v1/api-challenge\x00"
_EXPIRY = struct.Struct(">I")  # whole seconds of the server's monotonic clock
_NONCE_BYTES = 12
_TAG_BYTES = 16
CHALLENGE_BYTES = _EXPIRY.size + _NONCE_BYTES + _TAG_BYTES  # 32, as the CLI expects
CHALLENGE_SECONDS = 60
TOKEN_BYTES = 32
SIGNATURE_BYTES = 64  # Ed25519 (RFC 8032)
SIGNING_KEY_BYTES = 32
TOKEN_SECONDS = 900
MAX_SESSIONS = 10_000  # tokens alive, and spent challenges remembered (logins only)


def signed_message(challenge: bytes, host: str) -> bytes:
    """What the CLI signs: label, challenge, and the host it connects to."""
    return AUTH_LABEL + challenge + host.encode("ascii", errors="strict")


# meta key of the journalist onion address, recorded by `lanterne-server
# journalists add` (with a client key) and `lanterne-server onions --data-dir`.
JOURNALIST_ONION_META = "journalist_onion"


@dataclass(frozen=True)
class ServedHosts:
    """The addresses a login signature may name (docs/JOURNALIST_API.md).

    ``configured``: ``journalist_hosts`` in config.toml, which wins when set;
    otherwise the journalist onion the admin commands recorded; otherwise, on
    an instance with no onion yet (development, the demo, tests), ``listen``:
    the loopback ``host:port`` the API listens on.
    """

    configured: tuple[str, ...] = ()
    listen: str | None = None

    def current(self, recorded_onion: str | None) -> tuple[str, ...]:
        if self.configured:
            return self.configured
        if recorded_onion:
            return (recorded_onion,)
        return (self.listen,) if self.listen else ()


class Refusal(enum.Enum):
    """Why a login or a token was refused: the 401 body's ``reason``.

    They tell a journalist what to do, and an attacker nothing they could not
    learn without them: an unknown name and a wrong key are one reason, and
    ``wrong_host`` needs a signature by the journalist's own key.
    """

    CHALLENGE = "challenge_expired"  # expired, already used, or from before a restart
    KEY = "key_refused"  # no journalist of that name, or not signed by their key
    HOST = "wrong_host"  # signed for an address this server is not configured to serve
    BUSY = "busy"  # too many sessions at once
    TOKEN = "token_expired"  # noqa: S105 -- unknown or expired token: log in again
    REVOKED = "key_revoked"  # the journalist was removed or their key replaced


class AuthFailed(Exception):
    """The challenge, signature or token is not acceptable (always reported as 401)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass(frozen=True)
class Session:
    journalist_id: int
    signing_key: bytes
    expires_at: float


class Authenticator:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._key = secrets.token_bytes(32)  # challenges die with the process, like tokens
        self._lock = threading.Lock()
        self._spent: dict[bytes, float] = {}  # challenge -> expiry, successful logins only
        self._tokens: dict[bytes, Session] = {}  # SHA-256(token) -> session

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, _CHALLENGE_LABEL + body, hashlib.sha256).digest()[:_TAG_BYTES]

    def new_challenge(self) -> bytes:
        """A fresh challenge; keeps nothing in memory."""
        expiry = int(self._clock.monotonic()) + CHALLENGE_SECONDS
        body = _EXPIRY.pack(expiry) + secrets.token_bytes(_NONCE_BYTES)
        return body + self._tag(body)

    def _expiry(self, challenge: bytes) -> int:
        """The challenge's expiry if this process made it and it is still valid."""
        if len(challenge) != CHALLENGE_BYTES:
            raise AuthFailed(Refusal.CHALLENGE)
        body, tag = challenge[:-_TAG_BYTES], challenge[-_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(body)):
            raise AuthFailed(Refusal.CHALLENGE)
        (expiry,) = _EXPIRY.unpack(body[: _EXPIRY.size])
        if expiry <= self._clock.monotonic():
            raise AuthFailed(Refusal.CHALLENGE)
        return int(expiry)

    def redeem(
        self,
        challenge: bytes,
        signature: bytes,
        hosts: Iterable[str],
        sent_host: str,
        journalist: tuple[int, bytes] | None,
    ) -> bytes:
        """Check the challenge and the signature, spend the challenge; a new token.

        ``hosts``: the addresses this server serves (one must be signed);
        ``sent_host``: the Host header received, used only to tell a journalist
        that they signed for an address the server does not serve;
        ``journalist``: (row id, signing key) of the claimed journalist, if any.
        """
        expiry = self._expiry(challenge)
        if journalist is None:
            raise AuthFailed(Refusal.KEY)
        journalist_id, signing_key = journalist
        if not any(_verifies(signing_key, signature, challenge, h) for h in hosts):
            if _verifies(signing_key, signature, challenge, sent_host):
                raise AuthFailed(Refusal.HOST)
            raise AuthFailed(Refusal.KEY)
        now = self._clock.monotonic()
        token = secrets.token_bytes(TOKEN_BYTES)
        with self._lock:
            if len(self._spent) >= MAX_SESSIONS or len(self._tokens) >= MAX_SESSIONS:
                self._spent = {c: t for c, t in self._spent.items() if t > now}
                self._tokens = {k: s for k, s in self._tokens.items() if s.expires_at > now}
            if challenge in self._spent:
                raise AuthFailed(Refusal.CHALLENGE)
            if len(self._spent) >= MAX_SESSIONS or len(self._tokens) >= MAX_SESSIONS:
                raise AuthFailed(Refusal.BUSY)
            self._spent[challenge] = expiry
            self._tokens[_digest(token)] = Session(journalist_id, signing_key, now + TOKEN_SECONDS)
        return token

    def session(self, token: bytes) -> Session:
        # Looked up by SHA-256: lookup timing can only tell about hashes, which an
        # attacker cannot turn back into tokens.
        with self._lock:
            sess = self._tokens.get(_digest(token))
        if sess is None or sess.expires_at <= self._clock.monotonic():
            raise AuthFailed(Refusal.TOKEN)
        return sess

    def forget(self, token: bytes) -> None:
        """Drop a token whose journalist is gone (the database is the authority)."""
        with self._lock:
            self._tokens.pop(_digest(token), None)


def _verifies(signing_key: bytes, signature: bytes, challenge: bytes, host: str) -> bool:
    try:
        nacl.signing.VerifyKey(signing_key).verify(signed_message(challenge, host), signature)
    except (nacl.exceptions.CryptoError, ValueError, UnicodeEncodeError, TypeError):
        return False
    return True


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()
