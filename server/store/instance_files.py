"""The instance's small files in the data directory (secrets, configuration),
created once by ``lanterne-server init``."""

from __future__ import annotations

import os
from pathlib import Path


def create_private(path: Path, text: str) -> None:
    """Write a new file only the service user can read (0600, whatever the
    umask); ``FileExistsError`` rather than replace one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
