"""`lanterne keys` and `lanterne file`: the age-like commands, run as a real process."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import envelope
from journalist_cli import identity_store
from tests.cli_helpers import run

EXIT_DECRYPT_FAILED = 3


@pytest.fixture
def keydir(tmp_path: Path) -> Path:
    d = tmp_path / "keys"
    for name in ("alice", "bob"):
        r = run("keys", "generate", "--name", name, "--dir", d, "--no-passphrase")
        assert r.returncode == 0, r.stderr
    return d


def test_generate_writes_private_and_public_files(keydir: Path) -> None:
    identity = keydir / "alice.identity"
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    pub = json.loads((keydir / "alice.pub").read_text())
    # Hybrid by default (issue 15): typed keys, the X-Wing one included.
    assert pub["type"] == "lanterne-public-key/v2"
    assert [k["type"] for k in pub["keys"]] == ["x25519", "xwing", "ed25519"]
    assert json.loads(identity.read_text())["type"] == "lanterne-identity/v2"
    assert "secret" not in (keydir / "alice.pub").read_text()
    assert len(pub["fingerprint"].split()) == 8


def stanza_types(sealed: bytes) -> list[int]:
    parsed = envelope._header.parse_header(sealed)
    assert parsed is not None
    return [s.type for s in parsed.stanzas]


def test_file_encrypt_writes_only_hybrid_stanzas_to_hybrid_keys(
    keydir: Path, tmp_path: Path
) -> None:
    run("keys", "generate", "--name", "old", "--dir", tmp_path / "o", "--no-passphrase",
        "--x25519-only")  # fmt: skip
    old_pub = tmp_path / "o" / "old.pub"
    assert json.loads(old_pub.read_text())["type"] == "lanterne-public-key/v1"
    r = run("file", "encrypt", "-r", keydir / "alice.pub", "-r", old_pub, "-r",
            keydir / "bob.pub", input=b"mixed")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert stanza_types(r.stdout) == [0x0002, 0x0001, 0x0002]
    for ident in (keydir / "alice.identity", tmp_path / "o" / "old.identity"):
        out = run("file", "decrypt", "-i", ident, input=r.stdout)
        assert (out.returncode, out.stdout) == (0, b"mixed")


def test_upgrade_adds_a_hybrid_key_and_old_envelopes_still_open(tmp_path: Path) -> None:
    pp = tmp_path / "pp"
    pp.write_text("correct horse battery\n")
    k = tmp_path / "k"
    r = run("keys", "generate", "--name", "dana", "--dir", k, "--passphrase-file", pp,
            "--x25519-only")  # fmt: skip
    assert r.returncode == 0, r.stderr
    old_pub = identity_store.read_public_key(k / "dana.pub")
    assert old_pub.hybrid is None
    before = run("file", "encrypt", "-r", k / "dana.pub", input=b"written before").stdout
    assert stanza_types(before) == [0x0001]

    r = run("keys", "upgrade", k / "dana.identity", "--passphrase-file", pp)
    assert r.returncode == 0, r.stderr
    new_pub = identity_store.read_public_key(k / "dana.pub")
    assert new_pub.hybrid is not None
    # Same X25519 and signing keys, a new fingerprint covering the hybrid key too.
    assert (new_pub.x25519, new_pub.signing_key) == (old_pub.x25519, old_pub.signing_key)
    assert new_pub.fingerprint != old_pub.fingerprint
    assert f"new fingerprint:  {new_pub.fingerprint}" in r.stdout.decode()
    doc = json.loads((k / "dana.identity").read_text())
    assert (doc["type"], doc["protection"]) == ("lanterne-identity/v2", "passphrase")
    assert stat.S_IMODE((k / "dana.identity").stat().st_mode) == 0o600

    after = run("file", "encrypt", "-r", k / "dana.pub", input=b"written after").stdout
    assert stanza_types(after) == [0x0002]
    for sealed, plain in ((before, b"written before"), (after, b"written after")):
        out = run("file", "decrypt", "-i", k / "dana.identity", "--passphrase-file", pp,
                  input=sealed)  # fmt: skip
        assert (out.returncode, out.stdout) == (0, plain)

    # Again: nothing to add; the .pub is written back if it went missing.
    (k / "dana.pub").unlink()
    r = run("keys", "upgrade", k / "dana.identity", "--passphrase-file", pp)
    assert r.returncode == 0 and b"already has a hybrid key" in r.stdout
    assert identity_store.read_public_key(k / "dana.pub") == new_pub


def test_upgrade_refuses_a_wrong_passphrase_and_changes_nothing(tmp_path: Path) -> None:
    pp = tmp_path / "pp"
    pp.write_text("correct horse battery\n")
    k = tmp_path / "k"
    run("keys", "generate", "--name", "eli", "--dir", k, "--passphrase-file", pp,
        "--x25519-only")  # fmt: skip
    before = (k / "eli.identity").read_bytes(), (k / "eli.pub").read_bytes()
    pp.write_text("wrong horse battery\n")
    r = run("keys", "upgrade", k / "eli.identity", "--passphrase-file", pp)
    assert r.returncode == 1 and b"wrong passphrase" in r.stderr
    assert ((k / "eli.identity").read_bytes(), (k / "eli.pub").read_bytes()) == before


def test_show_prints_the_fingerprint_of_both_files(keydir: Path) -> None:
    fp = json.loads((keydir / "alice.pub").read_text())["fingerprint"]
    for f in ("alice.pub", "alice.identity"):
        r = run("keys", "show", keydir / f)
        assert r.returncode == 0
        assert f"fingerprint: {fp}" in r.stdout.decode()


def test_generate_refuses_to_overwrite(keydir: Path) -> None:
    before = (keydir / "alice.identity").read_bytes()
    r = run("keys", "generate", "--name", "alice", "--dir", keydir, "--no-passphrase")
    assert r.returncode == 2
    assert b"already exists" in r.stderr
    assert (keydir / "alice.identity").read_bytes() == before


def test_encrypt_to_two_recipients_each_decrypts(keydir: Path, tmp_path: Path) -> None:
    src = tmp_path / "doc.bin"
    src.write_bytes(os.urandom(300_001))
    sealed = tmp_path / "doc.env"
    r = run(
        "file", "encrypt", "-r", keydir / "alice.pub", "-r", keydir / "bob.pub", "-o", sealed, src
    )
    assert r.returncode == 0, r.stderr
    for name in ("alice", "bob"):
        out = tmp_path / f"out-{name}"
        r = run("file", "decrypt", "-i", keydir / f"{name}.identity", "-o", out, sealed)
        assert r.returncode == 0, r.stderr
        assert out.read_bytes() == src.read_bytes()


def test_stdin_to_stdout(keydir: Path) -> None:
    r = run("file", "encrypt", "-r", keydir / "bob.pub", input=b"through pipes")
    assert r.returncode == 0
    assert r.stdout.startswith(b"LANTERNE")
    r2 = run("file", "decrypt", "-i", keydir / "bob.identity", input=r.stdout)
    assert (r2.returncode, r2.stdout) == (0, b"through pipes")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:-1], b"failed authentication"),
        (lambda b: b + b"x", b"failed authentication"),
        (lambda b: b[:-200] + bytes([b[-200] ^ 1]) + b[-199:], b"failed authentication"),
        (lambda b: b[:40], b"truncated"),
        (lambda b: b"LANTERNE\x07" + b[9:], b"unsupported envelope version 7"),
        (lambda b: b"", b"truncated"),
    ],
    ids=["truncated", "trailing", "tampered", "cut-header", "version", "empty"],
)
def test_failed_decrypt_leaves_no_output(keydir: Path, tmp_path: Path, damage, message) -> None:
    sealed = tmp_path / "x.env"
    assert (
        run(
            "file", "encrypt", "-r", keydir / "alice.pub", "-o", sealed, input=os.urandom(150_000)
        ).returncode
        == 0
    )
    sealed.write_bytes(damage(sealed.read_bytes()))
    out = tmp_path / "out.bin"
    r = run("file", "decrypt", "-i", keydir / "alice.identity", "-o", out, sealed)
    assert r.returncode == EXIT_DECRYPT_FAILED
    assert message in r.stderr
    assert b"Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "x.env"]  # no output, no temp


def test_wrong_identity_is_a_clear_error(keydir: Path, tmp_path: Path) -> None:
    r = run("file", "encrypt", "-r", keydir / "alice.pub", input=b"for alice only")
    r2 = run("file", "decrypt", "-i", keydir / "bob.identity", "-o", tmp_path / "o", input=r.stdout)
    assert r2.returncode == EXIT_DECRYPT_FAILED
    assert b"none of the given keys can open this envelope" in r2.stderr
    assert not (tmp_path / "o").exists()


def test_passphrase_protected_identity(tmp_path: Path) -> None:
    pp = tmp_path / "pp"
    pp.write_text("correct horse battery\n")
    r = run("keys", "generate", "--name", "carol", "--dir", tmp_path / "k", "--passphrase-file", pp)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "k" / "carol.identity").read_text()
    assert json.loads(text)["protection"] == "passphrase"
    assert '"secret"' not in text
    sealed = run("file", "encrypt", "-r", tmp_path / "k" / "carol.pub", input=b"hello").stdout
    ok = run(
        "file",
        "decrypt",
        "-i",
        tmp_path / "k" / "carol.identity",
        "--passphrase-file",
        pp,
        input=sealed,
    )
    assert (ok.returncode, ok.stdout) == (0, b"hello")
    pp.write_text("wrong horse battery\n")
    bad = run(
        "file",
        "decrypt",
        "-i",
        tmp_path / "k" / "carol.identity",
        "--passphrase-file",
        pp,
        input=sealed,
    )
    assert bad.returncode == 1
    assert b"wrong passphrase" in bad.stderr
    assert bad.stdout == b""


def test_identity_with_swapped_public_part_is_refused(keydir: Path) -> None:
    doc = json.loads((keydir / "alice.identity").read_text())
    doc["public_key"] = json.loads((keydir / "bob.pub").read_text())
    (keydir / "alice.identity").write_text(json.dumps(doc))
    with pytest.raises(envelope.KeyFormatError, match="does not match"):
        identity_store.open_identity(keydir / "alice.identity", None)


def test_public_key_with_wrong_fingerprint_is_refused(keydir: Path) -> None:
    doc = json.loads((keydir / "alice.pub").read_text())
    doc["fingerprint"] = "00000 00000 00000 00000 00000 00000 00000 00000"
    (keydir / "alice.pub").write_text(json.dumps(doc))
    r = run("file", "encrypt", "-r", keydir / "alice.pub", input=b"x")
    assert r.returncode == 2
    assert b"fingerprint in the file does not match" in r.stderr


def test_missing_input_and_bad_name_are_usage_errors(keydir: Path, tmp_path: Path) -> None:
    r = run("file", "encrypt", "-r", keydir / "alice.pub", "-o", tmp_path / "o", tmp_path / "nope")
    assert r.returncode == 2
    assert b"cannot read" in r.stderr
    r = run("keys", "generate", "--name", "../evil", "--dir", tmp_path, "--no-passphrase")
    assert r.returncode == 2
