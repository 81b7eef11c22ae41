"""Serving the source interface and the journalist API from one process.

Each app gets its own uvicorn server on its own port (so the admin can put
each behind its own onion service); one signal handler stops both.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
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


def serve_all(apps: Sequence[tuple[FastAPI, str, int]], log_config: dict[str, Any]) -> None:
    """Serve every (app, host, port) until SIGINT or SIGTERM, then stop them all."""
    servers = [_server(app, host, port, log_config) for app, host, port in apps]

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for s in servers:
                s.should_exit = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        await asyncio.gather(*(s.serve() for s in servers))

    asyncio.run(main())
