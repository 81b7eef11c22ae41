"""OpenPGP through GnuPG (python-gnupg): wrapping identities to a journalist's
existing key, so gpg-agent or a smartcard guards them, and exporting files to
OpenPGP recipients.

GnuPG's home is ``$GNUPGHOME`` or ``~/.gnupg``, as for the ``gpg`` command.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from journalist_cli.errors import CliError, UsageProblem

if TYPE_CHECKING:
    import gnupg


class OpenPGPError(CliError):
    """GnuPG is missing, or refused to encrypt or decrypt."""


def _gpg() -> gnupg.GPG:
    import gnupg  # loaded only for identities wrapped to OpenPGP and for export

    binary = shutil.which("gpg")
    if binary is None:
        raise OpenPGPError("GnuPG (gpg) is not installed")
    return gnupg.GPG(gpgbinary=binary, gnupghome=os.environ.get("GNUPGHOME"))


def normalise_fingerprint(fingerprint: str) -> str:
    fpr = fingerprint.replace(" ", "").upper()
    if len(fpr) != 40 or any(c not in "0123456789ABCDEF" for c in fpr):
        raise UsageProblem("give the full 40-hex-digit OpenPGP fingerprint")
    return fpr


def encrypt_to(data: bytes, fingerprint: str) -> str:
    """Encrypt ``data`` to the OpenPGP key ``fingerprint``; returns ASCII armour.

    The key must be in the keyring; trust is given by the exact fingerprint the
    user typed, not by the web of trust.
    """
    fpr = normalise_fingerprint(fingerprint)
    result = _gpg().encrypt(
        data, [fpr], armor=True, always_trust=True, extra_args=["--compress-algo", "none"]
    )
    if not result.ok:
        raise OpenPGPError(f"gpg could not encrypt to {fpr}: {result.status or 'unknown key'}")
    return str(result)


def encrypt_file_to(src: str, dst: str, fingerprint: str) -> None:
    """Encrypt the file ``src`` to ``fingerprint`` into ``dst`` (binary OpenPGP)."""
    fpr = normalise_fingerprint(fingerprint)
    with open(src, "rb") as f:  # noqa: PTH123 - python-gnupg wants a file object
        result = _gpg().encrypt_file(f, [fpr], armor=False, always_trust=True, output=dst)
    if not result.ok:
        raise OpenPGPError(f"gpg could not encrypt to {fpr}: {result.status or 'unknown key'}")


def decrypt(armored: str) -> bytes:
    """Decrypt an OpenPGP message with the user's keys (gpg-agent asks for the PIN)."""
    result = _gpg().decrypt(armored)
    if not result.ok:
        raise OpenPGPError(
            f"gpg could not decrypt the identity: {result.status or 'no secret key'}"
        )
    return bytes(result.data)
