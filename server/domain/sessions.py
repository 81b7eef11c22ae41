"""Server-side sessions, stateless form tokens for visitors, and login throttling.

The session cookie holds only a random 256-bit id; the codename never leaves
the request that carried it (no codename in cookies, DESIGN §5). Sessions live
in a store every instance shares (``SessionStore``), sealed under a key only
the cookie's id gives: see docs/SERVER_LAYERS.md, "Several instances".

Anonymous floods must not cost other sources anything (docs/THREAT_MODEL.md,
"Floods"):

- A page load creates no session. A visitor without one gets a *form token*
  (``FormTokens``): an HMAC, under a key derived from the instance secret,
  over a random visit cookie and an expiry time. The server keeps nothing;
  the token proves only that the form came from this site into the browser
  that holds the visit cookie (a double-submit cookie, SameSite=Strict).
- A session is created by the first POST that needs one (a login attempt, a
  submission). Sessions of a source (logged in, or holding a just-issued
  codename) and anonymous sessions have separate budgets: anonymous ones only
  ever push out other anonymous ones.
- Argon2id runs ``parallel`` at a time; logins wait their turn in a bounded
  FIFO queue (``KdfQueue``) on the event loop. A full queue refuses the login
  that arrives (503) instead of locking everyone out, and a session has at
  most one login running. There is no instance-wide attempt rate: it let a
  trickle of wrong codenames make every login answer 429.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import anyio

from server.domain.clock import Clock
from server.domain.memory_ephemeral import MemoryEphemeralStore
from server.domain.sealing import seal, unseal
from server.domain.sources import Reply
from server.store.protocols import DATABASE_UNAVAILABLE, EphemeralStore

# What a shared store raises when it cannot be used for a moment.
STORE_ERRORS: tuple[type[BaseException], ...] = (*DATABASE_UNAVAILABLE, OSError)

COOKIE_NAME = "lanterne_session"
VISIT_COOKIE = "lanterne_visit"
FORM_TOKEN_SECONDS = 6 * 3600  # a form can stay open this long before it is sent
_FORM_LABEL = b"lanterne form token v1\x00"
_VISIT_CHARS = 43  # 256 bits, URL-safe base64 without padding


@dataclass
class Session:
    id: str
    csrf_token: str
    last_seen: float
    source_id: str | None = None
    # Shown on the confirmation page after a first submission, until logout
    # or expiry, so a reload does not lose it; stored only sealed (see below).
    new_codename: str | None = None
    replies: list[Reply] = field(default_factory=list)
    notice: str | None = None  # one-shot message for the next page
    # The receipt of the session's last submission (server/domain/receipts.py),
    # until logout or expiry: kept only here, sealed.
    receipt: str | None = None
    login_failures: deque[float] = field(default_factory=deque)

    @property
    def holds_source(self) -> bool:
        """A logged-in source, or a codename not yet taken away: never evicted for visitors."""
        return self.source_id is not None or self.new_codename is not None


_ROW_LABEL = b"lanterne session row v1\x00"
_SEAL_LABEL = b"lanterne session seal v1\x00"
_ENDED_LABEL = b"lanterne ended source v1\x00"
_SESSION_KIND = "session"
_ENDED_KIND = "ended_source"
ANONYMOUS, SOURCE = 0, 1
_MAX_ID_CHARS = 64
_DAY = 86400


class SessionStore:
    """Two budgets of ``max_sessions`` each: sessions of sources, and anonymous ones.

    Sessions live in an ``EphemeralStore`` that every instance shares, so any
    instance answers any request. A row is keyed by HMAC(instance key, session
    id) and holds the session sealed (server/domain/sealing.py) under a key derived from the
    session id alone: the id is only in the browser's cookie, so the shared
    store, even with the instance secret, opens no session and links none to a
    source. Idle times (seconds, wall clock: instances compare them) stay
    inside the sealed value; the row carries only the day after which any
    instance may remove it. Ending a source's sessions (account deletion)
    records a keyed hash of the gone source's id: its sessions are refused.
    """

    def __init__(
        self,
        clock: Clock,
        idle_seconds: int,
        max_sessions: int,
        *,
        shared: EphemeralStore | None = None,
        instance_key: bytes | None = None,
        now: Callable[[], float] | None = None,
    ) -> None:
        self._clock = clock
        self._idle = idle_seconds
        self._max = max_sessions
        self._shared: EphemeralStore = shared if shared is not None else MemoryEphemeralStore()
        key = instance_key if instance_key is not None else secrets.token_bytes(32)
        self._row_mac_key = hmac.new(key, _ROW_LABEL, hashlib.sha256).digest()
        self._ended_mac_key = hmac.new(key, _ENDED_LABEL, hashlib.sha256).digest()
        self.now: Callable[[], float] = now or clock.monotonic
        self._swept_on = ""  # the day this instance last removed past rows

    def __len__(self) -> int:
        return self._shared.count(_SESSION_KIND, ANONYMOUS) + self._shared.count(
            _SESSION_KIND, SOURCE
        )

    # Keys and sealing

    def _row_key(self, session_id: str) -> bytes:
        return hmac.new(self._row_mac_key, session_id.encode(), hashlib.sha256).digest()

    def _ended_key(self, source_id: str) -> bytes:
        return hmac.new(self._ended_mac_key, source_id.encode(), hashlib.sha256).digest()

    def _until_day(self, now: float) -> str:
        """The day after which nobody needs the row (idle time passed, plus a day)."""
        return time.strftime("%Y-%m-%d", time.gmtime(now + self._idle + _DAY))

    def _seal(self, session: Session) -> bytes:
        doc = {
            "c": session.csrf_token,
            "t": session.last_seen,
            "s": session.source_id,
            "n": session.new_codename,
            "r": [[r.id, r.sent_on, r.text] for r in session.replies],
            "m": session.notice,
            "p": session.receipt,
            "f": list(session.login_failures),
        }
        return seal(_SEAL_LABEL, session.id.encode(), json.dumps(doc).encode())

    def _open(self, session_id: str, sealed: bytes) -> Session | None:
        raw = unseal(_SEAL_LABEL, session_id.encode(), sealed)
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
            return Session(
                id=session_id,
                csrf_token=doc["c"],
                last_seen=float(doc["t"]),
                source_id=doc["s"],
                new_codename=doc["n"],
                replies=[Reply(*r) for r in doc["r"]],
                notice=doc["m"],
                receipt=doc.get("p"),
                login_failures=deque(float(t) for t in doc["f"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def _write(self, session: Session, change: Callable[[Session], None]) -> Session | None:
        """Apply ``change`` to the stored session atomically (instances may race);
        ``session`` takes the stored result. None if the session is gone."""
        key = self._row_key(session.id)

        def apply(old: bytes | None) -> bytes | None:
            current = None if old is None else self._open(session.id, old)
            if current is None:
                return None
            change(current)
            return self._seal(current)

        stored = self._shared.update(
            _SESSION_KIND,
            key,
            apply,
            tier=SOURCE if session.holds_source else ANONYMOUS,
            until_day=self._until_day(self.now()),
        )
        fresh = None if stored is None else self._open(session.id, stored)
        if fresh is not None:
            session.__dict__.update(fresh.__dict__)
        return fresh

    def _insert(self, session: Session, tier: int) -> None:
        self._shared.trim(_SESSION_KIND, tier, self._max - 1)
        sealed = self._seal(session)
        self._shared.update(
            _SESSION_KIND,
            self._row_key(session.id),
            lambda _old: sealed,
            tier=tier,
            until_day=self._until_day(session.last_seen),
        )

    # The sessions

    def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > _MAX_ID_CHARS or not session_id.isascii():
            return None
        try:
            sealed = self._shared.get(_SESSION_KIND, self._row_key(session_id))
        except STORE_ERRORS:
            return None  # the store cannot be read just now: as if logged out
        session = None if sealed is None else self._open(session_id, sealed)
        if session is None:
            return None
        now = self.now()
        try:
            ended = session.source_id is not None and (
                self._shared.get(_ENDED_KIND, self._ended_key(session.source_id)) is not None
            )
        except STORE_ERRORS:
            return None
        if now - session.last_seen >= self._idle or ended:
            with contextlib.suppress(*STORE_ERRORS):  # removed by the daily sweep otherwise
                self._shared.delete(_SESSION_KIND, self._row_key(session_id))
            return None

        def touch(current: Session) -> None:
            current.last_seen = now

        try:
            return self._write(session, touch)
        except STORE_ERRORS:
            # The store cannot write (a full disk): the session goes on untouched,
            # so pages that only read keep working (docs/RELIABILITY.md).
            return session

    def create(self) -> Session:
        """An anonymous session; it may push out the oldest anonymous one, nothing else."""
        self._sweep_daily()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.now())
        self._insert(session, ANONYMOUS)
        return session

    def sign_in(
        self,
        session: Session | None,
        source_id: str,
        *,
        new_codename: str | None = None,
        replies: Sequence[Reply] = (),
    ) -> Session:
        """The session of ``source_id`` (this one, or a new one), under a new id and
        CSRF token (no session fixation), in the sources' budget."""
        now = self.now()
        if session is None:
            session = Session("", "", now)
        else:
            self._shared.delete(_SESSION_KIND, self._row_key(session.id))
        session.id = secrets.token_urlsafe(32)
        session.csrf_token = secrets.token_urlsafe(32)
        session.last_seen = now
        session.source_id = source_id
        session.new_codename = new_codename
        session.replies = list(replies)
        self._insert(session, SOURCE)
        return session

    def end(self, session: Session) -> None:
        self._shared.delete(_SESSION_KIND, self._row_key(session.id))
        session.replies = []
        session.new_codename = None
        session.source_id = None
        session.receipt = None

    def end_source(self, source_id: str) -> None:
        """End every session of a source (its account was deleted), on every instance."""
        self._shared.add_once(
            _ENDED_KIND, self._ended_key(source_id), until_day=self._until_day(self.now())
        )

    def set_notice(self, session: Session, notice: str | None) -> None:
        def change(current: Session) -> None:
            current.notice = notice

        session.notice = notice
        with contextlib.suppress(*STORE_ERRORS):  # a one-shot message, not worth a failure
            self._write(session, change)

    def set_receipt(self, session: Session, receipt: str | None) -> None:
        def change(current: Session) -> None:
            current.receipt = receipt

        session.receipt = receipt
        with contextlib.suppress(*STORE_ERRORS):  # the submission is recorded either way
            self._write(session, change)

    def take_notice(self, session: Session) -> str | None:
        """The one-shot notice for this page, removed from the session."""
        notice = session.notice
        if notice is not None:
            self.set_notice(session, None)
        return notice

    def record_failure(self, session: Session, at: float, window: float) -> None:
        """One more failed login of this session, kept by every instance."""

        def change(current: Session) -> None:
            while current.login_failures and at - current.login_failures[0] > window:
                current.login_failures.popleft()
            current.login_failures.append(at)

        session.login_failures.append(at)
        self._write(session, change)

    def sweep(self) -> int:
        """Remove rows whose day has passed (any instance may do it): sessions, and
        everything else in the shared store (tokens, spent challenges, markers)."""
        today = time.strftime("%Y-%m-%d", time.gmtime(self.now()))
        self._swept_on = today
        return self._shared.sweep(today)

    def _sweep_daily(self) -> None:
        if time.strftime("%Y-%m-%d", time.gmtime(self.now())) != self._swept_on:
            self.sweep()


class FormTokens:
    """CSRF tokens for visitors without a session, kept by nobody but the browser.

    token = ``EXPIRES.MAC``, MAC = HMAC-SHA256(key, visit cookie, EXPIRES), with
    EXPIRES in whole seconds since the epoch. Only the browser holds either.
    """

    def __init__(self, instance_key: bytes, now: Callable[[], float]) -> None:
        self._key = hmac.new(instance_key, _FORM_LABEL, hashlib.sha256).digest()
        self._now = now

    @staticmethod
    def new_visit() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def is_visit(cookie: str | None) -> bool:
        return (
            cookie is not None
            and len(cookie) == _VISIT_CHARS
            and cookie.isascii()
            and all(c.isalnum() or c in "-_" for c in cookie)
        )

    def issue(self, visit: str) -> str:
        expires = int(self._now()) + FORM_TOKEN_SECONDS
        return f"{expires}.{self._mac(visit, expires)}"

    def check(self, visit: str | None, token: str) -> bool:
        if not self.is_visit(visit) or len(token) > 64:
            return False
        assert visit is not None
        expires_text, _, mac = token.partition(".")
        if not (expires_text.isascii() and expires_text.isdigit() and len(expires_text) <= 12):
            return False
        expires = int(expires_text)
        good = hmac.compare_digest(
            mac.encode("ascii", "replace"), self._mac(visit, expires).encode()
        )
        return good and self._now() < expires

    def _mac(self, visit: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{visit}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class LoginBusy(Exception):
    """Every Argon2id slot is taken and the queue of waiting logins is full."""


class KdfQueue:
    """At most ``parallel`` Argon2id runs at once; the others wait, first come first
    served, on the event loop (not in worker threads: uploads need those).

    Logins may be refused when ``max_waiting`` are already waiting; a new
    codename for a submission that has already arrived always waits its turn.
    """

    def __init__(self, parallel: int, max_waiting: int) -> None:
        self._slots = anyio.Semaphore(parallel, fast_acquire=False)
        self._max_waiting = max_waiting
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def turn(self, *, may_refuse: bool) -> AsyncIterator[None]:
        if may_refuse and self._waiting >= self._max_waiting:
            raise LoginBusy()
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()


class LoginThrottle:
    """Per-session limits on login attempts, and the shared Argon2id queue.

    A session may fail ``per_session`` times in ``WINDOW`` seconds and run one
    attempt at a time. Nothing here is instance-wide except the queue, which
    refuses only the attempt that finds it full. Failures are kept in the
    session itself (``SessionStore.record_failure``), so they count on every
    instance; "one attempt at a time" is per instance (a running attempt is
    this process's business, and dies with it).
    """

    WINDOW = 900.0  # seconds a failure counts against a session

    def __init__(
        self,
        clock: Clock,
        per_session: int,
        kdf: KdfQueue,
        sessions: SessionStore | None = None,
    ) -> None:
        self._clock = clock
        self._per_session = per_session
        self.kdf = kdf
        self._sessions = sessions
        self._lock = threading.Lock()
        self._running: set[str] = set()

    def _now(self) -> float:
        return self._sessions.now() if self._sessions is not None else self._clock.monotonic()

    def allow(self, session: Session) -> bool:
        now = self._now()
        with self._lock:
            while session.login_failures and now - session.login_failures[0] > self.WINDOW:
                session.login_failures.popleft()
            return session.id not in self._running and (
                len(session.login_failures) < self._per_session
            )

    @contextlib.asynccontextmanager
    async def attempt(self, session: Session) -> AsyncIterator[None]:
        """One attempt of this session, holding an Argon2id turn; LoginBusy if none."""
        running = session.id
        with self._lock:
            self._running.add(running)
        try:
            async with self.kdf.turn(may_refuse=True):
                yield
        finally:
            with self._lock:
                self._running.discard(running)

    def failed(self, session: Session) -> None:
        now = self._now()
        if self._sessions is not None:
            self._sessions.record_failure(session, now, self.WINDOW)
        else:
            with self._lock:
                session.login_failures.append(now)
