"""A real, throw-away PostgreSQL cluster for tests (issue 14 §4).

Debian's own PostgreSQL binaries (``scripts/bootstrap.sh --test`` installs the
``postgresql`` package): ``initdb`` into a fresh temporary directory, ``pg_ctl
start`` listening on 127.0.0.1 only (no Unix socket), on a free port, with
SCRAM password authentication, then ``pg_ctl stop`` and the directory removed.
PostgreSQL refuses to run as root, and the tests run as root: the cluster then
belongs to the ``postgres`` user and every command runs through ``runuser``.
A test run as an ordinary user runs them as itself.

Each pytest process gets its own cluster (a session fixture: under xdist each
worker is its own session, with its own directory and port), and each test that
asks for ``pg_url`` gets its own empty schema in it.

A missing PostgreSQL is a failure with the command to fix it, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.server_process import free_port
from tests.waiting import wait_until

_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# Speed over durability: a test cluster is thrown away. Logs go to a file in the
# cluster's directory, which the canary scans can read like the rest of it.
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "40",
    "shared_buffers": "16MB",
    "logging_collector": "off",
}


_SPEED = ("fsync", "synchronous_commit", "full_page_writes")


@dataclass(frozen=True)
class Cluster:
    """A running cluster: connect as ``user`` with ``password`` to 127.0.0.1:``port``."""

    data_dir: Path
    port: int
    user: str
    password: str
    bindir: Path
    owner: str | None  # the system user that runs it, when the tests run as root
    log: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: as a crash would, every connection cut)."""
        owner = pwd.getpwnam(self.owner) if self.owner else None
        _run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"], owner
        )

    def restart(self, mode: str = "immediate") -> None:
        """Stop the server and start it again on the same port and data."""
        self.stop(mode)
        owner = pwd.getpwnam(self.owner) if self.owner else None
        _run(
            [
                *(str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log)),
                *("-w", "-t", "60", "-o", f"-p {self.port}", "start"),
            ],
            owner,
        )


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin directory (Debian keeps them apart by version)."""
    found = sorted(Path("/").glob(_BIN_GLOB.lstrip("/")), key=lambda p: int(p.parent.name))
    if not found or not (found[-1] / "initdb").exists():
        raise RuntimeError(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "run scripts/bootstrap.sh --test"
        )
    return found[-1]


def _as_owner(args: list[str], owner: pwd.struct_passwd | None) -> list[str]:
    return ["runuser", "-u", owner.pw_name, "--", *args] if owner else args


def _run(args: list[str], owner: pwd.struct_passwd | None) -> None:
    done = subprocess.run(_as_owner(args, owner), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr}{done.stdout}")


@contextlib.contextmanager
def running_cluster(attempts: int = 5, *, durable: bool = False) -> Iterator[Cluster]:
    """Start a cluster in a new temporary directory; stop it and remove the directory after.

    ``durable``: PostgreSQL's own defaults for fsync and commits (benchmarks);
    otherwise a test cluster syncs nothing."""
    bindir = postgres_bin()
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="lanterne-pg-", dir=_reachable_tmp(owner)))
    try:
        if owner:
            os.chown(base, owner.pw_uid, owner.pw_gid)
        data_dir = base / "data"
        password = secrets.token_hex(16)
        pwfile = base / "pw"
        pwfile.write_text(password + "\n")
        if owner:
            os.chown(pwfile, owner.pw_uid, owner.pw_gid)
        user = "lanterne_test"
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            owner,
        )
        pwfile.unlink()
        with (data_dir / "postgresql.conf").open("a") as conf:
            conf.writelines(
                f"{k} = '{v}'\n" for k, v in _SETTINGS.items() if not (durable and k in _SPEED)
            )
        log = base / "server.log"
        port = 0
        for attempt in range(attempts):
            port = free_port()  # another process may take it first: then try another
            try:
                _run(
                    [
                        *(str(bindir / "pg_ctl"), "-D", str(data_dir), "-l", str(log)),
                        *("-w", "-t", "60", "-o", f"-p {port}", "start"),
                    ],
                    owner,
                )
                break
            except RuntimeError:
                if attempt == attempts - 1:
                    raise RuntimeError(f"PostgreSQL did not start: {_read(log)}") from None
        cluster = Cluster(
            data_dir, port, user, password, bindir, owner.pw_name if owner else None, log
        )
        try:
            wait_until(lambda: _accepts(cluster), 30, "PostgreSQL accepts connections")
            yield cluster
        finally:
            with contextlib.suppress(RuntimeError):  # a test may have stopped it
                _run(
                    [str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop"],
                    owner,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _reachable_tmp(owner: pwd.struct_passwd | None) -> str:
    """The temporary directory, if the cluster's owner can reach into it, else /tmp
    (a TMPDIR under /root would stop the postgres user at the first 0700 parent)."""
    tmp = Path(tempfile.gettempdir()).resolve()
    if owner is None:
        return str(tmp)
    for d in (tmp, *tmp.parents):
        if not d.stat().st_mode & stat.S_IXOTH:
            return "/tmp"  # mkdtemp makes a private directory in it
    return str(tmp)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return "(no log)"


def _accepts(cluster: Cluster) -> bool:
    import psycopg

    try:
        psycopg.connect(cluster.url(), connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


@contextlib.contextmanager
def fresh_schema(cluster: Cluster) -> Iterator[str]:
    """A new empty schema in ``cluster``'s database, dropped after; yields a URL
    whose connections see that schema only (``search_path``), as if it were a
    database of its own. A schema costs milliseconds where a database costs most
    of a second."""
    import psycopg

    name = "t_" + secrets.token_hex(8)
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")  # a name made here, not input
    try:
        yield f"{cluster.url()}?options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
