"""Two ``lanterne-server run`` processes on one data directory behind a round-robin
TCP proxy (issue 14 §3): any request may land on any instance.

The proxy sends each new connection to the next instance, and the clients open
a connection per request, so consecutive requests alternate. Each test checks
that both instances really served, then that what one instance started the
other finishes: a source's session, its codename page and its login; a login
throttle; a journalist's token; a resumable upload with one instance killed
(SIGKILL) mid-upload and started again.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.domain.codenames import generate
from server.web.journalist_api.auth import signed_message
from tests.proxy import RoundRobinProxy
from tests.server_process import (
    CODENAME_RE,
    Instance,
    Server,
    SourceClient,
    db_rows,
    decrypt_object,
    init_instance,
    run_server,
)
from tests.test_journalist_auth import admin, b64, unb64
from tests.test_uploads_tus import OWNER_COOKIE, PATCH_TYPE, Browser, manifest, seal

# Real server processes, started several times: CI runs it, --fast does not.
pytestmark = pytest.mark.slow

MiB = 1 << 20
API_HOST = "newsroom-api.example"  # what journalists sign for (journalist_hosts)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def one_connection_per_request(client: httpx.Client, base_url: str) -> httpx.Client:
    """The same cookie jar, but no connection reuse: each request meets the next instance."""
    fresh = httpx.Client(
        base_url=base_url,
        timeout=120,
        follow_redirects=False,
        limits=httpx.Limits(max_keepalive_connections=0),
        cookies=client.cookies,
    )
    client.close()
    return fresh


@contextlib.contextmanager
def two_instances(instance: Instance, *, api: bool = False) -> Iterator[tuple[Server, Server]]:
    # One after the other: the second starts on a prepared data directory.
    with (
        run_server(instance, journalist_api=api) as a,
        run_server(instance, journalist_api=api) as b,
    ):
        yield a, b


@pytest.fixture
def instance(tmp_path: Path) -> Instance:
    return init_instance(
        tmp_path,
        config=f'login_failures_per_session = 3\njournalist_hosts = ["{API_HOST}"]\n',
    )


def source_client(url: str) -> SourceClient:
    source = SourceClient(url)
    source.client = one_connection_per_request(source.client, url)
    return source


def test_a_source_submits_reads_its_codename_and_logs_in_across_instances(
    instance: Instance,
) -> None:
    with (
        two_instances(instance) as (a, b),
        RoundRobinProxy([port_of(a.base_url), port_of(b.base_url)]) as proxy,
        source_client(proxy.url) as source,
    ):
        # GET the form (a), POST it (b), GET the codename page (a).
        codename = source.first_submission("across instances")
        assert len(codename.split()) >= 5
        again = source.get("/en/codename")  # (the other one) a reload keeps it
        assert again.status_code == 200 and codename in again.text
        # A new browser logs in with the codename; its inbox is on the other instance.
        with source_client(proxy.url) as later:
            r = later.login(codename)
            assert r.status_code == 303, r.text
            assert r.headers["location"] == "/en/inbox"
            for _ in range(3):
                inbox = later.get("/en/inbox")
                assert inbox.status_code == 200, inbox.headers.get("location")
            # A follow-up from the logged-in session, then logging out on one
            # instance ends the session on both.
            token = later.csrf("/en/inbox")
            r = later.client.post("/en/logout", data={"csrf_token": token})
            assert r.status_code == 200
            stolen = httpx.Client(
                base_url=proxy.url, limits=httpx.Limits(max_keepalive_connections=0)
            )
            with stolen:
                stolen.cookies.update(dict(later.client.cookies))
                for _ in range(2):
                    r = stolen.get("/en/inbox")
                    assert r.status_code == 303 and r.headers["location"] == "/en/login"
        assert len(db_rows(instance, "sources")) == 1
        assert all(proxy.served.get(port_of(s.base_url), 0) >= 3 for s in (a, b))


def test_login_failures_count_on_every_instance(instance: Instance) -> None:
    with (
        two_instances(instance) as (a, b),
        RoundRobinProxy([port_of(a.base_url), port_of(b.base_url)]) as proxy,
        source_client(proxy.url) as source,
    ):
        statuses = []
        # One form, posted again and again: the POSTs alternate instances.
        token = source.csrf("/en/login")
        for _ in range(5):
            # Well formed, but nobody's: a failure that counts.
            codename = generate("en")
            r = source.client.post("/en/login", data={"csrf_token": token, "codename": codename})
            statuses.append(r.status_code)
        # Three failures (login_failures_per_session), wherever they landed, then 429.
        assert statuses == [403, 403, 403, 429, 429], statuses
        assert all(proxy.served.get(port_of(s.base_url), 0) >= 3 for s in (a, b))


def test_a_journalist_token_from_one_instance_works_on_the_other(
    instance: Instance, tmp_path: Path
) -> None:
    ident = JournalistIdentity.generate("carla")
    keys = tmp_path / "carla-keys"
    write_new_identity(ident, keys, None)
    done = admin(
        "journalists", "add", "--data-dir", instance.data_dir, "--no-client-auth",
        keys / "carla.pub",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with two_instances(instance, api=True) as (a, b):
        assert a.api_url and b.api_url
        with RoundRobinProxy([port_of(a.api_url), port_of(b.api_url)]) as proxy:
            api = f"{proxy.url}/api/v1"
            with httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as http:
                # The challenge from one instance, the signed answer to the other.
                challenge = unb64(http.post(f"{api}/auth/challenge").json()["challenge"])
                sig = ident.signing.sign(signed_message(challenge, API_HOST)).signature
                body = {"journalist": "carla", "challenge": b64(challenge), "signature": b64(sig)}
                r = http.post(f"{api}/auth/token", json=body, headers={"Host": API_HOST})
                assert r.status_code == 200, r.text
                token = r.json()["token"]
                # Spent on every instance: the same answer twice is refused.
                for _ in range(2):
                    again = http.post(f"{api}/auth/token", json=body, headers={"Host": API_HOST})
                    assert again.status_code == 401
                    assert again.json()["reason"] == "challenge_expired"
                bearer = {"Authorization": f"Bearer {token}"}
                for _ in range(4):
                    r = http.get(f"{api}/sources", headers=bearer)
                    assert r.status_code == 200, r.text
                bad = {"Authorization": f"Bearer {b64(os.urandom(32))}"}
                assert http.get(f"{api}/sources", headers=bad).status_code == 401
            assert all(n >= 3 for n in proxy.served.values()) and len(proxy.served) == 2


def test_a_resumable_upload_spread_over_instances_survives_a_killed_one(
    instance: Instance,
) -> None:
    document = os.urandom(4 * MiB + 4321)
    data = seal(instance, document)
    segment = 1 * MiB
    with two_instances(instance) as (a, b):  # noqa: SIM117 -- the proxy needs their ports
        with RoundRobinProxy([port_of(a.base_url), port_of(b.base_url)]) as proxy:
            browser = Browser(proxy.url)
            browser.client = one_connection_per_request(browser.client, proxy.url)
            with browser:
                token = browser.csrf()
                upload_id = browser.create(len(data))
                for start in (0, segment):  # one PATCH to each instance
                    r = browser.patch(upload_id, start, data[start : start + segment])
                    assert r.status_code == 204, r.status_code
                # A third segment is half sent to instance a when it is killed.
                raw = socket.create_connection(("127.0.0.1", port_of(a.base_url)))
                head = (
                    f"PATCH /tus/{upload_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Tus-Resumable: 1.0.0\r\nContent-Type: {PATCH_TYPE}\r\n"
                    f"Upload-Offset: {2 * segment}\r\nContent-Length: {segment}\r\n"
                    f"Cookie: {OWNER_COOKIE}={browser.owner_cookie}\r\n\r\n"
                )
                raw.sendall(head.encode() + data[2 * segment : 2 * segment + segment // 2])
                a.proc.send_signal(signal.SIGKILL)
                a.proc.wait()
                raw.close()
                # Only b answers while a is down.
                proxy.backends = [port_of(b.base_url)]
                assert browser.offset(upload_id) == 2 * segment
                with run_server(instance) as a2:
                    proxy.backends = [port_of(a2.base_url), port_of(b.base_url)]
                    offsets = {browser.offset(upload_id) for _ in range(2)}
                    assert offsets == {2 * segment}  # both instances say the same
                    for start in range(2 * segment, len(data), segment):
                        r = browser.patch(upload_id, start, data[start : start + segment])
                        assert r.status_code == 204, r.status_code
                    manifest_id = browser.upload(
                        seal(
                            instance,
                            manifest(
                                None,
                                [(upload_id, "big.bin", "application/octet-stream", len(document))],
                            ),
                        )
                    )
                    r = browser.commit(manifest_id, None, [upload_id], token=token)
                    assert r.status_code == 303, r.text
                    assert r.headers["location"] == "/en/codename"
                    # The codename page, from whichever instance comes next, twice.
                    for _ in range(2):
                        page = browser.client.get("/en/codename")
                        assert page.status_code == 200, page.headers.get("location")
                        assert CODENAME_RE.search(page.text)
                    assert proxy.served.get(port_of(a2.base_url), 0) >= 2
    assert decrypt_object(instance, upload_id) == document
    assert len(db_rows(instance, "submissions")) == 1
    assert re.fullmatch(r"[0-9a-f]{32}", upload_id)


def test_an_instance_never_sweeps_an_upload_another_instance_is_receiving(
    tmp_path: Path,
) -> None:
    """Instance b sees an upload start, then only a receives its PATCHes for longer
    than the expiry: b must not delete it (its own memory says it is idle)."""
    instance = init_instance(
        tmp_path, config="[uploads]\nexpire_seconds = 3\nsweep_interval_seconds = 1\n"
    )
    data = seal(instance, os.urandom(2 * MiB))
    piece = 64 * 1024
    with two_instances(instance) as (a, b), Browser(b.base_url) as on_b:
        upload_id = on_b.create(len(data))  # created and first PATCH on b
        assert on_b.patch(upload_id, 0, data[:piece]).status_code == 204
        with Browser(a.base_url) as on_a:
            on_a.client.cookies.update(dict(on_b.client.cookies))
            offset = piece
            deadline = time.monotonic() + 6  # twice the expiry, PATCHing all along
            while time.monotonic() < deadline:
                r = on_a.patch(upload_id, offset, data[offset : offset + piece])
                assert r.status_code == 204, r.status_code
                offset += piece
                time.sleep(0.5)
        # b's next upload request (which also sweeps) finds it alive, at a's offset.
        assert on_b.offset(upload_id) == offset
        assert (instance.data_dir / "uploads" / f"{upload_id}.part").exists()
