"""Identities wrapped to an existing OpenPGP key, with a real gpg and a throwaway home."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import run
from tests.gnupg_home import GnuPGHome, gnupg_home


@pytest.fixture(scope="module")
def gpg() -> Iterator[GnuPGHome]:
    with gnupg_home() as home:
        yield home


def test_generate_wrapped_to_gpg_and_decrypt(gpg: GnuPGHome, tmp_path: Path) -> None:
    r = run(
        "keys",
        "generate",
        "--name",
        "dana",
        "--dir",
        tmp_path,
        "--gpg",
        gpg.fingerprint,
        env=gpg.env,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "dana.identity").read_text())
    assert doc["protection"] == "openpgp"
    assert doc["openpgp_fingerprint"] == gpg.fingerprint
    assert doc["openpgp_message"].startswith("-----BEGIN PGP MESSAGE-----")
    assert "secret" not in doc
    sealed = run("file", "encrypt", "-r", tmp_path / "dana.pub", input=b"via gpg-agent").stdout
    out = run("file", "decrypt", "-i", tmp_path / "dana.identity", input=sealed, env=gpg.env)
    assert (out.returncode, out.stdout) == (0, b"via gpg-agent")


def test_without_the_gpg_key_decryption_fails_cleanly(gpg: GnuPGHome, tmp_path: Path) -> None:
    assert (
        run(
            "keys",
            "generate",
            "--name",
            "eve",
            "--dir",
            tmp_path,
            "--gpg",
            gpg.fingerprint,
            env=gpg.env,
        ).returncode
        == 0
    )
    sealed = run("file", "encrypt", "-r", tmp_path / "eve.pub", input=b"x").stdout
    with gnupg_home("Someone Else <else@example.org>") as other:
        out = run(
            "file",
            "decrypt",
            "-i",
            tmp_path / "eve.identity",
            "-o",
            tmp_path / "o",
            input=sealed,
            env=other.env,
        )
    assert out.returncode == 1
    assert b"gpg could not decrypt the identity" in out.stderr
    assert b"Traceback" not in out.stderr
    assert not (tmp_path / "o").exists()


def test_protect_moves_between_passphrase_and_gpg(gpg: GnuPGHome, tmp_path: Path) -> None:
    assert (
        run("keys", "generate", "--name", "fay", "--dir", tmp_path, "--no-passphrase").returncode
        == 0
    )
    identity = tmp_path / "fay.identity"
    sealed = run("file", "encrypt", "-r", tmp_path / "fay.pub", input=b"kept across changes").stdout
    r = run("keys", "protect", identity, "--gpg", gpg.fingerprint, env=gpg.env)
    assert r.returncode == 0, r.stderr
    assert json.loads(identity.read_text())["protection"] == "openpgp"
    pp = tmp_path / "pp"
    pp.write_text("a long enough passphrase\n")
    r = run("keys", "protect", identity, "--new-passphrase-file", pp, env=gpg.env)
    assert r.returncode == 0, r.stderr
    assert json.loads(identity.read_text())["protection"] == "passphrase"
    out = run("file", "decrypt", "-i", identity, "--passphrase-file", pp, input=sealed)
    assert (out.returncode, out.stdout) == (0, b"kept across changes")


def test_unknown_gpg_key_is_refused(gpg: GnuPGHome, tmp_path: Path) -> None:
    r = run("keys", "generate", "--name", "gus", "--dir", tmp_path, "--gpg", "A" * 40, env=gpg.env)
    assert r.returncode == 1
    assert b"gpg could not encrypt" in r.stderr
    assert not (tmp_path / "gus.identity").exists()


def test_upgrade_keeps_the_openpgp_protection(gpg: GnuPGHome, tmp_path: Path) -> None:
    r = run("keys", "generate", "--name", "omar", "--dir", tmp_path, "--gpg", gpg.fingerprint,
            "--x25519-only", env=gpg.env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    before = run("file", "encrypt", "-r", tmp_path / "omar.pub", input=b"old").stdout
    r = run("keys", "upgrade", tmp_path / "omar.identity", env=gpg.env)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "omar.identity").read_text())
    assert (doc["type"], doc["protection"]) == ("lanterne-identity/v2", "openpgp")
    assert doc["openpgp_fingerprint"] == gpg.fingerprint and "secret" not in doc
    after = run("file", "encrypt", "-r", tmp_path / "omar.pub", input=b"new").stdout
    for sealed, plain in ((before, b"old"), (after, b"new")):
        out = run("file", "decrypt", "-i", tmp_path / "omar.identity", input=sealed, env=gpg.env)
        assert (out.returncode, out.stdout) == (0, plain)
