"""`lanterne pull` against a real server: several downloads at once, a connection
cut in the middle of one object, what the vault holds afterwards, the resume.

The server is a real `lanterne-server run --journalist-port` process; the cut is
made in the client's transport (the bytes stop after 256 KiB of one object), so
everything else is the real stack. `durable.Flusher` is checked on its own too.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from journalist_cli import credentials, receive, sync
from journalist_cli.api_client import ApiClient
from journalist_cli.durable import Flusher
from journalist_cli.vault import Vault
from journalist_cli.workflow_errors import ServerError
from tests.server_process import SourceClient
from tests.test_journalist_workflow import newsroom

# Real processes end to end: CI runs it, scripts/test.sh --fast does not (under two minutes).
pytestmark = pytest.mark.slow

CUT_AFTER = 256 << 10


class CutOneObject(httpx.BaseTransport):
    """The real transport, except that one object's body stops after ``CUT_AFTER``
    bytes, and every other object larger than one piece waits after its first piece
    until that cut, which comes once a small object has finished and another file is
    waiting: what was in flight at the time of the failure is known."""

    def __init__(self, victim: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.victim = victim
        self.cut_done = threading.Event()
        self.small_done = threading.Event()
        self.large_waiting = threading.Event()
        self.concurrent = 0
        self.most_concurrent = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # handed to pull, set by it at the failure

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.startswith("/api/v1/objects/"):
            return response
        cut = request.url.path.endswith("/" + self.victim)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Controlled(self, response.stream, cut),  # type: ignore[arg-type]
        )

    def close(self) -> None:
        self.inner.close()


class _Controlled(httpx.SyncByteStream):
    def __init__(self, owner: CutOneObject, inner: httpx.SyncByteStream, cut: bool) -> None:
        self.owner, self.inner, self.cut = owner, inner, cut

    def __iter__(self) -> Iterator[bytes]:
        with self.owner.lock:
            self.owner.concurrent += 1
            self.owner.most_concurrent = max(self.owner.most_concurrent, self.owner.concurrent)
        try:
            sent = 0
            for piece, chunk in enumerate(self.inner):
                if self.cut and sent + len(chunk) > CUT_AFTER:
                    yield chunk[: CUT_AFTER - sent]
                    # Cut once a small object has finished and another file is in flight.
                    assert self.owner.small_done.wait(30)
                    assert self.owner.large_waiting.wait(30)
                    self.owner.cut_done.set()
                    raise httpx.ReadError("connection cut by the test")
                if piece == 1 and not self.cut:
                    self.owner.large_waiting.set()
                    assert self.owner.cut_done.wait(30)
                    # Go on only once pull has noticed the failure (its stop flag):
                    # this download is then certainly "in flight at the failure".
                    assert self.owner.stopping.wait(30)
                sent += len(chunk)
                yield chunk
            if not self.cut:
                self.owner.small_done.set()  # only one-piece objects get here before the cut
        finally:
            with self.owner.lock:
                self.owner.concurrent -= 1

    def close(self) -> None:
        self.inner.close()


def test_a_cut_download_stops_the_others_keeps_what_finished_and_resumes(tmp_path: Path) -> None:
    files = {f"doc{i}.bin": os.urandom((1 << 20) + i) for i in range(6)}
    with newsroom(tmp_path, ("alice",)) as room:
        with SourceClient(room.source_url) as source:
            names = sorted(files)
            source.first_submission("first", [(names[0], files[names[0]], "")])
            for name in names[1:]:
                assert source.submit("", [(name, files[name], "")]).status_code == 303
        signer = credentials.load_signer(room.keys / "alice.identity", None)
        vault = Vault.open(tmp_path / "home")
        with ApiClient(room.api_url) as client:  # the index first, to know pull's order
            client.login(signer.name, signer.signing)
            for info in client.sources():
                vault.store_summary(info)
                vault.store_detail(client.source(info.id))
        order = vault.missing_objects()
        assert order[0].kind == "manifest"  # pull starts a small object before the victim
        victim = next(o.id for o in order if o.kind == "file")

        transport = CutOneObject(victim)
        with ApiClient(room.api_url, transport=transport) as client:
            client.login(signer.name, signer.signing)
            with pytest.raises(ServerError, match="pull again"):
                sync.pull(client, vault, stopping=transport.stopping)
        assert transport.most_concurrent > 1  # downloads overlapped

        # The cut object is a .part of exactly what arrived, never under its final
        # name. The files that were downloading with it stopped at the failure (all
        # of them were waiting for it): .part files too. What finished (small
        # objects in one piece) is complete and marked present.
        assert vault.partial_path(victim).stat().st_size == CUT_AFTER
        present = {o.id for o in vault.all_objects() if o.present}
        assert present and not {o.id for o in order if o.kind == "file"} & present
        for oid in present:
            assert (
                vault.object_path(oid).read_bytes()
                == (room.data_dir / "objects" / oid).read_bytes()
            )
        for obj in order:
            assert not vault.object_path(obj.id).exists() or obj.id in present
        parts = {
            p.name.removesuffix(".part"): p.stat().st_size for p in vault.objects_dir.glob("*.part")
        }
        assert victim in parts

        # The next pull fetches only what is missing, resuming the .part files.
        with ApiClient(room.api_url) as client:
            client.login(signer.name, signer.signing)
            result = sync.pull(client, vault)
        assert result.resumed == len([size for size in parts.values() if size])
        assert set(result.downloaded) == {o.id for o in order} - present
        assert not list(vault.objects_dir.glob("*.part"))

        ident = credentials.load_full_identity(room.keys / "alice.identity", None)
        [source_id] = vault.source_ids()
        out = tmp_path / "out"
        receive.decrypt_source(vault, vault.source(source_id), ident.identities(), out, clean=False)
        got = {p.name: p.read_bytes() for p in out.rglob("doc*.bin")}
        assert got == files


class FirstTokenExpires(httpx.BaseTransport):
    """The real transport, except that object downloads with the first token get 401
    (as after a server restart): all download threads hit it at about the same time."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.logins = 0
        self.first_token: str | None = None
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization")
        if request.url.path.startswith("/api/v1/objects/") and auth == self.first_token:
            self.refused += 1
            return httpx.Response(401, json={"error": "unauthorized", "message": "expired"})
        response = self.inner.handle_request(request)
        if request.url.path == "/api/v1/auth/token":
            self.logins += 1
            if self.first_token is None:
                response.read()
                self.first_token = "Bearer " + response.json()["token"]
        return response

    def close(self) -> None:
        self.inner.close()


def test_several_sources_and_an_expired_token_mid_pull_costs_one_login(tmp_path: Path) -> None:
    with newsroom(tmp_path, ("alice",)) as room:
        for n in range(3):  # three sources; their details are fetched concurrently
            with SourceClient(room.source_url) as source:
                source.first_submission(
                    f"s{n}", [(f"f{i}", os.urandom(50_000), "") for i in range(3)]
                )
        signer = credentials.load_signer(room.keys / "alice.identity", None)
        vault = Vault.open(tmp_path / "home")
        transport = FirstTokenExpires()
        with ApiClient(room.api_url, transport=transport) as client:
            client.login(signer.name, signer.signing)
            result = sync.pull(client, vault)
        assert result.sources == result.refreshed == 3
        assert len(result.downloaded) == 15  # per source: 3 files, the message, the manifest
        assert set(result.downloaded) == {p.name for p in (room.data_dir / "objects").iterdir()}
        assert transport.refused >= 2  # several threads met the dead token...
        assert transport.logins == 2  # ...and only one of them logged in again


def test_flusher_runs_steps_in_order_and_raises_the_first_error(tmp_path: Path) -> None:
    done: list[int] = []
    with Flusher() as flusher:
        for i in range(5):
            flusher.submit(functools.partial(done.append, i))
    assert done == [0, 1, 2, 3, 4]

    target = tmp_path / "f"
    target.write_bytes(b"x")
    with pytest.raises(FileNotFoundError), Flusher() as flusher:
        flusher.fsync(target)
        flusher.fsync(tmp_path / "missing")


def test_flusher_finishes_handed_over_steps_when_the_caller_fails() -> None:
    done: list[int] = []
    with pytest.raises(KeyError), Flusher() as flusher:
        for i in range(3):
            flusher.submit(functools.partial(done.append, i))
        raise KeyError("the caller's own error")
    assert done == [0, 1, 2]


def test_flusher_stops_the_caller_early_after_a_failure() -> None:
    def fail() -> None:
        raise OSError("disk full")

    flusher = Flusher()
    flusher.submit(fail)
    flusher._pool.shutdown(wait=True)  # let the failing step finish
    with pytest.raises(OSError, match="disk full"):
        flusher.submit(lambda: None)
