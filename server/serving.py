"""Serving the source interface and the journalist API from one process.

Each app gets its own uvicorn server on its own port (so the admin can put
each behind its own onion service); one signal handler stops both. Every port
is bound before anything is served (``bind_all``), so a port already in use is
one error, raised before the caller says it is serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to ``serve_all``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(app: FastAPI, host: str, port: int, log_config: dict[str, Any]) -> _Server:
    return _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            access_log=False,  # no access log: no addresses, paths or timings of sources
            server_header=False,
            date_header=False,
            proxy_headers=False,
            log_config=log_config,
            log_level="warning",
            lifespan="off",
        )
    )


class BindError(Exception):
    """A port could not be listened on; the message names it and why."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), as uvicorn would make it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BindError(
                f"port {port} on {host} is already in use: stop what listens there, or choose"
                " another port"
            ) from exc
        raise BindError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from exc
    return sock


def bind_all(addresses: Sequence[tuple[str, int]]) -> list[socket.socket]:
    """One listening socket per (host, port); none stays open if one fails."""
    sockets: list[socket.socket] = []
    try:
        for host, port in addresses:
            sockets.append(bind(host, port))
    except BindError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def serve_all(
    apps: Sequence[tuple[FastAPI, str, int]],
    log_config: dict[str, Any],
    sockets: Sequence[socket.socket] | None = None,
) -> None:
    """Serve every (app, host, port) until SIGINT or SIGTERM, then stop them all.

    ``sockets``, one per app in order, come from ``bind_all``; without them they are
    bound here.
    """
    if sockets is None:
        sockets = bind_all([(host, port) for _, host, port in apps])
    servers = [_server(app, host, port, log_config) for app, host, port in apps]

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for s in servers:
                s.should_exit = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        await asyncio.gather(*(s.serve([sock]) for s, sock in zip(servers, sockets, strict=True)))

    asyncio.run(main())
