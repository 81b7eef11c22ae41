"""`lanterne-server init`, `run` and `list`: the instance an admin creates and serves."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from server.settings import ConfigError, Settings
from tests.server_process import (
    ROOT,
    SourceClient,
    db_rows,
    init_instance,
    make_journalist,
    run_server,
)

# Real processes end to end: CI runs it, scripts/test.sh --fast does not (under two minutes).
pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "server.ops.admin"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_a_private_instance(tmp_path: Path) -> None:
    alice = make_journalist(tmp_path, "alice")
    data = tmp_path / "data"
    result = cli("init", "--data-dir", str(data), "--journalist", str(alice.pub_path))
    assert result.returncode == 0, result.stderr
    assert f"journalist alice: {alice.public.fingerprint}" in result.stdout
    assert mode(data) == 0o700
    assert mode(data / "secrets.json") == 0o600
    assert mode(data / "lanterne.sqlite3") == 0o600
    assert mode(data / "objects") == 0o700
    secrets_doc = json.loads((data / "secrets.json").read_text())
    assert secrets_doc["type"] == "lanterne-instance-secrets/v1"
    settings = Settings.load(data)
    assert [q.id for q in settings.questions] == ["administration", "dates", "how_known"]
    assert settings.limits.max_file_bytes == 2 * 1024**3 and settings.limits.max_files == 20
    # Idempotent: the secrets are kept, a second journalist is added.
    before = (data / "secrets.json").read_bytes()
    bruno = make_journalist(tmp_path, "bruno")
    assert cli("init", "--data-dir", str(data), "--journalist", str(bruno.pub_path)).returncode == 0
    assert (data / "secrets.json").read_bytes() == before
    import sqlite3

    names = [
        r[0]
        for r in sqlite3.connect(data / "lanterne.sqlite3").execute(
            "SELECT name FROM journalists ORDER BY name"
        )
    ]
    assert names == ["alice", "bruno"]


def test_init_rejects_a_bad_key_file_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "mallory.pub"
    bad.write_text('{"type": "something else"}')
    result = cli("init", "--data-dir", str(tmp_path / "d"), "--journalist", str(bad))
    assert result.returncode == 1
    assert "not a Lanterne public key file" in result.stderr
    assert "Traceback" not in result.stderr
    missing = cli(
        "init", "--data-dir", str(tmp_path / "d"), "--journalist", str(tmp_path / "no.pub")
    )
    assert missing.returncode != 0
    assert "Traceback" not in missing.stderr


def test_run_refuses_an_open_or_missing_data_dir(tmp_path: Path) -> None:
    result = cli("run", "--data-dir", str(tmp_path / "nothing"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    instance = init_instance(tmp_path / "srv")
    instance.data_dir.chmod(0o755)
    result = cli("run", "--data-dir", str(instance.data_dir))
    assert result.returncode == 1
    assert "chmod 700" in result.stderr


def test_bad_config_is_reported(tmp_path: Path) -> None:
    instance = init_instance(tmp_path / "srv", config='[[question]]\nid = "a b"\nlabel.en = "x"\n')
    with pytest.raises(ConfigError, match="id must be"):
        Settings.load(instance.data_dir)
    result = cli("run", "--data-dir", str(instance.data_dir))
    assert result.returncode == 1
    assert "id must be" in result.stderr


def test_run_collects_leftovers_and_list_shows_submissions(tmp_path: Path) -> None:
    instance = init_instance(tmp_path / "srv")
    # What a crash mid-upload would leave: a temporary file and an unlisted object.
    leftover_part = instance.objects_dir / ".0123.part"
    leftover_part.write_bytes(b"x")
    orphan = instance.objects_dir / ("ab" * 16)
    orphan.write_bytes(b"y")
    with run_server(instance) as server:
        assert not leftover_part.exists() and not orphan.exists()
        with SourceClient(server.base_url) as src:
            src.first_submission("listed", [("a.txt", b"plaintext-canary", "text/plain")])
    listing = cli("list", "--data-dir", str(instance.data_dir))
    assert listing.returncode == 0
    [sub] = db_rows(instance, "submissions")
    assert f"submission {sub[0]}" in listing.stdout
    for obj in db_rows(instance, "objects"):
        assert str(instance.objects_dir / str(obj[0])) in listing.stdout
    assert "plaintext-canary" not in listing.stdout  # not hex: no random id can hold it


def test_server_listens_on_loopback_only_by_default() -> None:
    from click.testing import CliRunner

    from server.ops.admin import main

    help_text = CliRunner().invoke(main, ["run", "--help"]).output
    assert "[default: 127.0.0.1]" in help_text


def test_without_journalists_submissions_are_refused_clearly(tmp_path: Path) -> None:
    instance = init_instance(tmp_path / "srv", names=())
    with run_server(instance) as server, SourceClient(server.base_url) as src:
        assert "No journalist can receive submissions yet" in src.get("/en/").text
        response = src.submit("nobody can read this", [("a.txt", b"abc", "text/plain")])
        assert response.status_code == 503
        assert "Submissions are closed" in response.text
        assert "warning: no journalist key is registered" in server.log()
    assert list(instance.objects_dir.iterdir()) == []
    assert db_rows(instance, "sources") == []
