"""The journalist CLI pins the newsroom key (issue 15 §5; journalist_cli/newsroom.py):
notes and replies go only to keys of a directory that key signed, an older
directory is refused, a directory of another key is refused, and every change of
journalist keys is shown. A real server, the real `lanterne-server` and `lanterne`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

import envelope
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from tests.cli_helpers import run
from tests.server_process import ROOT, SERVER_CMD, Instance, SourceClient, run_server

pytestmark = pytest.mark.slow


def admin(*args: object) -> None:
    done = subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def lanterne(home: Path, *args: object, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = run(*args, env={"LANTERNE_HOME": str(home)})
    assert b"Traceback" not in done.stderr
    if ok:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def objects(data: Path) -> set[Path]:
    return {p for p in (data / "objects").rglob("*") if p.is_file()}


def document(data: Path) -> str:
    with sqlite3.connect(data / "lanterne.sqlite3") as conn:
        (value,) = conn.execute("SELECT value FROM meta WHERE key = 'key_directory'").fetchone()
    return str(value)


def put_document(data: Path, value: str) -> None:
    with sqlite3.connect(data / "lanterne.sqlite3") as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'key_directory'", (value,))


def test_a_pinned_newsroom_key_decides_who_notes_go_to(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    ids = {n: JournalistIdentity.generate(n) for n in ("alice", "bruno", "carol", "newsroom")}
    for ident in ids.values():
        write_new_identity(ident, keys, None)
    newsroom_key = keys / "newsroom.identity"
    data = tmp_path / "data"
    admin("init", "--data-dir", data, "--journalist", keys / "alice.pub",
          "--journalist", keys / "bruno.pub", "--newsroom-key", newsroom_key)  # fmt: skip
    serial_1 = document(data)
    admin("directory", "sign", "--data-dir", data, "--newsroom-key", newsroom_key)
    newsroom_pub = envelope.PublicKey.from_json((keys / "newsroom.pub").read_bytes())
    fingerprint = envelope.newsroom_fingerprint(newsroom_pub.signing_key)
    instance = Instance(data, [], tmp_path / "server-tmp", tmp_path / "server.log")
    instance.tmp_dir.mkdir()
    home = tmp_path / "alice-home"
    with run_server(instance, journalist_api=True) as server:
        assert server.api_url is not None
        with SourceClient(server.base_url) as source:
            source.first_submission("canary-cli-newsroom")
        api = server.api_url.removesuffix("/api/v1")
        lanterne(home, "config", "--server", api, "--identity", keys / "alice.identity")
        unpinned = lanterne(home, "pull")
        assert b"signed by a newsroom key you have not pinned" in unpinned.stderr
        bad = lanterne(home, "config", "--newsroom", "12345 678", ok=False)
        assert bad.returncode == 2 and b"8 groups of 5 digits" in bad.stderr
        # Pinned with its digits run together, as someone might copy them.
        lanterne(home, "config", "--newsroom", fingerprint.replace(" ", ""))
        assert fingerprint.encode() in lanterne(home, "config").stdout
        assert b"not pinned" not in lanterne(home, "pull").stderr
        state = json.loads((home / "newsroom.json").read_text())
        assert state["serial"] == 2 and sorted(state["journalists"]) == ["alice", "bruno"]
        [row] = json.loads(lanterne(home, "list", "--json").stdout)

        # The server's database gains a key the newsroom never signed: notes skip it.
        carol = ids["carol"]
        with sqlite3.connect(data / "lanterne.sqlite3") as conn:
            conn.execute(
                "INSERT INTO journalists (name, encryption_key, signing_key, role, added_on,"
                " hybrid_key) VALUES ('carol', ?, ?, 'journalist', '2026-12-04', ?)",
                (
                    carol.public.x25519.public_bytes,
                    carol.public.signing_key,
                    carol.public.recipient.public_bytes,
                ),
            )
        before = objects(data)
        lanterne(home, "note", row["id"], "note for the signed list")
        [note_path] = objects(data) - before
        note = note_path.read_bytes()
        assert (
            envelope.decrypt_bytes(note, ids["bruno"].identities()) == b"note for the signed list"
        )
        with pytest.raises(envelope.NoMatchingKeyError):
            envelope.decrypt_bytes(note, carol.identities())

        # The admin signs carol in: the next pull says so, loudly.
        admin("journalists", "add", "--data-dir", data, "--no-client-auth", "--replace",
              "--newsroom-key", newsroom_key, keys / "carol.pub")  # fmt: skip
        pulled = lanterne(home, "pull")
        assert b"newsroom key directory 3: new journalist key: carol" in pulled.stderr

        # A replay of the first directory (validly signed, older) is refused.
        current = document(data)
        put_document(data, serial_1)
        refused = lanterne(home, "note", row["id"], "never sent", ok=False)
        assert refused.returncode != 0
        assert b"older than one already seen" in refused.stderr
        put_document(data, current)

        # Another newsroom key, however the server presents it, is refused.
        other = tmp_path / "other-home"
        lanterne(other, "config", "--server", api, "--identity", keys / "alice.identity")
        lanterne(other, "config", "--newsroom", "00000 " * 7 + "00000")
        refused = lanterne(other, "pull", ok=False)
        assert b"signed by another newsroom key" in refused.stderr
        assert not (other / "newsroom.json").exists()
