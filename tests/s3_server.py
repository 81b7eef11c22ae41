"""A real S3-compatible server for tests: moto's standalone server (issue 14 §4).

No S3 server can be installed from Debian here, so the protocol peer is moto in
server mode, a separate process (``python -m moto.server``) listening over HTTP
on 127.0.0.1 on a free port. The code under test talks to it with boto3 like to
any S3 endpoint: nothing here or in the stores reaches into moto's internals,
and the bucket is created through the S3 API. The server keeps its objects in
its own process, so a test can kill it like any other peer.

A missing moto is a failure (ImportError from the subprocess), never a skip.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.server_process import free_port, wait_for_port

# moto accepts any credentials; these only have to be the same on both sides.
ACCESS_KEY = "lanterne-test-access"
SECRET_KEY = "lanterne-test-secret"
REGION = "us-east-1"


def backend_secrets(pg_password: str) -> dict[str, str]:
    """The environment a scale-out instance takes its secrets from, never
    config.toml (docs/SCALE_OUT.md): PostgreSQL's password and the bucket's
    credentials (moto's)."""
    return {
        "PGPASSWORD": pg_password,
        "LANTERNE_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "LANTERNE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
    }


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    log_path: Path

    def client(self) -> Any:
        """A plain boto3 client for the test's own checks (not the store's)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        """A new empty bucket, created through the S3 API."""
        name = "lanterne-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name


@contextlib.contextmanager
def running_s3_server(log_dir: Path, attempts: int = 5) -> Iterator[S3Server]:
    """moto's server on 127.0.0.1 until the block ends; its output in ``log_dir``."""
    log_path = log_dir / "moto.log"
    for attempt in range(attempts):
        port = free_port()  # another process may take it first: then try another
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            try:
                wait_for_port(port, proc, 60, lambda: log_path.read_text(errors="replace"))
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                continue
            yield S3Server(f"http://127.0.0.1:{port}", log_path)
            return
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
