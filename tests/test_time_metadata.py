"""The server is not a diary of when sources came (issue 11, item 1).

Against a real server process: a no-JavaScript submission, a login, a tus
upload and commit, the journalist API reading objects and writing a note and
a reply, then an admin backup and restore. After each step, everything a
seizure of the data directory would show that the project controls must say
the day and nothing finer:

* every file and directory's modification and access time is 00:00:00 UTC
  (the walk itself lists directories with ``O_NOATIME``, so it cannot disturb
  what it measures);
* the database holds no value finer than a day in any column of any table, and
  its schema has no time default or trigger;
* a backup's file time and the time recorded for each member in its archive.

What user space cannot set (ctime, birth time) is docs/THREAT_MODEL.md's.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sqlite3
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import envelope
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.web.journalist_api.auth import signed_message
from tests.server_process import ROOT, SERVER_CMD, Instance, Server, SourceClient, run_server
from tests.test_uploads_tus import Browser, manifest

# Real processes end to end: CI runs it, scripts/test.sh --fast does not (under two minutes).
pytestmark = pytest.mark.slow

DAY = 86400
PDF = b"%PDF-1.4\n" + os.urandom(100_000) + b"\n%%EOF\n"


def admin(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def _list(path: Path) -> list[str]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NOATIME)
    try:
        return sorted(os.listdir(fd))
    finally:
        os.close(fd)


def walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Each path under ``root`` (itself first) with its lstat, taken before it is listed."""
    st = root.lstat()
    yield root, st
    if root.is_dir() and not root.is_symlink():
        for name in _list(root):
            yield from walk(root / name)


def fine_times(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root.parent)}: mtime {st.st_mtime_ns} atime {st.st_atime_ns}"
        for path, st in walk(root)
        if st.st_mtime_ns % (DAY * 10**9) or st.st_atime_ns % (DAY * 10**9)
    ]


def assert_days_only(root: Path, after: str) -> None:
    seen = [p for p, _ in walk(root)]
    assert len(seen) > 3, seen
    assert fine_times(root) == [], f"after {after}"


# A day is YYYY-MM-DD; anything with a time of day, or an integer count of
# seconds, minutes or hours since the epoch in a time-like column, is finer.
DAY_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
TIME_TEXT = re.compile(r"\d{1,2}:\d{2}|\d{4}-\d{2}-\d{2}[T ]\d")
TIME_COLUMN = re.compile(r"time|minute|second|hour|_at$|stamp|active|expir|when|last|_on$|date")
# Whole days added to a stored day, within a bound: nothing finer than the day.
# The retention's random expiry shift (EXPIRY_SHIFT_DAYS, server/domain/source_lifecycle.py).
DAY_SHIFTS = {("sources", "expiry_shift"): 7}
TIME_SQL = re.compile(
    r"current_(timestamp|time|date)|datetime\(|strftime\(|julianday\(|unixepoch\(|'now'", re.I
)


def finer_than_a_day(db_path: Path) -> list[str]:
    """Every value, default or trigger in the database that says more than the day."""
    problems = []
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        for kind, name, sql in conn.execute("SELECT type, name, sql FROM sqlite_master"):
            if kind == "trigger":
                problems.append(f"trigger {name}")
            if sql and TIME_SQL.search(sql):
                problems.append(f"{kind} {name} has a time default or expression: {sql}")
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_")
        ]
        for table in tables:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            for row in conn.execute(f"SELECT * FROM {table}"):
                for column, value in zip(columns, row, strict=True):
                    where = f"{table}.{column} = {value!r:.60}"
                    if isinstance(value, str):
                        not_a_day = TIME_COLUMN.search(column) and not DAY_TEXT.fullmatch(value)
                        if TIME_TEXT.search(value) or not_a_day:
                            problems.append(where)
                    elif (table, column) in DAY_SHIFTS:
                        if not (isinstance(value, int) and abs(value) <= DAY_SHIFTS[table, column]):
                            problems.append(where)
                    elif isinstance(value, int | float) and TIME_COLUMN.search(column):
                        problems.append(where)  # a count of time units: days are text
    finally:
        conn.close()
    return problems


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def journalist_api(server: Server, me: JournalistIdentity) -> httpx.Client:
    assert server.api_url is not None
    challenge = httpx.post(f"{server.api_url}/auth/challenge").json()["challenge"]
    raw = base64.urlsafe_b64decode(challenge + "=" * (-len(challenge) % 4))
    host = server.api_url.split("/")[2]
    sig = me.signing.sign(signed_message(raw, host)).signature
    body = {"journalist": me.name, "challenge": challenge, "signature": b64(sig)}
    token = httpx.post(f"{server.api_url}/auth/token", json=body).json()["token"]
    return httpx.Client(base_url=server.api_url, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> tuple[Instance, JournalistIdentity]:
    base = tmp_path_factory.mktemp("times")
    alice = JournalistIdentity.generate("alice")
    write_new_identity(alice, base / "keys", None)
    data = base / "data"
    done = admin("init", "--data-dir", data, "--journalist", base / "keys" / "alice.pub")
    assert done.returncode == 0, done.stderr
    instance = Instance(data, [], base / "server-tmp", base / "server.log")
    instance.tmp_dir.mkdir()
    return instance, alice


def test_every_file_time_of_the_data_directory_is_a_day(
    instance: tuple[Instance, JournalistIdentity],
) -> None:
    inst, alice = instance
    data = inst.data_dir
    assert_days_only(data, "init")
    recipients = [alice.public.recipient]
    with run_server(inst, journalist_api=True) as server:
        assert_days_only(data, "start-up")
        # A source without JavaScript: a message and a file, then a login.
        with SourceClient(server.base_url) as source:
            codename = source.first_submission(
                "Le rapport est joint.", [("rapport.pdf", PDF, "application/pdf")]
            )
        assert_days_only(data, "a no-JS submission")
        with SourceClient(server.base_url) as source:
            assert source.login(codename).status_code == 303
        assert_days_only(data, "a login")
        # A source with JavaScript: tus uploads, one left in progress, and a commit.
        with Browser(server.base_url) as browser:
            message = b"Typed on the page."
            message_id = browser.upload(envelope.encrypt_bytes(message, recipients))
            manifest_id = browser.upload(
                envelope.encrypt_bytes(manifest((message_id, len(message)), []), recipients)
            )
            pending = envelope.encrypt_bytes(os.urandom(300_000), recipients)
            in_progress = browser.create(len(pending))
            assert browser.patch(in_progress, 0, pending[:100_000]).status_code == 204
            assert (data / "uploads" / f"{in_progress}.part").stat().st_size == 100_000
            assert_days_only(data, "tus uploads, one in progress")
            assert browser.commit(manifest_id, message_id).status_code == 303
            assert_days_only(data, "a commit")
            assert browser.delete(in_progress).status_code == 204
            assert_days_only(data, "an upload deleted")
        # A journalist reads every object, writes a note and a reply.
        with journalist_api(server, alice) as api:
            sources = api.get("/sources").json()
            assert len(sources) == 2
            for src in sources:
                detail = api.get(f"/sources/{src['id']}").json()
                for sub in detail["items"]["submissions"]:
                    for obj in sub["objects"]:
                        got = api.get(f"/objects/{obj['id']}")
                        assert got.status_code == 200
                        envelope.decrypt_bytes(got.content, alice.identities())
            assert_days_only(data, "the journalist read every object")
            first = next(s for s in sources if s["submissions"] == 1)
            note = envelope.encrypt_bytes(b"Checked.", recipients)
            assert api.post(f"/sources/{first['id']}/notes", content=note).status_code == 201
            reply_to = [envelope.X25519Recipient.from_text(s["reply_key"]) for s in sources]
            reply = envelope.encrypt_bytes(b"Merci.", [*reply_to, *recipients])
            for src in sources:
                assert api.post(f"/sources/{src['id']}/replies", content=reply).status_code == 201
        assert_days_only(data, "a note and replies")
        # The source reads the reply (the server decrypts it in memory).
        with SourceClient(server.base_url) as source:
            inbox = source.login(codename)
            page = source.get(inbox.headers["location"])
            assert "Merci." in page.text
        assert_days_only(data, "a source read a reply")
    assert_days_only(data, "the server stopped")
    problems = finer_than_a_day(data / "lanterne.sqlite3")
    assert problems == []


def test_a_backup_and_its_restore_say_the_day_only(
    instance: tuple[Instance, JournalistIdentity], tmp_path: Path
) -> None:
    inst, _alice = instance
    admin_key = JournalistIdentity.generate("admin")
    write_new_identity(admin_key, tmp_path / "keys", None)
    out = tmp_path / "lanterne.backup"
    with run_server(inst):
        done = admin(
            "backup", "--data-dir", inst.data_dir, "--to", out,
            "--signing-key", tmp_path / "keys" / "admin.identity",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert_days_only(inst.data_dir, "a backup while the server runs")
    st = out.stat()
    assert st.st_mtime % DAY == 0 and st.st_atime % DAY == 0, (st.st_mtime, st.st_atime)
    # Each member of the archive records a time too.
    raw = out.read_bytes()
    block_size = int.from_bytes(raw[-4:], "big")  # the signature trailer (server/ops/backup.py)
    raw = raw[: -(block_size + 32)]
    plain = envelope.decrypt_bytes(raw, admin_key.identities())
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = tar.getmembers()
    assert len(members) > 5
    assert [m.name for m in members if m.mtime % DAY or m.pax_headers] == []
    restored = tmp_path / "restored"
    done = admin(
        "restore", "--data-dir", restored, "--from", out,
        "--identity", tmp_path / "keys" / "admin.identity",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert_days_only(restored, "a restore")
    assert json.loads((restored / "secrets.json").read_bytes())


def test_the_database_scan_sees_what_is_finer_than_a_day(tmp_path: Path) -> None:
    """The scan above can fail: minutes in a column, a time default, a timestamp in text."""
    from server.store.db import Database

    db = Database(tmp_path / "lanterne.sqlite3")
    db.create()
    assert finer_than_a_day(db.path) == []
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO uploads(id, owner_hash, length, received, active_on)"
            " VALUES ('u', x'00', 1, 0, 29600000)"  # minutes, where a day belongs
        )
        conn.execute("INSERT INTO meta(key, value) VALUES ('seen', '2026-12-04 13:37')")
        conn.execute("CREATE TABLE log (at TEXT DEFAULT CURRENT_TIMESTAMP)")
    problems = finer_than_a_day(db.path)
    assert len(problems) == 3, problems


def test_check_reports_fine_times_and_start_up_brings_them_to_the_day(tmp_path: Path) -> None:
    """An instance written by a release that kept precise times (or a crash between
    a write and its stamp): `check` says so, and the next start of the service heals it."""
    from server.ops.health_check import CheckConfig, run_checks

    alice = JournalistIdentity.generate("alice")
    write_new_identity(alice, tmp_path / "keys", None)
    data = tmp_path / "data"
    done = admin("init", "--data-dir", data, "--journalist", tmp_path / "keys" / "alice.pub")
    assert done.returncode == 0, done.stderr
    cfg = CheckConfig(data_dir=data, proc_swaps=tmp_path / "none", sys_root=tmp_path / "sys")

    def file_times() -> list[str]:
        return [f.line() for f in run_checks(cfg) if f.item == "file times"]

    assert file_times() == [f"ok    file times: every time under {data} is a day (00:00 UTC)"]
    precise = 1_790_000_000.123456  # 2026-09-21 14:13:20.12 UTC, before this test ran
    os.utime(data / "secrets.json", (precise, precise))
    os.utime(data / "objects", (precise, precise))
    [line] = file_times()
    assert line.startswith(f"FAIL  file times: 2 paths under {data} carry a time finer than")
    inst = Instance(data, [], tmp_path / "server-tmp", tmp_path / "server.log")
    inst.tmp_dir.mkdir()
    with run_server(inst):
        pass
    assert file_times()[0].startswith("ok    file times")
    # The modification time went down to its own day, not to today's (the start-up
    # listed objects/, so its access time is today's midnight).
    st = (data / "objects").stat()
    assert st.st_mtime == precise - precise % DAY and st.st_atime % DAY == 0


def test_check_advises_noatime_and_an_encrypted_data_volume(tmp_path: Path) -> None:
    from server.ops.health_check import CheckConfig, run_checks

    data = tmp_path / "data"
    data.mkdir()
    dev = data.stat().st_dev
    block = tmp_path / "sys" / "dev" / "block" / f"{os.major(dev)}:{os.minor(dev)}"
    mountinfo = tmp_path / "mountinfo"
    cfg = CheckConfig(
        data_dir=data, proc_swaps=tmp_path / "none", sys_root=tmp_path / "sys",
        proc_mountinfo=mountinfo,
    )  # fmt: skip

    def volume() -> str:
        [finding] = [f for f in run_checks(cfg) if f.item == "data volume"]
        assert finding.ok  # advice, never a failure
        return finding.line()

    mountinfo.write_text(
        "22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        f"45 22 254:0 {data} {data} rw,noatime - ext4 /dev/vda rw\n"
    )
    line = volume()
    assert line.startswith("warn  data volume: not on a dm-crypt device") and "noatime" not in line
    mountinfo.write_text("22 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n")
    assert volume().startswith("warn  data volume: not mounted noatime")
    (block / "dm").mkdir(parents=True)
    (block / "dm" / "uuid").write_text("CRYPT-LUKS2-0123456789abcdef-data\n")
    line = volume()
    assert "not mounted noatime" in line and "dm-crypt" not in line
    mountinfo.write_text(f"45 22 254:0 / {tmp_path} rw,noatime - ext4 /dev/mapper/data rw\n")
    assert volume() == f"ok    data volume: {data} is on dm-crypt, mounted noatime"


def test_a_stamp_that_fails_is_logged_without_the_files_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file the server cannot stamp (here: immutable, refused even to root) is
    reported by its directory only: object and upload ids travel in requests."""
    from server.store import file_times

    upload_id = "0123456789abcdef0123456789abcdef"
    path = tmp_path / f"{upload_id}.part"
    path.write_bytes(b"x")
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        with caplog.at_level("WARNING", logger="lanterne"):
            file_times.stamp(path)
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    assert path.stat().st_mtime % DAY != 0  # really not stamped
    [record] = caplog.records
    assert str(tmp_path) in record.getMessage() and upload_id not in record.getMessage()
