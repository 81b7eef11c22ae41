"""keyfiles: the one reader and writer of identity files (envelope/KEYS.md)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils
import pytest

import envelope
import keyfiles

CHEAP = {
    "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
    "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("hybrid", [True, False], ids=["v2", "v1"])
@pytest.mark.parametrize("protection", ["passphrase", "none", "openpgp"])
def test_every_kind_round_trips(tmp_path: Path, hybrid: bool, protection: str) -> None:
    keys = keyfiles.SecretKeys.generate("alice", hybrid=hybrid)
    wrapped: dict[str, bytes] = {}

    def fake_gpg_encrypt(data: bytes, fpr: str) -> str:  # stands in for gpg
        wrapped["m"] = data
        return "-----BEGIN PGP MESSAGE-----"

    openpgp = keyfiles.OpenPGPWrap("A" * 40, fake_gpg_encrypt) if protection == "openpgp" else None
    passphrase = "correct horse" if protection == "passphrase" else None
    text = keyfiles.seal(keys, passphrase, openpgp=openpgp, **CHEAP)
    doc = json.loads(text)
    assert doc["type"] == ("lanterne-identity/v2" if hybrid else "lanterne-identity/v1")
    assert doc["protection"] == protection
    kf = keyfiles.read(write(tmp_path / "a.identity", text))
    assert kf.public == keys.public and kf.needs_passphrase == (protection == "passphrase")
    opened = kf.unlock(passphrase, lambda armoured: wrapped["m"])
    assert opened.public == keys.public
    assert opened.secret_bytes() == keys.secret_bytes()
    assert len(opened.secret_bytes()) == (96 if hybrid else 64)
    sealed = envelope.encrypt_bytes(b"x", [keys.public.recipient])
    assert envelope.decrypt_bytes(sealed, opened.identities()) == b"x"


def test_a_file_written_by_the_first_release_still_opens(tmp_path: Path) -> None:
    """The v1 layout as identity_store wrote it before keyfiles existed."""
    x = envelope.X25519Identity.generate()
    signing = nacl.signing.SigningKey.generate()
    public = envelope.PublicKey("old", x.recipient, bytes(signing.verify_key))
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    key = nacl.pwhash.argon2id.kdf(32, b"old passphrase", salt, **CHEAP)
    box = nacl.secret.SecretBox(key).encrypt(x.private_bytes() + bytes(signing))
    doc = {
        "type": "lanterne-identity/v1",
        "public_key": json.loads(public.to_json()),
        "protection": "passphrase",
        "argon2id": {**CHEAP, "salt": b64url(salt)},
        "box": b64url(bytes(box)),
    }
    kf = keyfiles.read(write(tmp_path / "old.identity", json.dumps(doc)))
    opened = kf.unlock("old passphrase")
    assert opened.x25519 is not None and opened.x25519.private_bytes() == x.private_bytes()
    assert opened.hybrid is None and bytes(opened.signing) == bytes(signing)
    with pytest.raises(keyfiles.WrongPassphrase):
        kf.unlock("wrong passphrase")
    with pytest.raises(keyfiles.PassphraseNeeded):
        kf.unlock(None)


def test_the_public_part_must_match_the_sealed_keys(tmp_path: Path) -> None:
    a, b = keyfiles.SecretKeys.generate("alice"), keyfiles.SecretKeys.generate("alice")
    doc = json.loads(keyfiles.seal(a, None))
    doc["public_key"] = b.public.to_doc()
    kf = keyfiles.read(write(tmp_path / "a.identity", json.dumps(doc)))
    with pytest.raises(envelope.KeyFormatError, match="does not match"):
        kf.unlock(None)


def test_the_version_and_the_public_key_must_agree(tmp_path: Path) -> None:
    v2 = json.loads(keyfiles.seal(keyfiles.SecretKeys.generate("alice"), None))
    v2["type"] = "lanterne-identity/v1"
    with pytest.raises(envelope.KeyFormatError, match="does not match the file type"):
        keyfiles.read(write(tmp_path / "a.identity", json.dumps(v2)))


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda d: d["argon2id"].update(memlimit=5 * 1024**3), "out of range"),
        (lambda d: d["argon2id"].update(opslimit=0), "out of range"),
        (lambda d: d.update(box=d["box"][:-4]), "sealed keys"),
        (lambda d: d.pop("argon2id"), "damaged passphrase parameters"),
        (lambda d: d.update(protection="rot13"), "unknown protection"),
    ],
)
def test_damaged_passphrase_files_are_refused_before_argon2(
    tmp_path: Path, damage, error: str
) -> None:
    doc = json.loads(keyfiles.seal(keyfiles.SecretKeys.generate("a"), "correct horse", **CHEAP))
    damage(doc)
    kf = keyfiles.read(write(tmp_path / "a.identity", json.dumps(doc)))
    with pytest.raises(envelope.KeyFormatError, match=error):
        kf.unlock("correct horse")


def test_openpgp_without_gpg_is_refused_with_a_way_out(tmp_path: Path) -> None:
    keys = keyfiles.SecretKeys.generate("admin")
    wrap = keyfiles.OpenPGPWrap("B" * 40, lambda data, fpr: "armour")
    kf = keyfiles.read(write(tmp_path / "a.identity", keyfiles.seal(keys, None, openpgp=wrap)))
    with pytest.raises(keyfiles.KeyFileError, match="keys protect --new-passphrase"):
        kf.unlock(None)  # the server: no gpg-agent


def test_a_signing_identity_holds_the_signing_key_only(tmp_path: Path) -> None:
    keys = keyfiles.SecretKeys.generate("alice")
    text = keyfiles.seal(keys.signing_only(), None)
    doc = json.loads(text)
    assert doc["type"] == "lanterne-signing-identity/v1"
    assert len(base64.urlsafe_b64decode(doc["secret"] + "==")) == 32
    kf = keyfiles.read(write(tmp_path / "a.signing", text))
    opened = kf.unlock(None)
    assert kf.signing_only and opened.identities() == []
    assert bytes(opened.signing) == bytes(keys.signing)
    with pytest.raises(keyfiles.KeyFileError, match="cannot decrypt"):
        opened.decryption  # noqa: B018
    with pytest.raises(envelope.KeyFormatError, match="not a Lanterne identity file"):
        keyfiles.read(tmp_path / "a.signing", (keyfiles.IDENTITY_TYPE, keyfiles.IDENTITY_TYPE_V2))


def test_upgrade_keeps_the_old_keys_and_adds_a_hybrid_one() -> None:
    old = keyfiles.SecretKeys.generate("alice", hybrid=False)
    new = old.with_hybrid()
    assert new.hybrid is not None and new.public.hybrid == new.hybrid.recipient
    assert new.secret_bytes()[:64] == old.secret_bytes()
    assert new.public.fingerprint != old.public.fingerprint
    with pytest.raises(keyfiles.KeyFileError, match="already hybrid"):
        new.with_hybrid()


def test_oversized_and_unreadable_files(tmp_path: Path) -> None:
    big = write(tmp_path / "big.identity", " " * (keyfiles.MAX_KEY_FILE + 1))
    with pytest.raises(envelope.KeyFormatError, match="too large"):
        keyfiles.read(big)
    with pytest.raises(keyfiles.Unreadable):
        keyfiles.read(tmp_path / "missing.identity")
