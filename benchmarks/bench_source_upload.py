"""No-JS upload throughput over loopback: Lanterne (encrypting on arrival) vs
OnionShare's receive mode (stores plaintext, no encryption).

    .venv/bin/python benchmarks/bench_source_upload.py [--size-mib 512] [--runs 5]

Needs `onionshare-cli` in its own virtualenv (it pins old Flask/Werkzeug):

    python3 -m venv benchmarks/out/onionshare-venv
    benchmarks/out/onionshare-venv/bin/pip install onionshare-cli==2.7

Each run starts a fresh server, uploads one file with the same `curl -F`
multipart POST a browser without JavaScript would send, and stops the server.
Throughput is file size / curl's wall time (request start to response); peak
RSS is the server's VmHWM, read just before it stops. The two servers
alternate (L,O then O,L ...) so drift on a shared 2-core machine hits both.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server_process import init_instance, run_server  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
ONIONSHARE = OUT / "onionshare-venv" / "bin" / "onionshare-cli"
MiB = 1 << 20


def peak_rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert match
    return int(match.group(1)) * 1024


def curl_upload(url: str, fields: list[str], jar: Path | None) -> tuple[float, str]:
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}"]
    if jar:
        cmd += ["-b", str(jar), "-c", str(jar)]
    for f in fields:
        cmd += ["-F", f]
    start = time.perf_counter()
    code = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - start, code


def run_lanterne(data: Path, work: Path) -> tuple[float, int]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    instance = init_instance(work, names=("bench",))
    with run_server(instance) as server:
        jar = work / "cookies"
        page = subprocess.run(
            ["curl", "-sS", "-c", str(jar), "-b", str(jar), f"{server.base_url}/en/submit"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token
        seconds, code = curl_upload(
            f"{server.base_url}/en/submit",
            [f"csrf_token={token.group(1)}", "message=benchmark", f"files=@{data}"],
            jar,
        )
        assert code == "303", code
        rss = peak_rss(server.pid)
    stored = max(p.stat().st_size for p in instance.objects_dir.iterdir())
    assert stored > data.stat().st_size  # the envelope is there, padded
    shutil.rmtree(work, ignore_errors=True)
    return seconds, rss


def run_onionshare(data: Path, work: Path) -> tuple[float, int]:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HOME": str(work)}
    # Its output goes to a file: it prints progress while receiving, and a
    # pipe nobody reads would fill up and stall it.
    log_path = work / "onionshare.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                str(ONIONSHARE),
                "--receive",
                "--local-only",
                "--public",
                "--data-dir",
                str(work / "recv"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    try:
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            match = re.search(r"(http://127\.0\.0\.1:\d+)", log_path.read_text())
            url = match.group(1) if match else None
            time.sleep(0.1)
        assert url, "onionshare did not print its address"
        time.sleep(0.5)
        seconds, code = curl_upload(f"{url}/upload", [f"file[]=@{data}"], None)
        assert code in ("200", "302"), code
        rss = peak_rss(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    received = [p for p in (work / "recv").rglob("*") if p.is_file()]
    assert [p.stat().st_size for p in received] == [data.stat().st_size]
    shutil.rmtree(work, ignore_errors=True)
    return seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not ONIONSHARE.exists():
        sys.exit(f"missing {ONIONSHARE}; see this script's docstring")
    OUT.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-upload-", dir=OUT))
    data = scratch / "upload.bin"
    with data.open("wb") as f:
        for _ in range(args.size_mib):
            f.write(os.urandom(MiB))
    size = data.stat().st_size
    results: dict[str, list[tuple[float, int]]] = {"lanterne": [], "onionshare": []}
    runners = {"lanterne": run_lanterne, "onionshare": run_onionshare}
    try:
        for i in range(args.runs):
            order = ["lanterne", "onionshare"] if i % 2 == 0 else ["onionshare", "lanterne"]
            for name in order:
                seconds, rss = runners[name](data, scratch / name)
                results[name].append((seconds, rss))
                print(
                    f"run {i + 1} {name:10} {size / MiB / seconds:7.1f} MiB/s  "
                    f"peak RSS {rss / MiB:6.1f} MiB",
                    flush=True,
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = {}
    for name, runs in results.items():
        summary[name] = {
            "median_mib_s": statistics.median(size / MiB / s for s, _ in runs),
            "median_peak_rss_mib": statistics.median(r / MiB for _, r in runs),
            "runs": [{"seconds": s, "peak_rss_bytes": r} for s, r in runs],
        }
    ratio_speed = summary["lanterne"]["median_mib_s"] / summary["onionshare"]["median_mib_s"]
    ratio_rss = (
        summary["lanterne"]["median_peak_rss_mib"] / summary["onionshare"]["median_peak_rss_mib"]
    )
    print(f"\nmedian over {args.runs} alternating runs, {args.size_mib} MiB file:")
    for name in ("lanterne", "onionshare"):
        s = summary[name]
        speed, rss = s["median_mib_s"], s["median_peak_rss_mib"]
        print(f"  {name:10} {speed:7.1f} MiB/s   peak RSS {rss:6.1f} MiB")
    print(f"  throughput ratio lanterne/onionshare: {ratio_speed:.2f}x")
    print(f"  peak RSS ratio   lanterne/onionshare: {ratio_rss:.2f}x")
    (OUT / "bench_source_upload.json").write_text(
        json.dumps(
            {
                "size_mib": args.size_mib,
                **summary,
                "speed_ratio": ratio_speed,
                "rss_ratio": ratio_rss,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
