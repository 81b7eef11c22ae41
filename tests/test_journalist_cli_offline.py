"""The offline commands through the real `lanterne` script: list, show, decrypt, export
(real gpg, throwaway GnuPG home), import."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from journalist_cli import bundle, designations
from journalist_cli.vault import Vault
from tests.cli_helpers import run
from tests.gnupg_home import gnupg_home
from tests.journalist_fixtures import add_items, build_source, journalist, store, write_identity


@pytest.fixture
def setup(tmp_path: Path) -> tuple[dict[str, str], object, object]:
    alice = journalist("alice")
    home = tmp_path / "home"
    env = {"LANTERNE_HOME": str(home)}
    identity = write_identity(alice, tmp_path / "keys")
    assert run("config", "--identity", identity, env=env).returncode == 0
    r = [alice.decryption.recipient]
    built = build_source(
        r,
        [
            ("Première \x1b[2J soumission", [("note.txt", b"contenu exact\n", "text/plain")]),
            ("suite", [("../scan.bin", bytes(range(256)) * 40, "application/octet-stream")]),
        ],
        answers=[{"id": "q", "question": "Which ministry?", "answer": "Finance"}],
    )
    assert built.reply_identity is not None
    add_items(
        built, "reply", [("alice", "Thanks, we read it.")], [built.reply_identity.recipient, *r]
    )
    vault = Vault.open(home)
    store(vault, built)
    return env, built, alice


def test_list_json(setup: tuple[dict[str, str], object, object]) -> None:
    env, built, _ = setup
    done = run("list", "--json", env=env)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert row["id"] == built.id  # type: ignore[attr-defined]
    assert row["designation"] == designations.designation(row["id"])
    assert row["designation_fr"] == designations.designation(row["id"], "fr")
    assert row["status"] == "new" and row["submissions"] == 2 and row["replies"] == 1
    assert row["missing_objects"] == 0 and row["stored_bytes"] > 0
    table = run("list", env=env)
    assert table.returncode == 0
    assert designations.designation(row["id"]).encode() in table.stdout


def test_show_prints_safely(setup: tuple[dict[str, str], object, object]) -> None:
    env, built, _ = setup
    name = designations.designation(built.id)  # type: ignore[attr-defined]
    done = run("show", name, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "Première" in out and "soumission" in out
    assert "\x1b[2J" not in out and "<U+1B>" in out  # the escape is shown, not obeyed
    assert "Which ministry?: Finance" in out
    assert "note.txt" in out and "_scan.bin" in out
    assert "Thanks, we read it." in out


def test_decrypt_gives_exact_bytes(
    setup: tuple[dict[str, str], object, object], tmp_path: Path
) -> None:
    env, built, _ = setup
    out = tmp_path / "out"
    done = run("decrypt", built.id[:8], "--out", out, "--no-clean", env=env)  # type: ignore[attr-defined]
    assert done.returncode == 0, done.stderr
    slug = designations.slug(built.id)  # type: ignore[attr-defined]
    [first] = (out / slug).glob("*/original/note.txt")
    assert first.read_bytes() == b"contenu exact\n"
    [second] = (out / slug).glob("*/original/_scan.bin")
    assert second.read_bytes() == bytes(range(256)) * 40
    assert (first.stat().st_mode & 0o777) == 0o600
    again = run("decrypt", built.id[:8], "--out", out, env=env)  # type: ignore[attr-defined]
    assert again.returncode == 0 and b"already decrypted" in again.stdout


def test_decrypt_summary_says_why_each_file_was_not_cleaned(tmp_path: Path) -> None:
    """Text and Markdown are "nothing to clean" (not failures, no mat2 needed); a file
    that could not be cleaned is named in the summary with its reason."""
    alice = journalist("alice")
    env = {"LANTERNE_HOME": str(tmp_path / "home")}
    assert (
        run("config", "--identity", write_identity(alice, tmp_path / "k"), env=env).returncode == 0
    )
    built = build_source(
        [alice.decryption.recipient],
        [
            (
                "three files",
                [
                    ("notes.txt", b"plain words\n", "text/plain"),
                    ("draft.md", b"# Draft\n\n*words*\n", "text/markdown"),
                    ("blob.bin", bytes(range(256)) * 4, "application/octet-stream"),
                ],
            )
        ],
    )
    store(Vault.open(tmp_path / "home"), built)
    done = run("decrypt", built.id, "--out", tmp_path / "out", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "0 cleaned, 2 nothing to clean, 1 failed" in out
    assert "  original/blob.bin: failed: unsupported: no cleaner for " in out
    assert "notes.txt" not in out and "draft.md" not in out  # nothing to say about them
    assert "cleaning.json" in out
    [sub] = (tmp_path / "out" / designations.slug(built.id)).iterdir()
    assert (sub / "cleaned" / "notes.txt").read_bytes() == b"plain words\n"
    assert (sub / "cleaned" / "draft.md").read_bytes() == b"# Draft\n\n*words*\n"
    reports = json.loads((sub / "cleaning.json").read_text())
    assert [r["status"] for r in reports] == ["nothing to clean", "nothing to clean", "failed"]


def test_tampered_object_exit_code_and_message(
    setup: tuple[dict[str, str], object, object], tmp_path: Path
) -> None:
    env, built, _ = setup
    vault = Vault.open(Path(env["LANTERNE_HOME"]))
    sub = built.detail.submissions[1]  # type: ignore[attr-defined]
    target = vault.object_path(sub.objects[-1].id)
    data = bytearray(target.read_bytes())
    data[200] ^= 0x40
    target.write_bytes(bytes(data))
    done = run("decrypt", built.id, "--out", tmp_path / "o", "--no-clean", env=env)  # type: ignore[attr-defined]
    assert done.returncode == 3
    assert b"altered" in done.stderr and sub.objects[-1].id.encode() in done.stderr
    assert b"Traceback" not in done.stderr


def test_export_to_openpgp(setup: tuple[dict[str, str], object, object], tmp_path: Path) -> None:
    env, built, _ = setup
    out = tmp_path / "export"
    with gnupg_home("Lawyer <lawyer@example.org>") as gpg:
        done = run(
            "export",
            built.id,
            "--gpg",
            gpg.fingerprint,
            "--out",
            out,  # type: ignore[attr-defined]
            env={**env, **gpg.env},
        )
        assert done.returncode == 0, done.stderr
        files = sorted(p for p in out.rglob("*") if p.is_file())
        assert files and all(p.suffix == ".gpg" for p in files)
        [note] = [p for p in files if p.name == "note.txt.gpg"]
        plain = subprocess.run(
            ["gpg", "--batch", "--homedir", str(gpg.path), "--decrypt", str(note)],
            capture_output=True,
            check=True,
        ).stdout
        assert plain == b"contenu exact\n"
        assert b"contenu exact" not in note.read_bytes()
        # No plaintext left behind in the output directory.
        assert not [p for p in out.rglob("*") if p.name.startswith(".lanterne-export")]
    bad = run("export", built.id, "--gpg", "1234", "--out", out, env=env)  # type: ignore[attr-defined]
    assert bad.returncode == 2 and b"fingerprint" in bad.stderr


def test_import_command(setup: tuple[dict[str, str], object, object], tmp_path: Path) -> None:
    env, built, alice = setup
    vault = Vault.open(Path(env["LANTERNE_HOME"]))
    path = tmp_path / "carry.tar"
    signing = alice.signing  # type: ignore[attr-defined]
    bundle.write_bundle(vault, path, [o.id for o in vault.all_objects()], "2026-11-26", signing)
    identity = Path(env["LANTERNE_HOME"]).parent / "keys" / "alice.identity"
    other = {"LANTERNE_HOME": str(tmp_path / "airgap")}
    assert run("config", "--identity", identity, env=other).returncode == 0
    done = run("import", path, env=other)
    assert done.returncode == 0, done.stderr
    listed = json.loads(run("list", "--json", env=other).stdout)
    assert [r["id"] for r in listed] == vault.source_ids()
    hostile = tmp_path / "hostile.tar"
    hostile.write_bytes(b"garbage" * 1000)
    done = run("import", hostile, env=other)
    assert done.returncode == 1 and b"not a Lanterne bundle" in done.stderr

    # A bundle signed by someone else (here: bob, a colleague) is refused, nothing changes.
    bundle.write_bundle(vault, tmp_path / "bob.tar", [], "2026-11-27", journalist("bob").signing)
    done = run("import", tmp_path / "bob.tar", env=other)
    assert done.returncode == 1 and b"not signed by your signing key" in done.stderr
    assert len(json.loads(run("list", "--json", env=other).stdout)) == 1

    # The online side deleted the source: the bundle lists it as gone. With no
    # terminal and no --yes, nothing is deleted and the message says how.
    vault.delete_source(built.id)  # type: ignore[attr-defined]
    later = tmp_path / "later.tar"
    bundle.write_bundle(vault, later, [], "2026-11-28", signing)
    done = run("import", later, input=b"", env=other)  # stdin is not a terminal
    assert done.returncode == 0, done.stderr
    assert designations.designation(built.id).encode() in done.stdout  # type: ignore[attr-defined]
    assert b"--yes" in done.stdout and b"kept 1 item" in done.stdout
    assert [r["id"] for r in json.loads(run("list", "--json", env=other).stdout)] == [
        built.id  # type: ignore[attr-defined]
    ]
    done = run("import", later, "--yes", env=other)
    assert done.returncode == 0 and b"deleted 1 item" in done.stdout
    assert json.loads(run("list", "--json", env=other).stdout) == []


def test_list_is_readable_at_80_columns(tmp_path: Path) -> None:
    """Issue 12, item 8: no column that matters truncated ("stat…"), plurals right."""
    from dataclasses import replace

    from rich.cells import cell_len

    from journalist_cli.commands._shared import human_size

    me = journalist("alice")
    home = tmp_path / "home"
    vault = Vault.open(home)
    r = [me.decryption.recipient]
    built = build_source(r, [("x", [("a.bin", b"a" * 5000, "")])])
    long = replace(
        built.detail.source,
        tags=("budget", "ministry-of-finance", "urgent"),
        assignee="alexandra-de-la-fontaine",
        starred=True,
        replies=3,
    )
    vault.store_detail(replace(built.detail, source=long))
    for oid, blob in built.blobs.items():
        vault.write_object(oid, blob)
    env = {"LANTERNE_HOME": str(home), "COLUMNS": "80"}
    done = run("list", env=env)
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode()
    lines = text.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), text
    assert "…" not in text, text
    header = lines[0].split()
    assert header == ["source", "state", "subs", "size", "tags", "assignee", "last"]
    for value in ("new", "1 +3r", human_size(long.size)):
        assert value in text
    for word in designations.designation(built.id).split():
        assert word in text
    assert "alexandra" in text and "budget" in text and "urgent" in text
    assert "1 source;" in text and "1 sources" not in text
    wide = run("list", env={**env, "COLUMNS": "120"}).stdout.decode()
    assert built.id[:8] in wide.splitlines()[1]  # the id column, when there is room


def test_designation_prefixes(setup: tuple[dict[str, str], object, object]) -> None:
    env, built, _ = setup
    sid = built.id  # type: ignore[attr-defined]
    first_word = designations.designation(sid).split()[0]
    done = run("show", first_word[:4], env=env)
    assert done.returncode == 0, done.stderr
    assert "Which ministry?: Finance" in done.stdout.decode()
