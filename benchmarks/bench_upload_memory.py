"""Server memory per no-JS upload in flight (issue 13, item 6).

    .venv/bin/python benchmarks/bench_upload_memory.py [--uploads 200] [--size-mib 8]
        [--seconds 40] [--runs 3] [--compare REF]

Each run starts a fresh server and N browsers without JavaScript (a session
cookie and a CSRF token each, from the form page), then sends the N multipart
POSTs at once, each paced so that its file takes about ``--seconds``: all N are
in flight together, as slow uploads through Tor would be. The server's peak
RSS (VmHWM) is read before the uploads (after the N form pages) and after
they all answered; the per-upload slope is (peak - before) / N.

``--compare REF`` also runs the server from the git tree REF (exported to
benchmarks/out/tree-REF, same venv), alternating with the working tree (new,
old, old, new, ...) so that drift on a shared machine hits both; medians are
printed as JSON and a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server_process import CSRF_RE, free_port, init_instance, wait_for_port  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
MiB = 1 << 20
PIECE = 64 * 1024
SERVE = [sys.executable, "-m", "server.ops.admin", "run"]


def vm_hwm(pid: int) -> int:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match
    return int(match.group(1)) * 1024


def export_tree(ref: str) -> Path:
    tree = OUT / f"tree-{re.sub(r'[^A-Za-z0-9_.-]', '_', ref)}"
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", ref, "server", "envelope", "templates"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def multipart(token: str, size: int) -> tuple[bytes, bytes, str]:
    boundary = "benchboundary7d1f"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="website"\r\n\r\n\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\nbenchmark\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="f.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail, f"multipart/form-data; boundary={boundary}"


async def one_upload(
    base_url: str, data: bytes, seconds: float, ready: list[int], go: asyncio.Event
) -> int:
    async with httpx.AsyncClient(base_url=base_url, timeout=600) as client:
        page = await client.get("/en/submit")
        token = CSRF_RE.search(page.text)
        assert token, page.status_code
        head, tail, ctype = multipart(token.group(1), len(data))
        pause = seconds / max(1, len(data) // PIECE)

        async def body() -> AsyncIterator[bytes]:
            yield head
            for start in range(0, len(data), PIECE):
                yield data[start : start + PIECE]
                await asyncio.sleep(pause)
            yield tail

        length = len(head) + len(data) + len(tail)
        ready.append(1)
        await go.wait()
        r = await client.post(
            "/en/submit",
            content=body(),
            headers={"Content-Type": ctype, "Content-Length": str(length)},
        )
        return r.status_code


async def uploads(base_url: str, n: int, data: bytes, seconds: float, pid: int) -> tuple[int, int]:
    """Every browser gets its form page, then all N uploads start at once."""
    ready: list[int] = []
    go = asyncio.Event()
    tasks = [asyncio.create_task(one_upload(base_url, data, seconds, ready, go)) for _ in range(n)]
    while len(ready) < n:
        if any(t.done() for t in tasks):
            await asyncio.gather(*tasks)  # raises what failed
        await asyncio.sleep(0.2)
    before = vm_hwm(pid)
    go.set()
    codes = await asyncio.gather(*tasks)
    assert all(c == 303 for c in codes), sorted(set(codes))
    return before, vm_hwm(pid)


def run_once(tree: Path, n: int, data: bytes, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        instance = init_instance(Path(tmp), names=("bench",))
        port = free_port()
        env = {**os.environ, "TMPDIR": str(instance.tmp_dir), "PYTHONDONTWRITEBYTECODE": "1"}
        with instance.log_path.open("ab") as log:
            proc = subprocess.Popen(
                [*SERVE, "--data-dir", str(instance.data_dir), "--port", str(port)],
                cwd=tree,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(port, proc, 60, lambda: instance.log_path.read_text())
            idle = vm_hwm(proc.pid)
            start = time.perf_counter()
            before, peak = asyncio.run(
                uploads(f"http://127.0.0.1:{port}", n, data, seconds, proc.pid)
            )
            wall = time.perf_counter() - start
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {
        "idle_mib": idle / MiB,
        "before_mib": before / MiB,
        "peak_mib": peak / MiB,
        "per_upload_mib": (peak - before) / n / MiB,
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--uploads", default="50,200", help="numbers of uploads in flight, comma-separated"
    )
    parser.add_argument("--size-mib", type=float, default=8)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", help="a git ref to run alternately (the old code)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    data = os.urandom(int(args.size_mib * MiB))
    counts = [int(n) for n in args.uploads.split(",")]
    trees = {"new": ROOT}
    if args.compare:
        trees["old"] = export_tree(args.compare)
    results: dict[str, dict[int, list[dict[str, float]]]] = {
        name: {n: [] for n in counts} for name in trees
    }
    order = [(name, n) for n in counts for name in trees]
    for i in range(args.runs):
        for name, n in order if i % 2 == 0 else order[::-1]:
            r = run_once(trees[name], n, data, args.seconds)
            results[name][n].append(r)
            line = {k: round(v, 2) for k, v in r.items()}
            print(name, n, json.dumps(line), file=sys.stderr, flush=True)
    summary = {
        name: {
            n: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            for n, runs in by_n.items()
        }
        for name, by_n in results.items()
    }
    print(json.dumps({"args": vars(args), "median": summary, "runs": results}, indent=2))
    lo, hi = min(counts), max(counts)
    print(
        f"\n| server | uploads in flight | peak RSS MiB (median) | (peak - before) / N, MiB |"
        f" slope {lo}->{hi}, MiB per upload |"
    )
    print("|---|---|---|---|---|")
    for name, by_n in summary.items():
        label = "this tree" if name == "new" else args.compare
        slope = (by_n[hi]["peak_mib"] - by_n[lo]["peak_mib"]) / (hi - lo) if hi > lo else 0.0
        for n in counts:
            s = by_n[n]
            print(
                f"| {label} | {n} | {s['peak_mib']:.0f} | {s['per_upload_mib']:.2f} | {slope:.2f} |"
            )


if __name__ == "__main__":
    main()
