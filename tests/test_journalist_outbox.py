"""Notes and replies: the right recipients, and journalist keys pinned in the vault.
Signing identities: an online machine that can log in but never decrypt."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.signing
import pytest

import envelope
from journalist_cli import credentials, outbox
from journalist_cli.identity_store import JournalistIdentity, WrongPassphrase
from journalist_cli.records import JournalistInfo
from journalist_cli.vault import Vault
from journalist_cli.workflow_errors import ServerError, UnverifiedKeys
from tests.cli_helpers import run
from tests.journalist_fixtures import build_source, journalist, store, write_identity


def info(ident: JournalistIdentity, *, name: str | None = None) -> JournalistInfo:
    pub = ident.public
    return JournalistInfo(
        name=name or pub.name,
        role="journalist",
        encryption_key=pub.x25519.to_text(),
        hybrid_key=None if pub.hybrid is None else pub.hybrid.to_text(),
        signing_key=envelope.keys.b64encode(pub.signing_key),
        fingerprint=pub.fingerprint,
    )


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault.open(tmp_path / "home")


def test_reply_opens_for_the_source_and_every_journalist_only(vault: Vault) -> None:
    alice, bruno, eve = journalist("alice"), journalist("bruno"), journalist("eve")
    source = envelope.X25519Identity.generate()
    keys, first = outbox.recipients(vault, [info(alice), info(bruno)], alice.public)
    assert first
    sealed = outbox.seal_reply("Merci, répondez ici.", source.recipient.to_text(), keys)
    for who in ([source], alice.identities(), bruno.identities()):
        assert envelope.decrypt_bytes(sealed, who).decode() == "Merci, répondez ici."
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.decrypt_bytes(sealed, eve.identities())
    # Hybrid journalists get only a hybrid stanza, the source (X25519) its own.
    parsed = envelope._header.parse_header(sealed)
    assert parsed is not None
    assert [s.type for s in parsed.stanzas] == [0x0001, 0x0002, 0x0002]
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.decrypt_bytes(sealed, [alice.decryption])


def test_note_is_not_readable_by_the_source(vault: Vault) -> None:
    alice, bruno = journalist("alice"), journalist("bruno")
    keys, _ = outbox.recipients(vault, [info(alice), info(bruno)], bruno.public)
    sealed = outbox.seal_note("check the dates", keys)
    assert envelope.decrypt_bytes(sealed, alice.identities()) == b"check the dates"
    with pytest.raises(envelope.NoMatchingKeyError):
        envelope.decrypt_bytes(sealed, [envelope.X25519Identity.generate()])


def test_keys_are_pinned_after_first_use(vault: Vault) -> None:
    alice, bruno, mallory = journalist("alice"), journalist("bruno"), journalist("mallory")
    outbox.recipients(vault, [info(alice), info(bruno)], alice.public)
    # Same list: fine, and not a first use any more.
    keys, first = outbox.recipients(vault, [info(alice), info(bruno)], alice.public)
    assert not first and len(keys) == 2
    # A key the server slipped in is refused until accepted.
    with pytest.raises(UnverifiedKeys, match="mallory \\(new\\)"):
        outbox.recipients(vault, [info(alice), info(bruno), info(mallory)], alice.public)
    # A known name with another key is refused too.
    with pytest.raises(UnverifiedKeys, match="bruno \\(changed\\)"):
        outbox.recipients(vault, [info(alice), info(mallory, name="bruno")], alice.public)
    # A removed journalist simply stops being a recipient.
    keys, _ = outbox.recipients(vault, [info(alice)], alice.public)
    assert keys == [alice.public.hybrid]
    statuses = outbox.check_keys(vault, [info(alice), info(mallory)])
    assert [s.status for s in statuses] == ["accepted", "new"]
    vault.accept_keys([info(alice), info(mallory)])
    outbox.recipients(vault, [info(alice), info(mallory)], alice.public)


def test_lies_in_the_journalist_list_are_refused(vault: Vault) -> None:
    alice, bruno = journalist("alice"), journalist("bruno")
    wrong_fpr = JournalistInfo(
        "bruno",
        "journalist",
        info(bruno).encryption_key,
        info(bruno).signing_key,
        info(alice).fingerprint,
    )
    with pytest.raises(ServerError, match="fingerprint"):
        outbox.recipients(vault, [info(alice), wrong_fpr], alice.public)
    with pytest.raises(ServerError, match="your own key"):
        outbox.recipients(vault, [info(bruno)], alice.public)
    with pytest.raises(ServerError, match="malformed"):
        outbox.recipients(
            vault, [JournalistInfo("x", "journalist", "AAAA", "AAAA", "0")], alice.public
        )


def test_bad_reply_key_and_size_limit(vault: Vault) -> None:
    alice = journalist("alice")
    keys, _ = outbox.recipients(vault, [info(alice)], alice.public)
    with pytest.raises(ServerError, match="reply key"):
        outbox.seal_reply("hi", "not-a-key", keys)
    with pytest.raises(ServerError, match="too long"):
        outbox.seal_note("x" * (1 << 20), keys)


# --- signing identities --------------------------------------------------------


def test_signing_identity_round_trip_with_passphrase(tmp_path: Path) -> None:
    alice = journalist("alice")
    text = credentials.seal_signing_identity(
        alice.public, alice.signing, "correct horse", opslimit=1, memlimit=8192
    )
    path = tmp_path / "alice.signing"
    credentials.write_signing_identity(path, text)
    assert path.stat().st_mode & 0o777 == 0o600
    assert alice.decryption.private_bytes() not in path.read_bytes()
    doc = json.loads(text)
    assert doc["type"] == credentials.SIGNING_TYPE and "secret" not in doc
    phrase = tmp_path / "pp"
    phrase.write_text("correct horse\n")
    signer = credentials.load_signer(path, phrase)
    assert bytes(signer.signing) == bytes(alice.signing)
    assert signer.public == alice.public
    assert credentials.public_key_of(path) == alice.public
    phrase.write_text("wrong horse!\n")
    with pytest.raises(WrongPassphrase):
        credentials.load_signer(path, phrase)
    from journalist_cli.errors import UsageProblem

    with pytest.raises(UsageProblem, match=r"can pull and triage"):
        credentials.load_full_identity(path, None)


def test_signing_identity_must_match_its_public_key(tmp_path: Path) -> None:
    alice = journalist("alice")
    with pytest.raises(envelope.KeyFormatError):
        credentials.seal_signing_identity(alice.public, nacl.signing.SigningKey.generate(), None)
    doc = json.loads(credentials.seal_signing_identity(alice.public, alice.signing, None))
    doc["secret"] = envelope.keys.b64encode(bytes(nacl.signing.SigningKey.generate()))
    path = tmp_path / "forged.signing"
    path.write_text(json.dumps(doc))
    with pytest.raises(envelope.KeyFormatError, match="does not match"):
        credentials.load_signer(path, None)


def test_signing_key_and_config_commands(tmp_path: Path) -> None:
    alice = journalist("alice")
    full = write_identity(alice, tmp_path / "keys")
    home = tmp_path / "home"
    env = {"LANTERNE_HOME": str(home)}
    out = tmp_path / "alice.signing"
    done = run("signing-key", full, "--out", out, "--no-passphrase", env=env)
    assert done.returncode == 0, done.stderr
    assert credentials.is_signing_only(out)
    done = run(
        "config",
        "--server",
        "http://127.0.0.1:1",
        "--identity",
        out,
        "--proxy",
        "socks5h://127.0.0.1:9050",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert b"signing identity: alice" in done.stdout
    cfg = json.loads((home / "config.json").read_text())
    assert cfg["identity"] == str(out.resolve())
    assert cfg["proxy"] == "socks5h://127.0.0.1:9050"
    assert (home.stat().st_mode & 0o777) == 0o700
    # The online machine cannot decrypt: a clear refusal, exit code 2.
    built = build_source([alice.decryption.recipient], [("hello", [])])
    store(Vault.open(home), built)
    done = run("decrypt", built.id[:6], "--out", tmp_path / "o", env=env)
    assert done.returncode == 2
    assert b"signing identity" in done.stderr
    assert not (tmp_path / "o").exists()
    # pull through a proxy that is not there: a server error, exit code 4.
    done = run("pull", env=env)
    assert done.returncode == 4, done.stderr
    assert b"proxy" in done.stderr or b"reach" in done.stderr
    assert b"Traceback" not in done.stderr


def test_a_new_hybrid_key_alone_is_a_key_change(vault: Vault) -> None:
    """Same X25519 and signing keys, another X-Wing key: a server swapping only the
    hybrid key (to read notes and replies) is caught like any other key change."""
    alice, bruno = journalist("alice"), journalist("bruno")
    outbox.recipients(vault, [info(alice), info(bruno)], alice.public)
    swapped = JournalistIdentity.build(
        "bruno", bruno.signing, bruno.decryption, envelope.HybridIdentity.generate()
    )
    assert (info(swapped).encryption_key, info(swapped).signing_key) == (
        info(bruno).encryption_key,
        info(bruno).signing_key,
    )
    with pytest.raises(UnverifiedKeys, match="bruno \\(changed\\)"):
        outbox.recipients(vault, [info(alice), info(swapped)], alice.public)
