"""Request bodies read as they arrive: ``BodyStream`` (``request.stream()`` that
also tells whether the body ended) and ``drain_body`` (read and drop what is
left of a refused body). Shared by the no-JS form and tus."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from starlette.requests import ClientDisconnect


async def drain_body(request: Request, limit: int) -> None:
    """Read and drop what is left of a refused body, so the browser sees our page.

    Browsers often show "connection reset" instead of a response sent while
    they are still uploading. Past ``limit`` bytes we give up and let it reset.
    """
    received = 0
    receive = request.receive
    try:
        while received < limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
    except (ClientDisconnect, RuntimeError, OSError):
        return


class BodyStream:
    """``request.stream()``, remembering whether the body was read to its end.

    ``complete`` turns true with the last chunk, before the reader sees it: a
    reader that refuses the body on its last chunk must not drain it, since
    ``receive()`` after the end of the body waits for the client to disconnect.
    """

    def __init__(self, request: Request) -> None:
        self._request = request
        self.complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while not self.complete:
            message = await self._request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            self.complete = not message.get("more_body", False)
            if chunk := message.get("body", b""):
                yield chunk
