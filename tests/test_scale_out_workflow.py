"""The journalist workflow end to end on two instances (issue 14 §4).

Two ``lanterne-server run`` processes, each with its OWN data directory, share
a real PostgreSQL cluster (tests/pg_cluster.py) and moto's S3 server
(tests/s3_server.py), behind the round-robin TCP proxy (tests/proxy.py) that
stands in for Onionbalance. What the administrator copies from the first
machine to the second is exactly what docs/SCALE_OUT.md says: ``secrets.json``
and ``config.toml``, then ``lanterne-server init`` on the copy.

The walk is tests/test_journalist_workflow.py's: a source submits with
JavaScript off; a journalist pulls through the journalist API with the real
``lanterne`` CLI, decrypts and replies; the source logs in with the codename
(the login and the inbox served by different instances), reads the reply and
sends more; the journalist deletes the source. One instance is SIGKILLed and
started again between two steps, and another in the middle of a no-JS
submission, which must leave nothing anyone can see: no row, no object, no
plaintext. Then the plaintext canaries are looked for everywhere the backends
and the instances keep anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from journalist_cli import designations
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from tests.pg_cluster import Cluster
from tests.proxy import RoundRobinProxy
from tests.s3_server import S3Server, backend_secrets
from tests.server_process import (
    Instance,
    Server,
    SourceClient,
    find_canaries,
    run_server,
)
from tests.test_configured_backend import admin, backend_config
from tests.test_journalist_workflow import lanterne
from tests.test_multi_instance import one_connection_per_request, port_of
from tests.waiting import wait_until

# Two server processes started four times, the CLI a dozen times: CI runs it.
pytestmark = pytest.mark.slow

MESSAGE = "LNTCANARY-workflow-message-3f0a"
FILE = b"%PDF-1.4\nLNTCANARY-workflow-file-8c21 " + os.urandom(200_000) + b"\n%%EOF\n"
REPLY = "LNTCANARY-workflow-reply-57be"
FOLLOW_UP = "LNTCANARY-workflow-follow-up-c6d9"
CUT = b"LNTCANARY-workflow-interrupted-e412 "  # the submission cut off by the kill
MiB = 1 << 20
CANARIES = [MESSAGE.encode(), FILE[9:40], REPLY.encode(), CUT]


@dataclass
class TwoMachines:
    first: Instance
    second: Instance
    env: dict[str, str]
    url: str  # PostgreSQL, with the password: the test's own checks
    bucket: str
    keys: Path
    source_proxy: RoundRobinProxy
    api_proxy: RoundRobinProxy


@pytest.fixture
def machines(
    tmp_path: Path, pg_url: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TwoMachines]:
    password = urlsplit(pg_url).password
    assert password
    secrets = backend_secrets(password)
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)  # run_server passes the environment on
    env = {**os.environ, **secrets}
    keys = tmp_path / "keys"
    write_new_identity(JournalistIdentity.generate("alice"), keys, None)
    bucket = s3_server.new_bucket()
    with RoundRobinProxy([]) as source_proxy, RoundRobinProxy([]) as api_proxy:
        # The first machine: init, the backend's config.toml, init again with the
        # journalist (registered in PostgreSQL). The CLI signs for the address it
        # connects to, the balancer's: journalist_hosts names it.
        one = tmp_path / "machine-1"
        assert admin(["init", "--data-dir", str(one / "data")], env).returncode == 0
        config = backend_config(pg_url, s3_server, bucket)
        config = f'journalist_hosts = ["127.0.0.1:{api_proxy.port}"]\n\n{config}'
        (one / "data" / "config.toml").write_text(config)
        done = admin(
            ["init", "--data-dir", str(one / "data"), "--journalist", str(keys / "alice.pub")], env
        )
        assert done.returncode == 0, done.stderr
        # The second machine: an empty data directory, the two files copied, init.
        two = tmp_path / "machine-2"
        (two / "data").mkdir(mode=0o700, parents=True)
        for name in ("secrets.json", "config.toml"):
            shutil.copy2(one / "data" / name, two / "data" / name)
        done = admin(["init", "--data-dir", str(two / "data")], env)
        assert done.returncode == 0, done.stderr
        instances = []
        for base in (one, two):
            (base / "tmp").mkdir()
            instances.append(Instance(base / "data", [], base / "tmp", base / "server.log"))
        yield TwoMachines(
            *instances, env, pg_url, bucket, keys, source_proxy, api_proxy
        )  # fmt: skip


def pg_count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # a name from the test
    assert row is not None
    return int(row[0])


def bucket_keys(s3: S3Server, bucket: str) -> set[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    return {str(o["Key"]) for o in listed}


class Pair:
    """The two running instances behind the proxies; ``restart`` kills one."""

    def __init__(self, m: TwoMachines, s3: S3Server, stack: contextlib.ExitStack) -> None:
        self.m = m
        self.s3 = s3
        self.stack = stack
        self.servers: list[Server] = [self._start(m.first), self._start(m.second)]
        self._route()

    def _start(self, instance: Instance) -> Server:
        return self.stack.enter_context(run_server(instance, journalist_api=True))

    def _route(self, only: list[Server] | None = None) -> None:
        live = only or self.servers
        self.m.source_proxy.backends = [port_of(s.base_url) for s in live]
        self.m.api_proxy.backends = [port_of(s.api_url or "") for s in live]

    def kill(self, n: int) -> None:
        """SIGKILL instance ``n``; the balancer sends everything to the other."""
        server = self.servers[n]
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(30)
        self._route([self.servers[1 - n]])

    def start_again(self, n: int) -> None:
        self.servers[n] = self._start(self.servers[n].instance)
        self._route()


def served_both(proxy: RoundRobinProxy, servers: list[Server], api: bool = False) -> bool:
    ports = [port_of((s.api_url or "") if api else s.base_url) for s in servers]
    return all(proxy.served.get(p, 0) >= 1 for p in ports)


def source_through(proxy: RoundRobinProxy) -> SourceClient:
    source = SourceClient(proxy.url)
    source.client = one_connection_per_request(source.client, proxy.url)
    return source


def interrupted_submission(server: Server, pair: Pair, n: int) -> None:
    """A new source's no-JS form, posted straight to ``server`` and cut off by a
    SIGKILL of that instance after 10 MiB of a 12 MiB file (more than one S3 part)."""
    with SourceClient(server.base_url) as browser:
        token = browser.csrf("/en/submit")
        cookies = "; ".join(f"{k}={v}" for k, v in browser.client.cookies.items())
    boundary = "lanterne-cut-" + os.urandom(6).hex()
    fields = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (("csrf_token", token), ("website", ""), ("message", CUT.decode()))
    )
    document = CUT * (12 * MiB // len(CUT))
    head_of_file = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="cut.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    body = fields + head_of_file + document + f"\r\n--{boundary}--\r\n".encode()
    request = (
        f"POST /en/submit HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookies}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    client = pair.s3.client()
    assert not client.list_multipart_uploads(Bucket=pair.m.bucket).get("Uploads")
    raw = socket.create_connection(("127.0.0.1", port_of(server.base_url)))
    try:
        raw.sendall(request + body[: 10 * MiB])
        # Killed once the file's first part is in S3, before its body ends.
        wait_until(
            lambda: bool(client.list_multipart_uploads(Bucket=pair.m.bucket).get("Uploads")),
            60,
            "the interrupted file's first part never reached S3",
        )
        pair.kill(n)
    finally:
        raw.close()


def test_the_journalist_workflow_on_two_instances_with_kills(
    machines: TwoMachines, s3_server: S3Server, pg_cluster: Cluster, tmp_path: Path
) -> None:
    m = machines
    assert m.first.data_dir != m.second.data_dir
    alice = tmp_path / "alice"
    api_url = m.api_proxy.url
    with contextlib.ExitStack() as stack:
        pair = Pair(m, s3_server, stack)

        # 1. A source submits with JavaScript off: form, post and codename page
        #    each on the next instance.
        with source_through(m.source_proxy) as source:
            codename = source.first_submission(MESSAGE, [("rapport.pdf", FILE, "application/pdf")])
        assert served_both(m.source_proxy, pair.servers)
        assert pg_count(m.url, "submissions") == 1 and len(bucket_keys(s3_server, m.bucket)) == 3

        # Between two steps, instance 2 dies and comes back.
        pair.kill(1)
        pair.start_again(1)

        # 2. The journalist pulls through the API (each request the next
        #    instance), decrypts and replies.
        lanterne(alice, "config", "--server", api_url, "--identity", m.keys / "alice.identity")
        assert b"1 source;" in lanterne(alice, "pull").stdout
        [row] = json.loads(lanterne(alice, "list", "--json").stdout)
        sid = row["id"]
        assert row["submissions"] == 1 and row["missing_objects"] == 0
        out = tmp_path / "out-1"
        lanterne(alice, "decrypt", sid, "--out", out, "--no-clean")
        [sub] = (out / designations.slug(sid)).iterdir()
        assert (sub / "original" / "rapport.pdf").read_bytes() == FILE
        assert (sub / "message.txt").read_text() == MESSAGE
        lanterne(alice, "reply", sid, REPLY)
        assert served_both(m.api_proxy, pair.servers, api=True)

        # 3. The source logs in with the codename; the login and the inbox are
        #    served by different instances. It reads the reply and sends more.
        with source_through(m.source_proxy) as source:
            before = dict(m.source_proxy.served)
            r = source.login(codename)  # GET the form, POST it
            assert r.status_code == 303 and r.headers["location"] == "/en/inbox", r.text
            inbox = source.get("/en/inbox")
            assert inbox.status_code == 200 and REPLY in inbox.text
            after = {p: n - before.get(p, 0) for p, n in m.source_proxy.served.items()}
            assert len([p for p, n in after.items() if n]) == 2, after
            sent = source.submit(FOLLOW_UP, [("suite.txt", FOLLOW_UP.encode() * 100, "text/plain")])
            assert sent.status_code == 303, sent.text

        # 4. A no-JS submission cut off by the death of the instance receiving it.
        rows = {t: pg_count(m.url, t) for t in ("sources", "submissions", "objects")}
        stored = bucket_keys(s3_server, m.bucket)
        interrupted_submission(pair.servers[0], pair, 0)
        assert {t: pg_count(m.url, t) for t in rows} == rows
        # What the dead instance had finished (the message's object, put whole)
        # stays in the bucket, listed by no row: no journalist sees it, and any
        # instance's start removes it once a day old (docs/SCALE_OUT.md, garbage
        # collection with several instances). The file's part went into a
        # multipart upload that S3 shows to nobody until completed.
        orphans = bucket_keys(s3_server, m.bucket) - stored
        assert len(orphans) == 1
        pair.start_again(0)
        assert bucket_keys(s3_server, m.bucket) == stored | orphans

        # 5. The journalist sees one source, two submissions, the follow-up whole.
        assert b"1 source;" in lanterne(alice, "pull").stdout
        [row] = json.loads(lanterne(alice, "list", "--json").stdout)
        assert row["id"] == sid and row["submissions"] == 2 and row["replies"] == 1
        out = tmp_path / "out-2"
        lanterne(alice, "decrypt", sid, "--out", out, "--no-clean")
        texts = sorted(p.read_text() for p in (out / designations.slug(sid)).glob("*/message.txt"))
        assert texts == sorted([MESSAGE, FOLLOW_UP])

        # Every object in the bucket, read through the S3 API (moto keeps them in
        # its process: memory, and unnamed temporary files for the large ones).
        client = s3_server.client()
        bodies = [
            client.get_object(Bucket=m.bucket, Key=k)["Body"].read()
            for k in bucket_keys(s3_server, m.bucket)
        ]
        assert len(bodies) == 7 + len(orphans)  # two submissions of three, the reply
        assert not any(c in b for c in [*CANARIES, FOLLOW_UP.encode()] for b in bodies)

        # 6. Delete: gone from PostgreSQL, the bucket and the vault.
        lanterne(alice, "delete", sid, "--yes")
        assert json.loads(lanterne(alice, "list", "--json").stdout) == []
        assert b"0 sources" in lanterne(alice, "pull").stdout
        assert pg_count(m.url, "sources") == 0 and pg_count(m.url, "objects") == 0
        assert bucket_keys(s3_server, m.bucket) == orphans
        with psycopg.connect(m.url) as conn:
            assert not conn.execute(
                "SELECT id FROM objects WHERE id = ANY(%s)", (list(orphans),)
            ).fetchall()

    # The canaries: nowhere the instances or the backends keep anything. The
    # PostgreSQL pages on disk after a checkpoint, a probe row proving the scan
    # reads them; both machines' data directories, TMPDIRs and logs;
    # PostgreSQL's and moto's logs (the bucket was read above, before deletion).
    probe = "LNTPROBE-" + os.urandom(8).hex()
    with psycopg.connect(m.url) as conn:
        conn.execute("INSERT INTO meta(key, value) VALUES ('probe', %s)", (probe,))
    with psycopg.connect(pg_cluster.url(), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    assert find_canaries([probe.encode()], [pg_cluster.data_dir])
    assert m.first.log_path.stat().st_size and m.second.log_path.stat().st_size
    roots = [
        pg_cluster.data_dir.parent,  # the cluster and its log
        s3_server.log_path.parent,
        *(i.data_dir.parent for i in (m.first, m.second)),  # data, TMPDIR, log
    ]
    assert find_canaries([*CANARIES, FOLLOW_UP.encode()], roots) == []


def test_a_second_machine_without_the_first_ones_secrets_logs_no_source_in(
    machines: TwoMachines, tmp_path: Path
) -> None:
    """What the admin guide says to copy is needed: a second machine that made
    its own secrets.json (init on an empty data directory) shares the database
    and bucket, yet a codename from the first machine does not open there."""
    m = machines
    fresh = tmp_path / "fresh"
    assert admin(["init", "--data-dir", str(fresh)], m.env).returncode == 0
    shutil.copy2(fresh / "secrets.json", m.second.data_dir / "secrets.json")
    with run_server(m.first) as one, run_server(m.second) as two:
        with SourceClient(one.base_url) as source:
            codename = source.first_submission(MESSAGE)
        with SourceClient(two.base_url) as elsewhere:
            assert elsewhere.login(codename).status_code == 403
        with SourceClient(one.base_url) as here:
            assert here.login(codename).status_code == 303
