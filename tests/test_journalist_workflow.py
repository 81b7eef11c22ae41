"""End to end (issue 5): a source submits through the no-JS form of a real server;
journalists pull, list, decrypt, triage, note and reply with the real `lanterne`
script; the source reads the reply; refused keys, tampering and the air gap.

The server is one real `lanterne-server run --journalist-port` process; journalists
are removed with the real `lanterne-server journalists remove`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from journalist_cli import designations
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from tests.cli_helpers import run
from tests.server_process import ROOT, SERVER_CMD, Instance, SourceClient, run_server

# Over ~20 s of real servers and CLI runs: CI runs it, scripts/test.sh --fast does not.
pytestmark = pytest.mark.slow


@dataclass
class Newsroom:
    data_dir: Path
    source_url: str
    api_url: str
    keys: Path


@contextlib.contextmanager
def newsroom(base: Path, names: tuple[str, ...]) -> Iterator[Newsroom]:
    keys = base / "keys"
    for name in names:
        write_new_identity(JournalistIdentity.generate(name), keys, None)
    data = base / "data"
    init = [*SERVER_CMD, "init", "--data-dir", str(data)]
    for name in names:
        init += ["--journalist", str(keys / f"{name}.pub")]
    subprocess.run(init, check=True, cwd=ROOT, capture_output=True)
    instance = Instance(data, [], base / "server-tmp", base / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance, journalist_api=True) as server:
        assert server.api_url is not None
        yield Newsroom(data, server.base_url, server.api_url.removesuffix("/api/v1"), keys)


def lanterne(home: Path, *args: object, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = run(*args, env={"LANTERNE_HOME": str(home)})
    if ok:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert b"Traceback" not in done.stderr
    return done


def setup_journalist(room: Newsroom, home: Path, name: str) -> None:
    lanterne(home, "config", "--server", room.api_url, "--identity", room.keys / f"{name}.identity")


def remove_journalist(room: Newsroom, name: str) -> None:
    subprocess.run(
        [*SERVER_CMD, "journalists", "remove", "--data-dir", str(room.data_dir), name],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )


PDF = b"%PDF-1.4\n" + os.urandom(300_000) + b"\n%%EOF\n"
TEXT = "Les chiffres ont été modifiés le 3 mars.\n".encode()


def test_submit_pull_decrypt_reply_triage_and_refusals(tmp_path: Path) -> None:
    with newsroom(tmp_path, ("alice", "bruno")) as room:
        with SourceClient(room.source_url) as source:
            codename = source.first_submission(
                "Bonjour, voici les pièces.",
                [("rapport.pdf", PDF, "application/pdf"), (".notes.txt", TEXT, "text/plain")],
            )

        alice, bruno = tmp_path / "alice", tmp_path / "bruno"
        setup_journalist(room, alice, "alice")
        pulled = lanterne(alice, "pull")
        assert b"1 source;" in pulled.stdout
        [row] = json.loads(lanterne(alice, "list", "--json").stdout)
        sid = row["id"]
        assert row["status"] == "new" and row["submissions"] == 1
        assert row["missing_objects"] == 0
        assert row["designation"] == designations.designation(sid)

        out = tmp_path / "out-alice"
        lanterne(alice, "decrypt", row["designation"], "--out", out)
        [sub] = (out / designations.slug(sid)).iterdir()
        assert (sub / "original" / "rapport.pdf").read_bytes() == PDF
        assert (sub / "original" / "notes.txt").read_bytes() == TEXT
        assert (sub / "message.txt").read_text() == "Bonjour, voici les pièces."
        assert (sub / "cleaned").is_dir() and (sub / "cleaning.json").is_file()

        # Pull again: nothing new is downloaded.
        assert b"0 new objects" in lanterne(alice, "pull").stdout

        # Reply: the source reads it after logging in with the codename.
        lanterne(alice, "reply", sid[:8], "Merci. Pouvez-vous préciser la date ?")
        with SourceClient(room.source_url) as source:
            assert source.login(codename).status_code == 303
            inbox = source.get("/en/inbox").text
        assert "Merci. Pouvez-vous préciser la date ?" in inbox

        # Triage and a note, seen by a second journalist who reads the same files.
        lanterne(alice, "star", sid)
        lanterne(alice, "tag", sid, "budget", "urgent")
        lanterne(alice, "assign", sid, "bruno")
        lanterne(alice, "seen", sid)
        lanterne(alice, "note", sid, "Appeler l'avocate avant publication.")
        setup_journalist(room, bruno, "bruno")
        lanterne(bruno, "pull")
        [brow] = json.loads(lanterne(bruno, "list", "--json").stdout)
        assert brow["starred"] and brow["tags"] == ["budget", "urgent"]
        assert brow["assignee"] == "bruno" and brow["status"] == "seen"
        assert brow["notes"] == 1 and brow["replies"] == 1
        shown = lanterne(bruno, "show", sid).stdout.decode()
        assert "Appeler l'avocate avant publication." in shown
        assert "Merci. Pouvez-vous préciser la date ?" in shown
        out_b = tmp_path / "out-bruno"
        lanterne(bruno, "decrypt", sid, "--out", out_b, "--no-clean")
        [sub_b] = (out_b / designations.slug(sid)).iterdir()
        assert (sub_b / "original" / "rapport.pdf").read_bytes() == PDF

        # An unknown key is refused.
        write_new_identity(JournalistIdentity.generate("carol"), room.keys, None)
        carol = tmp_path / "carol"
        setup_journalist(room, carol, "carol")
        refused = lanterne(carol, "pull", ok=False)
        assert refused.returncode == 5 and b"refused" in refused.stderr

        # A removed journalist is refused too.
        remove_journalist(room, "bruno")
        refused = lanterne(bruno, "pull", ok=False)
        assert refused.returncode == 5 and b"refused" in refused.stderr

        # A tampered object (changed on the server) is refused with a clear message.
        with SourceClient(room.source_url) as source:
            source.login(codename)
            assert (
                source.submit("deuxième envoi", [("b.bin", b"B" * 70_000, "")]).status_code == 303
            )
        before = {o.id for o in _vault_objects(alice)}
        lanterne(alice, "pull")
        new = [o for o in _vault_objects(alice) if o.id not in before and o.kind == "file"]
        [obj] = new
        server_copy = room.data_dir / "objects" / obj.id
        data = bytearray(server_copy.read_bytes())
        data[-50] ^= 1
        server_copy.write_bytes(bytes(data))
        (alice / "vault" / "objects" / obj.id).unlink()  # fetch the tampered copy
        lanterne(alice, "pull")
        tampered = lanterne(alice, "decrypt", sid, "--out", tmp_path / "out-2", ok=False)
        assert tampered.returncode == 3
        assert b"altered" in tampered.stderr and obj.id.encode() in tampered.stderr

        # Delete: gone from the server and this vault.
        lanterne(alice, "delete", sid, "--yes")
        assert json.loads(lanterne(alice, "list", "--json").stdout) == []
        assert b"0 sources" in lanterne(alice, "pull").stdout


def _vault_objects(home: Path) -> list[object]:
    from journalist_cli.vault import Vault

    return Vault(home / "vault").all_objects()  # type: ignore[return-value]


def test_air_gap_bundle_and_resumed_download(tmp_path: Path) -> None:
    with newsroom(tmp_path, ("alice",)) as room:
        big = os.urandom(3 << 20)
        with SourceClient(room.source_url) as source:
            source.first_submission("gros fichier", [("big.bin", big, "")])

        # The air-gapped machine writes a signing identity for the online one.
        online, airgap = tmp_path / "online", tmp_path / "airgap"
        signing = tmp_path / "alice.signing"
        lanterne(
            airgap, "signing-key", room.keys / "alice.identity", "--out", signing, "--no-passphrase"
        )
        lanterne(online, "config", "--server", room.api_url, "--identity", signing)

        # An interrupted download: keep only the first MiB of the big object.
        lanterne(online, "pull")
        from journalist_cli.vault import Vault

        vault = Vault(online / "vault")
        [big_obj] = [o for o in vault.all_objects() if o.kind == "file"]
        final = vault.object_path(big_obj.id)
        vault.partial_path(big_obj.id).write_bytes(final.read_bytes()[: 1 << 20])
        final.unlink()
        resumed = lanterne(online, "pull", "--bundle", tmp_path / "carry.tar", "--all")
        assert b"1 resumed" in resumed.stdout
        assert final.read_bytes() == (room.data_dir / "objects" / big_obj.id).read_bytes()

        # The online machine cannot decrypt.
        refused = lanterne(online, "decrypt", big_obj.source_id, "--out", tmp_path / "x", ok=False)
        assert refused.returncode == 2 and b"signing identity" in refused.stderr

        # The air-gapped machine imports and decrypts, offline.
        lanterne(airgap, "config", "--identity", room.keys / "alice.identity")
        lanterne(airgap, "import", tmp_path / "carry.tar")
        out = tmp_path / "out"
        lanterne(airgap, "decrypt", big_obj.source_id, "--out", out, "--no-clean")
        [sub] = (out / designations.slug(big_obj.source_id)).iterdir()
        assert (sub / "original" / "big.bin").read_bytes() == big


def test_every_command_that_changes_the_vault_leaves_listings_true(tmp_path: Path) -> None:
    """After each command, `list --json` says what a fresh pull from the server says
    (issue 12, item 3: `delete --submission` used to leave its counts and size)."""
    with newsroom(tmp_path, ("alice", "bruno")) as room:
        with SourceClient(room.source_url) as source:
            source.first_submission("premier envoi", [("a.bin", os.urandom(90_000), "")])
            assert source.submit("second envoi", [("b.bin", b"B" * 50_000, "")]).status_code == 303
        alice = tmp_path / "alice"
        setup_journalist(room, alice, "alice")
        lanterne(alice, "pull")
        [row] = json.loads(lanterne(alice, "list", "--json").stdout)
        sid = row["id"]
        assert row["submissions"] == 2

        from journalist_cli.vault import Vault

        [_, second] = Vault(alice / "vault").submissions(sid)
        steps: list[tuple[object, ...]] = [
            ("delete", sid, "--submission", second.id[:8], "--yes"),
            ("note", sid, "une note"),
            ("reply", sid, "une réponse"),
            ("tag", sid, "budget"),
            ("assign", sid, "bruno"),  # seen and star take the same path
        ]
        for n, step in enumerate(steps):
            lanterne(alice, *step)
            fresh = tmp_path / f"fresh-{n}"
            setup_journalist(room, fresh, "alice")
            lanterne(fresh, "pull")
            acting = json.loads(lanterne(alice, "list", "--json").stdout)
            assert acting == json.loads(lanterne(fresh, "list", "--json").stdout), step
            table = lanterne(alice, "list").stdout
            assert table == lanterne(fresh, "list").stdout, step
        assert acting[0]["submissions"] == 1 and acting[0]["size"] < row["size"]


def test_a_source_leaving_takes_nothing_until_a_journalist_deletes(tmp_path: Path) -> None:
    """Issue 11 item 2, end to end: real server, real source pages, real CLI."""
    with newsroom(tmp_path, ("alice",)) as room:
        with SourceClient(room.source_url) as source:
            source.first_submission("Je m'en vais.", [("preuve.pdf", PDF, "application/pdf")])
            alice = tmp_path / "alice"
            setup_journalist(room, alice, "alice")
            lanterne(alice, "pull")
            [row] = json.loads(lanterne(alice, "list", "--json").stdout)
            sid = row["id"]
            lanterne(alice, "reply", sid, "Merci.")
            lanterne(alice, "note", sid, "Source fiable.")
            lanterne(alice, "star", sid)
            page = source.get("/en/delete")
            token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            done = source.client.post("/en/delete", data={"csrf_token": token, "confirm": "yes"})
            assert done.status_code == 200
        pulled = lanterne(alice, "pull")
        assert b"account deleted by the source" in pulled.stdout
        [row] = json.loads(lanterne(alice, "list", "--json").stdout)
        assert row["id"] == sid and row["account_deleted"] is True
        assert (row["submissions"], row["notes"], row["replies"]) == (1, 1, 0)
        assert row["starred"] is True and row["reply_key_changed"] is False
        assert b"account deleted by the source" in lanterne(alice, "list").stdout
        shown = lanterne(alice, "show", sid).stdout.decode()
        assert "account deleted by the source" in shown and "Source fiable." in shown
        assert "Je m'en vais." in shown
        out = tmp_path / "out"
        lanterne(alice, "decrypt", sid, "--out", out, "--no-clean")
        [sub] = (out / designations.slug(sid)).iterdir()
        assert (sub / "original" / "preuve.pdf").read_bytes() == PDF
        refused = lanterne(alice, "reply", sid, "Encore là ?", ok=False)
        assert refused.returncode == 1 and b"deleted their account" in refused.stderr
        assert b"none was sent" in refused.stderr
        # Only a journalist's delete removes it: on the server, files included,
        # and in the vault.
        objects = room.data_dir / "objects"
        assert any(objects.iterdir())
        lanterne(alice, "delete", sid, "--yes")
        assert json.loads(lanterne(alice, "list", "--json").stdout) == []
        assert [p.name for p in objects.iterdir() if not p.name.startswith(".")] == []
        lanterne(alice, "pull")
        assert json.loads(lanterne(alice, "list", "--json").stdout) == []
