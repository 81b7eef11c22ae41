"""Opening the admin's identity file to restore a backup.

The file is a ``lanterne-identity/v1`` file as written by ``lanterne keys
generate`` (journalist_cli/identity_store.py). That format is shared: this is
a second, smaller reader of it on purpose, because the server must not import
the journalist CLI, and ``envelope`` stays free of PyNaCl and of any notion of
passphrases. Only what a restore needs is read: the X25519 decryption key.

Supported protections: ``none`` and ``passphrase`` (Argon2id, then SecretBox,
with the parameters stored in the file, bounded as the CLI bounds them).
``openpgp`` is refused with a message: the server has no business holding a
gpg-agent; unwrap it on the admin's machine with ``lanterne keys protect``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret

import envelope
from envelope.keys import b64decode

IDENTITY_TYPE = "lanterne-identity/v1"
SECRET_SIZE = 64  # X25519 private key || Ed25519 seed
MAX_MEMLIMIT = 4 * 1024**3


class IdentityError(Exception):
    """The identity file cannot be used to restore; the message says why."""


def _doc(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except OSError as exc:
        raise IdentityError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise IdentityError(f"{path} is not a Lanterne identity file") from exc
    if not isinstance(doc, dict) or doc.get("type") != IDENTITY_TYPE:
        raise IdentityError(f"{path} is not a Lanterne identity file ({IDENTITY_TYPE})")
    return doc


def needs_passphrase(path: Path) -> bool:
    return _doc(path).get("protection") == "passphrase"


def open_admin_identity(path: Path, passphrase: Callable[[], str]) -> envelope.Identity:
    """The decryption identity in ``path``; ``passphrase`` is asked only if needed."""
    doc = _doc(path)
    try:
        public = envelope.PublicKey.from_json(json.dumps(doc.get("public_key", {})))
    except envelope.KeyFormatError as exc:
        raise IdentityError(f"{path}: {exc}") from exc
    protection = doc.get("protection")
    try:
        if protection == "none":
            secret = b64decode(doc.get("secret", ""), SECRET_SIZE, "secret keys")
        elif protection == "passphrase":
            secret = _unseal(path, doc, passphrase())
        elif protection == "openpgp":
            raise IdentityError(
                f"{path} is wrapped to an OpenPGP key, which the server cannot use: make a"
                " passphrase-protected copy with `lanterne keys protect --new-passphrase`"
            )
        else:
            raise IdentityError(f"{path}: unknown protection {protection!r}")
    except envelope.KeyFormatError as exc:
        raise IdentityError(f"{path}: {exc}") from exc
    identity = envelope.Identity(secret[:32])
    # The public part sits outside the sealed box: it must belong to these keys.
    if identity.recipient != public.recipient:
        raise IdentityError(f"{path}: the public key does not match the private keys")
    return identity


def _unseal(path: Path, doc: dict[str, Any], passphrase: str) -> bytes:
    params = doc.get("argon2id", {})
    try:
        opslimit, memlimit = int(params["opslimit"]), int(params["memlimit"])
        salt = b64decode(params["salt"], nacl.pwhash.argon2id.SALTBYTES, "salt")
        box = b64decode(doc["box"], SECRET_SIZE + 40, "sealed keys")
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
