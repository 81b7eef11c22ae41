"""Which key each command unlocks: signing for the API, decryption for reading.

Logging in to the journalist API needs only the Ed25519 signing key. On the
online machine of an air-gapped setup the X25519 decryption key must not be
there at all, so besides a full identity file (``NAME.identity``, both keys
sealed together) `lanterne config --identity` accepts a *signing identity*
(``NAME.signing``): the same public key, but only the signing key sealed
inside. `lanterne signing-key IDENTITY --out FILE` writes one on the
air-gapped machine; it can log in, pull, triage, write notes and replies
(which are encrypted to public keys), and can never decrypt anything.

A signing identity uses the same protection as identity files: a passphrase
(Argon2id + SecretBox), an OpenPGP key, or none for automation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from envelope import KeyFormatError, PublicKey, atomic_output
from envelope.keys import b64decode, b64encode
from journalist_cli import identity_store, openpgp
from journalist_cli.errors import UsageProblem
from journalist_cli.passphrase import read_passphrase

SIGNING_TYPE = "lanterne-signing-identity/v1"
SEED_SIZE = 32


@dataclass(frozen=True)
class Signer:
    """A journalist's name, public key and Ed25519 signing key: what logging in needs."""

    public: PublicKey
    signing: nacl.signing.SigningKey

    @property
    def name(self) -> str:
        return self.public.name


def _read_doc(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KeyFormatError(f"{path} is not a Lanterne identity file") from exc
    if not isinstance(doc, dict) or doc.get("type") not in (
        identity_store.IDENTITY_TYPE,
        SIGNING_TYPE,
    ):
        raise KeyFormatError(f"{path} is not a Lanterne identity or signing identity file")
    return doc


def public_key_of(path: Path) -> PublicKey:
    """The public key recorded in an identity or signing identity file (nothing unlocked)."""
    doc = _read_doc(path)
    return PublicKey.from_json(json.dumps(doc.get("public_key", {})))


def is_signing_only(path: Path) -> bool:
    return _read_doc(path).get("type") == SIGNING_TYPE


def seal_signing_identity(
    public: PublicKey,
    signing: nacl.signing.SigningKey,
    passphrase: str | None,
    *,
    gpg_fingerprint: str | None = None,
    opslimit: int = identity_store.DEFAULT_OPSLIMIT,
    memlimit: int = identity_store.DEFAULT_MEMLIMIT,
) -> str:
    """The text of a signing identity file holding only ``signing``."""
    if bytes(signing.verify_key) != public.signing_key:
        raise KeyFormatError("the signing key does not belong to this public key")
    seed = bytes(signing)
    doc: dict[str, Any] = {"type": SIGNING_TYPE, "public_key": json.loads(public.to_json())}
    if gpg_fingerprint is not None:
        doc["protection"] = "openpgp"
        doc["openpgp_fingerprint"] = openpgp.normalise_fingerprint(gpg_fingerprint)
        doc["openpgp_message"] = openpgp.encrypt_to(b64encode(seed).encode(), gpg_fingerprint)
    elif passphrase is None:
        doc["protection"] = "none"
        doc["secret"] = b64encode(seed)
    else:
        if len(passphrase) < identity_store.MIN_PASSPHRASE:
            raise UsageProblem(
                f"a passphrase needs at least {identity_store.MIN_PASSPHRASE} characters"
            )
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit, memlimit
        )
        doc["protection"] = "passphrase"
        doc["argon2id"] = {"opslimit": opslimit, "memlimit": memlimit, "salt": b64encode(salt)}
        doc["box"] = b64encode(bytes(nacl.secret.SecretBox(key).encrypt(seed)))
    return json.dumps(doc, indent=2) + "\n"


def write_signing_identity(path: Path, text: str) -> None:
    if path.exists():
        raise UsageProblem(f"{path} already exists; it was not replaced")
    with atomic_output(path, mode=0o600) as out:
        out.write(text.encode())


def _open_signing(path: Path, doc: dict[str, Any], passphrase: str | None) -> Signer:
    public = PublicKey.from_json(json.dumps(doc.get("public_key", {})))
    protection = doc.get("protection")
    if protection == "none":
        seed = b64decode(doc.get("secret", ""), SEED_SIZE, "signing key")
    elif protection == "passphrase":
        if passphrase is None:
            raise UsageProblem(f"{path} is protected by a passphrase")
        params = doc.get("argon2id", {})
        try:
            opslimit, memlimit = int(params["opslimit"]), int(params["memlimit"])
            salt = b64decode(params["salt"], nacl.pwhash.argon2id.SALTBYTES, "salt")
            box = b64decode(doc["box"], SEED_SIZE + 40, "sealed signing key")
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyFormatError(f"{path}: damaged passphrase parameters") from exc
        if not (
            nacl.pwhash.argon2id.OPSLIMIT_MIN <= opslimit <= nacl.pwhash.argon2id.OPSLIMIT_MAX
            and nacl.pwhash.argon2id.MEMLIMIT_MIN <= memlimit <= 4 * 1024**3
        ):
            raise KeyFormatError(f"{path}: passphrase parameters out of range")
        key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit, memlimit
        )
        try:
            seed = nacl.secret.SecretBox(key).decrypt(box)
        except nacl.exceptions.CryptoError:
            raise identity_store.WrongPassphrase(f"wrong passphrase for {path}") from None
    elif protection == "openpgp":
        message = doc.get("openpgp_message")
        if not isinstance(message, str):
            raise KeyFormatError(f"{path}: damaged OpenPGP protection")
        text = openpgp.decrypt(message).decode("ascii", errors="replace").strip()
        seed = b64decode(text, SEED_SIZE, "signing key")
    else:
        raise KeyFormatError(f"{path}: unknown protection {protection!r}")
    signing = nacl.signing.SigningKey(seed)
    if bytes(signing.verify_key) != public.signing_key:
        raise KeyFormatError(f"{path}: the public key does not match the signing key")
    return Signer(public, signing)


def _passphrase_for(path: Path, doc: dict[str, Any], passphrase_file: Path | None) -> str | None:
    if doc.get("protection") != "passphrase":
        return None
    return read_passphrase(passphrase_file, prompt=f"Passphrase for {path}")


def load_signer(path: Path, passphrase_file: Path | None) -> Signer:
    """The signing key from an identity or signing identity file.

    A full identity file seals both keys in one box, so opening it for the
    signing key also decrypts the decryption key; the latter is dropped at
    once. Use a signing identity where the decryption key must not be.
    """
    doc = _read_doc(path)
    passphrase = _passphrase_for(path, doc, passphrase_file)
    if doc.get("type") == SIGNING_TYPE:
        return _open_signing(path, doc, passphrase)
    full = identity_store.open_identity(path, passphrase)
    return Signer(full.public, full.signing)


def load_full_identity(
    path: Path, passphrase_file: Path | None
) -> identity_store.JournalistIdentity:
    """Both keys, for commands that decrypt; refuses a signing identity plainly."""
    doc = _read_doc(path)
    if doc.get("type") == SIGNING_TYPE:
        raise UsageProblem(
            f"{path} is a signing identity: it can pull and triage but not decrypt. "
            "Decrypt on the machine that holds the full identity."
        )
    return identity_store.open_identity(path, _passphrase_for(path, doc, passphrase_file))
