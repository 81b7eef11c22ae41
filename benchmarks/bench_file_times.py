"""File times are days (issue 11, item 1): what a stamp costs, and what noatime changes.

Two measurements, printed as Markdown:

1. The cost of ``server.store.file_times.stamp`` on one path and of ``stamp_sqlite``
   (the database, its -wal, -shm and -journal, and the data directory: what
   runs after every database connection), in microseconds per call, median
   of ``--rounds`` runs of ``--calls`` calls each.
2. Whether a plain read (no ``O_NOATIME``) of a stamped file leaves a precise
   access time, on a directory of this machine's root filesystem as mounted,
   and on the same directory bound onto itself with ``noatime`` (what
   deploy/lanterne-data.mount does). Needs root, for the bind mount.

    .venv/bin/python benchmarks/bench_file_times.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.store import file_times

DAY_NS = 86400 * 10**9


def per_call_us(fn: object, calls: int, rounds: int) -> float:
    assert callable(fn)
    runs = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(runs)


def read_leaves_precise_atime(directory: Path) -> bool:
    path = directory / "object"
    path.write_bytes(b"x" * 4096)
    file_times.stamp(path)
    with path.open("rb") as f:  # a plain read, as any program would do it
        f.read()
    return path.stat().st_atime_ns % DAY_NS != 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        base = Path(tmp)
        (base / "db").write_bytes(b"")
        stamp = per_call_us(lambda: file_times.stamp(base / "db"), args.calls, args.rounds)
        sqlite = per_call_us(lambda: file_times.stamp_sqlite(base / "db"), args.calls, args.rounds)
        plain = base / "plain"
        plain.mkdir()
        bound = base / "bound"
        bound.mkdir()
        mount = ["mount", "--bind", "-o", "noatime", str(bound), str(bound)]
        subprocess.run(mount, check=True)
        try:
            mounted = subprocess.run(
                ["findmnt", "-n", "-o", "OPTIONS", "--target", str(plain)],
                check=True, capture_output=True, text=True,
            ).stdout.split(",")  # fmt: skip
            atime_mode = next(o for o in mounted if o.endswith("atime"))
            precise_plain = read_leaves_precise_atime(plain)
            precise_bound = read_leaves_precise_atime(bound)
        finally:
            subprocess.run(["umount", str(bound)], check=True)
    print(f"| measurement | result ({args.rounds} x {args.calls} calls, median) |")
    print("|---|---|")
    print(f"| `stamp` of one path | {stamp:.1f} µs |")
    print(f"| `stamp_sqlite` (db, -wal, -shm, -journal, directory) | {sqlite:.1f} µs |")
    print(
        f"| a plain read of a stamped file, `{atime_mode}` | "
        f"{'precise access time left' if precise_plain else 'access time stays the day'} |"
    )
    print(
        "| the same, on a `bind,noatime` mount | "
        f"{'precise access time left' if precise_bound else 'access time stays the day'} |"
    )


if __name__ == "__main__":
    main()
