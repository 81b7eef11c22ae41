"""Stopping a real server while an upload is stalled half-way (issue 13, item 2).

A stop waits ``stop_timeout_seconds`` for requests in flight, then disconnects
them and exits; a second signal exits at once. The stalled resumable upload
keeps every byte that arrived and resumes after the restart.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from server.settings import MiB
from tests.server_process import Instance, Server, init_instance, run_server
from tests.test_uploads_tus import OWNER_COOKIE, PATCH_TYPE, Browser, seal

pytestmark = pytest.mark.slow

STOP_TIMEOUT = 3
CONFIG = f"[server]\nstop_timeout_seconds = {STOP_TIMEOUT}\n"
SEGMENT = 1 * MiB


@contextmanager
def stalled_patch(server: Server, browser: Browser, upload_id: str, data: bytes) -> Iterator[int]:
    """A PATCH of one segment at offset 0 whose body stops half-way; yields what was sent."""
    host, port = urlsplit(server.base_url).netloc.split(":")
    raw = socket.create_connection((host, int(port)))
    head = (
        f"PATCH /tus/{upload_id} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: 1.0.0\r\n"
        f"Content-Type: {PATCH_TYPE}\r\nUpload-Offset: 0\r\n"
        f"Content-Length: {SEGMENT}\r\nCookie: {OWNER_COOKIE}={browser.owner_cookie}\r\n\r\n"
    )
    sent = SEGMENT // 2
    raw.sendall(head.encode() + data[:sent])
    time.sleep(1)  # the server has read it all; the client now says nothing
    try:
        yield sent
    finally:
        raw.close()


def stopped_within(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        proc.wait(seconds)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def listening(server: Server) -> bool:
    host, port = urlsplit(server.base_url).netloc.split(":")
    try:
        socket.create_connection((host, int(port)), 1).close()
        return True
    except OSError:
        return False


def test_a_stop_with_an_upload_stalled_half_way_ends_and_the_upload_resumes(
    tmp_path: Path,
) -> None:
    instance = init_instance(tmp_path, config=CONFIG)
    data = seal(instance, os.urandom(SEGMENT + 1000))
    with run_server(instance) as server, Browser(server.base_url) as browser:
        upload_id = browser.create(len(data))
        with stalled_patch(server, browser, upload_id, data) as sent:
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            # The stop waits for the upload a while (no new connections meanwhile)...
            time.sleep(1)
            assert server.proc.poll() is None
            assert not listening(server)
            # ...then cuts it and exits: stop timeout, a few seconds of grace, slack.
            assert stopped_within(server.proc, STOP_TIMEOUT + 10)
            assert time.monotonic() - started >= STOP_TIMEOUT
        cookies = dict(browser.client.cookies)
    resume_after_restart(instance, cookies, upload_id, data, sent)


def test_a_second_signal_stops_at_once(tmp_path: Path) -> None:
    instance = init_instance(tmp_path)  # the default stop timeout: 20 s
    data = seal(instance, os.urandom(SEGMENT + 1000))
    with run_server(instance) as server, Browser(server.base_url) as browser:
        upload_id = browser.create(len(data))
        with stalled_patch(server, browser, upload_id, data) as sent:
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(1)
            assert server.proc.poll() is None
            server.proc.send_signal(signal.SIGINT)
            assert stopped_within(server.proc, 5)
        cookies = dict(browser.client.cookies)
    # At once means the handler may not get to record what arrived: the upload
    # resumes from its last recorded offset, as after a kill.
    resume_after_restart(instance, cookies, upload_id, data, sent, exact=False)


def resume_after_restart(
    instance: Instance,
    cookies: dict[str, str],
    upload_id: str,
    data: bytes,
    sent: int,
    *,
    exact: bool = True,
) -> None:
    with run_server(instance) as server, Browser(server.base_url) as browser:
        for name, value in cookies.items():
            browser.client.cookies.set(name, value)
        offset = browser.offset(upload_id)
        if exact:  # every byte that arrived before the cut was kept
            assert offset == sent
        else:
            assert 0 <= offset <= sent
        r = browser.patch(upload_id, offset, data[offset:])
        assert r.status_code == 204, r.status_code
        assert browser.offset(upload_id) == len(data)


def test_the_journalist_api_stops_with_a_killed_server(tmp_path: Path) -> None:
    instance = init_instance(tmp_path)
    with run_server(instance, journalist_api=True) as server:
        assert server.api_url is not None
        api_port = int(urlsplit(server.api_url).netloc.split(":")[1])
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
        # The child notices its parent is gone and frees its port for the restart.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", api_port), 0.5).close()
            except OSError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the journalist API outlived its killed parent")
