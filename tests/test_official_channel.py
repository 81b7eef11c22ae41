"""An official channel's year with a fake clock (issue 16, "Done when"): real
uvicorn servers (the source interface and the journalist API, both built with
the same ``FakeClock``), the real `lanterne` script, and the retention sweep
`lanterne-server expire` runs, called once per day of the walk. The instance
is a newsroom's; its "legal" desk is declared an official channel
(`lanterne-server channel desk`), and the reports are sent to that desk.

The acknowledgement is flagged from the day after its due day until `lanterne
ack`; the feedback is flagged at three months until `lanterne reply
--feedback`; a source with no activity is deleted on its drawn expiry day,
rows and ciphertext, and not a day before. ``DAILY_STEPS`` is what runs once a
day: the retention sweep, and the daily digest (`lanterne-server digest`) to a
real SMTP relay on 127.0.0.1, one mail every day, with and without news.
"""

from __future__ import annotations

import contextlib
import email
import email.utils
import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.domain import digest as digest_rules
from server.domain.channel import DEFAULT_ACK_TEMPLATE, EXPIRY_SHIFT_DAYS, add_days, add_months
from server.domain.clock import SystemClock
from server.domain.source_lifecycle import SourceLifecycle
from server.ops.channel_admin import expire
from server.ops.digest import send_due
from server.settings import Settings, SmtpConfig
from server.store.db import Database
from server.store.objects import ObjectStore
from server.store.protocols import ObjectRow, SourceRow, new_id
from server.store.sources import SqliteSourceStore
from server.web.app import create_app
from server.web.journalist_api import create_journalist_app
from tests.cli_helpers import run
from tests.clocks import FakeClock
from tests.server_process import ROOT, SERVER_CMD, SourceClient, free_port, serve_in_thread
from tests.smtp_relay import Relay, make_ca, smtp_relay

pytestmark = pytest.mark.slow  # about a minute of CLI runs against real servers

DAY = 86_400
RETENTION_DAYS = 300  # short enough to end within the walked year
CONFIG = f"""
[channel]
official = true
retention_days = {RETENTION_DAYS}
"""
# The walk's instance is a newsroom (no [channel]) whose "legal" desk is an
# official channel (`lanterne-server channel desk`); "news" stays a newsroom's.
DESK = "legal"


@dataclass
class Channel:
    """A running official channel and one journalist's `lanterne` home."""

    clock: FakeClock
    settings: Settings
    source_url: str
    api_url: str
    home: Path
    days_run: list[str] = field(default_factory=list)
    relay: Relay | None = None  # the daily digest's SMTP relay (tests/smtp_relay.py)
    smtp: SmtpConfig | None = None

    @property
    def today(self) -> str:
        return self.clock.today()


def retention_step(channel: Channel) -> None:
    """What `lanterne-server expire` (deploy/lanterne-expire.timer) does each day."""
    expire(channel.settings, channel.today)


def digest_step(channel: Channel) -> None:
    """What `lanterne-server digest` (deploy/lanterne-digest.timer) does each day."""
    assert channel.smtp is not None
    send_due(Database(channel.settings.database_path), channel.smtp, channel.today, {})


# What runs once a day on a deployed channel, in order; the walk runs every step
# on every day.
DAILY_STEPS: list[Callable[[Channel], None]] = [retention_step, digest_step]


def next_day(channel: Channel, days: int = 1) -> None:
    """Move the clock day by day, running every daily step on each new day."""
    for _ in range(days):
        channel.clock.advance(DAY)
        for step in DAILY_STEPS:
            step(channel)
        channel.days_run.append(channel.today)


@contextlib.contextmanager
def official_channel(base: Path) -> Iterator[Channel]:
    keys = base / "keys"
    write_new_identity(JournalistIdentity.generate("alice"), keys, None)
    data = base / "data"
    subprocess.run(
        [*SERVER_CMD, "init", "--data-dir", str(data), "--journalist", str(keys / "alice.pub")],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    from tests.test_desks_admin import TEXTS

    for desk in (DESK, "news"):
        admin("desks", "add", "--data-dir", data, *TEXTS, "--journalist", "alice", desk)
    admin(
        "channel",
        "desk",
        "--data-dir",
        data,
        DESK,
        "--official",
        "--retention-days",
        RETENTION_DAYS,
    )
    settings = Settings.load(data)
    assert not settings.channel.official  # the desk is; the instance is not
    clock = FakeClock()
    api_port = free_port()
    source_app = create_app(settings, clock=clock, wall_clock=clock)
    api_app = create_journalist_app(settings, clock=clock, listen=f"127.0.0.1:{api_port}")
    # alice asked for the daily digest, sent through a real relay on 127.0.0.1.
    assert Database(settings.database_path).set_digest_address("alice", "alice@example.org")
    ca = make_ca(base / "relay-ca", "relay")
    with (
        serve_in_thread(source_app) as source_url,
        serve_in_thread(api_app, api_port) as api_url,
        smtp_relay(ca) as relay,
    ):
        home = base / "alice"
        smtp = SmtpConfig("127.0.0.1", "lanterne@example.org", relay.port, ca_file=ca.ca_pem)
        channel = Channel(clock, settings, source_url, api_url, home, relay=relay, smtp=smtp)
        lanterne(channel, "config", "--server", api_url, "--identity", keys / "alice.identity")
        yield channel


def admin(*args: object) -> str:
    done = subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def lanterne(channel: Channel, *args: object, columns: int = 160) -> str:
    done = run(*args, env={"LANTERNE_HOME": str(channel.home), "COLUMNS": str(columns)})
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    assert b"Traceback" not in done.stderr
    return done.stdout.decode()


def listed(channel: Channel, *options: str) -> list[dict[str, Any]]:
    lanterne(channel, "pull")
    rows: list[dict[str, Any]] = json.loads(lanterne(channel, "list", "--json", *options))
    return rows


def row_of(channel: Channel, sid: str) -> dict[str, Any]:
    [row] = [r for r in listed(channel) if r["id"] == sid]
    return row


def test_an_official_channel_year(tmp_path: Path) -> None:
    with official_channel(tmp_path) as channel:
        day0 = channel.today
        with SourceClient(channel.source_url) as source:
            codename = source.first_submission("Les marchés ont été attribués d'avance.", desk=DESK)
        next_day(channel)
        with SourceClient(channel.source_url) as other:
            other.first_submission("Un second signalement.", desk=DESK)

        # Received: the acknowledgement is due 7 days after receipt, the feedback 3
        # months after the end of those 7 days (none sent yet); nothing is flagged.
        rows = listed(channel)
        [a, b] = sorted(rows, key=lambda r: r["first_received_on"])
        sid, other_sid = a["id"], b["id"]
        assert a["desk"] == b["desk"] == DESK
        assert a["first_received_on"] == day0
        assert a["acknowledge_by"] == add_days(day0, 7)
        assert a["feedback_by"] == add_months(add_days(day0, 7), 3)
        assert not a["acknowledgement_overdue"] and not a["feedback_overdue"]
        assert a["acknowledged_on"] is None and a["feedback_on"] is None
        # Most recent first by default; --due puts the nearest deadline first.
        assert [r["id"] for r in rows] == [other_sid, sid]
        assert [r["id"] for r in listed(channel, "--due")] == [sid, other_sid]
        assert "OVERDUE" not in lanterne(channel, "list")

        # The due day itself is still in time; the day after, it is flagged.
        next_day(channel, 6)
        assert channel.today == a["acknowledge_by"]
        assert not row_of(channel, sid)["acknowledgement_overdue"]
        next_day(channel)
        assert row_of(channel, sid)["acknowledgement_overdue"]
        table = lanterne(channel, "list")
        assert "OVERDUE" in table and "overdue" in table
        # 100 columns: one "due" column; 80: a line per source under the table.
        assert "A " + a["acknowledge_by"] in lanterne(channel, "list", columns=100)
        narrow = lanterne(channel, "list", columns=80)
        assert f"acknowledge by {a['acknowledge_by']} OVERDUE" in narrow

        # `lanterne ack`: the channel's text reaches the source, its day is recorded,
        # and the feedback is now due 3 months after it.
        acked = channel.today
        lanterne(channel, "ack", sid)
        a = row_of(channel, sid)
        assert a["acknowledged_on"] == acked and a["acknowledge_by"] is None
        assert not a["acknowledgement_overdue"]
        assert a["feedback_by"] == add_months(acked, 3)
        assert row_of(channel, other_sid)["acknowledge_by"] == channel.today  # still due
        with SourceClient(channel.source_url) as source:
            assert source.login(codename).status_code == 303
            inbox = source.get("/en/inbox").text
        assert DEFAULT_ACK_TEMPLATE in inbox
        assert f"about {RETENTION_DAYS} days after your last login" in inbox
        last_activity = channel.today  # the login

        # Three months on: flagged the day after the feedback's due day.
        feedback_by = a["feedback_by"]
        while channel.today < feedback_by:
            next_day(channel)
        assert not row_of(channel, sid)["feedback_overdue"]
        next_day(channel)
        a = row_of(channel, sid)
        assert a["feedback_overdue"] and "OVERDUE" in lanterne(channel, "list")
        lanterne(channel, "reply", sid, "--feedback", "Une enquête interne est ouverte.")
        a = row_of(channel, sid)
        assert a["feedback_on"] == channel.today and a["feedback_by"] is None
        assert not a["feedback_overdue"]

        # The other source is kept longer by a journalist.
        lanterne(channel, "keep", other_sid, "--days", "365")
        b = row_of(channel, other_sid)
        kept = add_days(channel.today, 365)
        assert (
            add_days(kept, -EXPIRY_SHIFT_DAYS)
            <= b["expires_on"]
            <= add_days(kept, EXPIRY_SHIFT_DAYS)
        )

        # Retention: the expiry is the last activity plus the period, shifted by the
        # source's drawn days; the source is there the day before and gone on it.
        expires_on = a["expires_on"]
        rule = add_days(last_activity, RETENTION_DAYS)
        assert add_days(rule, -EXPIRY_SHIFT_DAYS) <= expires_on <= add_days(rule, EXPIRY_SHIFT_DAYS)
        objects = object_ids(channel, sid)
        assert objects and all((channel.settings.objects_dir / o).exists() for o in objects)
        while channel.today < add_days(expires_on, -1):
            next_day(channel)
        assert sid in {r["id"] for r in listed(channel)}
        next_day(channel)
        assert channel.today == expires_on
        pulled = lanterne(channel, "pull")
        assert "removed from the vault" in pulled
        assert {r["id"] for r in listed(channel)} == {other_sid}
        assert not any((channel.settings.objects_dir / o).exists() for o in objects)
        with sqlite3.connect(channel.settings.database_path) as db:
            assert db.execute("SELECT count(*) FROM sources WHERE id = ?", (sid,)).fetchone() == (
                0,
            )
        with SourceClient(channel.source_url) as source:
            assert source.login(codename).status_code != 303  # the codename opens nothing
        # Every day of the walk ran the daily steps, within a year.
        assert len(channel.days_run) == len(set(channel.days_run)) <= 366
        # The digest: one mail a day, every day, all of one size, dated the day
        # only; news on the two days after the two submissions, never after.
        assert channel.relay is not None
        mails = channel.relay.mails
        assert len(mails) == len(channel.days_run)
        assert len({len(m.content) for m in mails}) == 1
        for mail, day in zip(mails, channel.days_run, strict=True):
            assert mail.tls and mail.rcpt_tos == ["alice@example.org"]
            date = email.message_from_bytes(mail.content)["Date"]
            assert email.utils.parsedate_to_datetime(date).date().isoformat() == day
            assert date.endswith("00:00:00 +0000")
        subjects = [email.message_from_bytes(m.content)["Subject"] for m in mails]
        assert subjects[:2] == [digest_rules.SUBJECTS[True]] * 2
        assert set(subjects[2:]) == {digest_rules.SUBJECTS[False]}


def object_ids(channel: Channel, sid: str) -> list[str]:
    """The object ids of a source's submissions and replies, as the API lists them."""
    vault = channel.home / "vault" / "index.sqlite3"
    with contextlib.closing(sqlite3.connect(vault)) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM objects WHERE source_id = ?", (sid,))]


def test_the_expire_command_deletes_what_is_due_and_nothing_else(tmp_path: Path) -> None:
    """`lanterne-server expire` (the timer's command) on a real data directory: a
    source idle since 2020 goes, rows and object file; today's stays. With
    retention off, nothing goes."""
    keys = tmp_path / "keys"
    write_new_identity(JournalistIdentity.generate("alice"), keys, None)
    data = tmp_path / "data"
    subprocess.run(
        [*SERVER_CMD, "init", "--data-dir", str(data), "--journalist", str(keys / "alice.pub")],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    settings = Settings.load(data)
    db = Database(settings.database_path)
    objects = ObjectStore(settings.objects_dir)
    lifecycle = SourceLifecycle(SqliteSourceStore(db), objects)
    kept: dict[str, str] = {}
    for day in ("2020-01-01", SystemClock().today()):
        source = SourceRow(new_id(), new_id().encode(), new_id().encode())
        object_id = objects.write_bytes(b"LANTERNE ciphertext")
        lifecycle.record_submission(source.id, source, day, [ObjectRow(object_id, "file", 19)])
        kept[source.id] = object_id
    old, new = kept

    def expire_command() -> str:
        done = subprocess.run(
            [*SERVER_CMD, "expire", "--data-dir", str(data)],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
        return done.stdout.decode()

    assert "retention is off" in expire_command()  # a newsroom's default
    assert {f.id for f in SqliteSourceStore(db).retention_facts()} == {old, new}
    (data / "config.toml").write_text(CONFIG, encoding="utf-8")
    assert "1 source(s) deleted" in expire_command()
    assert {f.id for f in SqliteSourceStore(db).retention_facts()} == {new}
    assert not (settings.objects_dir / kept[old]).exists()
    assert (settings.objects_dir / kept[new]).exists()
    assert "0 source(s) deleted" in expire_command()


def test_the_channel_admin_commands(tmp_path: Path) -> None:
    """`lanterne-server channel desk` and `channel ack-template`, as real processes:
    a desk made official, refused values in one line, a desk's own text."""
    from tests.server_process import init_instance
    from tests.test_desks_admin import TEXTS, ok, refused

    instance = init_instance(tmp_path, names=("alice",))
    d = ("--data-dir", instance.data_dir)
    ok("desks", "add", *d, *TEXTS, "--journalist", "alice", "legal")
    shown = ok("channel", "desk", *d, "legal")
    assert "official no" in shown and "retention off" in shown
    shown = ok("channel", "desk", *d, "legal", "--official")
    # Made official without a period of its own: the official default.
    assert "official yes" in shown and "retention 1825 days" in shown
    assert "retention 30 days" in ok("channel", "desk", *d, "legal", "--retention-days", "30")
    assert "acknowledge_days" in refused("channel", "desk", *d, "legal", "--acknowledge-days", "0")
    assert "no desk named 'hr'" in refused("channel", "desk", *d, "hr", "--official")
    assert "official no" in ok("channel", "desk", *d, "legal", "--reset")
    # Acknowledgement texts: the built-in one, the instance's, a desk's own.
    assert DEFAULT_ACK_TEMPLATE in ok("channel", "ack-template", *d, "--lang", "en")
    text = tmp_path / "ack.txt"
    text.write_text("Accusé de réception du bureau juridique.\n", encoding="utf-8")
    ok("channel", "ack-template", *d, "--lang", "fr", "--desk", "legal", text)
    assert "Accusé de réception du bureau juridique" in ok(
        "channel", "ack-template", *d, "--lang", "fr", "--desk", "legal"
    )
    assert "Accusé de réception du bureau juridique" not in ok(
        "channel", "ack-template", *d, "--lang", "fr"
    )
    text.write_text("  \n", encoding="utf-8")
    assert "empty" in refused("channel", "ack-template", *d, "--lang", "fr", text)
    assert "--lang" in refused("channel", "ack-template", *d, "--lang", "xx", text)
