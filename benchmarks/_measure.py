"""Helpers for benchmarks: run a child process and measure it from the outside.

Every tool is measured the same way: wall time around spawn-to-reap, user and
system CPU seconds from the child's ``rusage`` (``os.wait4``), and peak RSS.
Only the child (and what it waits for) is counted; a daemon it talks to
(gpg-agent) is not.

Peak RSS goes through GNU time (``/usr/bin/time``, Debian package ``time``):
Linux carries ``ru_maxrss`` across ``execve`` and a child forked (or vforked)
from this Python process starts with the parent's ~30 MiB as its high-water
mark, so ``wait4`` on a direct child can never report less than the
benchmark's own RSS. GNU time is a ~1 MiB process, so the tool it forks
starts from near zero and ``%M`` is the tool's own peak. Wall and CPU still
come from ``wait4`` on GNU time (microsecond resolution), which adds its own
exec, about a millisecond (``launcher_overhead`` measures it).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence

MIB = 1 << 20
GNU_TIME = "/usr/bin/time"


@dataclasses.dataclass(frozen=True)
class Measurement:
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_kib: int

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    @property
    def maxrss_mib(self) -> float:
        return self.maxrss_kib / 1024


class ChildFailed(RuntimeError):
    pass


def run_child(
    argv: Sequence[str],
    *,
    stdout_path: str = os.devnull,
    env: Mapping[str, str] | None = None,
) -> Measurement:
    """Run ``argv`` with stdin from /dev/null and stdout to ``stdout_path``.

    Raises ChildFailed (with the child's stderr) on a non-zero exit.
    """
    with (
        open(os.devnull, "rb") as stdin,
        open(stdout_path, "wb") as stdout,
        tempfile.TemporaryFile() as stderr,
        tempfile.NamedTemporaryFile("r") as rss_out,
    ):
        wrapped = [GNU_TIME, "-f", "%M", "-o", rss_out.name, "--", *argv]
        start = time.perf_counter()
        proc = subprocess.Popen(wrapped, stdin=stdin, stdout=stdout, stderr=stderr, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            stderr.seek(0)
            msg = stderr.read().decode(errors="replace").strip()
            raise ChildFailed(f"{argv[0]} exited with {proc.returncode}: {msg}")
        maxrss_kib = int(rss_out.read().split()[-1])
    return Measurement(wall, usage.ru_utime, usage.ru_stime, maxrss_kib)


def launcher_overhead(runs: int = 20) -> Measurement:
    """Median cost of measuring ``true``: what the method adds to every run."""
    ms = [run_child(["true"]) for _ in range(runs)]
    return Measurement(
        median([m.wall_s for m in ms]),
        median([m.user_s for m in ms]),
        median([m.sys_s for m in ms]),
        int(median([m.maxrss_kib for m in ms])),
    )


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Make a written file durable (used so file-to-file runs all pay for fsync)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def parse_size(text: str) -> int:
    """'1M', '100M', '1G', '4096' -> bytes (binary units)."""
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def size_label(n: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} B"
