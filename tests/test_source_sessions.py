"""Server-side sessions and login throttling, with a clock the test controls."""

from __future__ import annotations

from server.sessions import LoginThrottle, SessionStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def today(self) -> str:
        return "2026-11-26"


def test_sessions_expire_after_idle_time() -> None:
    clock = FakeClock()
    store = SessionStore(clock, idle_seconds=600, max_sessions=100)
    s = store.create()
    clock.now += 599
    assert store.get(s.id) is s  # activity renews it
    clock.now += 599
    assert store.get(s.id) is s
    clock.now += 601
    assert store.get(s.id) is None
    assert store.get("") is None and store.get(None) is None


def test_session_ids_and_tokens_are_random_and_rotate() -> None:
    store = SessionStore(FakeClock(), idle_seconds=600, max_sessions=100)
    a, b = store.create(), store.create()
    assert len({a.id, b.id, a.csrf_token, b.csrf_token}) == 4
    assert len(a.id) == 43  # 256 bits, URL-safe base64
    old_id, old_token = a.id, a.csrf_token
    store.rotate(a)
    assert a.id != old_id and a.csrf_token != old_token
    assert store.get(old_id) is None and store.get(a.id) is a


def test_oldest_sessions_make_room_when_full() -> None:
    clock = FakeClock()
    store = SessionStore(clock, idle_seconds=600, max_sessions=3)
    sessions = []
    for _ in range(4):
        clock.now += 1
        sessions.append(store.create())
    assert store.get(sessions[0].id) is None
    assert all(store.get(s.id) is s for s in sessions[1:])


def test_end_source_ends_all_its_sessions() -> None:
    store = SessionStore(FakeClock(), idle_seconds=600, max_sessions=100)
    a, b, other = store.create(), store.create(), store.create()
    a.source_id = b.source_id = "src"
    other.source_id = "else"
    store.end_source("src")
    assert store.get(a.id) is None and store.get(b.id) is None
    assert store.get(other.id) is other


def test_throttle_per_session_window_and_instance_rate() -> None:
    clock = FakeClock()
    store = SessionStore(clock, idle_seconds=10_000, max_sessions=100)
    throttle = LoginThrottle(clock, per_session=2, per_minute=5)
    s = store.create()
    assert throttle.allow(s)
    throttle.failed(s)
    assert throttle.allow(s)
    throttle.failed(s)
    assert not throttle.allow(s)  # two failures: this session waits
    clock.now += LoginThrottle.WINDOW + 1
    assert throttle.allow(s)  # the failures have aged out
    clock.now += 61
    others = [store.create() for _ in range(6)]
    allowed = [throttle.allow(o) for o in others]
    assert allowed == [True] * 5 + [False]  # instance-wide: 5 a minute
    clock.now += 61
    assert throttle.allow(others[-1])
