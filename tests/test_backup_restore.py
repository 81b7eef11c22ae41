"""Backup while the server runs and an upload is in progress -> wipe -> restore ->
the journalist pulls the same submissions with the real `lanterne` CLI and
decrypts them exactly; tampered, truncated or hostile backups restore nothing.
"""

from __future__ import annotations

import base64
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
from server.ops.admin_identity import AdminSigner, open_admin_identity
from server.ops.backup import (
    BackupError,
    ExpectedSigner,
    _append_signature,
    _EncryptingSink,
    _tarinfo,
    restore,
)
from tests.cli_helpers import run
from tests.server_process import ROOT, SERVER_CMD, Instance, SourceClient, db_rows, run_server

# Over ~20 s of real servers and CLI runs: CI runs it, scripts/test.sh --fast does not.
pytestmark = pytest.mark.slow

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


def make_admin_key(directory: Path) -> tuple[Path, Path, list[envelope.Identity]]:
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
    return pub, identity, admin.identities()


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
            # More than the server batches (streaming_form.MAX_BATCH_BYTES) before it writes.
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
                conn.execute(
                    "INSERT INTO uploads(id, owner_hash, length, received, active_on)"
                    " VALUES ('u1', x'00', 10, 0, '2026-12-04')"
                )
            conn.close()
            pw = tmp_path / "pw"
            pw.write_text(PASSPHRASE + "\n")
            done = admin_cli(
                "backup", "--data-dir", data, "--to", backup_file,
                "--signing-key", admin_identity, "--passphrase-file", pw,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert "backup written" in done.stdout
            signer = envelope.PublicKey.from_json(admin_pub.read_bytes())
            assert f"signed by admin ({signer.fingerprint})" in done.stdout
            assert slow.release().status_code == 303  # the upload completes afterwards
    assert backup_file.stat().st_mode & 0o777 == 0o600
    # Nothing of the snapshot is left in the data directory.
    assert not list(data.glob(".backup-*"))
    # The backup is an envelope: neither the database nor the objects show through.
    # Then its signature: the signer's public key and the signature, nothing else.
    raw = backup_file.read_bytes()
    block_size = int.from_bytes(raw[-4:], "big")
    envelope_part, block = raw[: -(block_size + 32)], json.loads(raw[-(block_size + 32) : -32])
    assert b"SQLite format 3" not in raw and b"lanterne-backup/" not in envelope_part
    assert set(block) == {"type", "envelope_bytes", "signer", "signature"}
    assert block["envelope_bytes"] == len(envelope_part)

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
        "backup", "--data-dir", data, "--to", backup_file, "--signing-key", keys / "admin2.identity"
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
    assert done.returncode == 3
    # A flipped bit fails the signature; a cut-off end takes the signature with it.
    expected = "signature does not verify" if damage == "flip" else "the backup is not signed"
    assert expected in done.stderr and "nothing was restored" in done.stderr
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
    # Told to accept admin2's signature, mallory's identity still cannot decrypt.
    done = admin_cli(
        "restore", "--data-dir", tmp / "r", "--from", backup_file,
        "--identity", tmp / "m.identity", "--admin-key", tmp / "keys" / "admin2.pub",
    )  # fmt: skip
    assert done.returncode == 1 and "not encrypted to that identity" in done.stderr
    assert not (tmp / "r").exists() and not _leftovers(tmp)


SIGNER = JournalistIdentity.generate("admin")
TRUSTED = ExpectedSigner.of(SIGNER.public)


def _hostile(
    path: Path,
    recipient: envelope.Recipient,
    members: list[tarfile.TarInfo],
    signer: JournalistIdentity | None = SIGNER,
) -> None:
    """A backup crafted member by member; signed (by the trusted key unless told
    otherwise) so that restore's checks of the archive itself are reached."""
    with path.open("wb") as out:
        sink = _EncryptingSink(out, [recipient])
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for info in members:
                tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
        sink.finish()
    if signer is not None:
        _append_signature(path, AdminSigner(signer.public, signer.signing))


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
    identity = envelope.X25519Identity.generate()
    path = tmp_path / "hostile.backup"
    _hostile(path, identity.recipient, [_tarinfo("secrets.json", 3), member])
    with pytest.raises(BackupError, match=message):
        restore(path, tmp_path / "target", [identity], TRUSTED)
    assert not (tmp_path / "target").exists() and not _leftovers(tmp_path)
    assert not (tmp_path / "escape").exists()


def test_duplicate_member_and_missing_manifest_are_refused(tmp_path: Path) -> None:
    identity = envelope.X25519Identity.generate()
    path = tmp_path / "dup.backup"
    _hostile(path, identity.recipient, [_tarinfo("secrets.json", 3), _tarinfo("secrets.json", 3)])
    with pytest.raises(BackupError, match="appears twice"):
        restore(path, tmp_path / "t", [identity], TRUSTED)
    _hostile(path, identity.recipient, [_tarinfo("secrets.json", 3)])
    with pytest.raises(BackupError, match=r"no lanterne-backup\.json"):
        restore(path, tmp_path / "t", [identity], TRUSTED)
    assert not (tmp_path / "t").exists() and not _leftovers(tmp_path)


# --- Authenticated backups (issue 11, item 15) -----------------------------------


def _refused(done: subprocess.CompletedProcess[str], target: Path, message: str) -> None:
    assert done.returncode == 3, (done.returncode, done.stderr)
    assert message in done.stderr and "nothing was restored" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not target.exists() and not _leftovers(target.parent)


def _forged(tmp: Path, name: str, signer: JournalistIdentity | None) -> Path:
    """What someone holding only admin2.pub can make: a complete backup of their own
    instance (their journalist key, their secrets), encrypted to the admin's key."""
    admin_pub = envelope.PublicKey.from_json((tmp / "keys" / "admin2.pub").read_bytes())
    db = tmp / f"{name}.sqlite3"
    sqlite3.connect(db).close()
    from server.store.migrations import prepare

    prepare(db)
    members = [
        (name_, data)
        for name_, data in (
            ("secrets.json", b'{"type": "forged"}'),
            ("lanterne.sqlite3", db.read_bytes()),
            ("lanterne-backup.json", json.dumps(
                {"type": "lanterne-backup/v1", "schema_version": 1, "objects": {}}
            ).encode()),
        )
    ]  # fmt: skip
    path = tmp / f"{name}.backup"
    with path.open("wb") as out:
        sink = _EncryptingSink(out, [admin_pub.recipient])
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for member, data in members:
                tar.addfile(_tarinfo(member, len(data)), io.BytesIO(data))
        sink.finish()
    if signer is not None:
        _append_signature(path, AdminSigner(signer.public, signer.signing))
    return path


def test_a_backup_signed_by_another_key_is_refused(small_backup: tuple[Path, Path, Path]) -> None:
    _, identity, tmp = small_backup
    mallory = JournalistIdentity.generate("mallory")
    forged = _forged(tmp, "mallory", mallory)
    target = tmp / "restored"
    done = admin_cli("restore", "--data-dir", target, "--from", forged, "--identity", identity)
    _refused(done, target, f"signed by the key {mallory.public.fingerprint}, not by the expected")
    # The signature is checked before anything is decrypted: a backup the admin
    # could not even decrypt is refused for its signer, not for its encryption.
    own = tmp / "mallory-own.backup"
    _hostile(own, mallory.public.recipient, [_tarinfo("secrets.json", 3)], signer=mallory)
    done = admin_cli("restore", "--data-dir", target, "--from", own, "--identity", identity)
    _refused(done, target, "not by the expected admin key")
    assert "not encrypted to that identity" not in done.stderr


def test_an_unsigned_backup_is_refused(small_backup: tuple[Path, Path, Path]) -> None:
    _, identity, tmp = small_backup
    forged = _forged(tmp, "unsigned", None)
    # Without the signature check it would restore: it decrypts and is well formed.
    admin_identity = open_admin_identity(identity, lambda: "")
    plain = envelope.decrypt_bytes(forged.read_bytes(), admin_identity)
    assert b"lanterne-backup/v1" in plain
    target = tmp / "restored"
    done = admin_cli("restore", "--data-dir", target, "--from", forged, "--identity", identity)
    _refused(done, target, "the backup is not signed")


def test_a_tampered_or_borrowed_signature_is_refused(small_backup: tuple[Path, Path, Path]) -> None:
    backup_file, identity, tmp = small_backup
    raw = backup_file.read_bytes()
    size = int.from_bytes(raw[-4:], "big")
    envelope_part, block = raw[: -(size + 32)], json.loads(raw[-(size + 32) : -32])
    target = tmp / "restored"

    def with_block(doc: dict, body: bytes = envelope_part) -> Path:
        text = json.dumps(doc, sort_keys=True).encode()
        path = tmp / "tampered.backup"
        path.write_bytes(body + text + raw[-32:-4] + len(text).to_bytes(4, "big"))
        return path

    sig = bytearray(base64.urlsafe_b64decode(block["signature"]))
    sig[0] ^= 0x01
    tampered = {**block, "signature": base64.urlsafe_b64encode(bytes(sig)).decode()}
    done = admin_cli(
        "restore", "--data-dir", target, "--from", with_block(tampered), "--identity", identity
    )
    _refused(done, target, "signature does not verify")
    # The admin's genuine signature block, moved onto a forged envelope.
    forged = _forged(tmp, "borrowed", None).read_bytes()
    borrowed = with_block({**block, "envelope_bytes": len(forged)}, forged)
    done = admin_cli("restore", "--data-dir", target, "--from", borrowed, "--identity", identity)
    _refused(done, target, "signature does not verify")
    # A damaged block.
    done = admin_cli(
        "restore", "--data-dir", target, "--from", with_block({"type": "x"}), "--identity", identity
    )
    _refused(done, target, "signature block is damaged")


def test_the_expected_key_can_be_given_by_fingerprint(
    small_backup: tuple[Path, Path, Path],
) -> None:
    backup_file, identity, tmp = small_backup
    admin_pub = envelope.PublicKey.from_json((tmp / "keys" / "admin2.pub").read_bytes())
    target = tmp / "restored"
    wrong = " ".join(["12345"] * 8)
    done = admin_cli(
        "restore", "--data-dir", target, "--from", backup_file, "--identity", identity,
        "--admin-fingerprint", wrong,
    )  # fmt: skip
    _refused(done, target, "not by the expected admin key")
    done = admin_cli(
        "restore", "--data-dir", target, "--from", backup_file, "--identity", identity,
        "--admin-fingerprint", admin_pub.fingerprint,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (target / "secrets.json").exists()


def test_a_signing_identity_signs_backups(small_backup: tuple[Path, Path, Path]) -> None:
    """The server needs only the signing key (`lanterne signing-key`), which cannot decrypt."""
    _, identity, tmp = small_backup
    home = tmp / "home"
    lanterne(home, "signing-key", identity, "--out", tmp / "admin2.signing", "--no-passphrase")
    out = tmp / "by-signing-key.backup"
    done = admin_cli(
        "backup", "--data-dir", tmp / "data", "--to", out, "--signing-key", tmp / "admin2.signing"
    )
    assert done.returncode == 0, done.stderr
    target = tmp / "restored"
    done = admin_cli("restore", "--data-dir", target, "--from", out, "--identity", identity)
    assert done.returncode == 0, done.stderr
