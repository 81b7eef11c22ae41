"""A throwaway GnuPG home with one passphrase-less Curve25519 key, for tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GnuPGHome:
    path: Path
    fingerprint: str

    @property
    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.path)}


def _gpg(home: Path, *args: str) -> str:
    return subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout


@contextmanager
def gnupg_home(uid: str = "Test Journalist <journalist@example.org>") -> Iterator[GnuPGHome]:
    # gpg-agent's socket path must stay short, so not under pytest's deep tmp_path.
    home = Path(tempfile.mkdtemp(prefix="lt-gpg-"))
    os.chmod(home, 0o700)
    try:
        _gpg(home, "--passphrase", "", "--quick-gen-key", uid, "future-default", "default", "never")
        fpr = next(
            line.split(":")[9]
            for line in _gpg(home, "--with-colons", "--list-secret-keys").splitlines()
            if line.startswith("fpr:")
        )
        yield GnuPGHome(home, fpr)
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)
        shutil.rmtree(home, ignore_errors=True)
