"""Server-side sessions and login throttling, in memory.

The cookie holds only a random 256-bit id; the codename never leaves the
request that carried it (no codename in cookies, DESIGN §5). Sessions live in
this process's memory: a restart logs everyone out, which is the safe failure.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from server.sources import Clock, Reply

COOKIE_NAME = "lanterne_session"


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


class SessionStore:
    def __init__(self, clock: Clock, idle_seconds: int, max_sessions: int) -> None:
        self._clock = clock
        self._idle = idle_seconds
        self._max = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # oldest activity first
        self._lock = threading.Lock()

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self._clock.monotonic()
        with self._lock:
            self._expire(now)
            session = self._sessions.get(session_id)
            if session is not None:
                session.last_seen = now
                self._sessions.move_to_end(session_id)
            return session

    def create(self) -> Session:
        now = self._clock.monotonic()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now)
        with self._lock:
            self._expire(now)
            while len(self._sessions) >= self._max:
                self._sessions.popitem(last=False)
            self._sessions[session.id] = session
        return session

    def rotate(self, session: Session) -> Session:
        """A new id and CSRF token for the same state, at login (no session fixation)."""
        with self._lock:
            self._sessions.pop(session.id, None)
            session.id = secrets.token_urlsafe(32)
            session.csrf_token = secrets.token_urlsafe(32)
            session.last_seen = self._clock.monotonic()
            self._sessions[session.id] = session
        return session

    def end(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)
        session.replies = []
        session.new_codename = None
        session.source_id = None

    def end_source(self, source_id: str) -> None:
        """End every session of a source (its account was deleted)."""
        with self._lock:
            for sid in [s.id for s in self._sessions.values() if s.source_id == source_id]:
                self._sessions.pop(sid)

    def _expire(self, now: float) -> None:
        while self._sessions:
            sid, oldest = next(iter(self._sessions.items()))
            if now - oldest.last_seen < self._idle:
                break
            del self._sessions[sid]


class LoginThrottle:
    """Per-session failure limit plus an instance-wide attempt rate.

    Behind Tor there is no address to throttle by, so the instance-wide rate
    is what bounds guessing; Tor's proof-of-work defence bounds the flood.
    """

    WINDOW = 900.0  # seconds a failure counts against a session

    def __init__(self, clock: Clock, per_session: int, per_minute: int) -> None:
        self._clock = clock
        self._per_session = per_session
        self._per_minute = per_minute
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    def allow(self, session: Session) -> bool:
        now = self._clock.monotonic()
        with self._lock:
            while session.login_failures and now - session.login_failures[0] > self.WINDOW:
                session.login_failures.popleft()
            while self._recent and now - self._recent[0] > 60.0:
                self._recent.popleft()
            if len(session.login_failures) >= self._per_session:
                return False
            if len(self._recent) >= self._per_minute:
                return False
            self._recent.append(now)
            return True

    def failed(self, session: Session) -> None:
        with self._lock:
            session.login_failures.append(self._clock.monotonic())
