"""Server-side sessions, stateless form tokens for visitors, and login throttling.

The session cookie holds only a random 256-bit id; the codename never leaves
the request that carried it (no codename in cookies, DESIGN §5). Sessions live
in this process's memory: a restart logs everyone out, which is the safe failure.

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
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import anyio

from server.domain.clock import Clock
from server.domain.sources import Reply

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
    # or expiry, so a reload does not lose it; never written anywhere.
    new_codename: str | None = None
    replies: list[Reply] = field(default_factory=list)
    notice: str | None = None  # one-shot message for the next page
    login_failures: deque[float] = field(default_factory=deque)
    login_running: bool = False

    @property
    def holds_source(self) -> bool:
        """A logged-in source, or a codename not yet taken away: never evicted for visitors."""
        return self.source_id is not None or self.new_codename is not None


class SessionStore:
    """Two budgets of ``max_sessions`` each: sessions of sources, and anonymous ones."""

    def __init__(self, clock: Clock, idle_seconds: int, max_sessions: int) -> None:
        self._clock = clock
        self._idle = idle_seconds
        self._max = max_sessions
        # Oldest activity first, in each.
        self._anonymous: OrderedDict[str, Session] = OrderedDict()
        self._sources: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._anonymous) + len(self._sources)

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self._clock.monotonic()
        with self._lock:
            self._expire(now)
            for tier in (self._sources, self._anonymous):
                session = tier.get(session_id)
                if session is not None:
                    session.last_seen = now
                    tier.move_to_end(session_id)
                    return session
        return None

    def create(self) -> Session:
        """An anonymous session; it may push out the oldest anonymous one, nothing else."""
        now = self._clock.monotonic()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now)
        with self._lock:
            self._expire(now)
            self._insert(self._anonymous, session)
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
        now = self._clock.monotonic()
        with self._lock:
            self._expire(now)
            if session is None:
                session = Session("", "", now)
            else:
                self._anonymous.pop(session.id, None)
                self._sources.pop(session.id, None)
            session.id = secrets.token_urlsafe(32)
            session.csrf_token = secrets.token_urlsafe(32)
            session.last_seen = now
            session.source_id = source_id
            session.new_codename = new_codename
            session.replies = list(replies)
            self._insert(self._sources, session)
        return session

    def end(self, session: Session) -> None:
        with self._lock:
            self._anonymous.pop(session.id, None)
            self._sources.pop(session.id, None)
        session.replies = []
        session.new_codename = None
        session.source_id = None

    def end_source(self, source_id: str) -> None:
        """End every session of a source (its account was deleted)."""
        with self._lock:
            for sid in [s.id for s in self._sources.values() if s.source_id == source_id]:
                self._sources.pop(sid)

    def _insert(self, tier: OrderedDict[str, Session], session: Session) -> None:
        while len(tier) >= self._max:
            tier.popitem(last=False)
        tier[session.id] = session

    def _expire(self, now: float) -> None:
        for tier in (self._anonymous, self._sources):
            while tier:
                sid, oldest = next(iter(tier.items()))
                if now - oldest.last_seen < self._idle:
                    break
                del tier[sid]


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
    refuses only the attempt that finds it full.
    """

    WINDOW = 900.0  # seconds a failure counts against a session

    def __init__(self, clock: Clock, per_session: int, kdf: KdfQueue) -> None:
        self._clock = clock
        self._per_session = per_session
        self.kdf = kdf
        self._lock = threading.Lock()

    def allow(self, session: Session) -> bool:
        now = self._clock.monotonic()
        with self._lock:
            while session.login_failures and now - session.login_failures[0] > self.WINDOW:
                session.login_failures.popleft()
            return not session.login_running and len(session.login_failures) < self._per_session

    @contextlib.asynccontextmanager
    async def attempt(self, session: Session) -> AsyncIterator[None]:
        """One attempt of this session, holding an Argon2id turn; LoginBusy if none."""
        session.login_running = True
        try:
            async with self.kdf.turn(may_refuse=True):
                yield
        finally:
            session.login_running = False

    def failed(self, session: Session) -> None:
        with self._lock:
            session.login_failures.append(self._clock.monotonic())
