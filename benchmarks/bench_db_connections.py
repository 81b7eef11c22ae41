"""Short SQLite connections with and without one held open (issue 13, item 3).

    .venv/bin/python benchmarks/bench_db_connections.py [--processes 2] [--threads 8]
        [--rounds 200]

Each request of the server opens its own connection (server/store/db.py). In
WAL mode the last connection to close deletes the WAL and its shared-memory
file, and the next one to open makes them again (and, across processes, runs
WAL recovery). A serving process now keeps one idle connection
(``Database.hold_open``). This runs ``--processes`` processes (the source
interface and the journalist API are two) of ``--threads`` threads, each doing
``--rounds`` times one write transaction and one read, through ``Database``,
first without a held connection, then with one per process, and reports the
wall time, the transactions per second and the errors (each an
``OperationalError`` a request would have turned into a 503 page).
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import tempfile
import threading
import time
from pathlib import Path

from server.store.db import Database


def worker(path: Path, hold: bool, threads: int, rounds: int, out: multiprocessing.Queue) -> None:
    db = Database(path)
    if hold:
        db.hold_open()
    errors: collections.Counter[str] = collections.Counter()

    def run(tag: int) -> None:
        for i in range(rounds):
            try:
                db.set_meta_value(f"bench-{tag}", str(i))
                db.meta_value(f"bench-{tag}")
            except Exception as exc:  # counted, not raised: that is the measure
                errors[f"{type(exc).__name__}: {exc}"] += 1

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    db.release()
    out.put(dict(errors))


def measure(hold: bool, processes: int, threads: int, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "lanterne.sqlite3")
        Database(path).create()
        out: multiprocessing.Queue = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(target=worker, args=(path, hold, threads, rounds, out))
            for _ in range(processes)
        ]
        start = time.perf_counter()
        for p in procs:
            p.start()
        errors: collections.Counter[str] = collections.Counter()
        for _ in procs:
            errors.update(out.get())
        for p in procs:
            p.join()
        seconds = time.perf_counter() - start
    transactions = 2 * processes * threads * rounds
    return {
        "held": hold,
        "seconds": round(seconds, 1),
        "transactions_per_second": round(transactions / seconds),
        "errors": dict(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    for hold in (False, True):
        print(measure(hold, args.processes, args.threads, args.rounds), flush=True)


if __name__ == "__main__":
    main()
