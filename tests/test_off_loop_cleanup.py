"""A failed no-JS submission cleans up off the event loop: the open part's abort
(``parse_streaming``) and the request's objects (``ObjectBatch``) run in worker
threads, shielded from the request's cancellation. On S3 each of these is a
request to the bucket; on the event loop it would stall every other page of
the instance for as long (docs/SCALE_OUT.md)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from server.domain.submissions import ObjectBatch
from server.store.objects import ObjectStore
from server.store.protocols import PendingObject
from server.web.streaming_form import parse_streaming

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorded:
    """A real file store that notes which thread removed what."""

    def __init__(self, root: Path) -> None:
        self.store = ObjectStore(root)
        self.store.create_dirs()
        self.calls: list[tuple[str, threading.Thread]] = []

    def new_object(self) -> PendingObject:
        obj = self.store.new_object()
        abort = obj.abort

        def recorded_abort() -> None:
            self.calls.append(("abort", threading.current_thread()))
            abort()

        obj.abort = recorded_abort  # type: ignore[method-assign]
        return obj

    def delete(self, object_id: str) -> None:
        self.calls.append(("delete", threading.current_thread()))
        self.store.delete(object_id)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


async def test_a_discarded_batch_is_removed_in_a_worker_thread(tmp_path: Path) -> None:
    store = Recorded(tmp_path / "objects")
    loop_thread = threading.current_thread()
    with pytest.raises(RuntimeError):
        async with ObjectBatch(store) as batch:  # type: ignore[arg-type]
            done = batch.new_object()
            done.write(b"ciphertext")
            done.commit()
            batch.committed(done)
            batch.new_object().write(b"half")
            raise RuntimeError("the request failed")
    assert sorted(kind for kind, _ in store.calls) == ["abort", "delete"]
    assert all(thread is not loop_thread for _, thread in store.calls), store.calls
    assert store.store.ids() == set()
    assert [p for p in (tmp_path / "objects").rglob("*") if p.is_file()] == []


async def test_a_cancelled_request_still_removes_its_objects(tmp_path: Path) -> None:
    store = Recorded(tmp_path / "objects")
    with anyio.CancelScope() as scope:
        async with ObjectBatch(store) as batch:  # type: ignore[arg-type]
            obj = batch.new_object()
            obj.write(b"ciphertext")
            obj.commit()
            batch.committed(obj)
            scope.cancel()  # the client went away
            await anyio.sleep(1)
    assert [kind for kind, _ in store.calls] == ["delete"]
    assert store.store.ids() == set()


async def test_parse_streaming_aborts_the_open_part_in_a_worker_thread() -> None:
    threads: list[threading.Thread] = []

    class Failing:
        def feed(self, data: bytes) -> None:
            raise ValueError("malformed")

        def abort(self) -> None:
            threads.append(threading.current_thread())

    async def body() -> AsyncIterator[bytes]:
        yield b"--x\r\n"

    parser = Failing()
    with pytest.raises(ValueError):
        await parse_streaming(body(), parser)  # type: ignore[arg-type]
    assert threads and threads[0] is not threading.current_thread()
