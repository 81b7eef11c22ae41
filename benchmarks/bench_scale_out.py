"""The scale-out backend under load (issue 14 §5).

    .venv/bin/python benchmarks/bench_scale_out.py [--uploads 50] [--size-mib 8] [--runs 3]
        [--setups a,b,c]

Three set-ups, each started fresh for every run:

  (a) one instance on SQLite and the objects directory (the embedded default);
  (b) one instance on PostgreSQL and an S3 bucket;
  (c) two instances on PostgreSQL and S3, each with its own data directory (a
      copy of the first: the same secrets, as an admin copies them between
      machines), behind a round-robin TCP proxy that sends each new connection
      to the next instance.

PostgreSQL is the tests' throw-away cluster with PostgreSQL's own durability
defaults (fsync and synchronous commits on); the bucket is on moto's S3 server,
the tests' protocol peer. Both run on this machine and share its two cores with
the instances and the load generator: (b) and (c) pay for a Python S3 server
that a real deployment would not run beside its instances.

Each run sends two loads, one after the other:

  no-JS:  N browsers without JavaScript each get the form (session cookie and
          CSRF token), then all N POST an 8 MiB file at once (multipart, the
          request a browser sends), the server encrypting as it arrives;
  tus:    N browsers with JavaScript each get the form, then all N at once
          upload an 8 MiB file's ciphertext (sealed beforehand to the
          instance's journalist) in PATCHes of upload.js's size (5 MiB), then its
          sealed manifest, then commit.

Every request opens its own connection, so in (c) consecutive requests of one
browser land on different instances. Throughput is plaintext bytes / the wall
time from the first upload's start to the last answer. During both loads a
prober loads the submit page (a fresh session each time) every 0.25 s with curl
and takes curl's own ``time_total``; p50 and p99 are over those page loads.
Peak RSS is each instance's VmHWM at the end. Set-ups alternate (a, b, c, then
c, b, a, ...) so that drift on a shared machine hits all of them; medians over
runs are printed as JSON and as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import envelope  # noqa: E402
from tests.pg_cluster import Cluster, running_cluster  # noqa: E402
from tests.proxy import RoundRobinProxy  # noqa: E402
from tests.s3_server import (  # noqa: E402
    REGION,
    S3Server,
    backend_secrets,
    running_s3_server,
)
from tests.server_process import (  # noqa: E402
    CSRF_RE,
    Instance,
    free_port,
    init_instance,
    wait_for_port,
)

OUT = ROOT / "benchmarks" / "out"
MiB = 1 << 20
# The page's PATCH size, as server/static/upload.js has it.
_SEGMENT = re.search(
    r"const SEGMENT = (\d+) \* 1024 \* 1024;", (ROOT / "server/static/upload.js").read_text()
)
assert _SEGMENT
SEGMENT = int(_SEGMENT.group(1)) * MiB
SERVE = [sys.executable, "-m", "server.ops.admin", "run"]
TUS = {"Tus-Resumable": "1.0.0"}
PROBE_EVERY = 0.25


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU of a process (and of its reaped children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def pids_of(match: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if match in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(proc.name))
    return found


def peers_cpu(cluster: Cluster, s3: S3Server) -> dict[str, float]:
    """CPU seconds so far of PostgreSQL (the postmaster, its reaped backends and
    its live ones) and of moto's S3 server."""
    port = s3.endpoint.rsplit(":", 1)[1]
    moto = sum(cpu_seconds(p) for p in pids_of(f"moto.server -H 127.0.0.1 -p {port}"))
    postgres = 0.0
    for pid in pids_of(str(cluster.data_dir)):  # the postmaster names its data directory
        postgres += cpu_seconds(pid, children=True)
        for child in pids_of(""):
            with contextlib.suppress(OSError, IndexError):
                stat = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:  # ppid
                    postgres += cpu_seconds(child)
    return {"postgres": postgres, "s3": moto}


def vm_hwm(pid: int) -> int:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match
    return int(match.group(1)) * 1024


@dataclass
class Stack:
    """What one run measures: the address the load goes to and the instances' processes."""

    url: str
    procs: list[subprocess.Popen[bytes]]
    instance: Instance


def _start(data_dir: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*SERVE, "--data-dir", str(data_dir), "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc.port = port  # type: ignore[attr-defined]
    wait_for_port(port, proc, 60, lambda: log.read_text(errors="replace"))
    return proc


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _new_database(cluster: Cluster, name: str) -> str:
    import psycopg

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://{cluster.user}@127.0.0.1:{cluster.port}/{name}"


@contextlib.contextmanager
def stack(setup: str, base: Path, run: int, cluster: Cluster, s3: S3Server) -> Iterator[Stack]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    config = ""
    if setup in "bc":
        env |= backend_secrets(cluster.password)
        url = _new_database(cluster, f"bench_{setup}_{run}")
        config = (
            f'[database]\nurl = "{url}"\npool_size = 10\n\n'
            f'[objects]\nendpoint = "{s3.endpoint}"\nbucket = "{s3.new_bucket()}"\n'
            f'region = "{REGION}"\naddressing = "path"\n'
        )
    os.environ.update(env)  # init_instance's `lanterne-server init` needs the secrets too
    instance = init_instance(base, names=("bench",), config=config)
    if config:  # registers the journalist in PostgreSQL, as scripts/scale_out_demo.py does
        subprocess.run(
            [*SERVE[:-1], "init", "--data-dir", str(instance.data_dir),
             "--journalist", str(instance.journalists[0].pub_path)],
            cwd=ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
    env["TMPDIR"] = str(instance.tmp_dir)
    data_dirs = [instance.data_dir]
    if setup == "c":
        second = base / "data-2"
        shutil.copytree(instance.data_dir, second, symlinks=True)
        data_dirs.append(second)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, d in enumerate(data_dirs):  # one after the other: each start migrates
            procs.append(_start(d, base / f"server-{i + 1}.log", env))
        ports = [p.port for p in procs]  # type: ignore[attr-defined]
        if setup == "c":
            with RoundRobinProxy(ports) as proxy:
                yield Stack(proxy.url, procs, instance)
        else:
            yield Stack(f"http://127.0.0.1:{ports[0]}", procs, instance)
    finally:
        _stop(procs)


def fresh(url: str) -> httpx.AsyncClient:
    """One connection per request, so that a proxy sends each to the next instance."""
    return httpx.AsyncClient(
        base_url=url, timeout=900, limits=httpx.Limits(max_keepalive_connections=0)
    )


async def form_token(client: httpx.AsyncClient) -> str:
    page = await client.get("/en/submit")
    match = CSRF_RE.search(page.text)
    assert match, page.status_code
    return match.group(1)


def multipart(token: str, data: bytes) -> tuple[bytes, str]:
    boundary = "benchboundary7d1f"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="website"\r\n\r\n\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="message"\r\n\r\nbenchmark\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="f.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


async def no_js(url: str, data: bytes, ready: list[int], go: asyncio.Event) -> int:
    async with fresh(url) as client:
        body, boundary = multipart(await form_token(client), data)
        ready.append(1)
        await go.wait()
        r = await client.post(
            "/en/submit",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        return r.status_code


async def tus_upload(client: httpx.AsyncClient, sealed: bytes) -> str:
    r = await client.post("/tus/", headers={**TUS, "Upload-Length": str(len(sealed))})
    assert r.status_code == 201, r.status_code
    upload_id = r.headers["location"].removeprefix("/tus/")
    for start in range(0, len(sealed), SEGMENT):
        r = await client.patch(
            f"/tus/{upload_id}",
            content=sealed[start : start + SEGMENT],
            headers={
                **TUS,
                "Upload-Offset": str(start),
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert r.status_code == 204, r.status_code
    return upload_id


async def resumable(
    url: str, sealed: bytes, size: int, recipients: list[envelope.Recipient], ready: list[int],
    go: asyncio.Event,
) -> int:  # fmt: skip
    async with fresh(url) as client:
        token = await form_token(client)
        ready.append(1)
        await go.wait()
        file_id = await tus_upload(client, sealed)
        doc = {
            "type": "lanterne-manifest/v1",
            "received_on": time.strftime("%Y-%m-%d"),
            "language": "en",
            "follow_up": False,
            "message": None,
            "files": [
                {
                    "object": file_id,
                    "name": "f.bin",
                    "type": "application/octet-stream",
                    "size": size,
                }
            ],
            "answers": [],
        }
        manifest_id = await tus_upload(
            client, envelope.encrypt_bytes(json.dumps(doc).encode(), recipients)
        )
        r = await client.post(
            "/en/submit/commit",
            content=str(
                httpx.QueryParams(
                    [("csrf_token", token), ("manifest", manifest_id), ("file", file_id)]
                )
            ).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        return r.status_code


async def load(kind: str, st: Stack, n: int, data: bytes) -> float:
    """All N browsers get their form, then all upload at once; the wall time of the uploads."""
    ready: list[int] = []
    go = asyncio.Event()
    recipients = [j.public.recipient for j in st.instance.journalists]
    if kind == "no-js":
        coros = [no_js(st.url, data, ready, go) for _ in range(n)]
    else:
        sealed = envelope.encrypt_bytes(data, recipients)
        coros = [resumable(st.url, sealed, len(data), recipients, ready, go) for _ in range(n)]
    tasks = [asyncio.create_task(c) for c in coros]
    while len(ready) < n:
        if any(t.done() for t in tasks):
            await asyncio.gather(*tasks)  # raises what failed
        await asyncio.sleep(0.05)
    start = time.perf_counter()
    go.set()
    codes = await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    assert all(c == 303 for c in codes), sorted(set(codes))
    return wall


class Prober:
    """Loads the submit page every PROBE_EVERY s with curl; curl's own time_total."""

    def __init__(self, url: str) -> None:
        self.url = url + "/en/submit"
        self.times: list[float] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            done = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", self.url],
                capture_output=True,
                text=True,
                check=False,
            )
            code, _, total = done.stdout.partition(" ")
            if code == "200":
                self.times.append(float(total))
            else:
                self.failed += 1
            self._stop.wait(PROBE_EVERY)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _own_cpu() -> float:
    """This process's CPU (the load generator) and its reaped children's (the
    prober's curl runs)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_once(setup: str, run: int, n: int, data: bytes, cluster: Cluster, s3: S3Server) -> dict:
    with (
        tempfile.TemporaryDirectory(dir=OUT) as tmp,
        stack(setup, Path(tmp), run, cluster, s3) as st,
    ):
        peers_before = peers_cpu(cluster, s3)
        client_before = _own_cpu()
        instances_before = sum(cpu_seconds(p.pid) for p in st.procs)
        try:
            with Prober(st.url) as probe:
                no_js_s = asyncio.run(load("no-js", st, n, data))
                tus_s = asyncio.run(load("tus", st, n, data))
        except BaseException:
            kept = OUT / "failed-run"  # the instances' logs, for the reason
            shutil.rmtree(kept, ignore_errors=True)
            kept.mkdir()
            for log in Path(tmp).glob("server*.log"):
                shutil.copy(log, kept)
            print(f"failed: the instances' logs are in {kept}", file=sys.stderr)
            raise
        times = probe.times
        peers_after = peers_cpu(cluster, s3)
        cpu = {
            "cpu_instances_s": sum(cpu_seconds(p.pid) for p in st.procs) - instances_before,
            "cpu_postgres_s": peers_after["postgres"] - peers_before["postgres"],
            "cpu_s3_s": peers_after["s3"] - peers_before["s3"],
            "cpu_client_s": _own_cpu() - client_before,
        }
        return cpu | {
            "no_js_s": no_js_s,
            "no_js_mib_s": n * len(data) / MiB / no_js_s,
            "tus_s": tus_s,
            "tus_mib_s": n * len(data) / MiB / tus_s,
            "total_s": no_js_s + tus_s,
            "page_p50_ms": 1000 * percentile(times, 0.5),
            "page_p99_ms": 1000 * percentile(times, 0.99),
            "page_loads": len(times),
            "page_failures": probe.failed,
            "peak_rss_mib": [vm_hwm(p.pid) / MiB for p in st.procs],
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploads", type=int, default=50)
    parser.add_argument("--size-mib", type=float, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--setups", default="a,b,c")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    data = os.urandom(int(args.size_mib * MiB))
    setups = args.setups.split(",")
    results: dict[str, list[dict]] = {s: [] for s in setups}
    with (
        tempfile.TemporaryDirectory(dir=OUT) as peers,
        running_cluster(durable=True) as cluster,
        running_s3_server(Path(peers)) as s3,
    ):
        for run in range(args.runs):
            for setup in setups if run % 2 == 0 else setups[::-1]:
                r = run_once(setup, run, args.uploads, data, cluster, s3)
                results[setup].append(r)
                print(setup, run, json.dumps(r), file=sys.stderr, flush=True)
    summary = {}
    for setup, runs in results.items():
        summary[setup] = {
            k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "peak_rss_mib"
        }
        summary[setup]["peak_rss_mib"] = [
            statistics.median(r["peak_rss_mib"][i] for r in runs)
            for i in range(len(runs[0]["peak_rss_mib"]))
        ]
    print(json.dumps({"args": vars(args), "median": summary, "runs": results}, indent=2))
    names = {
        "a": "(a) 1 instance, SQLite + files",
        "b": "(b) 1 instance, PostgreSQL + S3",
        "c": "(c) 2 instances, PostgreSQL + S3, proxy",
    }
    base = summary.get("a", {}).get("total_s")
    print(
        "\n| set-up | no-JS s (MiB/s) | tus s (MiB/s) | total s | vs (a) |"
        " page p50 / p99 ms | peak RSS MiB per instance |"
        " CPU s: instances / PostgreSQL / S3 server / client |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for setup, s in summary.items():
        ratio = f"{s['total_s'] / base:.2f}" if base else "-"
        rss = ", ".join(f"{m:.0f}" for m in s["peak_rss_mib"])
        print(
            f"| {names[setup]} | {s['no_js_s']:.1f} ({s['no_js_mib_s']:.0f}) |"
            f" {s['tus_s']:.1f} ({s['tus_mib_s']:.0f}) | {s['total_s']:.1f} | {ratio} |"
            f" {s['page_p50_ms']:.0f} / {s['page_p99_ms']:.0f} | {rss} |"
            f" {s['cpu_instances_s']:.1f} / {s['cpu_postgres_s']:.1f} / {s['cpu_s3_s']:.1f}"
            f" / {s['cpu_client_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
