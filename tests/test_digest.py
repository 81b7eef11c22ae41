"""The daily digest (issue 16 §4): one mail a day to each journalist who asked,
the same size with news and without, over STARTTLS only, to a real SMTP relay
on 127.0.0.1 (aiosmtpd) whose certificate comes from a test CA."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from server.domain import digest as digest_rules
from server.ops.digest import DigestError, send_due
from server.ops.health_check import CheckConfig, _check_smtp
from server.settings import SMTP_PASSWORD_ENV, ConfigError, Settings, SmtpConfig
from server.store.db import Database
from server.store.protocols import DeskRow, ObjectRow, SourceRow, new_id
from server.store.sources import SqliteSourceStore
from tests.server_process import ROOT, SERVER_CMD, init_instance
from tests.smtp_relay import PASSWORD, USER, RelayCA, make_ca, smtp_relay

D1, D2, D3 = "2026-12-04", "2026-12-05", "2026-12-06"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> RelayCA:
    return make_ca(tmp_path_factory.mktemp("ca"), "relay")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> RelayCA:
    return make_ca(tmp_path_factory.mktemp("other-ca"), "other")


def rows(tmp_path: Path) -> Database:
    db = Database(tmp_path / "lanterne.sqlite3")
    db.create()
    for name in ("alice", "bruno", "chloe"):
        db.add_journalist(name, os.urandom(32), os.urandom(32), "journalist", "2026-12-01")
    assert db.set_digest_address("alice", "alice@example.org")
    assert db.set_digest_address("bruno", "bruno@example.org")
    return db  # chloe did not ask


def submit(db: Database, day: str) -> None:
    source = SourceRow(new_id(), os.urandom(32), os.urandom(32))
    SqliteSourceStore(db).record_submission(
        new_id(), source.id, source, day, [ObjectRow(new_id(), "manifest", 1000)]
    )


def config(ca: RelayCA, port: int, username: str | None = None) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1",
        sender="lanterne@example.org",
        port=port,
        username=username,
        ca_file=ca.ca_pem,
    )


def subject(content: bytes) -> str:
    match = re.search(rb"^Subject: (.*)$", content, re.M)
    assert match
    return match.group(1).decode().strip()


def test_news_and_no_news_mails_have_the_same_size_and_steps(tmp_path: Path, ca: RelayCA) -> None:
    db = rows(tmp_path)
    submit(db, D1)
    transcripts = []
    with smtp_relay(ca) as relay:
        for day in (D1, D2, D3):
            start = len(relay.commands), len(relay.mails)
            report = send_due(db, config(ca, relay.port), day, {})
            assert report.sent == ["alice", "bruno"]
            transcripts.append((relay.commands[start[0] :], relay.mails[start[1] :]))
    news = [[subject(m.content) for m in mails] for _, mails in transcripts]
    # D1's submission is news on D1, and again on D2 (it may have come after
    # D1's mail: only days are kept); by D3 there is nothing new.
    assert news == [
        [digest_rules.SUBJECTS[True]] * 2,
        [digest_rules.SUBJECTS[True]] * 2,
        [digest_rules.SUBJECTS[False]] * 2,
    ]
    assert b"something new" in transcripts[0][1][0].content
    assert b"nothing new" in transcripts[2][1][0].content
    # Every mail went over TLS, and a news mail is exactly as long as a no-news
    # one, with the same commands in the same order.
    assert all(m.tls for _, mails in transcripts for m in mails)
    sizes = {(m.rcpt_tos[0], len(m.content)) for _, mails in transcripts for m in mails}
    assert len(sizes) == 2, sizes  # one size per journalist (their address differs)
    assert transcripts[0][0] == transcripts[2][0]
    # Nothing about the arrivals: no count, no source, no time of day.
    for _, mails in transcripts:
        for mail in mails:
            assert b"1000" not in mail.content
            assert re.search(rb"^Date: \w{3}, \d\d \w{3} \d{4} 00:00:00 \+0000", mail.content, re.M)
    assert [s.last_sent_on for s in db.digest_subscriptions()] == [D3, D3]


def test_news_follows_the_desks(tmp_path: Path, ca: RelayCA) -> None:
    """A source of the legal desk is news for its members only (and for
    all-desk journalists); the others get "no news", the same size, the same day."""
    db = rows(tmp_path)
    db.add_desk(DeskRow("legal", {"en": "Legal"}, {"en": "Legal matters"}, ("bruno",)))
    source = SourceRow(new_id(), os.urandom(32), os.urandom(32), "legal")
    SqliteSourceStore(db).record_submission(
        new_id(), source.id, source, D1, [ObjectRow(new_id(), "manifest", 1000)]
    )
    with smtp_relay(ca) as relay:
        send_due(db, config(ca, relay.port), D1, {})
        db.set_all_desks("alice", True)
        send_due(db, config(ca, relay.port), D2, {})
    told = [(m.rcpt_tos[0], subject(m.content)) for m in relay.mails]
    assert told == [
        ("alice@example.org", digest_rules.SUBJECTS[False]),
        ("bruno@example.org", digest_rules.SUBJECTS[True]),
        ("alice@example.org", digest_rules.SUBJECTS[True]),  # now receives every desk
        ("bruno@example.org", digest_rules.SUBJECTS[True]),
    ]
    assert len({len(m.content) for m in relay.mails if m.rcpt_tos == ["alice@example.org"]}) == 1


def test_bodies_and_subjects_are_the_same_length() -> None:
    assert len(digest_rules.SUBJECTS[True]) == len(digest_rules.SUBJECTS[False])
    assert digest_rules.SUBJECTS[True] != digest_rules.SUBJECTS[False]
    for day in (D1, "2027-01-31"):
        news, none = digest_rules.body(day, True), digest_rules.body(day, False)
        assert news != none
        assert len(news.encode()) == len(none.encode())


def test_a_second_run_the_same_day_sends_nothing(tmp_path: Path, ca: RelayCA) -> None:
    db = rows(tmp_path)
    with smtp_relay(ca) as relay:
        assert send_due(db, config(ca, relay.port), D1, {}).sent == ["alice", "bruno"]
        again = send_due(db, config(ca, relay.port), D1, {})
        assert again.sent == [] and again.already == 2
        assert len(relay.mails) == 2


def test_a_failure_leaves_the_others_due_and_unchanged(tmp_path: Path, ca: RelayCA) -> None:
    db = rows(tmp_path)
    submit(db, D1)
    with smtp_relay(ca) as relay:
        relay.reject_rcpt.add("bruno@example.org")
        with pytest.raises(DigestError, match="sent before the failure: alice"):
            send_due(db, config(ca, relay.port), D1, {})
        assert {s.name: s.last_sent_on for s in db.digest_subscriptions()} == {
            "alice": D1,
            "bruno": None,
        }
        relay.reject_rcpt.clear()
        assert send_due(db, config(ca, relay.port), D1, {}).sent == ["bruno"]
        first, retried = relay.mails
        assert subject(first.content) == subject(retried.content) == digest_rules.SUBJECTS[True]
        # bruno's mail the next day covers everything since his last one.
        submit(db, D1)
        assert send_due(db, config(ca, relay.port), D2, {}).sent == ["alice", "bruno"]
        assert [subject(m.content) for m in relay.mails[2:]] == [digest_rules.SUBJECTS[True]] * 2


def test_a_relay_without_starttls_is_refused(tmp_path: Path, ca: RelayCA) -> None:
    db = rows(tmp_path)
    with smtp_relay(None) as relay:
        with pytest.raises(DigestError, match="does not offer STARTTLS: refusing to send in clear"):
            send_due(db, config(ca, relay.port), D1, {})
        assert relay.mails == []
        assert not any(c.startswith(("MAIL", "RCPT")) for c in relay.commands)
    assert [s.last_sent_on for s in db.digest_subscriptions()] == [None, None]


def test_a_relay_whose_certificate_does_not_verify_is_refused(
    tmp_path: Path, ca: RelayCA, other_ca: RelayCA
) -> None:
    db = rows(tmp_path)
    with smtp_relay(other_ca) as relay:
        with pytest.raises(DigestError, match="certificate does not verify"):
            send_due(db, config(ca, relay.port), D1, {})
        assert relay.mails == []
        assert not any(c.startswith("MAIL") for c in relay.commands)
    # The system's store does not know the test CA either.
    with smtp_relay(ca) as relay:
        system = SmtpConfig(host="127.0.0.1", sender="lanterne@example.org", port=relay.port)
        with pytest.raises(DigestError, match="certificate does not verify"):
            send_due(db, system, D1, {})
        assert relay.mails == []


def test_login_uses_the_password_from_the_environment(tmp_path: Path, ca: RelayCA) -> None:
    db = rows(tmp_path)
    with smtp_relay(ca) as relay:
        with pytest.raises(DigestError, match=f"{SMTP_PASSWORD_ENV} is not set"):
            send_due(db, config(ca, relay.port, USER), D1, {})
        with pytest.raises(DigestError, match="SMTPAuthenticationError"):
            send_due(db, config(ca, relay.port, USER), D1, {SMTP_PASSWORD_ENV: "wrong"})
        assert relay.mails == []
        report = send_due(db, config(ca, relay.port, USER), D1, {SMTP_PASSWORD_ENV: PASSWORD})
        assert report.sent == ["alice", "bruno"]


def test_removed_journalists_get_no_digest(tmp_path: Path, ca: RelayCA) -> None:
    db = rows(tmp_path)
    db.remove_journalist("alice")
    assert [s.name for s in db.digest_subscriptions()] == ["bruno"]
    assert db.set_digest_address("bruno", None)
    assert db.digest_subscriptions() == []
    assert not db.set_digest_address("nobody", "x@example.org")


SMTP_CONFIG = """
[smtp]
host = "127.0.0.1"
port = {port}
from = "lanterne@example.org"
username = "{user}"
ca_file = "{ca}"
"""


def test_smtp_settings_refuse_a_password_and_bad_addresses(tmp_path: Path) -> None:
    tmp_path.joinpath("config.toml").write_text(
        '[smtp]\nhost = "relay"\nfrom = "a@b.org"\npassword = "x"\n'
    )
    with pytest.raises(ConfigError, match=f"must not hold the password: set {SMTP_PASSWORD_ENV}"):
        Settings.load(tmp_path)
    tmp_path.joinpath("config.toml").write_text(
        '[smtp]\nhost = "relay"\nfrom = "Lanterne <a@b.org>\\r\\nBcc: x@y.org"\n'
    )
    with pytest.raises(ConfigError, match="from must be an address"):
        Settings.load(tmp_path)
    tmp_path.joinpath("config.toml").write_text('[smtp]\nhost = "relay"\nfrom = "a@b.org"\n')
    loaded = Settings.load(tmp_path).smtp
    assert loaded == SmtpConfig(host="relay", sender="a@b.org", port=587)


# Real admin processes (about 18 s): CI runs it, scripts/test.sh --fast does not.
@pytest.mark.slow
def test_the_commands_send_the_digest(tmp_path: Path, ca: RelayCA) -> None:
    instance = init_instance(tmp_path)
    data = str(instance.data_dir)

    def server(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SERVER_CMD, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            check=False,
        )

    done = server("journalists", "notify", "--data-dir", data, "alice", "--email", "a@example.org")
    assert done.returncode == 0, done.stderr
    assert "no [smtp] relay yet" in done.stderr
    refused = server("journalists", "notify", "--data-dir", data, "alice", "--email", "a@b\nc")
    assert refused.returncode == 1 and "not an e-mail address" in refused.stderr
    unknown = server("journalists", "notify", "--data-dir", data, "zoe", "--email", "z@example.org")
    assert unknown.returncode == 1 and "no journalist named zoe" in unknown.stderr
    no_relay = server("digest", "--data-dir", data)
    assert no_relay.returncode == 1 and "no [smtp] relay" in no_relay.stderr
    with smtp_relay(ca) as relay:
        config_path = instance.data_dir / "config.toml"
        config_path.write_text(
            config_path.read_text() + SMTP_CONFIG.format(port=relay.port, user=USER, ca=ca.ca_pem)
        )
        missing = server("digest", "--data-dir", data)
        assert missing.returncode == 1 and SMTP_PASSWORD_ENV in missing.stderr
        sent = server("digest", "--data-dir", data, env={SMTP_PASSWORD_ENV: PASSWORD})
        assert sent.returncode == 0, sent.stderr
        assert "digest sent to 1 journalist(s)" in sent.stdout
        assert [m.rcpt_tos for m in relay.mails] == [["a@example.org"]]
        again = server("digest", "--data-dir", data, env={SMTP_PASSWORD_ENV: PASSWORD})
        assert "sent to 0 journalist(s); 1 had theirs today already" in again.stdout
        assert len(relay.mails) == 1
    off = server("journalists", "notify", "--data-dir", data, "alice", "--off")
    assert off.returncode == 0 and "no more digests" in off.stdout
    # `check` reports the relay (and where the password must be).
    findings = list(_check_smtp(CheckConfig(data_dir=instance.data_dir, environ={})))
    assert findings[0].ok and "STARTTLS required" in findings[0].message
    assert str(ca.ca_pem) in findings[0].message
    assert findings[1].warn and SMTP_PASSWORD_ENV in findings[1].message


def test_the_timer_starts_the_digest_daily_at_a_fixed_time() -> None:
    """deploy/lanterne-digest.timer: one fixed time a day, no random delay; its
    service runs `lanterne-server digest` and retries a failed run."""
    timer = (ROOT / "deploy" / "lanterne-digest.timer").read_text()
    settings = dict(
        line.split("=", 1) for line in timer.splitlines() if "=" in line and line[0] != "#"
    )
    assert settings["OnCalendar"] == "*-*-* 07:00:00 UTC"
    assert settings["RandomizedDelaySec"] == "0" and settings["AccuracySec"] == "1s"
    elapses = subprocess.run(
        ["systemd-analyze", "calendar", "--iterations=3", settings["OnCalendar"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    times = re.findall(r"(?:Next elapse|Iter\. #\d): \w+ \d{4}-\d\d-\d\d (\S+) UTC", elapses)
    assert times == ["07:00:00"] * 3, elapses
    service = (ROOT / "deploy" / "lanterne-digest.service").read_text()
    assert "ExecStart=/opt/lanterne/venv/bin/lanterne-server digest --data-dir" in service
    assert "Restart=on-failure" in service and "Type=oneshot" in service
    assert "LANTERNE_SMTP_PASSWORD" in service and "EnvironmentFile=-/etc/lanterne/" in service
    install = (ROOT / "deploy" / "install.sh").read_text()
    assert "lanterne-digest.service lanterne-digest.timer" in install
    assert "systemctl enable --now lanterne-digest.timer" in install
