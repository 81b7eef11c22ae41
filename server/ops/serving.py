"""Serving the source interface and the journalist API, each in its own process.

``lanterne-server run`` serves the source interface in its own process and, when
asked, starts the journalist API as a child process (``python -m server.ops.serving``)
on its own port, so that a flood of one listener (descriptors, CPU, memory of
the event loop) never reaches the other. The parent forwards SIGINT/SIGTERM to
the child, restarts it if it dies, and the child stops when its parent is gone.

uvicorn has no deadline on a request's headers or body, and accepts connections
until the process runs out of descriptors. ``GuardedH11Protocol`` adds, per
listener (docs/RELIABILITY.md has the figures and why):

- a cap on open connections: one over it gets a short 503 and is closed at once;
- a deadline on headers: a connection must deliver a complete request head within
  ``header_timeout_seconds`` of opening (or of the previous response);
- a minimum body rate: while the app is ready to read, a request body must bring
  at least ``min_body_bytes_per_second`` averaged over each ``body_window_seconds``;
- a reader that leaves a response blocked for a whole window is cut too.

A stop (SIGTERM or SIGINT) closes the listeners, lets requests in flight finish
for ``stop_timeout_seconds``, then disconnects whatever is left (a resumable
upload keeps what it wrote, as after a network cut) and exits. A second signal
stops at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.languages import REGISTRY
from server.settings import ServingLimits
from server.web.error_pages import N_
from server.web.i18n import load_translations

logger = logging.getLogger("lanterne.serving")

# Descriptors kept out of the connection budget: the database, object files being
# written, the listening socket, logs; and one accept() burst: asyncio accepts up
# to ``backlog`` connections in a row before any of them is refused and closed.
# Each connection may also hold a file.
LISTEN_BACKLOG = 128
# 128, not 64, beside the burst: with 64 the suite once saw a request fail to open
# the database at a 256-descriptor limit (worker threads' connections, the
# process's own files); 16384 in deploy/ makes the difference moot there.
RESERVED_DESCRIPTORS = 128 + LISTEN_BACKLOG
DESCRIPTORS_PER_CONNECTION = 2
# How long handlers cut at the end of a stop get to record what they received.
DISCONNECT_GRACE_SECONDS = 3
READ_SIZE = 64 * 1024  # bytes per recv() on a connection
# What a connection over the cap gets, before the close: no markup, and no
# language known yet, so one line in each language of the registry.
BUSY_MESSAGE = N_("Too many visitors right now: try again in a minute.")
_BUSY_TEXT = "".join(
    load_translations(language.code).gettext(BUSY_MESSAGE) + "\n" for language in REGISTRY
).encode()
BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 60\r\n"
    b"Connection: close\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n" % len(_BUSY_TEXT)
) + _BUSY_TEXT


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


def connection_cap(configured: int) -> int:
    """``configured``, lowered to what this process's descriptor limit can hold."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    fits = max(1, (soft - RESERVED_DESCRIPTORS) // DESCRIPTORS_PER_CONNECTION)
    if fits < configured:
        logger.warning(
            "the descriptor limit (%d) holds %d connections, not %d: raise LimitNOFILE",
            soft,
            fits,
            configured,
        )
    return min(configured, fits)


class _TimedFlow(FlowControl):
    """uvicorn's flow control, adding up the time reading was paused."""

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__(transport)
        self.paused_seconds = 0.0
        self._paused_at = 0.0

    def pause_reading(self) -> None:
        if not self.read_paused:
            self._paused_at = time.monotonic()
        super().pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.paused_seconds += time.monotonic() - self._paused_at
        super().resume_reading()

    def reading_paused_seconds(self, now: float) -> float:
        return self.paused_seconds + (now - self._paused_at if self.read_paused else 0.0)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and deadlines on the client.

    Deadlines are checked once a second by ``GuardedServer.on_tick``. h11's view
    of the client says what is awaited: ``their_state`` IDLE is a request head,
    SEND_BODY a body. uvicorn pauses reading while the app has 64 KiB it has not
    taken; that time is not held against the client. A response the client does
    not read blocks writing; that time is.
    """

    max_connections: ClassVar[int] = 1000
    limits: ClassVar[ServingLimits] = ServingLimits()

    _refused = False
    _answered = 0  # responses completed on this connection
    _awaiting: object = None  # (h11's their_state, _answered) at the previous check
    _since = 0.0  # when that state began (seen by a check)
    _window_start = 0.0
    _window_bytes = 0
    _window_paused = 0.0  # reading paused seconds at the window's start
    _blocked_since: float | None = None  # writing blocked by an unread response

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.max_connections:
            self._refused = True
            transport.write(BUSY_RESPONSE)
            transport.close()
            return
        super().connection_made(transport)
        self.flow = _TimedFlow(transport)
        # asyncio reads up to 256 KiB at a time and uvicorn stops reading only
        # past 64 KiB of body the app has not taken: smaller reads bound what
        # each connection holds to about 128 KiB (docs/BENCHMARKS.md, memory).
        if hasattr(transport, "max_size"):
            setattr(transport, "max_size", READ_SIZE)  # noqa: B010
        self._restart(self._state(), time.monotonic())

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._window_bytes += len(data)
        super().data_received(data)

    def on_response_complete(self) -> None:
        self._answered += 1
        super().on_response_complete()

    def _state(self) -> tuple[object, int]:
        """What the client owes, and for which request: two checks that see
        "a head" on a busy keep-alive connection may see two different ones."""
        return self.conn.their_state, self._answered

    def pause_writing(self) -> None:
        if self._blocked_since is None:
            self._blocked_since = time.monotonic()
        super().pause_writing()

    def resume_writing(self) -> None:
        self._blocked_since = None
        super().resume_writing()

    def _restart(self, awaiting: object, now: float) -> None:
        self._awaiting, self._since = awaiting, now
        self._window_start, self._window_bytes = now, 0
        self._window_paused = self._paused(now)

    def _paused(self, now: float) -> float:
        flow = self.flow
        return flow.reading_paused_seconds(now) if isinstance(flow, _TimedFlow) else 0.0

    def check_deadlines(self, now: float) -> None:
        """Cut the connection if the client is late; called about once a second."""
        if self._refused or self.transport is None or self.transport.is_closing():
            return
        limits = self.limits
        if self._blocked_since is not None:
            late = now - self._blocked_since > limits.body_window_seconds
        else:
            state = self._state()
            if state != self._awaiting:
                self._restart(state, now)
                return
            awaiting = state[0]
            late = False
            window = now - self._window_start
            if awaiting is h11.IDLE:
                late = now - self._since > limits.header_timeout_seconds
            elif awaiting is h11.SEND_BODY and window >= limits.body_window_seconds:
                reading = window - (self._paused(now) - self._window_paused)
                late = self._window_bytes < limits.min_body_bytes_per_second * reading
                self._restart(state, now)
        if late:
            self.transport.abort()  # the app sees a disconnect, as after a network cut


class GuardedServer(uvicorn.Server):
    """A uvicorn server whose signals are handled by ``serve``, checking deadlines."""

    def __init__(self, config: uvicorn.Config, limits: ServingLimits) -> None:
        super().__init__(config)
        self.limits = limits

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0:
            now = time.monotonic()
            for conn in list(self.server_state.connections):
                if isinstance(conn, GuardedH11Protocol):
                    conn.check_deadlines(now)
        return await super().on_tick(counter)

    def disconnect_all(self) -> None:
        for conn in list(self.server_state.connections):
            transport = getattr(conn, "transport", None)
            if transport is not None and not transport.is_closing():
                transport.abort()


def guarded_server(
    app: FastAPI,
    host: str,
    port: int,
    log_config: dict[str, Any],
    limits: ServingLimits,
    max_connections: int,
) -> GuardedServer:
    protocol = type(
        "ListenerProtocol",
        (GuardedH11Protocol,),
        {"max_connections": connection_cap(max_connections), "limits": limits},
    )
    return GuardedServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            http=protocol,
            backlog=LISTEN_BACKLOG,
            access_log=False,  # no access log: no addresses, paths or timings of sources
            server_header=False,
            date_header=False,
            proxy_headers=False,
            log_config=log_config,
            log_level="warning",
            lifespan="off",
            # uvicorn cancels what is still running this long after the stop
            # began; ``serve`` has disconnected the clients by then.
            timeout_graceful_shutdown=limits.stop_timeout_seconds + DISCONNECT_GRACE_SECONDS,
        ),
        limits,
    )


class _AcceptErrors:
    """asyncio logs every failed accept() with a traceback: at most one line a minute here.

    Running out of descriptors makes accept() fail on every loop turn while the
    backlog is full; without this, that is millions of log lines.
    """

    INTERVAL = 60.0

    def __init__(self) -> None:
        self._last = -self.INTERVAL
        self._count = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (
            errno.EMFILE,
            errno.ENFILE,
            errno.ENOBUFS,
            errno.ENOMEM,
        ):
            self._count += 1
            now = time.monotonic()
            if now - self._last >= self.INTERVAL:
                logger.error(
                    "cannot accept connections: %s (%d failed accepts since the last report)",
                    os.strerror(exc.errno),
                    self._count,
                )
                self._last, self._count = now, 0
            return
        loop.default_exception_handler(context)


def serve(
    server: GuardedServer,
    sock: socket.socket,
    *,
    on_signal: Callable[[int], None] = lambda n: None,
    watch: Callable[[], bool] = lambda: False,
) -> None:
    """Serve until a signal, then stop within ``stop_timeout_seconds`` (at once on a second).

    ``on_signal(n)`` runs on the n-th stop signal; ``watch()`` runs every second
    and stops the server when it returns true.
    """
    limits = server.limits

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_AcceptErrors())
        signals = 0
        timers: list[asyncio.TimerHandle] = []

        def force() -> None:
            server.force_exit = True

        def cut() -> None:
            # Clients still connected are disconnected; their handlers get a
            # moment to record what arrived, then the server exits.
            server.disconnect_all()
            timers.append(loop.call_later(DISCONNECT_GRACE_SECONDS, force))

        def stop() -> None:
            nonlocal signals
            signals += 1
            on_signal(signals)
            server.should_exit = True
            if signals == 1:
                timers.append(loop.call_later(limits.stop_timeout_seconds, cut))
            else:
                for timer in timers:
                    timer.cancel()
                server.disconnect_all()
                force()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)

        async def watcher() -> None:
            while not server.should_exit:
                if watch():
                    stop()
                await asyncio.sleep(1)

        task = asyncio.create_task(watcher())
        try:
            await server.serve([sock])
        finally:
            task.cancel()
            for timer in timers:
                timer.cancel()

    asyncio.run(main())


class JournalistChild:
    """The journalist API's process, seen from the source interface's."""

    RESTART_DELAY = 5.0
    STARTUP_SECONDS = 10.0  # dying this soon after a start is a failure to start

    def __init__(self, data_dir: Path, host: str, port: int, sock: socket.socket) -> None:
        # The parent keeps the bound socket: a restarted child serves the same one,
        # and connections wait in its backlog meanwhile.
        self._sock = sock
        self._argv = [
            sys.executable,
            "-m",
            "server.ops.serving",
            "--data-dir",
            str(data_dir),
            "--host",
            host,
            "--port",
            str(port),
            "--fd",
            str(sock.fileno()),
        ]
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self._died_at = 0.0
        self.failed = False
        self.signalled = False

    def start(self) -> None:
        # Its own session: a Ctrl-C in a terminal reaches the parent only, which
        # forwards it, so the child sees each stop signal exactly once.
        self._proc = subprocess.Popen(
            self._argv, start_new_session=True, pass_fds=[self._sock.fileno()]
        )
        self._started_at = time.monotonic()

    def forward(self, count: int) -> None:
        """Pass the parent's ``count``-th stop signal on (a second one stops it at once)."""
        self.signalled = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)

    def watch(self) -> bool:
        """Restart the child if it died; true if it could not even start."""
        if self._proc is None or self._proc.poll() is None:
            return False
        now = time.monotonic()
        if not self._died_at:
            if now - self._started_at < self.STARTUP_SECONDS:
                logger.error("the journalist API could not start; stopping")
                self.failed = True
                return True
            logger.error("the journalist API exited (%s); restarting it", self._proc.returncode)
            self._died_at = now
        if now - self._died_at >= self.RESTART_DELAY:
            self._died_at = 0.0
            self.start()
        return False

    def wait(self, timeout: float) -> None:
        proc = self._proc
        try:
            if proc is not None:
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            self._sock.close()


def journalist_main(argv: list[str] | None = None) -> None:
    """The journalist API child:
    ``python -m server.ops.serving --data-dir D --host H --port P --fd N``.

    N is the listening socket its parent bound on H:P (``bind_all``)."""
    from server.ops.admin import UVICORN_LOG_CONFIG
    from server.settings import Settings
    from server.web.journalist_api import create_journalist_app

    parser = argparse.ArgumentParser(prog="python -m server.ops.serving")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    settings = Settings.load(args.data_dir)
    limits = settings.serving
    server = guarded_server(
        create_journalist_app(settings, listen=f"{args.host}:{args.port}"),
        args.host,
        args.port,
        UVICORN_LOG_CONFIG,
        limits,
        limits.journalist_max_connections,
    )
    parent = os.getppid()
    # The source interface is gone (even killed): so are we.
    serve(server, sock, watch=lambda: os.getppid() != parent)


if __name__ == "__main__":
    journalist_main()
