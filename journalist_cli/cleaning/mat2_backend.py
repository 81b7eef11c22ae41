"""mat2 as an extra backend, only for formats the native cleaners do not cover.

Runs Debian's `mat2` command (Lanterne's own interpreter cannot import
libmat2's GObject dependencies). mat2 picks its parser from the file name, so
it gets a copy with the canonical extension of the detected type. Its result
is checked with `mat2 --show` before it is accepted.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from journalist_cli.cleaning.errors import MalformedFile, UnsupportedType, VerificationFailed
from journalist_cli.cleaning.report import Category, Findings


def _show(mat2: str, path: Path, timeout: float) -> list[tuple[str, str]]:
    result = subprocess.run(
        [mat2, "--show", str(path)], capture_output=True, text=True, timeout=timeout, check=False
    )
    pairs = []
    for line in result.stdout.splitlines():
        if line.startswith("  ") and ":" in line:
            key, _, value = line.strip().partition(":")
            pairs.append((key.strip(), value.strip()))
    return pairs[:200]


def clean(src: Path, out: Path, ext: str, findings: Findings, timeout: float) -> None:
    """Clean `src` (of the type `ext` names) into `out` with the mat2 command."""
    mat2 = shutil.which("mat2")
    if mat2 is None:
        raise UnsupportedType(
            f"no native cleaner for {ext} files and mat2 is not installed"
            " (scripts/bootstrap.sh installs it)"
        )
    work = out.parent / f"input{ext}"
    cleaned = out.parent / f"input.cleaned{ext}"
    shutil.copyfile(src, work)
    try:
        for key, value in _show(mat2, work, timeout):
            findings.found(Category.OTHER, f"mat2: {key}", value)
        result = subprocess.run(
            [mat2, str(work)], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0 or not cleaned.is_file():
            message = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["failed"]
            if "ffmpeg" in message[0]:
                # mat2 cleans audio and video with ffmpeg, which it does not install.
                raise UnsupportedType(
                    f"mat2 needs ffmpeg to clean {ext} files: install it (apt install ffmpeg)"
                )
            raise MalformedFile(f"mat2 could not clean it: {message[0]}")
        left = _show(mat2, cleaned, timeout)
        if left:
            raise VerificationFailed(f"mat2 left metadata: {', '.join(k for k, _ in left[:5])}")
        cleaned.replace(out)
    finally:
        work.unlink(missing_ok=True)
        cleaned.unlink(missing_ok=True)
