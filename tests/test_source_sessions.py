"""Server-side sessions, form tokens and login throttling, with a clock the test controls."""

from __future__ import annotations

import anyio

from server.domain.memory_ephemeral import MemoryEphemeralStore
from server.domain.sessions import (
    FORM_TOKEN_SECONDS,
    FormTokens,
    KdfQueue,
    LoginBusy,
    LoginThrottle,
    Session,
    SessionStore,
)
from tests.clocks import FakeClock


def _same(found: Session | None, session: Session) -> bool:
    """Sessions are values read back from a shared store: the same id and contents."""
    return found is not None and (found.id, found.csrf_token, found.source_id) == (
        session.id,
        session.csrf_token,
        session.source_id,
    )


def test_sessions_expire_after_idle_time() -> None:
    clock = FakeClock()
    store = SessionStore(clock, idle_seconds=600, max_sessions=100)
    s = store.create()
    clock.now += 599
    assert _same(store.get(s.id), s)  # activity renews it
    clock.now += 599
    assert _same(store.get(s.id), s)
    clock.now += 601
    assert store.get(s.id) is None
    assert store.get("") is None and store.get(None) is None


def test_session_ids_and_tokens_are_random_and_change_at_sign_in() -> None:
    store = SessionStore(FakeClock(), idle_seconds=600, max_sessions=100)
    a, b = store.create(), store.create()
    assert len({a.id, b.id, a.csrf_token, b.csrf_token}) == 4
    assert len(a.id) == 43  # 256 bits, URL-safe base64
    old_id, old_token = a.id, a.csrf_token
    store.sign_in(a, "src")
    assert a.id != old_id and a.csrf_token != old_token
    assert store.get(old_id) is None and _same(store.get(a.id), a)
    fresh = store.sign_in(None, "other", new_codename="one two")
    assert _same(store.get(fresh.id), fresh) and fresh.holds_source


def test_oldest_anonymous_sessions_make_room_when_full() -> None:
    clock = FakeClock()
    store = SessionStore(clock, idle_seconds=600, max_sessions=3)
    sessions = []
    for _ in range(4):
        clock.now += 1
        sessions.append(store.create())
    assert store.get(sessions[0].id) is None
    assert all(_same(store.get(s.id), s) for s in sessions[1:])


def test_anonymous_sessions_never_push_out_a_source() -> None:
    """Item 6: a logged-in source and a just-issued codename outlive any number
    of anonymous sessions; sources only ever make room for other sources."""
    clock = FakeClock()
    store = SessionStore(clock, idle_seconds=600, max_sessions=3)
    logged_in = store.sign_in(store.create(), "a")
    new_codename = store.sign_in(None, "b", new_codename="nine words")
    for _ in range(1000):
        store.create()
    assert _same(store.get(logged_in.id), logged_in)
    assert _same(store.get(new_codename.id), new_codename)
    assert len(store) == 2 + 3
    third, fourth = store.sign_in(None, "c"), store.sign_in(None, "d")
    assert _same(store.get(third.id), third) and _same(store.get(fourth.id), fourth)
    assert store.get(logged_in.id) is None  # the least recently active source


def test_end_source_ends_all_its_sessions() -> None:
    store = SessionStore(FakeClock(), idle_seconds=600, max_sessions=100)
    a, b = store.sign_in(None, "src"), store.sign_in(None, "src")
    other = store.sign_in(None, "else")
    store.end_source("src")
    assert store.get(a.id) is None and store.get(b.id) is None
    assert _same(store.get(other.id), other)


def test_form_tokens_are_bound_to_the_visit_and_expire() -> None:
    now = [1_800_000_000.0]
    tokens = FormTokens(b"k" * 32, lambda: now[0])
    visit, other = FormTokens.new_visit(), FormTokens.new_visit()
    token = tokens.issue(visit)
    assert tokens.check(visit, token)
    assert not tokens.check(other, token)  # another browser's cookie
    assert not tokens.check(None, token)
    assert not FormTokens(b"j" * 32, lambda: now[0]).check(visit, token)  # another instance
    expires, mac = token.split(".")
    assert not tokens.check(visit, f"{int(expires) + 1}.{mac}")  # a longer life is forged
    for bad in ("", ".", "x.y", token + "x", "²." + mac, "9" * 5000 + "." + mac):
        assert not tokens.check(visit, bad)
    now[0] += FORM_TOKEN_SECONDS - 1
    assert tokens.check(visit, token)
    now[0] += 2
    assert not tokens.check(visit, token)


def test_a_session_fails_a_few_times_then_waits() -> None:
    clock = FakeClock()
    store = SessionStore(clock, idle_seconds=10_000, max_sessions=100)
    throttle = LoginThrottle(clock, per_session=2, kdf=KdfQueue(1, 4))
    s = store.create()
    assert throttle.allow(s)
    throttle.failed(s)
    assert throttle.allow(s)
    throttle.failed(s)
    assert not throttle.allow(s)  # two failures: this session waits
    clock.now += LoginThrottle.WINDOW + 1
    assert throttle.allow(s)  # the failures have aged out
    # No instance-wide rate: a thousand other sessions failing changes nothing for s.
    for _ in range(1000):
        other = store.create()
        assert throttle.allow(other)
        throttle.failed(other)
    assert throttle.allow(s)


def test_one_login_at_a_time_per_session_and_a_bounded_queue() -> None:
    clock = FakeClock()
    store = SessionStore(clock, idle_seconds=10_000, max_sessions=100)
    throttle = LoginThrottle(clock, per_session=5, kdf=KdfQueue(1, 2))
    order: list[int] = []
    refused: list[int] = []

    async def main() -> None:
        release = anyio.Event()
        first = store.create()

        async def attempt(n: int) -> None:
            session = first if n == 0 else store.create()
            try:
                async with throttle.attempt(session):
                    order.append(n)
                    await release.wait()
            except LoginBusy:
                refused.append(n)

        async with anyio.create_task_group() as tg:
            tg.start_soon(attempt, 0)
            await anyio.wait_all_tasks_blocked()
            assert not throttle.allow(first)  # its attempt is running
            for n in range(1, 6):
                tg.start_soon(attempt, n)
                await anyio.wait_all_tasks_blocked()
            release.set()
        assert throttle.allow(first)

    anyio.run(main)
    assert order == [0, 1, 2]  # first come, first served
    assert refused == [3, 4, 5]  # two may wait; the others are told at once


def test_a_new_codename_always_waits_its_turn() -> None:
    """A full queue refuses logins, never the codename of a submission that arrived."""
    queue = KdfQueue(1, 1)
    done: list[str] = []

    async def main() -> None:
        release = anyio.Event()

        async def run(name: str, may_refuse: bool) -> None:
            try:
                async with queue.turn(may_refuse=may_refuse):
                    done.append(name)
                    await release.wait()
            except LoginBusy:
                done.append(name + " refused")

        async with anyio.create_task_group() as tg:
            for name, may_refuse in [("a", False), ("login", True), ("late login", True)]:
                tg.start_soon(run, name, may_refuse)
                await anyio.wait_all_tasks_blocked()
            tg.start_soon(run, "codename", False)
            await anyio.wait_all_tasks_blocked()
            release.set()

    anyio.run(main)
    assert done == ["a", "late login refused", "login", "codename"]


def test_rows_past_their_day_are_removed_once_a_day() -> None:
    """A session idle past its time leaves no row behind, even if never asked for again."""
    clock = FakeClock()
    shared = MemoryEphemeralStore()
    store = SessionStore(clock, idle_seconds=600, max_sessions=100, shared=shared, now=clock)
    store.create()
    assert shared.count("session", 0) == 1
    clock.advance(3 * 86400)
    store.create()  # the first session of a new day sweeps first
    assert shared.count("session", 0) == 1
