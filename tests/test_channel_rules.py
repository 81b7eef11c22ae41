"""An official channel's rules (server/domain/channel.py): deadlines in days,
calendar months, the retention day and its drawn shift, the sweep on a real
SQLite database, and config.toml's [channel] table."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.domain.channel import (
    DEFAULT_ACK_TEMPLATE,
    EXPIRY_SHIFT_DAYS,
    Channels,
    Deadlines,
    Retention,
    ack_template,
    add_days,
    add_months,
    deadlines,
    expiry_day,
)
from server.domain.newsroom import Invalid, Newsroom
from server.domain.source_lifecycle import SourceLifecycle, draw_shift
from server.ops.channel_admin import (
    DeskUnknown,
    reset_desk_channel,
    set_ack_template,
    set_desk_channel,
)
from server.settings import OFFICIAL_RETENTION_DAYS, ChannelSettings, ConfigError, Settings
from server.store.db import Database
from server.store.newsroom import SqliteNewsroomStore
from server.store.objects import ObjectStore
from server.store.protocols import DeskRow, ObjectRow, SourceRow, SourceSummary, new_id
from server.store.sources import SqliteSourceStore

OFFICIAL = ChannelSettings(official=True, retention_days=300)


def summary(**fields: object) -> SourceSummary:
    base: dict[str, object] = {
        "id": "s",
        "reply_key": b"k",
        "last_activity": "2027-01-15",
        "account_deleted": False,
        "created_on": "2027-01-15",
    }
    return SourceSummary(**{**base, **fields})  # type: ignore[arg-type]


def test_months_are_calendar_months_never_longer_than_the_period() -> None:
    assert add_months("2027-01-22", 3) == "2027-04-22"
    assert add_months("2027-01-31", 1) == "2027-02-28"
    assert add_months("2028-01-31", 1) == "2028-02-29"
    assert add_months("2027-11-30", 3) == "2028-02-29"
    assert add_months("2027-10-15", 6) == "2028-04-15"
    assert add_days("2027-12-28", 7) == "2028-01-04"


def test_deadlines_follow_the_directive() -> None:
    # Not an official channel: nothing is due.
    assert deadlines(summary(), ChannelSettings()) == Deadlines(None, None)
    due = deadlines(summary(), OFFICIAL)
    # 7 days after receipt; 3 months after the end of those 7 days (no acknowledgement).
    assert (due.acknowledge_by, due.feedback_by) == ("2027-01-22", "2027-04-22")
    # Acknowledged on day 3: nothing more to acknowledge, feedback 3 months after it.
    due = deadlines(summary(acknowledged_on="2027-01-18"), OFFICIAL)
    assert (due.acknowledge_by, due.feedback_by) == (None, "2027-04-18")
    # A late acknowledgement counts from its own day (the law's "from the acknowledgement").
    due = deadlines(summary(acknowledged_on="2027-02-01"), OFFICIAL)
    assert due.feedback_by == "2027-05-01"
    # Feedback given: nothing due. An account deleted: nothing can reach them.
    done = summary(acknowledged_on="2027-01-18", feedback_on="2027-03-01")
    assert deadlines(done, OFFICIAL) == Deadlines(None, None)
    assert deadlines(summary(account_deleted=True), OFFICIAL) == Deadlines(None, None)
    # An authority's justified case: the source's own period.
    due = deadlines(summary(acknowledged_on="2027-01-18", feedback_months=6), OFFICIAL)
    assert due.feedback_by == "2027-07-18"
    # Another acknowledgement period.
    assert (
        deadlines(summary(), ChannelSettings(official=True, acknowledge_days=5)).acknowledge_by
        == "2027-01-20"
    )


def test_the_expiry_day() -> None:
    assert expiry_day("2027-01-15", None, 3, 0) is None  # retention off
    assert expiry_day("2027-01-15", None, 0, 300) == "2027-11-11"
    assert expiry_day("2027-01-15", None, -7, 300) == "2027-11-04"
    assert expiry_day("2027-01-15", None, None, 300) == "2027-11-11"
    # Kept longer by a journalist: that day, shifted the same way; an earlier one changes nothing.
    assert expiry_day("2027-01-15", "2028-06-01", 2, 300) == "2028-06-03"
    assert expiry_day("2027-01-15", "2027-02-01", 2, 300) == "2027-11-13"


def test_the_shift_covers_both_weeks_and_nothing_else() -> None:
    drawn = {draw_shift() for _ in range(3000)}
    assert drawn == set(range(-EXPIRY_SHIFT_DAYS, EXPIRY_SHIFT_DAYS + 1))


@pytest.fixture
def rows(tmp_path: Path) -> tuple[SqliteSourceStore, ObjectStore]:
    db = Database(tmp_path / "lanterne.sqlite3")
    db.create()
    objects = ObjectStore(tmp_path / "objects")
    (tmp_path / "objects").mkdir()
    return SqliteSourceStore(db), objects


def new_source(sources: SqliteSourceStore, objects: ObjectStore, day: str) -> tuple[str, str]:
    source = SourceRow(new_id(), new_id().encode(), new_id().encode())
    object_id = objects.write_bytes(b"LANTERNE ciphertext")
    SourceLifecycle(sources, objects).record_submission(
        source.id, source, day, [ObjectRow(object_id, "file", 19)]
    )
    return source.id, object_id


def test_a_first_submission_draws_the_shift(rows: tuple[SqliteSourceStore, ObjectStore]) -> None:
    sources, objects = rows
    sid, _ = new_source(sources, objects, "2027-01-15")
    [facts] = sources.retention_facts()
    assert facts.id == sid and facts.expiry_shift is not None
    assert -EXPIRY_SHIFT_DAYS <= facts.expiry_shift <= EXPIRY_SHIFT_DAYS


def test_the_sweep_deletes_on_the_drawn_day_not_before(
    rows: tuple[SqliteSourceStore, ObjectStore],
) -> None:
    sources, objects = rows
    sid, object_id = new_source(sources, objects, "2027-01-15")
    kept, kept_object = new_source(sources, objects, "2027-01-15")
    sources.keep_until(kept, "2028-01-01")
    # A source from before the shift existed: the sweep draws one (here +4) first.
    with sources.db.connect() as conn:
        conn.execute("UPDATE sources SET expiry_shift = NULL WHERE id = ?", (sid,))
    lifecycle = SourceLifecycle(sources, objects)
    retention = Retention(sources, lifecycle, OFFICIAL, draw=lambda: 4)
    due = add_days(add_days("2027-01-15", 300), 4)
    assert retention.expire_due(add_days(due, -1)) == 0
    assert {f.id for f in sources.retention_facts()} == {sid, kept}
    assert retention.expire_due(due) == 1
    assert {f.id for f in sources.retention_facts()} == {kept}
    with pytest.raises(FileNotFoundError):
        objects.read_bytes(object_id)
    assert objects.read_bytes(kept_object)
    # Retention off: nothing goes, whatever the days.
    off = Retention(sources, lifecycle, ChannelSettings())
    assert off.expire_due("2099-01-01") == 0


def test_a_longer_feedback_period_only_where_the_channel_allows_it(
    rows: tuple[SqliteSourceStore, ObjectStore],
) -> None:
    sources, objects = rows
    sid, _ = new_source(sources, objects, "2027-01-15")
    lifecycle = SourceLifecycle(sources, objects)
    newsroom_rows = SqliteNewsroomStore(sources.db)
    plain = Newsroom(newsroom_rows, objects, lifecycle, OFFICIAL)
    with pytest.raises(Invalid):
        plain.set_extended_feedback(sid, True)
    authority = Newsroom(
        newsroom_rows,
        objects,
        lifecycle,
        ChannelSettings(official=True, feedback_months_extended=6),
    )
    authority.set_extended_feedback(sid, True)
    assert authority.source(sid).feedback_months == 6
    authority.set_extended_feedback(sid, False)
    assert authority.source(sid).feedback_months is None
    with pytest.raises(Invalid):
        authority.keep(sid, 0, "2027-01-15")


def config(tmp_path: Path, text: str) -> Settings:
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    return Settings.load(tmp_path)


def test_the_channel_table(tmp_path: Path) -> None:
    assert Settings.load(tmp_path).channel == ChannelSettings()  # a newsroom: off
    official = config(tmp_path, "[channel]\nofficial = true\n").channel
    assert official.official and official.retention_days == OFFICIAL_RETENTION_DAYS
    assert (official.acknowledge_days, official.feedback_months) == (7, 3)
    assert config(tmp_path, "[channel]\nofficial = true\nretention_days = 0\n").channel == (
        ChannelSettings(official=True)
    )
    authority = config(tmp_path, "[channel]\nofficial = true\nfeedback_months_extended = 6\n")
    assert authority.channel.feedback_months_extended == 6
    for bad in (
        "[channel]\nofficial = 1\n",
        "[channel]\nacknowledge_days = 0\n",
        "[channel]\nfeedback_months = 13\n",
        "[channel]\nretention_days = -1\n",
        "[channel]\nretention_days = true\n",
        "[channel]\nfeedback_months_extended = 3\n",  # not longer than the period
        "[channel]\nofficial = true\nunknown = 1\n",
        "channel = 3\n",
    ):
        with pytest.raises(ConfigError):
            config(tmp_path, bad)


def test_a_desk_is_its_own_channel(tmp_path: Path) -> None:
    """On a newsroom's instance (no [channel]), one desk is declared an official
    channel with its own retention (``lanterne-server channel desk``): its
    sources get deadlines, an expiry and the desk's acknowledgement text; the
    others get none; the sweep deletes by the desk's period."""
    db = Database(tmp_path / "lanterne.sqlite3")
    db.create()
    (tmp_path / "objects").mkdir()
    objects = ObjectStore(tmp_path / "objects")
    db.add_desk(DeskRow("legal", {"en": "Legal"}, {"en": "Reports under the law"}))
    db.add_desk(DeskRow("news", {"en": "News"}, {"en": "Tips"}))
    settings = Settings(data_dir=tmp_path)
    overrides = set_desk_channel(settings, db, "legal", {"official": True, "retention_days": 30})
    assert overrides == {"official": True, "retention_days": 30}
    for bad in ({"acknowledge_days": 0}, {"colour": "red"}):
        with pytest.raises(ConfigError):
            set_desk_channel(settings, db, "legal", bad)
    with pytest.raises(DeskUnknown):
        set_desk_channel(settings, db, "nowhere", {"official": True})
    sources = SqliteSourceStore(db)
    lifecycle = SourceLifecycle(sources, objects)
    ids = {}
    for desk in ("legal", "news", None):
        source = SourceRow(new_id(), new_id().encode(), new_id().encode(), desk=desk)
        lifecycle.record_submission(source.id, source, "2027-01-15", [])
        ids[desk] = source.id
    newsroom = Newsroom(SqliteNewsroomStore(db), objects, lifecycle, ChannelSettings(), db)
    channel_of = newsroom.channel_of()
    by_id = {s.id: s for s in newsroom.sources()}
    legal = by_id[ids["legal"]]
    assert newsroom.deadlines(legal, channel_of(legal.desk)).acknowledge_by == "2027-01-22"
    assert newsroom.expires_on(legal) is not None
    for other in (ids["news"], ids[None]):
        assert newsroom.deadlines(by_id[other]) == Deadlines(None, None)
        assert newsroom.expires_on(by_id[other]) is None
    # The desk's acknowledgement text, else the instance's, else the catalogue's.
    set_ack_template(db, "en", "Instance text.")
    assert ack_template(db, "en", str, "legal") == "Instance text."
    set_ack_template(db, "en", "Legal desk text.", desk="legal")
    assert ack_template(db, "en", str, "legal") == "Legal desk text."
    assert ack_template(db, "en", str, "news") == "Instance text."
    set_ack_template(db, "en", None)
    assert ack_template(db, "en", str, None) == DEFAULT_ACK_TEMPLATE
    # The sweep: only the legal desk's source goes, on its day.
    retention = Retention(sources, lifecycle, Channels(ChannelSettings(), db))
    assert retention.expire_due("2099-01-01") == 1
    assert {f.id for f in sources.retention_facts()} == {ids["news"], ids[None]}
    reset_desk_channel(db, "legal")
    assert Channels(ChannelSettings(), db).by_desk() == {}
