"""The row stores, SQLite against PostgreSQL (issue 14 §5's question, for rows alone).

    .venv/bin/python benchmarks/bench_row_stores.py [--sources 300] [--threads 1 8] [--rounds 3]

Each round, for each backend and each thread count, on a fresh database: the
threads share ``--sources`` first submissions (``record_submission`` of a new
source with 3 object rows, what a no-JS submission writes), then a follow-up
submission of each, then ``items_of`` of each (what the journalist API reads
per source), then one ``source_summaries``. Both are durable as deployed:
SQLite in WAL mode with its default synchronous=FULL, PostgreSQL with fsync
and synchronous commits on, a local cluster over TCP on 127.0.0.1 (the tests'
throw-away cluster, tests/pg_cluster.py, ``durable=True``). Medians of the
rounds, in operations per second (one operation = one store call).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.store.db import Database  # noqa: E402
from server.store.newsroom import SqliteNewsroomStore  # noqa: E402
from server.store.postgres import PostgresDatabase  # noqa: E402
from server.store.postgres_stores import PostgresNewsroomStore, PostgresSourceStore  # noqa: E402
from server.store.protocols import ObjectRow, SourceRow, new_id  # noqa: E402
from server.store.sources import SqliteSourceStore  # noqa: E402
from tests.pg_cluster import fresh_schema, running_cluster  # noqa: E402

DAY = "2026-12-04"


def timed(threads: int, jobs: list[Callable[[], Any]]) -> float:
    """Operations per second for ``jobs`` shared by ``threads`` threads."""
    lock = threading.Lock()
    queue = list(reversed(jobs))

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                job = queue.pop()
            job()

    pool = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(jobs) / (time.perf_counter() - start)


def one_round(sources_store: Any, newsroom: Any, n: int, threads: int) -> dict[str, float]:
    rows = [SourceRow(new_id(), new_id().encode(), new_id().encode()) for _ in range(n)]

    def objects() -> list[ObjectRow]:
        return [ObjectRow(new_id(), k, 8 << 20) for k in ("manifest", "message", "file")]

    first = [
        (lambda r=r: sources_store.record_submission(new_id(), r.id, r, DAY, objects()))
        for r in rows
    ]
    again = [
        (lambda r=r: sources_store.record_submission(new_id(), r.id, None, DAY, objects()))
        for r in rows
    ]
    reads = [(lambda r=r: newsroom.items_of(r.id)) for r in rows]
    out = {
        "first submission": timed(threads, first),
        "follow-up submission": timed(threads, again),
        "items_of": timed(threads, reads),
    }
    start = time.perf_counter()
    newsroom.source_summaries()
    out["source_summaries (ms)"] = (time.perf_counter() - start) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=300)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    with running_cluster(durable=True) as cluster:
        for _ in range(args.rounds):
            for threads in args.threads:
                with tempfile.TemporaryDirectory() as tmp:
                    db = Database(Path(tmp) / "lanterne.sqlite3")
                    db.create()
                    results.setdefault(("SQLite", threads), []).append(
                        one_round(
                            SqliteSourceStore(db), SqliteNewsroomStore(db), args.sources, threads
                        )
                    )
                with (
                    fresh_schema(cluster) as url,
                    PostgresDatabase(url, max_size=max(threads, 2)) as pg,
                ):
                    pg.prepare()
                    results.setdefault(("PostgreSQL", threads), []).append(
                        one_round(
                            PostgresSourceStore(pg),
                            PostgresNewsroomStore(pg),
                            args.sources,
                            threads,
                        )
                    )
    keys = list(next(iter(results.values()))[0])
    print("| backend | threads | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for (backend, threads), runs in results.items():
        cells = [f"{statistics.median(r[k] for r in runs):.0f}" for k in keys]
        print(f"| {backend} | {threads} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
