"""Memory per object in flight in the S3 store (issue 14 §2): its spool design.

    .venv/bin/python benchmarks/bench_s3_store_memory.py [--objects 10 50] [--size-mib 12]
        [--runs 3]

For each N, a fresh Python process (so that its peak RSS is its own) opens
one S3ObjectStore on moto's standalone server (a separate process on
127.0.0.1, like tests/s3_server.py), starts N threads that each write
``--size-mib`` MiB of random bytes into a pending object in 64 KiB writes (as
the no-JS upload path does, from worker threads), waits until all N have
written everything but the last byte (each has sent its full 8 MiB parts and
holds the rest in its spool: all N multipart uploads open together), then
lets them commit.
Peak RSS (VmHWM) is read before the threads start and after all committed;
the per-object slope is (peak at the largest N - peak at the smallest) /
(difference in N), which leaves the fixed costs (boto3, threads' first
stacks) out. The memory target is the no-JS upload path's: under 1 MiB per
upload in flight (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNK = 64 * 1024


def vm_hwm() -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match
    return int(match.group(1)) * 1024


def one_run(endpoint: str, objects: int, size: int) -> dict[str, float]:
    from server.store.s3_objects import PART_SIZE, S3Location, S3ObjectStore, connect
    from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY

    bucket = "bench-" + os.urandom(4).hex()
    location = S3Location(endpoint, bucket, ACCESS_KEY, SECRET_KEY, REGION)
    client = connect(location, max_connections=objects + 4)
    client.create_bucket(Bucket=bucket)
    spool = Path(tempfile.mkdtemp(prefix="bench-spool-"))
    store = S3ObjectStore(client, bucket, spool)  # the default part size
    store.create_dirs()
    store.write_bytes(os.urandom(PART_SIZE + 1))  # warm: one multipart object
    data = os.urandom(size)  # shared by all threads: not counted per object
    all_written = threading.Barrier(objects + 1)
    go = threading.Event()
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            obj = store.new_object()
            for i in range(0, size - 1, CHUNK):
                obj.write(data[i : min(i + CHUNK, size - 1)])
            all_written.wait()
            go.wait()
            obj.write(data[size - 1 :])
            obj.commit()
        except BaseException as exc:
            errors.append(exc)
            all_written.abort()

    before = vm_hwm()
    threads = [threading.Thread(target=upload) for _ in range(objects)]
    for t in threads:
        t.start()
    all_written.wait()
    in_flight = len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    go.set()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    peak = vm_hwm()
    assert len(store.ids()) == objects + 1
    for object_id in store.ids():  # moto keeps objects in its memory
        store.delete(object_id)
    return {"before": before, "peak": peak, "uploads_in_flight": in_flight}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--size-mib", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        endpoint, objects, size = args.child
        print(json.dumps(one_run(endpoint, int(objects), int(size))))
        return

    from tests.s3_server import running_s3_server

    size = args.size_mib * 1024 * 1024
    results: dict[int, list[dict[str, float]]] = {n: [] for n in args.objects}
    with tempfile.TemporaryDirectory() as logs, running_s3_server(Path(logs)) as s3:
        for _ in range(args.runs):
            for n in args.objects:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", s3.endpoint, str(n), str(size)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                results[n].append(json.loads(out.stdout))
    mib = 1024 * 1024
    print("| objects in flight | peak RSS per run (MiB) | median peak | (peak - before) / N |")
    print("|---|---|---|---|")
    medians = {}
    for n, runs in results.items():
        peaks = [r["peak"] / mib for r in runs]
        medians[n] = statistics.median(peaks)
        per = statistics.median((r["peak"] - r["before"]) / n / mib for r in runs)
        print(
            f"| {n} | {', '.join(f'{p:.0f}' for p in peaks)} | {medians[n]:.0f} MiB"
            f" | {per:.2f} MiB |"
        )
        assert all(r["uploads_in_flight"] == n for r in runs), runs
    low, high = min(medians), max(medians)
    if high > low:
        slope = (medians[high] - medians[low]) / (high - low)
        print(f"\nslope {low} -> {high}: {slope:.2f} MiB per object in flight")


if __name__ == "__main__":
    main()
