"""Which key each command unlocks: signing for the API, decryption for reading.

Logging in to the journalist API needs only the Ed25519 signing key. On the
online machine of an air-gapped setup the decryption keys must not be there
at all, so besides a full identity file (``NAME.identity``, every key sealed
together) `lanterne config --identity` accepts a *signing identity*
(``NAME.signing``): the same public key, but only the signing key sealed
inside. `lanterne signing-key IDENTITY --out FILE` writes one on the
air-gapped machine; it can log in, pull, triage, write notes and replies
(which are encrypted to public keys), and can never decrypt anything.

A signing identity uses the same protections as identity files (a passphrase,
an OpenPGP key, or none for automation); ``keyfiles`` reads and writes both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nacl.signing

import keyfiles
from envelope import KeyFormatError, PublicKey
from journalist_cli import identity_store
from journalist_cli.errors import UsageProblem
from journalist_cli.passphrase import read_passphrase

SIGNING_TYPE = keyfiles.SIGNING_TYPE
_ANY = tuple(keyfiles.SECRET_SIZES)


@dataclass(frozen=True)
class Signer:
    """A journalist's name, public key and Ed25519 signing key: what logging in needs."""

    public: PublicKey
    signing: nacl.signing.SigningKey

    @property
    def name(self) -> str:
        return self.public.name


def _read(path: Path) -> keyfiles.KeyFile:
    try:
        return keyfiles.read(path, _ANY)
    except KeyFormatError as exc:
        raise KeyFormatError(f"{exc} (expected an identity or signing identity file)") from exc
    except keyfiles.KeyFileError as exc:
        raise identity_store.translate(exc) from exc


def public_key_of(path: Path) -> PublicKey:
    """The public key recorded in an identity or signing identity file (nothing unlocked)."""
    return _read(path).public


def is_signing_only(path: Path) -> bool:
    return _read(path).signing_only


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
    keys = keyfiles.SecretKeys(public, signing, None, None)
    try:
        return keyfiles.seal(
            keys,
            passphrase,
            openpgp=identity_store.openpgp_wrap(gpg_fingerprint),
            opslimit=opslimit,
            memlimit=memlimit,
        )
    except keyfiles.KeyFileError as exc:
        raise identity_store.translate(exc) from exc


def write_signing_identity(path: Path, text: str) -> None:
    if path.exists():
        raise UsageProblem(f"{path} already exists; it was not replaced")
    identity_store.write_identity_file(path, text)


def _passphrase_for(kf: keyfiles.KeyFile, passphrase_file: Path | None) -> str | None:
    if not kf.needs_passphrase:
        return None
    return read_passphrase(passphrase_file, prompt=f"Passphrase for {kf.path}")


def load_signer(path: Path, passphrase_file: Path | None) -> Signer:
    """The signing key from an identity or signing identity file.

    A full identity file seals every key in one box, so opening it for the
    signing key also decrypts the decryption keys; they are dropped at once.
    Use a signing identity where the decryption keys must not be.
    """
    kf = _read(path)
    keys = identity_store.unlock(kf, _passphrase_for(kf, passphrase_file))
    return Signer(keys.public, keys.signing)


def load_full_identity(
    path: Path, passphrase_file: Path | None
) -> identity_store.JournalistIdentity:
    """Every key, for commands that decrypt; refuses a signing identity plainly."""
    kf = _read(path)
    if kf.signing_only:
        raise UsageProblem(
            f"{path} is a signing identity: it can pull and triage but not decrypt. "
            "Decrypt on the machine that holds the full identity."
        )
    return identity_store.unlock(kf, _passphrase_for(kf, passphrase_file))
