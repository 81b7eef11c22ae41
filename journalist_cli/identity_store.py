"""Journalist identities on disk for the CLI: generation, protection, loading.

An identity file (``NAME.identity``) holds the journalist's public key and the
private keys (X25519 and, for keys made or upgraded since hybrid keys exist,
X-Wing for decryption; Ed25519 for signing API requests), sealed with a
passphrase (Argon2id then SecretBox), or wrapped to the journalist's existing
OpenPGP key (so gpg-agent or a smartcard unlocks it), or, when asked for
explicitly, in the clear for automation. The public part is also written to
``NAME.pub`` for colleagues and the server.

The formats are read and written by ``keyfiles`` (specified in
envelope/KEYS.md), shared with the admin commands; this module adds what the
CLI needs around it: gpg, file placement and the CLI's errors.
"""

from __future__ import annotations

from pathlib import Path

import keyfiles
from envelope import PublicKey, atomic_output
from journalist_cli import openpgp
from journalist_cli.errors import CliError, UsageProblem

IDENTITY_TYPE = keyfiles.IDENTITY_TYPE
IDENTITY_TYPES = (keyfiles.IDENTITY_TYPE, keyfiles.IDENTITY_TYPE_V2)
MIN_PASSPHRASE = keyfiles.MIN_PASSPHRASE
DEFAULT_OPSLIMIT = keyfiles.DEFAULT_OPSLIMIT
DEFAULT_MEMLIMIT = keyfiles.DEFAULT_MEMLIMIT

#: A journalist's private keys with their public key.
JournalistIdentity = keyfiles.SecretKeys


class WrongPassphrase(CliError):
    """The passphrase does not open this identity file."""


def translate(exc: keyfiles.KeyFileError) -> CliError:
    """The CLI's error for a key-file error (one place for the mapping)."""
    if isinstance(exc, keyfiles.WrongPassphrase):
        return WrongPassphrase(str(exc))
    return UsageProblem(str(exc))


def openpgp_wrap(gpg_fingerprint: str | None) -> keyfiles.OpenPGPWrap | None:
    if gpg_fingerprint is None:
        return None
    return keyfiles.OpenPGPWrap(openpgp.normalise_fingerprint(gpg_fingerprint), openpgp.encrypt_to)


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
    try:
        return keyfiles.seal(
            ident,
            passphrase,
            openpgp=openpgp_wrap(gpg_fingerprint),
            opslimit=opslimit,
            memlimit=memlimit,
        )
    except keyfiles.KeyFileError as exc:
        raise translate(exc) from exc


def read_key_file(path: Path, types: tuple[str, ...] = IDENTITY_TYPES) -> keyfiles.KeyFile:
    try:
        return keyfiles.read(path, types)
    except keyfiles.KeyFileError as exc:
        raise translate(exc) from exc


def unlock(kf: keyfiles.KeyFile, passphrase: str | None) -> JournalistIdentity:
    try:
        return kf.unlock(passphrase, openpgp.decrypt)
    except keyfiles.KeyFileError as exc:
        raise translate(exc) from exc


def read_public_key(path: Path) -> PublicKey:
    """The public key from a ``.pub`` file or from the public part of an identity file."""
    try:
        return keyfiles.read_public_key(path)
    except keyfiles.KeyFileError as exc:
        raise translate(exc) from exc


def needs_passphrase(path: Path) -> bool:
    return read_key_file(path, tuple(keyfiles.SECRET_SIZES)).needs_passphrase


def open_identity(path: Path, passphrase: str | None) -> JournalistIdentity:
    """Load an identity file, unsealing it with ``passphrase`` if it is protected."""
    return unlock(read_key_file(path), passphrase)


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
