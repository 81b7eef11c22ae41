"""Opening the admin's key files to sign a backup and to restore one.

The files are those of ``lanterne keys generate`` (``lanterne-identity/v1``:
both private keys) and ``lanterne signing-key`` (``lanterne-signing-identity/v1``:
the Ed25519 signing key only), journalist_cli/identity_store.py and
credentials.py. Those formats are shared: this is a second, smaller reader of
them on purpose, because the server must not import the journalist CLI, and
``envelope`` stays free of PyNaCl and of any notion of passphrases. Only what
is needed is read: the X25519 decryption key to restore, the Ed25519 signing
key to sign a backup (every identity file has held one since the first
release, so older admin identities need nothing new), the public part to
check a backup's signer.

Supported protections: ``none`` and ``passphrase`` (Argon2id, then SecretBox,
with the parameters stored in the file, bounded as the CLI bounds them).
``openpgp`` is refused with a message: the server has no business holding a
gpg-agent; unwrap it on the admin's machine with ``lanterne keys protect``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing

import envelope
from envelope.keys import b64decode

IDENTITY_TYPE = "lanterne-identity/v1"
SIGNING_TYPE = "lanterne-signing-identity/v1"
SECRET_SIZE = 64  # X25519 private key || Ed25519 seed
SEED_SIZE = 32  # a signing identity: the Ed25519 seed alone
MAX_KEY_FILE = 1 << 20
MAX_MEMLIMIT = 4 * 1024**3


class IdentityError(Exception):
    """The identity file cannot be used to restore; the message says why."""


@dataclass(frozen=True)
class AdminSigner:
    """The admin's public key and Ed25519 signing key: what signing a backup needs."""

    public: envelope.PublicKey
    signing: nacl.signing.SigningKey


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise IdentityError(f"cannot read {path}: {exc.strerror}") from exc


def _doc(path: Path, types: tuple[str, ...] = (IDENTITY_TYPE,)) -> dict[str, Any]:
    try:
        doc = json.loads(_read(path))
    except ValueError as exc:
        raise IdentityError(f"{path} is not a Lanterne identity file") from exc
    if not isinstance(doc, dict) or doc.get("type") not in types:
        raise IdentityError(f"{path} is not a Lanterne identity file ({', '.join(types)})")
    return doc


def needs_passphrase(path: Path) -> bool:
    return _doc(path, (IDENTITY_TYPE, SIGNING_TYPE)).get("protection") == "passphrase"


def admin_public_key(path: Path) -> envelope.PublicKey:
    """The public key in a ``.pub`` file, or the public part of an identity or
    signing identity file (nothing is unlocked)."""
    raw = _read(path)
    try:
        doc = json.loads(raw)
        if isinstance(doc, dict) and doc.get("type") in (IDENTITY_TYPE, SIGNING_TYPE):
            raw = json.dumps(doc.get("public_key", {})).encode()
        return envelope.PublicKey.from_json(raw)
    except (ValueError, envelope.KeyFormatError) as exc:
        raise IdentityError(f"{path} is not a Lanterne public key or identity file") from exc


def open_admin_signer(path: Path, passphrase: Callable[[], str]) -> AdminSigner:
    """The signing key in an identity or signing identity file; ``passphrase`` if needed."""
    doc = _doc(path, (IDENTITY_TYPE, SIGNING_TYPE))
    size = SECRET_SIZE if doc["type"] == IDENTITY_TYPE else SEED_SIZE
    try:
        public = envelope.PublicKey.from_json(json.dumps(doc.get("public_key", {})))
        secret = _secret(path, doc, passphrase, size)
    except envelope.KeyFormatError as exc:
        raise IdentityError(f"{path}: {exc}") from exc
    signing = nacl.signing.SigningKey(secret[-SEED_SIZE:])
    # The public part sits outside the sealed box: it must belong to this key.
    if bytes(signing.verify_key) != public.signing_key:
        raise IdentityError(f"{path}: the public key does not match the signing key")
    return AdminSigner(public, signing)


def _secret(path: Path, doc: dict[str, Any], passphrase: Callable[[], str], size: int) -> bytes:
    protection = doc.get("protection")
    if protection == "none":
        return b64decode(doc.get("secret", ""), size, "secret keys")
    if protection == "passphrase":
        return _unseal(path, doc, passphrase(), size)
    if protection == "openpgp":
        raise IdentityError(
            f"{path} is wrapped to an OpenPGP key, which the server cannot use: make a"
            " passphrase-protected copy with `lanterne keys protect --new-passphrase`"
        )
    raise IdentityError(f"{path}: unknown protection {protection!r}")


def open_admin_identity(path: Path, passphrase: Callable[[], str]) -> envelope.Identity:
    """The decryption identity in ``path``; ``passphrase`` is asked only if needed."""
    doc = _doc(path)
    try:
        public = envelope.PublicKey.from_json(json.dumps(doc.get("public_key", {})))
    except envelope.KeyFormatError as exc:
        raise IdentityError(f"{path}: {exc}") from exc
    try:
        secret = _secret(path, doc, passphrase, SECRET_SIZE)
    except envelope.KeyFormatError as exc:
        raise IdentityError(f"{path}: {exc}") from exc
    identity = envelope.X25519Identity(secret[:32])
    # The public part sits outside the sealed box: it must belong to these keys
    # (restore checks a backup's signer against it).
    signing = nacl.signing.SigningKey(secret[-SEED_SIZE:])
    if identity.recipient != public.recipient or bytes(signing.verify_key) != public.signing_key:
        raise IdentityError(f"{path}: the public key does not match the private keys")
    return identity


def _unseal(path: Path, doc: dict[str, Any], passphrase: str, size: int) -> bytes:
    params = doc.get("argon2id", {})
    try:
        opslimit, memlimit = int(params["opslimit"]), int(params["memlimit"])
        salt = b64decode(params["salt"], nacl.pwhash.argon2id.SALTBYTES, "salt")
        box = b64decode(doc["box"], size + 40, "sealed keys")
    except (KeyError, TypeError, ValueError) as exc:
        raise IdentityError(f"{path}: damaged passphrase parameters") from exc
    # Bounded: a crafted file must not make us allocate without limit.
    if not (
        nacl.pwhash.argon2id.OPSLIMIT_MIN <= opslimit <= nacl.pwhash.argon2id.OPSLIMIT_MAX
        and nacl.pwhash.argon2id.MEMLIMIT_MIN <= memlimit <= MAX_MEMLIMIT
    ):
        raise IdentityError(f"{path}: passphrase parameters out of range")
    key = nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit, memlimit
    )
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(box))
    except nacl.exceptions.CryptoError:
        raise IdentityError(f"wrong passphrase for {path}") from None
