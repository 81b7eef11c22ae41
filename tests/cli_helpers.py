"""Running the real `lanterne` console script in tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LANTERNE = shutil.which("lanterne", path=str(Path(sys.executable).parent)) or "lanterne"


def run(
    *args: str | os.PathLike[str],
    input: bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `lanterne ARGS...` and capture its output (never raises on failure)."""
    return subprocess.run(
        [LANTERNE, *map(str, args)],
        input=input,
        capture_output=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
