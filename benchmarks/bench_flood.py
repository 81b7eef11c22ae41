"""Idle connections against the source listener: what still answers (issue 13, item 1).

    .venv/bin/python benchmarks/bench_flood.py [--idle 1100] [--descriptors 1024]
        [--seconds 30] [--compare REF]

Starts the server (source interface and journalist API) with RLIMIT_NOFILE set
to ``--descriptors`` (1024 is what systemd gives a unit that sets no
LimitNOFILE), opens ``--idle`` TCP connections to the source listener that
send nothing, and keeps them open. For ``--seconds`` it then tries, once a
second, a source page (GET /en/submit) and a journalist API request (POST
/auth/challenge), each with a 5 s timeout, and reports how many answered, the
server's CPU use over the flood (both processes) and the lines its log grew by.
``--compare REF`` runs the server from git tree REF the same way (old, then new).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_upload_memory import OUT, SERVE, export_tree  # noqa: E402

from tests.server_process import free_port, init_instance, wait_for_port  # noqa: E402


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def attempt(url: str, method: str) -> bool:
    try:
        return httpx.request(method, url, timeout=5).status_code < 500
    except httpx.HTTPError:
        return False


def run(tree: Path, idle: int, descriptors: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        instance = init_instance(Path(tmp), names=("bench",))
        port, api_port = free_port(), free_port()
        env = {**os.environ, "TMPDIR": str(instance.tmp_dir), "PYTHONDONTWRITEBYTECODE": "1"}

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))

        argv = [*SERVE, "--data-dir", str(instance.data_dir), "--port", str(port)]
        argv += ["--journalist-port", str(api_port)]
        with instance.log_path.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                cwd=tree,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=limit,
            )
        conns: list[socket.socket] = []
        try:
            for p in (port, api_port):
                wait_for_port(p, proc, 60, lambda: instance.log_path.read_text())
            lines_before = len(instance.log_path.read_text(errors="replace").splitlines())
            pids = [proc.pid, *children(proc.pid)]
            cpu_before, start = cpu_seconds(pids), time.monotonic()
            for _ in range(idle):
                try:
                    conns.append(socket.create_connection(("127.0.0.1", port), timeout=5))
                except OSError:
                    break
            source_ok = api_ok = tries = 0
            while time.monotonic() - start < seconds:
                t = time.monotonic()
                tries += 1
                source_ok += attempt(f"http://127.0.0.1:{port}/en/submit", "GET")
                api_ok += attempt(f"http://127.0.0.1:{api_port}/api/v1/auth/challenge", "POST")
                time.sleep(max(0.0, 1 - (time.monotonic() - t)))
            elapsed = time.monotonic() - start
            cpu = cpu_seconds(pids) - cpu_before
            lines = len(instance.log_path.read_text(errors="replace").splitlines()) - lines_before
        finally:
            for s in conns:
                s.close()
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {
        "connections_opened": len(conns),
        "tries": tries,
        "source_answered": source_ok,
        "journalist_api_answered": api_ok,
        "server_cpu_percent": 100 * cpu / elapsed,
        "log_lines": lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle", type=int, default=1100)
    parser.add_argument("--descriptors", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--compare", help="a git ref to run first (the old code)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.idle + 1024), hard))
    trees = {}
    if args.compare:
        trees[args.compare] = export_tree(args.compare)
    trees["this tree"] = ROOT
    results = {}
    for name, tree in trees.items():
        results[name] = run(tree, args.idle, args.descriptors, args.seconds)
        print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    print(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(
        "\n| server | connections opened | source pages answered | journalist API answered"
        " | server CPU % | log lines |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['connections_opened']} | {r['source_answered']}/{r['tries']} "
            f"| {r['journalist_api_answered']}/{r['tries']} | {r['server_cpu_percent']:.0f} "
            f"| {r['log_lines']} |"
        )


if __name__ == "__main__":
    main()
