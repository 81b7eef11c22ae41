"""One contract for the row stores (issue 14 §4): journalists, sources and the
newsroom on SQLite (the embedded default) and on PostgreSQL (a real cluster,
tests/pg_cluster.py). Each test runs once per backend and must see the same
answers; the concurrent tests run the writers on threads, as two instances
would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from server.domain.channel import Retention
from server.domain.source_lifecycle import SourceLifecycle
from server.settings import ChannelSettings
from server.store.db import Database
from server.store.newsroom import SqliteNewsroomStore
from server.store.objects import ObjectStore
from server.store.postgres import PostgresDatabase
from server.store.postgres_stores import (
    PostgresJournalistStore,
    PostgresNewsroomStore,
    PostgresSourceStore,
)
from server.store.protocols import (
    DeskProblem,
    DeskRow,
    ItemKind,
    MoveConflict,
    ObjectRow,
    ReplyPurpose,
    RetentionFacts,
    SourceGone,
    SourceNotFound,
    SourceRow,
    TriageRefused,
    new_id,
)
from server.store.sources import SqliteSourceStore

DAY = "2026-12-04"
LATER = "2026-12-05"


@dataclass
class Rows:
    kind: str
    journalists: Any  # Database | PostgresJournalistStore: the same methods
    sources: Any
    newsroom: Any
    execute: Callable[[str, tuple[object, ...]], None]  # raw SQL, "?" placeholders


@pytest.fixture(params=["sqlite", "postgres"])
def rows(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rows]:
    if request.param == "sqlite":
        db = Database(tmp_path / "lanterne.sqlite3")
        db.create()

        def sqlite_execute(sql: str, params: tuple[object, ...]) -> None:
            with db.connect() as conn:
                conn.execute(sql, params)

        yield Rows("sqlite", db, SqliteSourceStore(db), SqliteNewsroomStore(db), sqlite_execute)
        return
    url = request.getfixturevalue("pg_url")
    with PostgresDatabase(url, max_size=8) as pg:
        pg.prepare()

        def pg_execute(sql: str, params: tuple[object, ...]) -> None:
            with pg.connect() as conn:
                conn.execute(sql.replace("?", "%s"), params)

        yield Rows(
            "postgres",
            PostgresJournalistStore(pg),
            PostgresSourceStore(pg),
            PostgresNewsroomStore(pg),
            pg_execute,
        )


def new_source(rows: Rows, day: str = DAY, objects: int = 1) -> tuple[SourceRow, str]:
    source = SourceRow(new_id(), new_id().encode(), b"reply-key-" + new_id().encode())
    submission = new_id()
    rows.sources.record_submission(
        submission,
        source.id,
        source,
        day,
        [ObjectRow(new_id(), "file", 10) for _ in range(objects)],
    )
    return source, submission


def test_journalists(rows: Rows) -> None:
    rows.journalists.add_journalist("bruno", b"e1", b"s1", "journalist", DAY)
    rows.journalists.add_journalist("alice", b"e2", b"s2", "admin", DAY)
    alice = rows.journalists.journalist_named("alice")
    assert [j.name for j in rows.journalists.journalists()] == ["alice", "bruno"]
    assert (alice.encryption_key, alice.signing_key, alice.role) == (b"e2", b"s2", "admin")
    assert rows.journalists.journalist(alice.id) == alice
    rows.journalists.add_journalist("alice", b"e3", b"s3", "journalist", LATER)  # new keys
    again = rows.journalists.journalist_named("alice")
    assert (again.id, again.encryption_key, again.role) == (alice.id, b"e3", "journalist")
    assert rows.journalists.remove_journalist("alice")
    assert not rows.journalists.remove_journalist("alice")
    assert rows.journalists.journalist(alice.id) is None
    rows.journalists.add_journalist("alice", b"e4", b"s4", "journalist", LATER)
    assert rows.journalists.journalist_named("alice").id > alice.id  # never given again
    assert rows.journalists.journalist_named("nobody") is None


def test_a_hybrid_key_is_stored_replaced_and_dropped(rows: Rows) -> None:
    """Issue 15: the X-Wing key of a hybrid journalist, NULL for an X25519-only one."""
    rows.journalists.add_journalist("alice", b"e1", b"s1", "journalist", DAY)
    assert rows.journalists.journalist_named("alice").hybrid_key is None
    rows.journalists.add_journalist("alice", b"e1", b"s1", "journalist", DAY, hybrid_key=b"h1")
    assert rows.journalists.journalist_named("alice").hybrid_key == b"h1"
    assert [j.hybrid_key for j in rows.journalists.journalists()] == [b"h1"]
    rows.journalists.add_journalist("alice", b"e2", b"s2", "journalist", DAY)  # an older .pub
    assert rows.journalists.journalist_named("alice").hybrid_key is None


def test_meta_values(rows: Rows) -> None:
    assert rows.journalists.meta_value("onion") is None
    rows.journalists.set_meta_value("onion", "abc.onion")
    rows.journalists.set_meta_value("onion", "def.onion")
    assert rows.journalists.meta_value("onion") == "def.onion"


def test_digest_recipients_and_days(rows: Rows) -> None:
    """The daily digest's rows (issue 16 §4): addresses, the last day sent, and
    whether anything arrived from a day on; a removed journalist's row goes."""
    store = rows.journalists
    store.add_journalist("bruno", b"e1", b"s1", "journalist", DAY)
    store.add_journalist("alice", b"e2", b"s2", "journalist", DAY)
    assert store.digest_subscriptions() == []
    assert not store.set_digest_address("nobody", "n@example.org")
    assert store.set_digest_address("bruno", "b@example.org")
    assert store.set_digest_address("alice", "old@example.org")
    assert store.set_digest_address("alice", "a@example.org")  # replaced
    subs = store.digest_subscriptions()
    assert [(s.name, s.address, s.last_sent_on) for s in subs] == [
        ("alice", "a@example.org", None),
        ("bruno", "b@example.org", None),
    ]
    store.mark_digest_sent(subs[0].journalist_id, DAY)
    assert [s.last_sent_on for s in store.digest_subscriptions()] == [DAY, None]
    assert store.set_digest_address("alice", "a2@example.org")  # keeps its day
    assert store.digest_subscriptions()[0].last_sent_on == DAY
    alice, bruno = subs[0].journalist_id, subs[1].journalist_id
    assert not store.received_since(DAY, alice)
    new_source(rows, DAY)  # no desk: for everyone
    assert store.received_since(DAY, alice) and store.received_since(DAY, bruno)
    assert store.received_since("2026-12-01", alice)
    assert not store.received_since(LATER, alice)
    # A desk's source is news for its members and for all-desk journalists only.
    store.add_journalist("chloe", b"e3", b"s3", "journalist", DAY)
    chloe = store.journalist_named("chloe").id
    store.add_desk(_desk("legal", "bruno"))
    source = SourceRow(new_id(), new_id().encode(), b"reply-key-" + new_id().encode(), "legal")
    rows.sources.record_submission(
        new_id(), source.id, source, LATER, [ObjectRow(new_id(), "file", 1)]
    )
    assert store.received_since(LATER, bruno)
    assert not store.received_since(LATER, alice) and not store.received_since(LATER, chloe)
    store.set_all_desks("chloe", True)
    assert store.received_since(LATER, chloe)
    assert store.set_digest_address("bruno", None)
    assert store.remove_journalist("alice")
    assert store.digest_subscriptions() == []


def test_a_submission_and_its_source(rows: Rows) -> None:
    rows.execute(
        "INSERT INTO uploads(id, owner_hash, length, received, active_on) VALUES (?, ?, 1, 1, ?)",
        ("u" * 32, b"owner", DAY),
    )
    source = SourceRow(new_id(), b"login", b"reply")
    first, second = ObjectRow(new_id(), "manifest", 5), ObjectRow(new_id(), "file", 7)
    rows.sources.record_submission(new_id(), source.id, source, DAY, [first, second], ["u" * 32])
    assert rows.sources.find_source(b"login") == source
    assert rows.sources.find_source(b"other") is None
    assert rows.sources.is_active(source.id)
    (summary,) = rows.newsroom.source_summaries()
    assert (summary.id, summary.submissions, summary.size, summary.last_activity) == (
        source.id,
        1,
        12,
        DAY,
    )
    items = rows.newsroom.items_of(source.id)
    assert [o for _, _, objs in items.submissions for o in objs] == [first, second]
    assert rows.newsroom.object_is_known(second.id)
    assert not rows.newsroom.object_is_known(new_id())
    assert rows.journalists.known_object_ids() == {first.id, second.id}
    # The finished upload's row went in the same transaction.
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        rows.sources.record_submission(new_id(), source.id, source, DAY, [])
    rows.sources.record_submission(new_id(), source.id, None, LATER, [])
    assert rows.newsroom.source_summaries()[0].last_activity == LATER


def test_items_keep_the_order_they_were_written(rows: Rows) -> None:
    source, _ = new_source(rows)
    rows.journalists.add_journalist("alice", b"e", b"s", "journalist", DAY)
    alice = rows.journalists.journalist_named("alice")
    ids = [new_id() for _ in range(6)]
    for item_id in ids:
        rows.sources.add_item(ItemKind.REPLY, item_id, source.id, item_id, alice.id, DAY)
        rows.sources.add_item(ItemKind.NOTE, item_id[::-1], source.id, item_id, None, DAY)
    items = rows.newsroom.items_of(source.id)
    assert [r.id for r in items.replies] == ids
    assert [n.id for n in items.notes] == [i[::-1] for i in ids]
    assert {r.journalist for r in items.replies} == {"alice"}
    assert {n.journalist for n in items.notes} == {None}
    assert [r.id for r in rows.sources.replies(source.id)] == ids
    subs = [new_id() for _ in range(5)]
    for sid in subs:
        rows.sources.record_submission(sid, source.id, None, DAY, [])
    assert [s[0] for s in rows.newsroom.items_of(source.id).submissions][1:] == subs


def test_items_for_unknown_and_deleted_sources(rows: Rows) -> None:
    with pytest.raises(SourceNotFound):
        rows.sources.add_item(ItemKind.NOTE, new_id(), new_id(), new_id(), None, DAY)
    source, _ = new_source(rows)
    reply = new_id()
    rows.sources.add_item(ItemKind.REPLY, new_id(), source.id, reply, None, DAY)
    note = new_id()
    rows.sources.add_item(ItemKind.NOTE, new_id(), source.id, note, None, DAY)
    assert rows.sources.delete_by_source(source.id) == [reply]
    assert rows.sources.find_source(source.login_hash) is None
    assert not rows.sources.is_active(source.id)
    with pytest.raises(SourceGone):
        rows.sources.add_item(ItemKind.REPLY, new_id(), source.id, new_id(), None, DAY)
    rows.sources.add_item(ItemKind.NOTE, new_id(), source.id, new_id(), None, DAY)
    with pytest.raises(SourceGone):
        rows.sources.record_submission(new_id(), source.id, None, DAY, [])
    (summary,) = rows.newsroom.source_summaries()
    assert summary.account_deleted and summary.reply_key is None
    assert (summary.submissions, summary.notes, summary.replies) == (1, 2, 0)


def test_deleting_a_source_or_a_submission(rows: Rows) -> None:
    source, submission = new_source(rows, objects=2)
    other, _ = new_source(rows)
    note = new_id()
    rows.sources.add_item(ItemKind.NOTE, new_id(), source.id, note, None, DAY)
    objects = {o.id for _, _, objs in rows.newsroom.items_of(source.id).submissions for o in objs}
    second = new_id()
    rows.sources.record_submission(second, source.id, None, DAY, [ObjectRow(new_id(), "file", 1)])
    removed = rows.sources.delete_submission(second)
    assert len(removed) == 1 and not rows.newsroom.object_is_known(removed[0])
    with pytest.raises(SourceNotFound):
        rows.sources.delete_submission(second)
    assert set(rows.sources.delete_source(source.id)) == objects | {note}
    with pytest.raises(SourceNotFound):
        rows.sources.delete_source(source.id)
    assert [s.id for s in rows.newsroom.source_summaries()] == [other.id]
    del submission


def test_triage(rows: Rows) -> None:
    source, _ = new_source(rows)
    rows.journalists.add_journalist("alice", b"e", b"s", "journalist", DAY)
    triage = rows.newsroom.update_triage
    common: dict[str, Any] = {
        "seen": None,
        "starred": None,
        "tags": None,
        "add_tags": None,
        "remove_tags": None,
        "assignee": None,
        "clear_assignee": False,
        "max_tags": 3,
    }
    triage(source.id, **{**common, "seen": True, "tags": ["b", "a"], "assignee": "alice"})
    triage(source.id, **{**common, "add_tags": ["c"], "remove_tags": ["a"], "starred": True})
    (s,) = rows.newsroom.source_summaries()
    assert (s.seen, s.starred, s.tags, s.assignee) == (True, True, ["b", "c"], "alice")
    with pytest.raises(TriageRefused, match="tags"):
        triage(source.id, **{**common, "add_tags": ["d", "e"]})
    with pytest.raises(TriageRefused, match="assignee"):
        triage(source.id, **{**common, "assignee": "nobody", "seen": False})
    triage(source.id, **{**common, "clear_assignee": True, "seen": False})
    (s,) = rows.newsroom.source_summaries()
    assert (s.seen, s.starred, s.tags, s.assignee) == (False, True, ["b", "c"], None)


def test_journalists_tagging_at_once_keep_every_tag(rows: Rows) -> None:
    """Several instances, one source: each adds its tags at the same moments."""
    source, _ = new_source(rows)
    writers, rounds = 8, 15
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def tag(writer: int) -> None:
        try:
            start.wait()
            for n in range(rounds):
                rows.newsroom.update_triage(
                    source.id,
                    seen=None,
                    starred=None,
                    tags=None,
                    add_tags=[f"w{writer}-{n}"],
                    remove_tags=None,
                    assignee=None,
                    clear_assignee=False,
                    max_tags=writers * rounds,
                )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=tag, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    expected = sorted(f"w{w}-{n}" for w in range(writers) for n in range(rounds))
    assert rows.newsroom.source_summaries()[0].tags == expected


def test_a_submission_racing_the_account_deletion(rows: Rows) -> None:
    """Either the submission is recorded before the account is deleted, or it is
    refused: never a submission recorded for a source after its deletion."""
    source, _ = new_source(rows)
    start = threading.Barrier(2)
    results: list[object] = []

    def submit() -> None:
        start.wait()
        try:
            for _ in range(20):
                rows.sources.record_submission(new_id(), source.id, None, DAY, [])
            results.append("recorded")
        except SourceGone:
            results.append("refused")

    def delete() -> None:
        start.wait()
        rows.sources.delete_by_source(source.id)

    threads = [threading.Thread(target=submit), threading.Thread(target=delete)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results in (["recorded"], ["refused"])
    assert not rows.sources.is_active(source.id)
    with pytest.raises(SourceGone):
        rows.sources.record_submission(new_id(), source.id, None, DAY, [])


def _desk(name: str, *members: str) -> DeskRow:
    return DeskRow(
        name,
        {"en": f"{name} desk", "fr": f"bureau {name}"},
        {"en": "what it takes", "fr": "ce qu'il reçoit"},
        members,
    )


def test_desks_their_members_and_all_desk_journalists(rows: Rows) -> None:
    """Issue 16 §1: desks in the order added, members by name, all-desk marks."""
    for name in ("alice", "bruno", "chloe"):
        rows.journalists.add_journalist(name, b"e", b"s", "journalist", DAY)
    rows.journalists.add_desk(_desk("news", "bruno", "alice"))
    rows.journalists.add_desk(_desk("legal", "chloe"))
    assert rows.journalists.desks() == [_desk("news", "alice", "bruno"), _desk("legal", "chloe")]
    with pytest.raises(DeskProblem) as exists:
        rows.journalists.add_desk(_desk("news"))
    assert exists.value.kind == "exists"
    with pytest.raises(DeskProblem) as unknown_journalist:
        rows.journalists.add_desk(_desk("hr", "alice", "nobody"))
    assert (unknown_journalist.value.kind, unknown_journalist.value.detail) == (
        "journalist",
        "nobody",
    )
    assert [d.name for d in rows.journalists.desks()] == ["news", "legal"]  # nothing half-added
    rows.journalists.set_desk_members("legal", ["alice", "chloe"])
    assert rows.journalists.desks()[1].members == ("alice", "chloe")
    with pytest.raises(DeskProblem) as no_desk:
        rows.journalists.set_desk_members("hr", ["alice"])
    assert no_desk.value.kind == "unknown"
    rows.journalists.set_all_desks("chloe", True)
    assert [j.all_desks for j in rows.journalists.journalists()] == [False, False, True]
    rows.journalists.set_all_desks("chloe", False)
    assert not rows.journalists.journalist_named("chloe").all_desks
    with pytest.raises(DeskProblem):
        rows.journalists.set_all_desks("nobody", True)
    # A removed journalist leaves every desk.
    assert rows.journalists.remove_journalist("alice")
    assert [d.members for d in rows.journalists.desks()] == [("bruno",), ("chloe",)]
    # The texts change alone: members and order stay.
    rows.journalists.set_desk_texts("legal", {"en": "Legal", "fr": "Juridique"}, {"en": "x"})
    assert rows.journalists.desks()[1] == DeskRow(
        "legal", {"en": "Legal", "fr": "Juridique"}, {"en": "x"}, ("chloe",)
    )
    with pytest.raises(DeskProblem) as no_such:
        rows.journalists.set_desk_texts("hr", {"en": "HR"}, {"en": "x"})
    assert no_such.value.kind == "unknown"


def test_a_source_keeps_its_desk_and_a_desk_in_use_is_not_removed(rows: Rows) -> None:
    rows.journalists.add_desk(_desk("news"))
    rows.journalists.add_desk(_desk("legal"))
    source = SourceRow(new_id(), b"login", b"reply", desk="news")
    rows.sources.record_submission(
        new_id(), source.id, source, DAY, [ObjectRow(new_id(), "file", 1)]
    )
    plain, _ = new_source(rows)
    assert rows.sources.find_source(b"login") == source
    assert rows.sources.desk_of(source.id) == "news"
    assert rows.sources.desk_of(plain.id) is None
    assert rows.sources.desk_of(new_id()) is None
    assert {s.id: s.desk for s in rows.newsroom.source_summaries()} == {
        source.id: "news",
        plain.id: None,
    }
    assert rows.journalists.desk_sources("news") == [source.id]
    with pytest.raises(DeskProblem) as in_use:
        rows.journalists.remove_desk("news")
    assert (in_use.value.kind, in_use.value.detail) == ("in_use", "1")
    rows.journalists.remove_desk("legal")
    with pytest.raises(DeskProblem) as gone:
        rows.journalists.remove_desk("legal")
    assert gone.value.kind == "unknown"
    rows.sources.delete_source(source.id)
    rows.journalists.remove_desk("news")
    assert rows.journalists.desks() == []


def _summary(rows: Rows, source_id: str) -> Any:
    [found] = [s for s in rows.newsroom.source_summaries() if s.id == source_id]
    return found


def test_acknowledgement_and_feedback_days_are_recorded_once(rows: Rows) -> None:
    source, _ = new_source(rows)
    summary = _summary(rows, source.id)
    assert summary.created_on == DAY
    assert (summary.acknowledged_on, summary.feedback_on) == (None, None)
    # A plain reply and a note record nothing; a purpose records its day, the first only.
    rows.sources.add_item(ItemKind.REPLY, new_id(), source.id, new_id(), None, DAY)
    rows.sources.add_item(
        ItemKind.NOTE, new_id(), source.id, new_id(), None, DAY, ReplyPurpose.FEEDBACK
    )
    assert _summary(rows, source.id).feedback_on is None
    rows.sources.add_item(
        ItemKind.REPLY, new_id(), source.id, new_id(), None, DAY, ReplyPurpose.ACKNOWLEDGEMENT
    )
    rows.sources.add_item(
        ItemKind.REPLY, new_id(), source.id, new_id(), None, LATER, ReplyPurpose.ACKNOWLEDGEMENT
    )
    rows.sources.add_item(
        ItemKind.REPLY, new_id(), source.id, new_id(), None, LATER, ReplyPurpose.FEEDBACK
    )
    summary = _summary(rows, source.id)
    assert (summary.acknowledged_on, summary.feedback_on) == (DAY, LATER)
    assert summary.replies == 4
    # A refused reply records no day either.
    rows.sources.delete_by_source(source.id)
    other, _ = new_source(rows)
    rows.sources.delete_by_source(other.id)
    with pytest.raises(SourceGone):
        rows.sources.add_item(
            ItemKind.REPLY, new_id(), other.id, new_id(), None, DAY, ReplyPurpose.FEEDBACK
        )
    assert _summary(rows, other.id).feedback_on is None


def test_retention_rows_keep_until_feedback_period_and_shift(rows: Rows) -> None:
    source, _ = new_source(rows)
    [facts] = [f for f in rows.sources.retention_facts() if f.id == source.id]
    assert facts == RetentionFacts(source.id, DAY, None, None)
    rows.sources.set_expiry_shift(source.id, -3)
    rows.sources.set_expiry_shift(source.id, 5)  # drawn once: the first stays
    rows.sources.keep_until(source.id, "2027-06-01")
    rows.sources.keep_until(source.id, "2027-01-01")  # an earlier day never shortens it
    [facts] = [f for f in rows.sources.retention_facts() if f.id == source.id]
    assert facts == RetentionFacts(source.id, DAY, "2027-06-01", -3)
    rows.sources.set_feedback_months(source.id, 6)
    summary = _summary(rows, source.id)
    assert (summary.feedback_months, summary.kept_until, summary.expiry_shift) == (
        6,
        "2027-06-01",
        -3,
    )
    rows.sources.set_feedback_months(source.id, None)
    assert _summary(rows, source.id).feedback_months is None
    for change in (
        lambda: rows.sources.keep_until("nobody", DAY),
        lambda: rows.sources.set_feedback_months("nobody", 6),
    ):
        with pytest.raises(SourceNotFound):
            change()


def test_the_retention_sweep_on_each_backend(rows: Rows, tmp_path: Path) -> None:
    """Retention (server/domain/channel.py) over this store: a source idle past
    its period goes with its rows, one kept by a journalist stays, a recent one
    stays; a source from before the shift existed gets one drawn."""
    (tmp_path / "objects").mkdir()
    objects = ObjectStore(tmp_path / "objects")
    old, kept, recent = (
        new_source(rows, day=day)[0].id for day in ("2020-01-01", "2020-01-01", "2026-11-30")
    )
    rows.sources.keep_until(kept, "2027-06-01")
    lifecycle = SourceLifecycle(rows.sources, objects)
    retention = Retention(
        rows.sources, lifecycle, ChannelSettings(retention_days=30), draw=lambda: 0
    )
    assert retention.expire_due("2026-12-04") == 1
    facts = {f.id: f for f in rows.sources.retention_facts()}
    assert set(facts) == {kept, recent}
    assert all(f.expiry_shift == 0 for f in facts.values())  # drawn where none was
    assert old not in {s.id for s in rows.newsroom.source_summaries()}


def test_a_source_active_during_the_sweep_is_not_expired(rows: Rows, tmp_path: Path) -> None:
    """The sweep decides on what it read; a login (or a journalist's keep) landing
    between that read and the deletion must win: the deletion checks, in its own
    transaction, that the facts it decided on still hold."""
    (tmp_path / "objects").mkdir()
    objects = ObjectStore(tmp_path / "objects")
    source = new_source(rows, day="2020-01-01")[0].id
    rows.sources.set_expiry_shift(source, 0)

    class LoginDuringSweep:
        """The store, with the source logging in right after the sweep's read."""

        def __getattr__(self, name: str) -> Any:
            return getattr(rows.sources, name)

        def retention_facts(self) -> list[RetentionFacts]:
            facts = rows.sources.retention_facts()
            rows.sources.touch(source, "2026-12-04")
            return list(facts)

    sweeping = LoginDuringSweep()
    lifecycle = SourceLifecycle(sweeping, objects)  # type: ignore[arg-type]
    retention = Retention(sweeping, lifecycle, ChannelSettings(retention_days=30))  # type: ignore[arg-type]
    assert retention.expire_due("2026-12-04") == 0
    assert source in {f.id for f in rows.sources.retention_facts()}
    # With nothing happening meanwhile, the next sweep decides on fresh facts.
    rows.sources.keep_until(source, "2026-12-10")  # and keeping counts too
    plain = Retention(
        rows.sources, SourceLifecycle(rows.sources, objects), ChannelSettings(retention_days=30)
    )
    assert plain.expire_due("2027-01-02") == 0  # active on 2026-12-04: due 2027-01-03
    assert plain.expire_due("2027-01-03") == 1


def test_the_source_and_desk_of_an_object_or_a_submission(rows: Rows) -> None:
    """What the journalist API checks before serving an object to a journalist."""
    rows.journalists.add_desk(_desk("news"))
    source = SourceRow(new_id(), b"login", b"reply", desk="news")
    submission, obj = new_id(), ObjectRow(new_id(), "file", 1)
    rows.sources.record_submission(submission, source.id, source, DAY, [obj])
    plain, plain_submission = new_source(rows)
    note, reply = new_id(), new_id()
    rows.sources.add_item(ItemKind.NOTE, new_id(), source.id, note, None, DAY)
    rows.sources.add_item(ItemKind.REPLY, new_id(), plain.id, reply, None, DAY)
    assert rows.newsroom.source_of_object(obj.id) == (source.id, "news")
    assert rows.newsroom.source_of_object(note) == (source.id, "news")
    assert rows.newsroom.source_of_object(reply) == (plain.id, None)
    assert rows.newsroom.source_of_object(new_id()) is None
    assert rows.newsroom.source_of_submission(submission) == (source.id, "news")
    assert rows.newsroom.source_of_submission(plain_submission) == (plain.id, None)
    assert rows.newsroom.source_of_submission(new_id()) is None


def test_moving_a_source_replaces_every_object_row_at_once(rows: Rows) -> None:
    rows.journalists.add_desk(_desk("news"))
    rows.journalists.add_desk(_desk("legal"))
    source = SourceRow(new_id(), b"login", b"reply", desk="news")
    first = ObjectRow(new_id(), "manifest", 5)
    rows.sources.record_submission(new_id(), source.id, source, DAY, [first])
    note, reply = new_id(), new_id()
    rows.sources.add_item(ItemKind.NOTE, new_id(), source.id, note, None, DAY)
    rows.sources.add_item(ItemKind.REPLY, new_id(), source.id, reply, None, DAY)
    moved = {first.id: (new_id(), 9), note: (new_id(), 3), reply: (new_id(), 4)}
    with pytest.raises(MoveConflict):  # one object left out: nothing changes
        rows.newsroom.move_source(source.id, "legal", {first.id: moved[first.id]})
    with pytest.raises(MoveConflict):  # one too many
        rows.newsroom.move_source(source.id, "legal", {**moved, new_id(): (new_id(), 1)})
    assert rows.sources.desk_of(source.id) == "news"
    with pytest.raises(SourceNotFound):
        rows.newsroom.move_source(new_id(), "legal", {})
    rows.newsroom.move_source(source.id, "legal", moved)
    assert rows.sources.desk_of(source.id) == "legal"
    items = rows.newsroom.items_of(source.id)
    assert items.submissions[0][2] == [ObjectRow(moved[first.id][0], "manifest", 9)]
    assert [n.object_id for n in items.notes] == [moved[note][0]]
    assert [r.object_id for r in items.replies] == [moved[reply][0]]
    assert not rows.newsroom.object_is_known(first.id)
