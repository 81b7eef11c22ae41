"""Opening the admin's key files to sign a backup and to restore one.

The files are those of ``lanterne keys generate`` (``lanterne-identity/v1``
and ``/v2``: every private key) and ``lanterne signing-key``
(``lanterne-signing-identity/v1``: the Ed25519 signing key only). They are
read by ``keyfiles``, the one implementation of those formats, which the
journalist CLI uses as well (formats in envelope/KEYS.md). What is used here:
the decryption keys to restore, the Ed25519 signing key to sign a backup, the
public part to check a backup's signer.

Supported protections: ``none`` and ``passphrase``. ``openpgp`` is refused
with a message: the server has no business holding a gpg-agent; unwrap it on
the admin's machine with ``lanterne keys protect``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nacl.signing

import envelope
import keyfiles


class IdentityError(Exception):
    """The identity file cannot be used to restore; the message says why."""


@dataclass(frozen=True)
class AdminSigner:
    """The admin's public key and Ed25519 signing key: what signing a backup needs."""

    public: envelope.PublicKey
    signing: nacl.signing.SigningKey


def _read(path: Path, types: tuple[str, ...]) -> keyfiles.KeyFile:
    try:
        return keyfiles.read(path, types)
    except (keyfiles.KeyFileError, envelope.KeyFormatError) as exc:
        raise IdentityError(str(exc)) from exc


def _unlock(kf: keyfiles.KeyFile, passphrase: Callable[[], str]) -> keyfiles.SecretKeys:
    try:
        return kf.unlock(passphrase() if kf.needs_passphrase else None)
    except (keyfiles.KeyFileError, envelope.KeyFormatError) as exc:
        raise IdentityError(str(exc)) from exc


def needs_passphrase(path: Path) -> bool:
    return _read(path, tuple(keyfiles.SECRET_SIZES)).needs_passphrase


def admin_public_key(path: Path) -> envelope.PublicKey:
    """The public key in a ``.pub`` file, or the public part of an identity or
    signing identity file (nothing is unlocked)."""
    try:
        return keyfiles.read_public_key(path)
    except (keyfiles.KeyFileError, envelope.KeyFormatError) as exc:
        raise IdentityError(f"{path} is not a Lanterne public key or identity file") from exc


def open_admin_signer(path: Path, passphrase: Callable[[], str]) -> AdminSigner:
    """The signing key in an identity or signing identity file; ``passphrase`` if needed."""
    keys = _unlock(_read(path, tuple(keyfiles.SECRET_SIZES)), passphrase)
    return AdminSigner(keys.public, keys.signing)


def open_admin_identity(path: Path, passphrase: Callable[[], str]) -> list[envelope.Identity]:
    """The decryption keys in ``path`` (hybrid and X25519); ``passphrase`` only if needed."""
    kf = _read(path, (keyfiles.IDENTITY_TYPE, keyfiles.IDENTITY_TYPE_V2))
    return _unlock(kf, passphrase).identities()
