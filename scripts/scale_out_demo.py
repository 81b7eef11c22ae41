"""scripts/scale-out-demo.sh: two Lanterne instances on PostgreSQL and S3, until Ctrl-C.

The PostgreSQL cluster and moto's S3 server are the tests' own throw-away
peers (tests/pg_cluster.py, tests/s3_server.py); the instances are configured
as a real deployment is: config.toml names ``[database]`` and ``[objects]``,
the secrets are in the environment (docs/SCALE_OUT.md).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from tests.pg_cluster import running_cluster
from tests.s3_server import REGION, backend_secrets, running_s3_server
from tests.server_process import wait_for_port

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _check(args: list[str | Path], env: dict[str, str]) -> None:
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{done.stderr}{done.stdout}")


def _stop(servers: list[subprocess.Popen[bytes]]) -> None:
    for proc in servers:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    for proc in servers:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    port = int(os.environ.get("PORT", "8080"))
    signal.signal(signal.SIGTERM, _interrupted)
    base = Path(tempfile.mkdtemp(prefix="lanterne-scale-out-"))
    base.chmod(0o700)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        with running_cluster() as cluster, running_s3_server(base) as s3:
            bucket = s3.new_bucket()
            env = {**os.environ, **backend_secrets(cluster.password)}
            keys, data = base / "keys", base / "instance"
            _check(
                [
                    BIN / "lanterne",
                    "keys",
                    "generate",
                    "--name",
                    "demo",
                    "--dir",
                    keys,
                    "--no-passphrase",
                ],
                env,
            )
            _check([BIN / "lanterne-server", "init", "--data-dir", data], env)
            db_url = f"postgresql://{cluster.user}@127.0.0.1:{cluster.port}/postgres"
            (data / "config.toml").write_text(
                f'[database]\nurl = "{db_url}"\npool_size = 4\n\n'
                f'[objects]\nendpoint = "{s3.endpoint}"\nbucket = "{bucket}"\n'
                f'region = "{REGION}"\naddressing = "path"\n',
                encoding="utf-8",
            )
            (data / "config.toml").chmod(0o600)
            _check(
                [
                    BIN / "lanterne-server",
                    "init",
                    "--data-dir",
                    data,
                    "--journalist",
                    keys / "demo.pub",
                ],
                env,
            )
            ports = [(port, port + 1), (port + 2, port + 3)]
            for i, (source, api) in enumerate(ports):
                # One after the other: each start migrates and tidies the shared
                # stores, and a failure shows that instance's own log.
                log_path = base / f"instance-{i + 1}.log"
                with log_path.open("ab") as log:
                    proc = subprocess.Popen(
                        [
                            BIN / "lanterne-server",
                            "run",
                            "--data-dir",
                            data,
                            "--port",
                            str(source),
                            "--journalist-port",
                            str(api),
                        ],
                        env=env,
                        cwd=ROOT,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                servers.append(proc)
                log_text = functools.partial(log_path.read_text, errors="replace")
                for p in (source, api):
                    wait_for_port(p, proc, 60, log_text)
            print(
                f"""
Lanterne scale-out demo: two instances, one PostgreSQL cluster, one S3 bucket.

  instance 1: source interface http://127.0.0.1:{port}/
              journalist API   http://127.0.0.1:{port + 1}/api/v1/
  instance 2: source interface http://127.0.0.1:{port + 2}/
              journalist API   http://127.0.0.1:{port + 3}/api/v1/
  PostgreSQL: PGPASSWORD={cluster.password} psql "{db_url}"
  S3 (moto):  {s3.endpoint}  bucket {bucket}
  config:     {data / "config.toml"}
  demo key:   {keys / "demo.identity"} (no passphrase: never for real sources)
  logs:       {base}/instance-1.log, instance-2.log

Submit on one instance, log in with the codename on the other. Ctrl-C stops
everything and deletes {base}.
""",
                flush=True,
            )
            try:
                while all(p.poll() is None for p in servers):
                    time.sleep(0.5)
            finally:
                _stop(servers)  # before the cluster and the S3 server stop
            print("an instance stopped on its own: see its log; stopping", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(servers)
        shutil.rmtree(base, ignore_errors=True)
        print(f"stopped; {base} removed", flush=True)


if __name__ == "__main__":
    sys.exit(main())
