"""Journalist identities on disk: generation, passphrase protection, loading.

An identity file (``NAME.identity``) holds the journalist's public key and the
two private keys (X25519 for decryption, Ed25519 for signing API requests),
sealed with a passphrase (Argon2id then SecretBox, from PyNaCl), or wrapped to
the journalist's existing OpenPGP key (so gpg-agent or a smartcard unlocks it),
or, when asked for explicitly, in the clear for automation. The public part is also
written to ``NAME.pub`` for colleagues and the server.
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

from envelope import KeyFormatError, PublicKey, X25519Identity, atomic_output
from envelope.keys import b64decode, b64encode
from journalist_cli import openpgp
from journalist_cli.errors import CliError, UsageProblem

IDENTITY_TYPE = "lanterne-identity/v1"
SECRET_SIZE = 64  # X25519 private key || Ed25519 seed
MIN_PASSPHRASE = 8
# Argon2id "moderate": about 0.5-1 s and 256 MiB here, paid once per command.
DEFAULT_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
DEFAULT_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MODERATE


class WrongPassphrase(CliError):
    """The passphrase does not open this identity file."""


@dataclass(frozen=True)
class JournalistIdentity:
    """A journalist's private keys with their public key."""

    name: str
    decryption: X25519Identity
    signing: nacl.signing.SigningKey

    @classmethod
    def generate(cls, name: str) -> JournalistIdentity:
        return cls(name, X25519Identity.generate(), nacl.signing.SigningKey.generate())

    @property
    def public(self) -> PublicKey:
        return PublicKey(
            name=self.name,
            recipient=self.decryption.recipient,
            signing_key=bytes(self.signing.verify_key),
        )

    def _secret(self) -> bytes:
        return self.decryption.private_bytes() + bytes(self.signing)


def seal_identity(
    ident: JournalistIdentity,
    passphrase: str | None,
    *,
    gpg_fingerprint: str | None = None,
    opslimit: int = DEFAULT_OPSLIMIT,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> str:
    """The identity file's text.

    With ``gpg_fingerprint`` the keys are encrypted to that OpenPGP key; else with
    ``passphrase``; with neither they are stored unprotected.
    """
    doc: dict[str, Any] = {
        "type": IDENTITY_TYPE,
        "public_key": json.loads(ident.public.to_json()),
    }
    if gpg_fingerprint is not None:
        doc["protection"] = "openpgp"
        doc["openpgp_fingerprint"] = openpgp.normalise_fingerprint(gpg_fingerprint)
        doc["openpgp_message"] = openpgp.encrypt_to(
            b64encode(ident._secret()).encode(), gpg_fingerprint
        )
    elif passphrase is None:
        doc["protection"] = "none"
        doc["secret"] = b64encode(ident._secret())
    else:
        if len(passphrase) < MIN_PASSPHRASE:
            raise UsageProblem(f"a passphrase needs at least {MIN_PASSPHRASE} characters")
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit, memlimit
        )
        doc["protection"] = "passphrase"
        doc["argon2id"] = {"opslimit": opslimit, "memlimit": memlimit, "salt": b64encode(salt)}
        doc["box"] = b64encode(bytes(nacl.secret.SecretBox(key).encrypt(ident._secret())))
    return json.dumps(doc, indent=2) + "\n"


def _read_doc(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise KeyFormatError(f"{path} is not a Lanterne key file") from exc
    if not isinstance(doc, dict):
        raise KeyFormatError(f"{path} is not a Lanterne key file")
    return doc


def read_public_key(path: Path) -> PublicKey:
    """The public key from a ``.pub`` file or from the public part of an identity file."""
    doc = _read_doc(path)
    if doc.get("type") == IDENTITY_TYPE:
        doc = doc.get("public_key", {})
    return PublicKey.from_json(json.dumps(doc))


def needs_passphrase(path: Path) -> bool:
    return _read_doc(path).get("protection") == "passphrase"


def open_identity(path: Path, passphrase: str | None) -> JournalistIdentity:
    """Load an identity file, unsealing it with ``passphrase`` if it is protected."""
    doc = _read_doc(path)
    if doc.get("type") != IDENTITY_TYPE:
        raise KeyFormatError(f"{path} is not a Lanterne identity file")
    public = PublicKey.from_json(json.dumps(doc.get("public_key", {})))
    protection = doc.get("protection")
    if protection == "none":
        secret = b64decode(doc.get("secret", ""), SECRET_SIZE, "secret keys")
    elif protection == "passphrase":
        if passphrase is None:
            raise UsageProblem(f"{path} is protected by a passphrase")
        params = doc.get("argon2id", {})
        try:
            opslimit, memlimit = int(params["opslimit"]), int(params["memlimit"])
            salt = b64decode(params["salt"], nacl.pwhash.argon2id.SALTBYTES, "salt")
            box = b64decode(doc["box"], SECRET_SIZE + 40, "sealed keys")
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
            secret = nacl.secret.SecretBox(key).decrypt(box)
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase(f"wrong passphrase for {path}") from None
    elif protection == "openpgp":
        message = doc.get("openpgp_message")
        if not isinstance(message, str):
            raise KeyFormatError(f"{path}: damaged OpenPGP protection")
        decrypted = openpgp.decrypt(message).decode("ascii", errors="replace")
        secret = b64decode(decrypted.strip(), SECRET_SIZE, "secret keys")
    else:
        raise KeyFormatError(f"{path}: unknown protection {protection!r}")
    ident = JournalistIdentity(
        public.name, X25519Identity(secret[:32]), nacl.signing.SigningKey(secret[32:])
    )
    # The public part sits outside the sealed box: make sure it belongs to these keys.
    if ident.public != public:
        raise KeyFormatError(f"{path}: the public key does not match the private keys")
    return ident


def write_new_identity(
    ident: JournalistIdentity,
    directory: Path,
    passphrase: str | None,
    *,
    gpg_fingerprint: str | None = None,
) -> tuple[Path, Path]:
    """Write ``NAME.identity`` (mode 0600) and ``NAME.pub``; never overwrites."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret_path = directory / f"{ident.name}.identity"
    public_path = directory / f"{ident.name}.pub"
    for p in (secret_path, public_path):
        if p.exists():
            raise UsageProblem(f"{p} already exists; choose another name or directory")
    write_identity_file(
        secret_path, seal_identity(ident, passphrase, gpg_fingerprint=gpg_fingerprint)
    )
    public_path.write_text(ident.public.to_json())
    return secret_path, public_path


def write_identity_file(path: Path, text: str) -> None:
    """Write (or atomically replace) an identity file, readable by its owner only."""
    with atomic_output(path, mode=0o600) as out:
        out.write(text.encode())
