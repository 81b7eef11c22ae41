"""The newsroom key signs the journalist list (issue 15 §5; envelope/SPEC.md §11):
the server encrypts to, and hands out, only the keys of a directory the admin
signed off the server, and refuses to encrypt at all when it does not verify."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

import envelope
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from tests.server_process import (
    ROOT,
    SERVER_CMD,
    Instance,
    SourceClient,
    db_rows,
    files_under,
    init_instance,
    make_journalist,
    run_server,
)

pytestmark = pytest.mark.e2e


def admin(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def newsroom_identity(directory: Path, name: str = "newsroom") -> tuple[Path, bytes]:
    """A newsroom identity file as `lanterne keys generate` writes it, and its
    Ed25519 public key."""
    ident = JournalistIdentity.generate(name)
    secret, _public = write_new_identity(ident, directory, None)
    pub = envelope.PublicKey.from_json((directory / f"{name}.pub").read_bytes())
    return secret, pub.signing_key


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Instance, Path, bytes]:
    """An instance of alice and bruno whose directory the newsroom key signed at init."""
    instance = init_instance(tmp_path)
    key_file, newsroom = newsroom_identity(tmp_path / "keys")
    done = admin("init", "--data-dir", instance.data_dir, "--newsroom-key", key_file)
    assert done.returncode == 0, done.stderr
    assert "key directory 1 signed" in done.stdout
    return instance, key_file, newsroom


def stored_directory(instance: Instance) -> envelope.KeyDirectory:
    rows = {str(k): str(v) for k, v in db_rows(instance, "meta")}
    return envelope.verify_directory(rows["key_directory"], b64(rows["newsroom_key"]))


def b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unb64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def submit_and_open(instance: Instance, base_url: str) -> tuple[list[str], list[str]]:
    """A no-JS submission; which journalists can open its message, and which cannot."""
    before = {p.name for p in instance.objects_dir.rglob("*") if p.is_file()}
    with SourceClient(base_url) as client:
        client.first_submission("canary-newsroom-0001")
    new = [p for p in instance.objects_dir.rglob("*") if p.is_file() and p.name not in before]
    assert new
    can, cannot = [], []
    for j in instance.journalists:
        opened = False
        for path in new:
            try:
                if b"canary-newsroom-0001" in envelope.decrypt_bytes(
                    path.read_bytes(), [j.identity]
                ):
                    opened = True
            except envelope.EnvelopeError:
                pass
        (can if opened else cannot).append(j.public.name)
    return can, cannot


def test_init_signs_the_directory_and_the_pages_show_the_newsroom_fingerprint(
    signed: tuple[Instance, Path, bytes],
) -> None:
    instance, key_file, newsroom = signed
    directory = stored_directory(instance)
    assert directory.serial == 1
    assert [k.name for k in directory.journalists] == ["alice", "bruno"]
    assert directory.newsroom_key == newsroom
    # The newsroom's private key never reaches the data directory.
    secret = key_file.read_bytes()
    for path in files_under(instance.data_dir):
        assert secret not in path.read_bytes()
    with run_server(instance, journalist_api=True) as server:
        fp = envelope.newsroom_fingerprint(newsroom)
        for lang, words in (("en", "newsroom's own key"), ("fr", "clé de la rédaction")):
            page = httpx.get(f"{server.base_url}/{lang}/").text
            assert fp in page and words in page
        doc = httpx.get(f"{server.base_url}/en/recipients.json").json()["directory"]
        served = envelope.verify_directory(json.dumps(doc), newsroom)
        assert served == directory
        form = httpx.get(f"{server.base_url}/en/submit").text
        assert f'data-newsroom-key="{unb64(newsroom)}"' in form
        assert 'data-directory-serial="1"' in form


def test_an_unsigned_change_is_refused_once_the_directory_is_signed(
    signed: tuple[Instance, Path, bytes], tmp_path: Path
) -> None:
    instance, _key_file, _newsroom = signed
    carol = make_journalist(tmp_path / "keys", "carol")
    refused = admin(
        "journalists", "add", "--data-dir", instance.data_dir, "--no-client-auth", carol.pub_path
    )
    assert refused.returncode == 1
    assert "give --newsroom-key" in refused.stderr
    assert "carol" not in {str(r[1]) for r in db_rows(instance, "journalists")}
    refused = admin("init", "--data-dir", instance.data_dir, "--journalist", carol.pub_path)
    assert refused.returncode == 1 and "give --newsroom-key" in refused.stderr
    refused = admin("journalists", "remove", "--data-dir", instance.data_dir, "bruno")
    assert refused.returncode == 1 and "give --newsroom-key" in refused.stderr
    assert stored_directory(instance).serial == 1


def test_another_newsroom_key_cannot_sign_for_the_instance(
    signed: tuple[Instance, Path, bytes], tmp_path: Path
) -> None:
    instance, _key_file, _newsroom = signed
    other, _ = newsroom_identity(tmp_path / "keys", "intruder")
    carol = make_journalist(tmp_path / "keys", "carol")
    refused = admin(
        "journalists", "add", "--data-dir", instance.data_dir, "--no-client-auth",
        "--newsroom-key", other, carol.pub_path,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "signed by another newsroom key" in refused.stderr
    assert [k.name for k in stored_directory(instance).journalists] == ["alice", "bruno"]


def test_adding_and_removing_sign_new_directories_and_encryption_follows(
    signed: tuple[Instance, Path, bytes], tmp_path: Path
) -> None:
    instance, key_file, _newsroom = signed
    carol = make_journalist(tmp_path / "keys", "carol")
    done = admin(
        "journalists", "add", "--data-dir", instance.data_dir, "--no-client-auth",
        "--newsroom-key", key_file, carol.pub_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    instance.journalists.append(carol)
    assert stored_directory(instance).serial == 2
    done = admin(
        "journalists", "remove", "--data-dir", instance.data_dir,
        "--hs-dir", tmp_path / "no-onion", "--newsroom-key", key_file, "bruno",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    directory = stored_directory(instance)
    assert directory.serial == 3
    assert [k.name for k in directory.journalists] == ["alice", "carol"]
    with run_server(instance) as server:
        can, cannot = submit_and_open(instance, server.base_url)
    assert can == ["alice", "carol"] and cannot == ["bruno"]
    shown = admin("directory", "show", "--data-dir", instance.data_dir)
    assert "directory 3 signed" in shown.stdout and "bruno" not in shown.stdout


def test_a_registered_journalist_outside_the_directory_receives_nothing(
    signed: tuple[Instance, Path, bytes], tmp_path: Path
) -> None:
    """Someone who can write the database (not the newsroom key) adds a journalist:
    the server does not encrypt to them, and `directory show` names them."""
    instance, _key_file, _newsroom = signed
    mallory = make_journalist(tmp_path / "keys", "mallory")
    with sqlite3.connect(instance.data_dir / "lanterne.sqlite3") as conn:
        conn.execute(
            "INSERT INTO journalists (name, encryption_key, signing_key, role, added_on)"
            " VALUES (?, ?, ?, 'journalist', '2026-12-04')",
            ("mallory", mallory.public.recipient.public_bytes, mallory.public.signing_key),
        )
    instance.journalists.append(mallory)
    with run_server(instance) as server:
        can, cannot = submit_and_open(instance, server.base_url)
        recipients = httpx.get(f"{server.base_url}/en/recipients.json").json()
    assert can == ["alice", "bruno"] and cannot == ["mallory"]
    assert "mallory" not in json.dumps(recipients)
    shown = admin("directory", "show", "--data-dir", instance.data_dir)
    assert "not in the directory (receive nothing): mallory" in shown.stdout
    checked = admin("check", "--data-dir", instance.data_dir)
    assert "warn  key directory: registered but not in the signed directory" in checked.stdout


def test_a_directory_that_does_not_verify_stops_all_encryption(
    signed: tuple[Instance, Path, bytes], tmp_path: Path
) -> None:
    """A tampered directory (a key swapped in the stored document) never falls back
    to the unsigned list: nothing is accepted until the admin signs again."""
    instance, key_file, _newsroom = signed
    mallory = make_journalist(tmp_path / "keys", "mallory")
    db = instance.data_dir / "lanterne.sqlite3"
    with sqlite3.connect(db) as conn:
        (document,) = conn.execute("SELECT value FROM meta WHERE key = 'key_directory'").fetchone()
        doc = json.loads(document)
        payload = json.loads(b64(doc["payload"]))
        payload["journalists"][0] = json.loads(mallory.public.to_json())
        doc["payload"] = unb64(json.dumps(payload).encode())
        conn.execute("UPDATE meta SET value = ? WHERE key = 'key_directory'", (json.dumps(doc),))
    with run_server(instance) as server:
        page = httpx.get(f"{server.base_url}/en/submit").text
        assert "No journalist can receive submissions yet" in page
        assert "data-newsroom-key" not in page
        recipients = httpx.get(f"{server.base_url}/en/recipients.json").json()
        assert recipients["recipients"] == [] and recipients["directory"] is None
        with SourceClient(server.base_url) as client:
            refused = client.submit("canary-newsroom-0002")
        assert refused.status_code >= 400
        log = server.log()
    assert "refusing to encrypt" in log and "does not verify" in log
    checked = admin("check", "--data-dir", instance.data_dir)
    assert "FAIL  key directory: the stored key directory does not verify" in checked.stdout
    assert not any(b"canary-newsroom-0002" in p.read_bytes() for p in files_under(tmp_path))
    repaired = admin(
        "directory", "sign", "--data-dir", instance.data_dir, "--newsroom-key", key_file
    )
    assert repaired.returncode == 0, repaired.stderr
    assert stored_directory(instance).serial == 2  # on from the last serial signed


def test_an_unsigned_instance_keeps_working_until_its_first_directory(tmp_path: Path) -> None:
    instance = init_instance(tmp_path)
    shown = admin("directory", "show", "--data-dir", instance.data_dir)
    assert "No newsroom key" in shown.stdout
    checked = admin("check", "--data-dir", instance.data_dir)
    assert "warn  key directory: not signed by a newsroom key" in checked.stdout
    with run_server(instance, journalist_api=True) as server:
        assert httpx.get(f"{server.base_url}/en/recipients.json").json()["directory"] is None
        can, _ = submit_and_open(instance, server.base_url)
    assert can == ["alice", "bruno"]
    key_file, _newsroom = newsroom_identity(tmp_path / "keys")
    done = admin("directory", "sign", "--data-dir", instance.data_dir, "--newsroom-key", key_file)
    assert done.returncode == 0, done.stderr
    assert [k.name for k in stored_directory(instance).journalists] == ["alice", "bruno"]


def test_verify_site_compares_the_pages_newsroom_key_with_the_pinned_one(
    signed: tuple[Instance, Path, bytes], tmp_path: Path
) -> None:
    """A server whose pages name another newsroom key (one a compromised server
    would put there) fails `lanterne verify-site` for a journalist who pinned the
    real one."""
    from tests.cli_helpers import run

    instance, _key_file, newsroom = signed
    home = {"LANTERNE_HOME": str(tmp_path / "cli")}
    _other_file, other = newsroom_identity(tmp_path / "keys", "intruder")
    with run_server(instance) as server:
        run("config", "--newsroom", envelope.newsroom_fingerprint(newsroom), env=home)
        good = run("verify-site", server.base_url, env=home)
        assert good.returncode == 0, good.stderr
        run("config", "--newsroom", envelope.newsroom_fingerprint(other), env=home)
        bad = run("verify-site", server.base_url, env=home)
    assert bad.returncode == 1
    shown = envelope.newsroom_fingerprint(newsroom).encode()
    assert b"/en/submit: names the newsroom key " + shown in bad.stderr
    assert b"/fr/: does not show the newsroom fingerprint" in bad.stderr


def test_init_makes_the_newsroom_key_where_the_admin_says(tmp_path: Path) -> None:
    """`init --newsroom-key PATH` with nothing at PATH makes a passphrase-sealed
    signing identity there (it can sign, never decrypt), signs the first
    directory with it, and leaves nothing of it in the data directory."""
    instance = init_instance(tmp_path)
    medium = tmp_path / "usb"
    medium.mkdir()
    key_file = medium / "newsroom.signing"
    short = tmp_path / "short"
    short.write_text("tiny\n")
    refused = admin("init", "--data-dir", instance.data_dir, "--newsroom-key", key_file,
                    "--passphrase-file", short)  # fmt: skip
    assert refused.returncode == 1 and "passphrase" in refused.stderr
    assert not key_file.exists()
    phrase = tmp_path / "phrase"
    phrase.write_text("correct horse battery staple newsroom\n")
    done = admin("init", "--data-dir", instance.data_dir, "--newsroom-key", key_file,
                 "--passphrase-file", phrase)  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(key_file.read_text())
    assert doc["type"] == "lanterne-signing-identity/v1" and doc["protection"] == "passphrase"
    assert key_file.stat().st_mode & 0o777 == 0o600
    newsroom = envelope.PublicKey.from_json(json.dumps(doc["public_key"])).signing_key
    assert f"newsroom fingerprint: {envelope.newsroom_fingerprint(newsroom)}" in done.stdout
    assert stored_directory(instance).newsroom_key == newsroom
    for path in files_under(instance.data_dir):
        assert doc["box"].encode() not in path.read_bytes()
    # The same path next time opens the key instead of replacing it.
    again = admin("init", "--data-dir", instance.data_dir, "--newsroom-key", key_file,
                  "--passphrase-file", phrase)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(key_file.read_text()) == doc
    assert stored_directory(instance).serial == 2


def test_a_damaged_serial_is_a_clear_refusal(
    signed: tuple[Instance, Path, bytes], tmp_path: Path
) -> None:
    instance, key_file, _newsroom = signed
    with sqlite3.connect(instance.data_dir / "lanterne.sqlite3") as conn:
        conn.execute("UPDATE meta SET value = 'x1' WHERE key = 'key_directory_serial'")
    data = instance.data_dir
    refused = admin("directory", "sign", "--data-dir", data, "--newsroom-key", key_file)
    assert refused.returncode == 1
    assert "directory serial is damaged" in refused.stderr and "Traceback" not in refused.stderr
    assert stored_directory(instance).serial == 1
