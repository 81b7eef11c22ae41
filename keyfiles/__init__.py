"""Identity files: the one reader and writer of Lanterne's private key files.

The journalist CLI (``journalist_cli.identity_store``, ``credentials``) and the
admin commands (``server.ops.admin_identity``) both go through this module;
the formats are specified in ``envelope/KEYS.md`` so that an independent
implementation can read them.

Three kinds of file, all JSON with a ``type``, the public key in clear
(``public_key``, a ``.pub`` object) and the secret sealed by one of three
protections (``passphrase``: Argon2id then SecretBox; ``openpgp``: wrapped to
an OpenPGP key; ``none``):

    lanterne-identity/v1          secret = X25519 key || Ed25519 seed            (64 bytes)
    lanterne-identity/v2          secret = X25519 key || Ed25519 seed || X-Wing seed (96)
    lanterne-signing-identity/v1  secret = Ed25519 seed                           (32 bytes)

Why a package of its own and not ``envelope``: ``envelope`` is the format's
reference implementation and imports only the standard library and
``cryptography`` (tests/test_layering.py), so that it ports and audits
easily; reading existing passphrase-sealed files needs PyNaCl (SecretBox is
XSalsa20-Poly1305, which ``cryptography`` lacks). This package may import
``envelope`` and PyNaCl, never ``server`` nor ``journalist_cli``; OpenPGP
(gpg through python-gnupg) is passed in by the caller, since the server must
not hold a gpg-agent.
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
import nacl.utils

import envelope
from envelope.keys import b64decode, b64encode

__all__ = [
    "IDENTITY_TYPE",
    "IDENTITY_TYPE_V2",
    "MIN_PASSPHRASE",
    "SIGNING_TYPE",
    "KeyFile",
    "KeyFileError",
    "OpenPGPWrap",
    "PassphraseNeeded",
    "SecretKeys",
    "Unreadable",
    "WrongPassphrase",
    "read",
    "read_public_key",
    "seal",
]

IDENTITY_TYPE = "lanterne-identity/v1"
IDENTITY_TYPE_V2 = "lanterne-identity/v2"
SIGNING_TYPE = "lanterne-signing-identity/v1"
KEY_SIZE = 32
BOX_OVERHEAD = nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES  # 24 + 16
SECRET_SIZES = {IDENTITY_TYPE: 64, IDENTITY_TYPE_V2: 96, SIGNING_TYPE: 32}
MIN_PASSPHRASE = 8
# Argon2id "moderate": about 0.5-1 s and 256 MiB here, paid once per command.
DEFAULT_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
DEFAULT_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
# Readers bound the parameters: a crafted file must not make us allocate without limit.
MAX_MEMLIMIT = 4 * 1024**3
MAX_KEY_FILE = 1 << 20


class KeyFileError(Exception):
    """A key file cannot be used; the message says why, naming the file."""


class Unreadable(KeyFileError):
    """The file cannot be read from disk."""


class PassphraseNeeded(KeyFileError):
    """The file is sealed with a passphrase and none was given."""


class WrongPassphrase(KeyFileError):
    """The passphrase does not open this file."""


@dataclass(frozen=True)
class SecretKeys:
    """What an identity file seals, with its public key.

    ``x25519`` is None only in a signing identity (which can log in but never
    decrypt); ``hybrid`` is None in a key made before hybrid keys existed.
    """

    public: envelope.PublicKey
    signing: nacl.signing.SigningKey
    x25519: envelope.X25519Identity | None
    hybrid: envelope.HybridIdentity | None

    @property
    def name(self) -> str:
        return self.public.name

    @property
    def decryption(self) -> envelope.X25519Identity:
        """The X25519 key (every full identity has one); prefer ``identities()`` to decrypt."""
        if self.x25519 is None:
            raise KeyFileError(f"the signing identity of {self.name} cannot decrypt")
        return self.x25519

    @classmethod
    def generate(cls, name: str, *, hybrid: bool = True) -> SecretKeys:
        return cls.build(
            name,
            nacl.signing.SigningKey.generate(),
            envelope.X25519Identity.generate(),
            envelope.HybridIdentity.generate() if hybrid else None,
        )

    @classmethod
    def build(
        cls,
        name: str,
        signing: nacl.signing.SigningKey,
        x25519: envelope.X25519Identity,
        hybrid: envelope.HybridIdentity | None,
    ) -> SecretKeys:
        public = envelope.PublicKey(
            name=name,
            x25519=x25519.recipient,
            signing_key=bytes(signing.verify_key),
            hybrid=None if hybrid is None else hybrid.recipient,
        )
        return cls(public, signing, x25519, hybrid)

    def with_hybrid(self) -> SecretKeys:
        """The same keys plus a new hybrid key (``lanterne keys upgrade``)."""
        if self.x25519 is None:
            raise KeyFileError("a signing identity has no decryption key to upgrade")
        if self.hybrid is not None:
            raise KeyFileError(f"the key {self.public.name} is already hybrid")
        return type(self).build(
            self.public.name, self.signing, self.x25519, envelope.HybridIdentity.generate()
        )

    def identities(self) -> list[envelope.Identity]:
        """Every decryption key: the hybrid one, and X25519 for older envelopes."""
        keys: list[envelope.Identity] = []
        if self.hybrid is not None:
            keys.append(self.hybrid)
        if self.x25519 is not None:
            keys.append(self.x25519)
        return keys

    def file_type(self) -> str:
        if self.x25519 is None:
            return SIGNING_TYPE
        return IDENTITY_TYPE if self.hybrid is None else IDENTITY_TYPE_V2

    def secret_bytes(self) -> bytes:
        """The sealed secret of ``file_type()`` (layouts in the module docstring)."""
        seed = bytes(self.signing)
        if self.x25519 is None:
            return seed
        secret = self.x25519.private_bytes() + seed
        if self.hybrid is not None:
            secret += self.hybrid.private_bytes()
        return secret

    def signing_only(self) -> SecretKeys:
        """The signing identity of these keys: the decryption keys left out."""
        return SecretKeys(self.public, self.signing, None, None)


@dataclass(frozen=True)
class OpenPGPWrap:
    """How to wrap a secret to an OpenPGP key: its fingerprint and the caller's gpg."""

    fingerprint: str  # 40 hex digits, already normalised by the caller
    encrypt: Callable[[bytes, str], str]  # (data, fingerprint) -> ASCII armour


def seal(
    keys: SecretKeys,
    passphrase: str | None,
    *,
    openpgp: OpenPGPWrap | None = None,
    opslimit: int = DEFAULT_OPSLIMIT,
    memlimit: int = DEFAULT_MEMLIMIT,
) -> str:
    """The key file's text: wrapped to ``openpgp``, else sealed with ``passphrase``,
    else (both None) unprotected."""
    secret = keys.secret_bytes()
    doc: dict[str, Any] = {"type": keys.file_type(), "public_key": keys.public.to_doc()}
    if openpgp is not None:
        doc["protection"] = "openpgp"
        doc["openpgp_fingerprint"] = openpgp.fingerprint
        doc["openpgp_message"] = openpgp.encrypt(b64encode(secret).encode(), openpgp.fingerprint)
    elif passphrase is None:
        doc["protection"] = "none"
        doc["secret"] = b64encode(secret)
    else:
        if len(passphrase) < MIN_PASSPHRASE:
            raise KeyFileError(f"a passphrase needs at least {MIN_PASSPHRASE} characters")
        salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
        key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit, memlimit
        )
        doc["protection"] = "passphrase"
        doc["argon2id"] = {"opslimit": opslimit, "memlimit": memlimit, "salt": b64encode(salt)}
        doc["box"] = b64encode(bytes(nacl.secret.SecretBox(key).encrypt(secret)))
    return json.dumps(doc, indent=2) + "\n"


def _load_json(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise Unreadable(f"cannot read {path}: {exc.strerror}") from exc
    if len(raw) > MAX_KEY_FILE:
        raise envelope.KeyFormatError(f"{path} is too large to be a Lanterne key file")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise envelope.KeyFormatError(f"{path} is not a Lanterne key file") from exc


@dataclass(frozen=True)
class KeyFile:
    """An identity or signing identity file, read and checked, nothing unlocked."""

    path: Path
    type: str
    public: envelope.PublicKey
    doc: dict[str, Any]

    @property
    def protection(self) -> str:
        return str(self.doc.get("protection"))

    @property
    def needs_passphrase(self) -> bool:
        return self.protection == "passphrase"

    @property
    def signing_only(self) -> bool:
        return self.type == SIGNING_TYPE

    def unlock(
        self,
        passphrase: str | None,
        openpgp_decrypt: Callable[[str], bytes] | None = None,
    ) -> SecretKeys:
        """The keys, checked against the public part (which sits outside the seal).

        ``openpgp_decrypt`` unwraps an ``openpgp`` file; without it such a file
        is refused with a message (the server has no gpg-agent).
        """
        secret = self._secret(passphrase, openpgp_decrypt)
        if self.type == SIGNING_TYPE:
            keys = SecretKeys(self.public, nacl.signing.SigningKey(secret), None, None)
            if bytes(keys.signing.verify_key) != self.public.signing_key:
                raise envelope.KeyFormatError(
                    f"{self.path}: the public key does not match the signing key"
                )
            return keys
        signing = nacl.signing.SigningKey(secret[KEY_SIZE : 2 * KEY_SIZE])
        hybrid = None
        if self.type == IDENTITY_TYPE_V2:
            hybrid = envelope.HybridIdentity(secret[2 * KEY_SIZE :])
        keys = SecretKeys.build(
            self.public.name, signing, envelope.X25519Identity(secret[:KEY_SIZE]), hybrid
        )
        if keys.public != self.public:
            raise envelope.KeyFormatError(
                f"{self.path}: the public key does not match the private keys"
            )
        return keys

    def _secret(
        self, passphrase: str | None, openpgp_decrypt: Callable[[str], bytes] | None
    ) -> bytes:
        size = SECRET_SIZES[self.type]
        protection = self.doc.get("protection")
        if protection == "none":
            return b64decode(self.doc.get("secret", ""), size, f"{self.path}: secret keys")
        if protection == "passphrase":
            if passphrase is None:
                raise PassphraseNeeded(f"{self.path} is protected by a passphrase")
            return self._unseal(passphrase, size)
        if protection == "openpgp":
            message = self.doc.get("openpgp_message")
            if not isinstance(message, str):
                raise envelope.KeyFormatError(f"{self.path}: damaged OpenPGP protection")
            if openpgp_decrypt is None:
                raise KeyFileError(
                    f"{self.path} is wrapped to an OpenPGP key, which cannot be used here: make"
                    " a passphrase-protected copy with `lanterne keys protect --new-passphrase`"
                )
            text = openpgp_decrypt(message).decode("ascii", errors="replace").strip()
            return b64decode(text, size, f"{self.path}: secret keys")
        raise envelope.KeyFormatError(f"{self.path}: unknown protection {protection!r}")

    def _unseal(self, passphrase: str, size: int) -> bytes:
        params = self.doc.get("argon2id", {})
        try:
            opslimit, memlimit = int(params["opslimit"]), int(params["memlimit"])
            salt = b64decode(params["salt"], nacl.pwhash.argon2id.SALTBYTES, "salt")
            box = b64decode(self.doc["box"], size + BOX_OVERHEAD, "sealed keys")
        except (KeyError, TypeError, ValueError) as exc:
            raise envelope.KeyFormatError(f"{self.path}: damaged passphrase parameters") from exc
        if not (
            nacl.pwhash.argon2id.OPSLIMIT_MIN <= opslimit <= nacl.pwhash.argon2id.OPSLIMIT_MAX
            and nacl.pwhash.argon2id.MEMLIMIT_MIN <= memlimit <= MAX_MEMLIMIT
        ):
            raise envelope.KeyFormatError(f"{self.path}: passphrase parameters out of range")
        key = nacl.pwhash.argon2id.kdf(
            nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt, opslimit, memlimit
        )
        try:
            return bytes(nacl.secret.SecretBox(key).decrypt(box))
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase(f"wrong passphrase for {self.path}") from None


def read(path: Path, types: tuple[str, ...] = tuple(SECRET_SIZES)) -> KeyFile:
    """Read an identity or signing identity file (of ``types``); nothing is unlocked."""
    doc = _load_json(path)
    if not isinstance(doc, dict) or doc.get("type") not in types:
        raise envelope.KeyFormatError(f"{path} is not a Lanterne identity file")
    try:
        public = envelope.PublicKey.from_doc(doc.get("public_key"))
    except envelope.KeyFormatError as exc:
        raise envelope.KeyFormatError(f"{path}: {exc}") from exc
    # A v1 identity holds no hybrid key, a v2 one always does (its public part says so).
    full = doc["type"] != SIGNING_TYPE
    if full and (doc["type"] == IDENTITY_TYPE_V2) != (public.hybrid is not None):
        raise envelope.KeyFormatError(f"{path}: the public key does not match the file type")
    return KeyFile(path, doc["type"], public, doc)


def read_public_key(path: Path) -> envelope.PublicKey:
    """The public key of a ``.pub`` file, or the public part of any identity file."""
    doc = _load_json(path)
    if isinstance(doc, dict) and doc.get("type") in SECRET_SIZES:
        return read(path).public
    try:
        return envelope.PublicKey.from_doc(doc)
    except envelope.KeyFormatError as exc:
        raise envelope.KeyFormatError(f"{path}: {exc}") from exc
