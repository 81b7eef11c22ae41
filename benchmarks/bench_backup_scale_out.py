"""Peak memory of ``lanterne-server backup`` and ``restore`` on PostgreSQL and S3.

    .venv/bin/python benchmarks/bench_backup_scale_out.py [--sizes-mib 16 160]

For each size, a fresh instance on a throw-away PostgreSQL cluster and moto's
S3 server (the tests' own peers, tests/pg_cluster.py and tests/s3_server.py):
a real ``lanterne-server run`` receives one no-JavaScript submission with a
file of that size, then the real ``backup`` writes the signed file and the
real ``restore`` puts it into a new schema and a new bucket. Each admin
command runs under a small wrapper process whose RUSAGE_CHILDREN maxrss is
that command's own peak RSS. Constant memory means the same peak for both
sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WRAPPER = (
    "import resource, subprocess, sys;"
    "done = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
    "sys.stderr.write(done.stderr);"
    "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def measured(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of one admin command."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, sys.executable, "-m", "server.ops.admin", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    code, kib = done.stdout.split()
    if code != "0":
        raise SystemExit(f"{args[0]} failed: {done.stderr}")
    return int(kib) / 1024, time.monotonic() - start


def one_size(size_mib: int) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        return _run(base, size_mib)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run(base: Path, size_mib: int) -> dict[str, float]:
    from journalist_cli.identity_store import (
        JournalistIdentity,
        seal_identity,
        write_identity_file,
    )
    from tests.pg_cluster import fresh_schema, running_cluster
    from tests.s3_server import backend_secrets, running_s3_server
    from tests.server_process import Instance, SourceClient, make_journalist, run_server
    from tests.test_configured_backend import backend_config

    with running_cluster() as cluster, running_s3_server(base) as s3:
        env = {**os.environ, **backend_secrets(cluster.password)}
        os.environ.update(env)  # run_server passes its environment on
        with fresh_schema(cluster) as url, fresh_schema(cluster) as new_url:
            data = base / "data"
            cmd = [sys.executable, "-m", "server.ops.admin"]
            subprocess.run([*cmd, "init", "--data-dir", data], cwd=ROOT, env=env, check=True)
            (data / "config.toml").write_text(backend_config(url, s3, s3.new_bucket()))
            alice = make_journalist(base, "alice")
            subprocess.run(
                [*cmd, "init", "--data-dir", data, "--journalist", alice.pub_path],
                cwd=ROOT, env=env, check=True, capture_output=True,
            )  # fmt: skip
            (base / "tmp").mkdir()
            instance = Instance(data, [alice], base / "tmp", base / "server.log")
            document = os.urandom(size_mib << 20)
            with run_server(instance) as server, SourceClient(server.base_url) as source:
                source.first_submission("bench", [("big.bin", document, "")])
            del document
            admin = JournalistIdentity.generate("admin")
            identity = base / "admin.identity"
            write_identity_file(identity, seal_identity(admin, None))
            to = base / "bench.backup"
            backup_rss, backup_s = measured(
                [
                    "backup",
                    "--data-dir",
                    str(data),
                    "--to",
                    str(to),
                    "--signing-key",
                    str(identity),
                ],
                env,
            )
            config = base / "new.toml"
            config.write_text(backend_config(new_url, s3, s3.new_bucket()))
            restore_rss, restore_s = measured(
                ["restore", "--data-dir", str(base / "restored"), "--from", str(to),
                 "--identity", str(identity), "--config", str(config)],
                env,
            )  # fmt: skip
            return {
                "size_mib": size_mib,
                "backup_file_mib": round(to.stat().st_size / (1 << 20), 1),
                "backup_peak_rss_mib": round(backup_rss, 1),
                "backup_s": round(backup_s, 1),
                "restore_peak_rss_mib": round(restore_rss, 1),
                "restore_s": round(restore_s, 1),
            }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[16, 160])
    args = parser.parse_args()
    for size in args.sizes_mib:
        print(json.dumps(one_size(size)), flush=True)


if __name__ == "__main__":
    main()
