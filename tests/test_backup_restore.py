"""Backup while the server runs and an upload is in progress -> wipe -> restore ->
the journalist pulls the same submissions with the real `lanterne` CLI and
decrypts them exactly; tampered, truncated or hostile backups restore nothing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nacl.pwhash
import pytest

import envelope
from journalist_cli import designations
from journalist_cli.identity_store import (
    JournalistIdentity,
    seal_identity,
    write_identity_file,
    write_new_identity,
)
from server.backup import BackupError, _EncryptingSink, _tarinfo, restore
from tests.cli_helpers import run
from tests.server_process import ROOT, SERVER_CMD, Instance, SourceClient, db_rows, run_server

PDF = b"%PDF-1.4\n" + os.urandom(200_000) + b"\n%%EOF\n"
PASSPHRASE = "correct horse battery"


def admin_cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def lanterne(home: Path, *args: object) -> subprocess.CompletedProcess[bytes]:
    done = run(*args, env={"LANTERNE_HOME": str(home)})
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def make_admin_key(directory: Path) -> tuple[Path, Path, envelope.Identity]:
    """The admin's key, passphrase-protected as `lanterne keys generate` writes it
    (at the lowest Argon2id cost, for speed)."""
    admin = JournalistIdentity.generate("admin")
    identity = directory / "admin.identity"
    write_identity_file(
        identity,
        seal_identity(
            admin,
            PASSPHRASE,
            opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN,
            memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN,
        ),
    )
    pub = directory / "admin.pub"
    pub.write_text(admin.public.to_json())
    return pub, identity, admin.decryption


class SlowUpload:
    """A submission whose file part stalls half-way until ``release()``."""

    def __init__(self, source: SourceClient) -> None:
        token = source.csrf("/en/submit")
        boundary = "lanterne-test-" + os.urandom(8).hex()
        head = b""
        for name, value in (("csrf_token", token), ("website", ""), ("message", "en cours")):
            head += (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            ).encode()
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="stalled.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        self.started, self._go = threading.Event(), threading.Event()
        self.response: httpx.Response | None = None

        def body() -> Iterator[bytes]:
            # More than the server batches (streaming_form.BATCH_BYTES) before it writes.
            yield head + b"S" * (3 << 20)
            self.started.set()
            self._go.wait(120)
            yield b"T" * 300_000 + f"\r\n--{boundary}--\r\n".encode()

        def post() -> None:
            self.response = source.client.post(
                "/en/submit",
                content=body(),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )

        self._thread = threading.Thread(target=post, daemon=True)
        self._thread.start()
        assert self.started.wait(30)

    def release(self) -> httpx.Response:
        self._go.set()
        self._thread.join(60)
        assert self.response is not None
        return self.response


def test_backup_while_running_wipe_restore_pull(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    write_new_identity(JournalistIdentity.generate("alice"), keys, None)
    admin_pub, admin_identity, _ = make_admin_key(keys)
    data = tmp_path / "data"
    done = admin_cli("init", "--data-dir", data, "--journalist", keys / "alice.pub")
    assert done.returncode == 0, done.stderr
    instance = Instance(data, [], tmp_path / "server-tmp", tmp_path / "server.log")
    instance.tmp_dir.mkdir()
    backup_file = tmp_path / "lanterne.backup"

    with run_server(instance, journalist_api=True) as server:
        with SourceClient(server.base_url) as source:
            codename = source.first_submission("Voici le rapport.", [("rapport.pdf", PDF, "")])
        with SourceClient(server.base_url) as other:
            slow = SlowUpload(other)
            # Mid-upload: its object is being written, no database row yet.
            deadline = time.monotonic() + 30
            while not any(p.name.endswith(".part") for p in (data / "objects").iterdir()):
                assert time.monotonic() < deadline, "the upload never reached the server"
                time.sleep(0.05)
            # And one resumable (JavaScript) upload in progress, as its row.
            conn = sqlite3.connect(data / "lanterne.sqlite3")
            with conn:
                conn.execute("INSERT INTO uploads VALUES ('u1', x'00', 10, 0, 1)")
            conn.close()
            done = admin_cli(
                "backup", "--data-dir", data, "--to", backup_file, "--recipient", admin_pub
            )
            assert done.returncode == 0, done.stderr
            assert "backup written" in done.stdout
            assert slow.release().status_code == 303  # the upload completes afterwards
    assert backup_file.stat().st_mode & 0o777 == 0o600
    # Nothing of the snapshot is left in the data directory.
    assert not list(data.glob(".backup-*"))
    # The backup is an envelope: neither the database nor the objects show through.
    raw = backup_file.read_bytes()
    assert b"SQLite format 3" not in raw and b"lanterne-backup" not in raw

    shutil.rmtree(data)  # the disk died
    refused = admin_cli(
        "restore",
        "--data-dir",
        data,
        "--from",
        backup_file,
        "--identity",
        admin_identity,
    )
    assert refused.returncode != 0 and not data.exists()  # no passphrase on stdin: nothing
    pw = tmp_path / "pw"
    pw.write_text(PASSPHRASE + "\n")
    done = admin_cli(
        "restore",
        "--data-dir",
        data,
        "--from",
        backup_file,
        "--identity",
        admin_identity,
        "--passphrase-file",
        pw,
    )
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout
    assert data.stat().st_mode & 0o777 == 0o700
    for path in data.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path

    with run_server(instance, journalist_api=True) as server:
        assert server.api_url is not None
        home = tmp_path / "alice"
        lanterne(
            home,
            "config",
            "--server",
            server.api_url.removesuffix("/api/v1"),
            "--identity",
            keys / "alice.identity",
        )
        lanterne(home, "pull")
        [row] = json.loads(lanterne(home, "list", "--json").stdout)
        # The submission completed after the snapshot is not in the backup.
        assert row["submissions"] == 1 and row["missing_objects"] == 0
        out = tmp_path / "out"
        lanterne(home, "decrypt", row["id"], "--out", out, "--no-clean")
        [sub] = (out / designations.slug(row["id"])).iterdir()
        assert (sub / "original" / "rapport.pdf").read_bytes() == PDF
        assert (sub / "message.txt").read_text() == "Voici le rapport."
        # Resumable uploads in progress are transient: not restored.
        assert db_rows(instance, "uploads") == []
        # The instance secrets came back too: the source can still log in.
        with SourceClient(server.base_url) as source:
            assert source.login(codename).status_code == 303


@pytest.fixture
def small_backup(tmp_path: Path) -> tuple[Path, Path, Path]:
    keys = tmp_path / "keys"
    write_new_identity(JournalistIdentity.generate("alice"), keys, None)
    # An unprotected admin identity works as well (and is faster here).
    admin = JournalistIdentity.generate("admin2")
    write_identity_file(keys / "admin2.identity", seal_identity(admin, None))
    (keys / "admin2.pub").write_text(admin.public.to_json())
    data = tmp_path / "data"
    assert admin_cli("init", "--data-dir", data, "--journalist", keys / "alice.pub").returncode == 0
    backup_file = tmp_path / "b.backup"
    done = admin_cli(
        "backup", "--data-dir", data, "--to", backup_file, "--recipient", keys / "admin2.pub"
    )
    assert done.returncode == 0, done.stderr
    return backup_file, keys / "admin2.identity", tmp_path


def _leftovers(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if ".restoring-" in p.name]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_backup_restores_nothing(
    small_backup: tuple[Path, Path, Path], damage: str
) -> None:
    backup_file, identity, tmp = small_backup
    raw = bytearray(backup_file.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
    else:
        del raw[-100:]
    bad = tmp / "bad.backup"
    bad.write_bytes(bytes(raw))
    target = tmp / "restored"
    done = admin_cli("restore", "--data-dir", target, "--from", bad, "--identity", identity)
    assert done.returncode == 1
    assert "the backup is damaged or was altered" in done.stderr
    assert "Traceback" not in done.stderr
    assert not target.exists() and not _leftovers(tmp)
    # The intact backup restores, and not over an existing instance.
    done = admin_cli("restore", "--data-dir", target, "--from", backup_file, "--identity", identity)
    assert done.returncode == 0, done.stderr
    done = admin_cli("restore", "--data-dir", target, "--from", backup_file, "--identity", identity)
    assert done.returncode == 1 and "is not empty" in done.stderr


def test_backup_to_another_key_is_refused(small_backup: tuple[Path, Path, Path]) -> None:
    backup_file, _, tmp = small_backup
    other = JournalistIdentity.generate("mallory")
    write_identity_file(tmp / "m.identity", seal_identity(other, None))
    done = admin_cli(
        "restore", "--data-dir", tmp / "r", "--from", backup_file, "--identity", tmp / "m.identity"
    )
    assert done.returncode == 1 and "not encrypted to that identity" in done.stderr


def _hostile(path: Path, recipient: envelope.Recipient, members: list[tarfile.TarInfo]) -> None:
    with path.open("wb") as out:
        sink = _EncryptingSink(out, [recipient])
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for info in members:
                tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
        sink.finish()


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_tarinfo("../escape", 1), "unexpected member '../escape'"),
        (_tarinfo("/etc/cron.d/x", 1), "unexpected member '/etc/cron.d/x'"),
        (_tarinfo("objects/../../x", 1), "unexpected member"),
        (_tarinfo("objects/" + "a" * 31, 1), "unexpected member"),
        (_link("secrets.json", "/etc/shadow", tarfile.SYMTYPE), "not a regular file"),
        (_link("lanterne.sqlite3", "secrets.json", tarfile.LNKTYPE), "not a regular file"),
        (_tarinfo("config.toml", 2 << 20), "larger than a backup member may be"),
    ],
)
def test_hostile_members_are_refused(tmp_path: Path, member: tarfile.TarInfo, message: str) -> None:
    identity = envelope.Identity.generate()
    path = tmp_path / "hostile.backup"
    _hostile(path, identity.recipient, [_tarinfo("secrets.json", 3), member])
    with pytest.raises(BackupError, match=message):
        restore(path, tmp_path / "target", identity)
    assert not (tmp_path / "target").exists() and not _leftovers(tmp_path)
    assert not (tmp_path / "escape").exists()


def test_duplicate_member_and_missing_manifest_are_refused(tmp_path: Path) -> None:
    identity = envelope.Identity.generate()
    path = tmp_path / "dup.backup"
    _hostile(path, identity.recipient, [_tarinfo("secrets.json", 3), _tarinfo("secrets.json", 3)])
    with pytest.raises(BackupError, match="appears twice"):
        restore(path, tmp_path / "t", identity)
    _hostile(path, identity.recipient, [_tarinfo("secrets.json", 3)])
    with pytest.raises(BackupError, match=r"no lanterne-backup\.json"):
        restore(path, tmp_path / "t", identity)
    assert not (tmp_path / "t").exists() and not _leftovers(tmp_path)
