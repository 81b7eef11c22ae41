"""Signed-challenge login for journalists (docs/JOURNALIST_API.md, "Authentication").

A journalist proves possession of their Ed25519 signing key by signing a fresh,
single-use challenge bound to the journalist onion address the server is
configured to serve; they get a short-lived random token, bound to that key.

Invariants:

* Challenges cost the server no memory: one is ``expiry || nonce || tag``,
  the tag an HMAC under a key all instances share, so an anonymous flood of challenge
  requests has nothing to fill and cannot lock journalists out. Single use is
  enforced by remembering the challenges of successful logins only, until they
  expire: only a journalist's key can add to that set.
* A token names the journalist's row id AND the signing key that logged in;
  the route checks both against the database at every request, so removing a
  journalist or replacing their key ends their tokens at once, and a token can
  never act for a later journalist (ids are never reused either).
* Tokens and spent challenges live in a store every instance shares
  (server/store/ephemeral.py), so any instance answers any request.
* The server stores no password and no token in the clear (tokens by SHA-256,
  the rest sealed under a key only the token gives).
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import secrets
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from server.domain.clock import Clock
from server.domain.memory_ephemeral import MemoryEphemeralStore
from server.domain.sealing import seal, unseal
from server.domain.sessions import STORE_ERRORS
from server.store.protocols import EphemeralStore

AUTH_LABEL = b"lanterne/v1/api-auth\x00"
_CHALLENGE_LABEL = b"lanterne/v1/api-challenge\x00"
_EXPIRY = struct.Struct(">I")  # whole seconds since the epoch (wall clock)
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


_TOKEN_KIND = "api_token"  # noqa: S105 -- a row kind, not a secret
_SPENT_KIND = "api_challenge"
_KEY_KIND = "api_key"
_TOKEN_SEAL_LABEL = b"lanterne/v1/api-token-seal\x00"
_SESSION = struct.Struct(">qd")  # journalist id, expiry (seconds, inside the seal only)
_DAY = 86400


class Authenticator:
    """Challenges, spent challenges and tokens, in an ``EphemeralStore`` that
    every instance shares: a token issued by one instance works on all.

    The challenge key is one random value in that store (forging a challenge
    still needs a journalist's signature); a token's row is keyed by SHA-256 of
    the token and sealed (server/domain/sealing.py) under a key derived from the token itself,
    so the store alone names no journalist and holds no time finer than the
    day (the expiry is inside the seal). ``now`` is the wall clock: instances
    compare each other's expiries.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        shared: EphemeralStore | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock
        self._now: Callable[[], float] = now or clock.monotonic
        self._shared: EphemeralStore = shared if shared is not None else MemoryEphemeralStore()
        self._local = MemoryEphemeralStore()  # while the shared store refuses writes
        fresh = secrets.token_bytes(32)
        key: bytes | None = None
        try:
            key = self._shared.update(
                _KEY_KIND, b"challenge", lambda old: old or fresh, until_day="9999-12-31"
            )
        except STORE_ERRORS:
            # Started on a full disk: the stored key if there is one, else this
            # process's own (its challenges then work on this instance only).
            with contextlib.suppress(*STORE_ERRORS):
                key = self._shared.get(_KEY_KIND, b"challenge")
        self._key = key or fresh

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._key, _CHALLENGE_LABEL + body, hashlib.sha256).digest()[:_TAG_BYTES]

    def _day(self, seconds: float) -> str:
        return time.strftime("%Y-%m-%d", time.gmtime(seconds + _DAY))

    def new_challenge(self) -> bytes:
        """A fresh challenge; keeps nothing."""
        expiry = int(self._now()) + CHALLENGE_SECONDS
        body = _EXPIRY.pack(expiry) + secrets.token_bytes(_NONCE_BYTES)
        return body + self._tag(body)

    def _expiry(self, challenge: bytes) -> int:
        """The challenge's expiry if an instance made it and it is still valid."""
        if len(challenge) != CHALLENGE_BYTES:
            raise AuthFailed(Refusal.CHALLENGE)
        body, tag = challenge[:-_TAG_BYTES], challenge[-_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(body)):
            raise AuthFailed(Refusal.CHALLENGE)
        (expiry,) = _EXPIRY.unpack(body[: _EXPIRY.size])
        if expiry <= self._now():
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
        try:
            return self._issue(self._shared, challenge, expiry, journalist_id, signing_key)
        except STORE_ERRORS:
            # The shared store refuses writes (a full disk): this instance keeps the
            # token in its memory, so journalists can still read; it works here only.
            return self._issue(self._local, challenge, expiry, journalist_id, signing_key)

    def _issue(
        self,
        store: EphemeralStore,
        challenge: bytes,
        expiry: int,
        journalist_id: int,
        signing_key: bytes,
    ) -> bytes:
        if store.count(_TOKEN_KIND, 0) >= MAX_SESSIONS:
            store.sweep(time.strftime("%Y-%m-%d", time.gmtime(self._now())))
            if store.count(_TOKEN_KIND, 0) >= MAX_SESSIONS:
                raise AuthFailed(Refusal.BUSY)
        for spent in {id(self._shared): self._shared, id(store): store}.values():
            if spent.get(_SPENT_KIND, _digest(challenge)) is not None:
                raise AuthFailed(Refusal.CHALLENGE)
        if not store.add_once(_SPENT_KIND, _digest(challenge), until_day=self._day(expiry)):
            raise AuthFailed(Refusal.CHALLENGE)
        token = secrets.token_bytes(TOKEN_BYTES)
        expires_at = self._now() + TOKEN_SECONDS
        sealed = seal(
            _TOKEN_SEAL_LABEL, token, _SESSION.pack(journalist_id, expires_at) + signing_key
        )
        store.update(
            _TOKEN_KIND, _digest(token), lambda _old: sealed, until_day=self._day(expires_at)
        )
        return token

    def session(self, token: bytes) -> Session:
        # Looked up by SHA-256: lookup timing can only tell about hashes, which an
        # attacker cannot turn back into tokens.
        try:
            sealed = self._shared.get(_TOKEN_KIND, _digest(token))
        except STORE_ERRORS:
            sealed = None
        if sealed is None:
            sealed = self._local.get(_TOKEN_KIND, _digest(token))
        if sealed is None:
            raise AuthFailed(Refusal.TOKEN)
        raw = unseal(_TOKEN_SEAL_LABEL, token, sealed)
        if raw is None or len(raw) <= _SESSION.size:
            raise AuthFailed(Refusal.TOKEN)
        journalist_id, expires_at = _SESSION.unpack(raw[: _SESSION.size])
        sess = Session(journalist_id, raw[_SESSION.size :], expires_at)
        if sess.expires_at <= self._now():
            raise AuthFailed(Refusal.TOKEN)
        return sess

    def forget(self, token: bytes) -> None:
        """Drop a token whose journalist is gone (the database is the authority)."""
        self._local.delete(_TOKEN_KIND, _digest(token))
        with contextlib.suppress(*STORE_ERRORS):  # it dies at its expiry otherwise
            self._shared.delete(_TOKEN_KIND, _digest(token))


def _verifies(signing_key: bytes, signature: bytes, challenge: bytes, host: str) -> bool:
    try:
        nacl.signing.VerifyKey(signing_key).verify(signed_message(challenge, host), signature)
    except (nacl.exceptions.CryptoError, ValueError, UnicodeEncodeError, TypeError):
        return False
    return True


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()
