"""A real Lanterne instance for tests: `lanterne-server init`, then `run` as a
uvicorn process on 127.0.0.1, with its own TMPDIR and a captured log, plus a
small httpx client that behaves like a browser without JavaScript.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import envelope
from server.store.file_times import open_noatime, walk
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
SERVER_CMD = [sys.executable, "-m", "server.ops.admin"]


@dataclass
class Journalist:
    identity: envelope.Identity
    public: envelope.PublicKey
    pub_path: Path


@dataclass
class Instance:
    data_dir: Path
    journalists: list[Journalist]
    tmp_dir: Path  # TMPDIR of the server process
    log_path: Path

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    def identities(self) -> list[envelope.Identity]:
        return [j.identity for j in self.journalists]


def make_journalist(directory: Path, name: str, hybrid: bool = False) -> Journalist:
    """A journalist's .pub; ``hybrid``: with an X-Wing key, and ``identity`` is that key."""
    x25519 = envelope.X25519Identity.generate()
    xwing = envelope.HybridIdentity.generate() if hybrid else None
    identity: envelope.Identity = x25519 if xwing is None else xwing
    public = envelope.PublicKey(
        name=name,
        x25519=x25519.recipient,
        signing_key=os.urandom(32),
        hybrid=None if xwing is None else xwing.recipient,
    )
    path = directory / f"{name}.pub"
    path.write_text(public.to_json())
    return Journalist(identity, public, path)


def init_instance(
    base: Path, names: Iterable[str] = ("alice", "bruno"), config: str = "", hybrid: bool = False
) -> Instance:
    keys_dir = base / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True)
    journalists = [make_journalist(keys_dir, n, hybrid) for n in names]
    data_dir = base / "data"
    args = [*SERVER_CMD, "init", "--data-dir", str(data_dir)]
    for j in journalists:
        args += ["--journalist", str(j.pub_path)]
    subprocess.run(args, check=True, cwd=ROOT, capture_output=True)
    if config:
        (data_dir / "config.toml").write_text(config, encoding="utf-8")
    tmp_dir = base / "server-tmp"
    tmp_dir.mkdir()
    return Instance(data_dir, journalists, tmp_dir, base / "server.log")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_block(n: int) -> int:
    """The first of ``n`` consecutive free ports, for a script that numbers its
    ports from one (the demos' PORT, PORT + 1...).

    They are taken below the kernel's ephemeral range: a block inside it can be
    free when checked and then be the local end of some process's outgoing
    connection (to PostgreSQL, to moto) by the time the script binds it, which
    a fresh-clone CI run once saw. Single ports from ``free_port`` stay in the
    ephemeral range, so the two never meet.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    rng = random.SystemRandom()
    for _ in range(200):
        first = rng.randrange(10_000, low - n)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(first, first + n):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return first
    raise RuntimeError(f"no {n} consecutive free ports below {low}")


@dataclass
class Server:
    instance: Instance
    proc: subprocess.Popen[bytes]
    base_url: str
    api_url: str | None = None  # the journalist API's base, when it was asked for

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.instance.log_path.read_text(errors="replace")

    def peak_rss(self) -> int:
        """VmHWM: the most resident memory the server process ever had, in bytes."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        assert match
        return int(match.group(1)) * 1024


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes], timeout: float, log: Callable[[], str] = str
) -> None:
    """Until something accepts on 127.0.0.1:``port``; RuntimeError if ``proc`` exits first."""

    def listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited: {log()}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        return False

    try:
        wait_until(listening, timeout, f"nothing listens on port {port}")
    except TimeoutError as exc:
        raise RuntimeError(f"{exc}: {log()}") from None


@contextlib.contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """An app built by the test (with its own clocks) served by uvicorn on a thread
    of this process, on 127.0.0.1 (``port``, else a free one); yields its base URL.
    For tests that need to move time instead of waiting for it; everything else
    uses ``run_server``."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 30, "uvicorn never started")
        assert server.started, "uvicorn stopped at start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _limit_descriptors(n: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    return limit


@contextlib.contextmanager
def run_server(
    instance: Instance, *, journalist_api: bool = False, max_descriptors: int | None = None
) -> Iterator[Server]:
    """``max_descriptors``: the server's RLIMIT_NOFILE (soft and hard), as systemd's LimitNOFILE."""
    port = free_port()
    api_port = free_port() if journalist_api else None
    env = {
        **os.environ,
        "TMPDIR": str(instance.tmp_dir),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    with instance.log_path.open("ab") as log:
        proc = subprocess.Popen(
            [
                *SERVER_CMD,
                "run",
                "--data-dir",
                str(instance.data_dir),
                "--port",
                str(port),
                *(["--journalist-port", str(api_port)] if api_port else []),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit_descriptors(max_descriptors) if max_descriptors else None,
        )
    server = Server(
        instance,
        proc,
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{api_port}/api/v1" if api_port else None,
    )
    try:
        for p in (port, api_port):
            if p is not None:
                wait_for_port(p, proc, 30, server.log)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
CODENAME_RE = re.compile(r'<p class="codename" id="codename"[^>]*>([^<]+)</p>')


@dataclass
class SourceClient:
    """What a source's browser does without JavaScript: GET a form, POST it."""

    base_url: str
    lang: str = "en"
    proxy: str | None = None  # socks5h://... to reach an onion through Tor
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.base_url, timeout=120, follow_redirects=False, proxy=self.proxy
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SourceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def csrf(self, path: str) -> str:
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        match = CSRF_RE.search(page.text)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def submit(
        self,
        message: str = "",
        files: list[tuple[str, bytes, str]] | None = None,
        answers: dict[str, str] | None = None,
        token: str | None = None,
        desk: str | None = None,
    ) -> httpx.Response:
        token = token if token is not None else self.csrf(f"/{self.lang}/submit")
        data: list[tuple[str, str]] = [("csrf_token", token), ("website", "")]
        if desk is not None:  # before the message, as the form puts it
            data.append(("desk", desk))
        data.append(("message", message))
        for qid, answer in (answers or {}).items():
            data.append((f"q_{qid}", answer))
        upload = [("files", (name, content, ctype)) for name, content, ctype in files or []]
        # Like a browser: a file input left empty is still sent, as an empty part.
        upload = upload or [("files", ("", b"", "application/octet-stream"))]
        # httpx writes data fields before files, in order: the token goes first.
        return self.client.post(f"/{self.lang}/submit", data=dict(data), files=upload)

    def first_submission(
        self,
        message: str,
        files: list[tuple[str, bytes, str]] | None = None,
        desk: str | None = None,
    ) -> str:
        """Submit and return the codename shown on the confirmation page."""
        response = self.submit(message, files, desk=desk)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"/{self.lang}/codename"
        page = self.client.get(f"/{self.lang}/codename")
        match = CODENAME_RE.search(page.text)
        assert match, page.text
        return match.group(1)

    def login(self, codename: str) -> httpx.Response:
        token = self.csrf(f"/{self.lang}/login")
        return self.client.post(
            f"/{self.lang}/login", data={"csrf_token": token, "codename": codename}
        )


def files_under(*roots: Path) -> Iterator[Path]:
    """Regular files under ``roots``, listed without touching directories' access times."""
    for root in roots:
        for path in walk(root):
            if path.is_file() and not path.is_symlink():
                yield path


def find_canaries(
    canaries: Iterable[bytes],
    roots: Iterable[Path],
    since: float = 0,
    exclude: Iterable[Path] = (),
) -> list[str]:
    """Every file under ``roots`` (modified after ``since``) that contains a canary.

    The server's file times are days (server/store/file_times.py): ``since`` counts
    from the midnight UTC before it, or a file written today would be skipped.
    """
    needles = [c for c in canaries if c]
    longest = max(len(c) for c in needles)
    skipped = [p.resolve() for p in exclude]
    hits = []
    for path in files_under(*roots):
        try:
            if path.stat().st_mtime < since - since % 86400:
                continue
            if any(path.resolve().is_relative_to(x) for x in skipped):
                continue
            # Without touching access times: the scan may cover /tmp, where other
            # tests' instances check that their files' times are days.
            with open_noatime(path) as f:
                tail = b""
                while block := f.read(1 << 20):
                    window = tail + block
                    for c in needles:
                        if c in window:
                            hits.append(f"{path}: {c[:12]!r}")
                    tail = window[-longest:]
        except (PermissionError, FileNotFoundError, OSError):
            continue
    return hits


def object_files(instance: Instance) -> set[str]:
    return {p.name for p in instance.objects_dir.iterdir()}


def decrypt_object(instance: Instance, object_id: str) -> bytes:
    data = (instance.objects_dir / object_id).read_bytes()
    return envelope.decrypt_bytes(data, instance.identities()[:1])


def db_rows(instance: Instance, table: str) -> list[tuple[object, ...]]:
    import sqlite3

    conn = sqlite3.connect(instance.data_dir / "lanterne.sqlite3")
    try:
        return list(conn.execute(f"SELECT * FROM {table}"))
    finally:
        conn.close()
