"""The local vault: index, objects named by server ids, resolution, deletion."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
from dataclasses import replace
from pathlib import Path

import pytest

import envelope
from journalist_cli import designations
from journalist_cli.records import ChannelDays, SourceDetail
from journalist_cli.vault import Vault
from journalist_cli.workflow_errors import UnknownSource, VaultError
from tests.journalist_fixtures import add_items, build_source, journalist, store


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault.open(tmp_path / "home")


def test_vault_is_private(vault: Vault) -> None:
    assert stat.S_IMODE(vault.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(vault.objects_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(vault.index_path.stat().st_mode) == 0o600


def test_index_journal_files_are_private(vault: Vault) -> None:
    with contextlib.closing(sqlite3.connect(vault.index_path)) as held:
        held.execute("INSERT INTO accepted_keys VALUES ('w', 'x', 'y', 'z')")
        held.commit()
        journal = [vault.root / f"index.sqlite3-{s}" for s in ("wal", "shm")]
        assert all(p.exists() for p in journal)  # WAL mode, as the module doc says
        assert {stat.S_IMODE(p.stat().st_mode) for p in journal} == {0o600}


def test_store_detail_lists_missing_objects_until_written(vault: Vault) -> None:
    me = journalist()
    built = build_source([me.decryption.recipient], [("hello", [("a.txt", b"A", "text/plain")])])
    add_items(built, "note", [("alice", "a note")], [me.decryption.recipient])
    store(vault, built, objects=False)
    missing = vault.missing_objects()
    assert {o.id for o in missing} == set(built.blobs)
    assert {o.kind for o in missing} == {"manifest", "message", "file", "note"}
    note = next(o for o in missing if o.kind == "note")
    assert note.size == len(built.blobs[note.id])  # listed by the server too
    for oid, blob in built.blobs.items():
        vault.write_object(oid, blob)
    assert vault.missing_objects() == []
    record = vault.source(built.id)
    assert (record.objects, record.present, record.missing) == (4, 4, 0)
    assert record.stored_bytes == sum(len(b) for b in built.blobs.values())
    assert vault.object_path(note.id).read_bytes() == built.blobs[note.id]
    assert not list(vault.objects_dir.glob("*.part"))


def test_summary_change_detection(vault: Vault) -> None:
    built = build_source([journalist().decryption.recipient], [("hi", [])])
    assert vault.store_summary(built.detail.source) is True
    vault.store_detail(built.detail)
    assert vault.store_summary(built.detail.source) is False
    # Triage changes alone do not need the detail again; a new submission does.
    assert vault.store_summary(replace(built.detail.source, starred=True)) is False
    assert vault.store_summary(replace(built.detail.source, submissions=2)) is True


def test_objects_gone_from_the_server_are_removed(vault: Vault) -> None:
    me = journalist()
    built = build_source([me.decryption.recipient], [("one", []), ("two", [])])
    store(vault, built)
    first = built.detail.submissions[0]
    shorter = SourceDetail(built.detail.source, built.detail.submissions[1:])
    gone = vault.store_detail(shorter)
    assert set(gone) == {o.id for o in first.objects}
    for oid in gone:
        assert not vault.object_path(oid).exists()
    assert [s.id for s in vault.submissions(built.id)] == [built.detail.submissions[1].id]


def test_delete_source_and_keep_only(vault: Vault) -> None:
    r = [journalist().decryption.recipient]
    a, b = build_source(r, [("a", [])]), build_source(r, [("b", [])])
    store(vault, a)
    store(vault, b)
    assert vault.keep_only_sources([b.id]) == [a.id]
    assert vault.source_ids() == [b.id]
    assert all(not vault.object_path(o).exists() for o in a.blobs)
    assert all(vault.object_path(o).exists() for o in b.blobs)
    vault.delete_source(b.id)
    assert vault.source_ids() == []
    assert list(vault.objects_dir.iterdir()) == []


def test_an_object_cannot_move_between_sources(vault: Vault) -> None:
    r = [journalist().decryption.recipient]
    a = build_source(r, [("a", [])])
    store(vault, a)
    b = build_source(r, [("b", [])])
    stolen = replace(b.detail, submissions=a.detail.submissions)
    with pytest.raises(VaultError):
        vault.store_detail(stolen)


def test_resolve_by_id_prefix_and_designation(vault: Vault) -> None:
    r = [journalist().decryption.recipient]
    built = build_source(r, [("x", [])], source_id="ab120" + "0" * 27)
    other = build_source(r, [("y", [])], source_id="ab121" + "0" * 27)
    store(vault, built)
    store(vault, other)
    assert vault.resolve(built.id) == built.id
    assert vault.resolve("ab120") == built.id
    assert vault.resolve("AB121") == other.id
    assert vault.resolve(designations.designation(built.id)) == built.id
    assert vault.resolve(designations.designation(built.id, "fr").upper()) == built.id
    with pytest.raises(UnknownSource, match="several"):
        vault.resolve("ab12")
    with pytest.raises(UnknownSource, match="no source"):
        vault.resolve("ab1")  # shorter than 4 characters: not taken as a prefix
    with pytest.raises(UnknownSource, match="no source"):
        vault.resolve("purple unicorn")


def test_ambiguous_designation_is_refused(vault: Vault) -> None:
    r = [journalist().decryption.recipient]
    target = designations.designation("0" * 32)
    twins = [f"{i:032x}" for i in range(200_000) if designations.designation(f"{i:032x}") == target]
    for sid in twins[:2]:
        store(vault, build_source(r, [("x", [])], source_id=sid))
    with pytest.raises(UnknownSource, match="several sources"):
        vault.resolve(target)


def test_object_ids_must_be_safe_file_names(vault: Vault) -> None:
    for bad in ("../index.sqlite3", "a/b", "", ".hidden", "x" * 65):
        with pytest.raises(VaultError):
            vault.object_path(bad)


def test_a_summary_stored_without_its_detail_is_asked_for_again(vault: Vault) -> None:
    me = journalist()
    built = build_source([me.decryption.recipient], [("hello", [("a.txt", b"A", "text/plain")])])
    store(vault, built, objects=False)
    newer = replace(built.detail.source, submissions=2, last_activity="2026-11-27")
    assert vault.store_summary(newer)  # new activity: the pull then asks for the detail...
    # ...and is cut before storing it: the next pull must ask again, not see "no change".
    assert vault.store_summary(newer)
    vault.store_detail(replace(built.detail, source=newer))
    assert not vault.store_summary(newer)


def test_designation_prefixes_and_ambiguous_ones(vault: Vault) -> None:
    """Issue 12, item 7: "nimble" finds "nimble ibex"; an ambiguous prefix lists them."""
    r = [journalist().decryption.recipient]
    by_word: dict[str, list[str]] = {}
    for i in range(3000):
        sid = f"{i:032x}"
        by_word.setdefault(designations.designation(sid).split()[0], []).append(sid)
    word, (one, two, *_) = next((w, ids) for w, ids in by_word.items() if len(ids) >= 2)
    lone_word, (lone, *_) = next(
        (w, ids)
        for w, ids in by_word.items()
        if w != word and not any(o != w and o.startswith(w) for o in by_word)
    )
    for sid in (one, two, lone):
        store(vault, build_source(r, [("x", [])], source_id=sid))
    assert vault.resolve(lone_word) == lone
    assert vault.resolve(lone_word.upper() + " ") == lone
    french = designations.designation(lone, "fr")
    assert vault.resolve(french.split()[0] + " " + french.split()[1][:2]) == lone
    with pytest.raises(UnknownSource, match="several sources") as info:
        vault.resolve(word)
    message = str(info.value)
    assert designations.designation(one) in message and designations.designation(two) in message
    assert one[:8] in message and two[:8] in message
    with pytest.raises(UnknownSource, match="no source"):
        vault.resolve("zz")  # too short to be a prefix


def test_labels_add_a_short_id_only_where_a_designation_is_shared(vault: Vault) -> None:
    r = [journalist().decryption.recipient]
    target = designations.designation("0" * 32)
    twins = [f"{i:032x}" for i in range(200_000) if designations.designation(f"{i:032x}") == target]
    other = build_source(r, [("x", [])])
    for sid in twins[:2]:
        store(vault, build_source(r, [("x", [])], source_id=sid))
    store(vault, other)
    labels = {s.id: s.label() for s in vault.sources()}
    assert labels[other.id] == designations.designation(other.id)
    # These ids share 27 characters: the label takes as many as it needs.
    short = designations.short_ids(twins[:2])
    assert short[twins[0]] != short[twins[1]]
    assert {labels[t] for t in twins[:2]} == {f"{target} ({short[t]})" for t in twins[:2]}
    assert vault.label(twins[0]) == labels[twins[0]]


def test_delete_submission_keeps_counts_and_size_true(vault: Vault) -> None:
    r = [journalist().decryption.recipient]
    built = build_source(
        r, [("a", [("a.bin", b"a" * 3000, "")]), ("b", [("b.bin", b"b" * 9000, "")])]
    )
    store(vault, built)
    [first, second] = built.detail.submissions
    vault.delete_submission(second.id)
    [record] = vault.sources()
    assert record.info.submissions == 1
    assert record.info.size == sum(o.size for o in first.objects)
    assert record.objects == len(first.objects)


def test_reply_keys_are_pinned_and_an_account_deletion_is_kept(vault: Vault) -> None:
    built = build_source([journalist().decryption.recipient], [("x", [])])
    store(vault, built)
    info = built.detail.source
    first = info.reply_key
    assert not vault.source(built.id).reply_key_changed
    other = envelope.X25519Identity.generate().recipient.to_text()
    vault.store_summary(replace(info, reply_key=other))
    record = vault.source(built.id)
    assert record.reply_key_changed and record.pinned_reply_key == first
    vault.store_summary(replace(info, reply_key=None, account_deleted=True))
    record = vault.source(built.id)
    assert record.account_deleted and not record.reply_key_changed
    assert record.pinned_reply_key == first
    vault.store_summary(replace(info, account_deleted=False))  # the server cannot undo it
    assert vault.source(built.id).account_deleted


def old_index(home: Path, schema: str, *statements: str) -> None:
    """A vault index as an earlier release left it: ``schema``, then ``statements``."""
    root = home / "vault"
    root.mkdir(parents=True)
    old = sqlite3.connect(root / "index.sqlite3")
    old.executescript(schema)
    for statement in statements:
        old.execute(statement)
    old.commit()
    old.close()


def test_an_index_from_before_pinning_is_migrated(tmp_path: Path) -> None:
    old_index(
        tmp_path / "home",
        V0_SCHEMA,
        "INSERT INTO sources VALUES ('s1', 'KEY', '2026-11-20', 1, 10, 0, 0, '[]', NULL, 0, 0, 1)",
        "INSERT INTO submissions VALUES ('u1', 's1', '2026-11-20', 0)",
    )
    vault = Vault.open(tmp_path / "home")
    record = vault.source("s1")
    assert record.pinned_reply_key == "KEY" and record.info.reply_key == "KEY"
    assert not record.account_deleted
    assert [s.id for s in vault.submissions("s1")] == ["u1"]
    vault.delete_source("s1")  # foreign keys still cascade after the rebuild
    assert vault.submissions("s1") == []
    Vault.open(tmp_path / "home")  # opening again is a no-op


V0_SCHEMA = """
CREATE TABLE sources (
    id TEXT PRIMARY KEY, reply_key TEXT NOT NULL, last_activity TEXT NOT NULL,
    submissions INTEGER NOT NULL, size INTEGER NOT NULL, seen INTEGER NOT NULL,
    starred INTEGER NOT NULL, tags TEXT NOT NULL, assignee TEXT, notes INTEGER NOT NULL,
    replies INTEGER NOT NULL, detailed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE submissions (
    id TEXT PRIMARY KEY, source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    received_on TEXT NOT NULL, position INTEGER NOT NULL
);
CREATE TABLE objects (
    id TEXT PRIMARY KEY, source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    submission_id TEXT REFERENCES submissions(id) ON DELETE CASCADE, item_id TEXT,
    kind TEXT NOT NULL, size INTEGER NOT NULL, day TEXT, journalist TEXT,
    position INTEGER NOT NULL, present INTEGER NOT NULL DEFAULT 0
);
"""


def test_an_index_from_before_channel_days_is_migrated(tmp_path: Path) -> None:
    """Index version 1 (before an official channel's days): the column is added,
    old sources read with no days, and new days are kept and read back."""
    old_index(
        tmp_path / "home",
        V0_SCHEMA.replace(
            "replies INTEGER NOT NULL, detailed INTEGER NOT NULL DEFAULT 0",
            "replies INTEGER NOT NULL, detailed INTEGER NOT NULL DEFAULT 0,"
            " account_deleted INTEGER NOT NULL DEFAULT 0, pinned_reply_key TEXT",
        ).replace("reply_key TEXT NOT NULL", "reply_key TEXT"),
        "INSERT INTO sources VALUES"
        " ('s1', 'KEY', '2026-11-20', 1, 10, 0, 0, '[]', NULL, 0, 0, 1, 0, 'KEY')",
        "PRAGMA user_version = 1",
    )
    vault = Vault.open(tmp_path / "home")
    record = vault.source("s1")
    assert record.info.channel == ChannelDays() and record.pinned_reply_key == "KEY"
    days = ChannelDays("2026-11-20", "2026-11-22", None, None, "2027-02-22", 6, "2031-11-19")
    vault.store_summary(replace(record.info, channel=days))
    assert vault.source("s1").info.channel == days
    Vault.open(tmp_path / "home")  # opening again is a no-op
