"""Several instances behind one onion address with Onionbalance (deploy/README.md,
section 11), on a private Tor network.

Everything is what an admin deploys: Debian's ``onionbalance`` with the
frontend torrc and config of ``deploy/onionbalance/``, two backend tors from
``torrc.backend.tmpl`` with their ``ob_config``, each in front of its own
``lanterne-server run`` (both on one data directory, the one-machine form of
section 11: which storage the backends share does not matter to Tor). A
source reaches the frontend's address, which no tor serves itself, and
submits; one backend dies (its tor and its server), and the same address
still takes a submission through the other.

The network votes every 20 s, not 10 as tests/e2e/tor_network.py's does:
``onionbalance --is-testnet`` assumes chutney's 20 s when it computes the
time period (24 votes) that the blinded keys depend on.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.ops.tor_config import OnionService, read_onion_hostname, render_torrc
from tests.e2e.tor_network import (
    LOOPBACK,
    SOCKS_OK,
    TorClient,
    TorNetworkError,
    TorNode,
    free_ports,
    require_tor,
    start_directory,
)
from tests.server_process import Instance, Server, SourceClient, db_rows, init_instance, run_server
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tor]

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "onionbalance"
VOTING_INTERVAL = 20
BRINGUP_TIMEOUT = 300.0
N_AUTHORITIES = 3
N_RELAYS = 4


def onion_address(public_key: bytes) -> str:
    """rend-spec-v3 §6: the v3 address of an ed25519 public key."""
    checksum = hashlib.sha3_256(b".onion checksum" + public_key + b"\x03").digest()[:2]
    return base64.b32encode(public_key + checksum + b"\x03").decode("ascii").lower() + ".onion"


@dataclass
class Backend:
    tor: TorNode
    service: OnionService
    server: Server


@dataclass
class Balanced:
    frontend_onion: str
    frontend: TorNode
    backends: list[Backend]
    client: TorClient
    directory: list[TorNode]
    onionbalance: subprocess.Popen[bytes]
    onionbalance_log: Path

    @property
    def tors(self) -> list[TorNode]:
        return [*self.directory, self.frontend, *(b.tor for b in self.backends), self.client.node]

    def report(self) -> str:
        nodes = [self.frontend, *(b.tor for b in self.backends), self.client.node]
        text = "".join(f"--- {n.nickname}\n{n.log_tail(15, rend=True)}" for n in nodes)
        ob = self.onionbalance_log.read_text(errors="replace").splitlines()[-30:]
        return text + "--- onionbalance\n" + "\n".join(ob)

    def check_alive(self) -> None:
        for node in self.tors:
            if node.proc is not None:  # a backend stopped on purpose has no process
                node.check_alive()
        if self.onionbalance.poll() is not None:
            raise TorNetworkError(f"onionbalance exited\n{self.report()}")

    def reach(self, timeout: float) -> float:
        """Seconds until the client connects to the frontend's address; a new
        identity every 15 s (a client can hold a descriptor naming a dead
        backend's introduction points, as Tor Browser would until restarted)."""
        start = time.monotonic()
        last_newnym = start
        code = -2
        while time.monotonic() - start < timeout:
            self.check_alive()
            code = self.client.code(self.frontend_onion, timeout=10)
            if code == SOCKS_OK:
                return time.monotonic() - start
            if time.monotonic() - last_newnym > 15:
                self.client.new_identity()
                last_newnym = time.monotonic()
            time.sleep(1)
        raise AssertionError(
            f"no connection to the frontend after {timeout:.0f} s (SOCKS {code:#x})\n"
            + self.report()
        )


def _dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True)
    return path


@contextlib.contextmanager
def balanced(instance: Instance) -> Iterator[Balanced]:
    tor, gencert = require_tor()
    onionbalance = shutil.which("onionbalance")
    if onionbalance is None:
        raise TorNetworkError("onionbalance is required (scripts/bootstrap.sh --test)")
    deadline = time.monotonic() + BRINGUP_TIMEOUT

    def left() -> float:
        return max(deadline - time.monotonic(), 0.0)

    workdir = Path(tempfile.mkdtemp(prefix="lanterne-ob-"))
    ports = iter(free_ports(2 * N_AUTHORITIES + N_RELAYS + 2 * (N_AUTHORITIES + N_RELAYS) + 5))
    directory = [
        TorNode(tor, f"auth{i}", _dir(workdir / f"auth{i}"), next(ports))
        for i in range(N_AUTHORITIES)
    ] + [
        TorNode(tor, f"relay{i}", _dir(workdir / f"relay{i}"), next(ports)) for i in range(N_RELAYS)
    ]
    started: list[TorNode] = list(directory)
    servers: contextlib.ExitStack = contextlib.ExitStack()
    ob_proc: subprocess.Popen[bytes] | None = None
    try:
        dir_authorities = start_directory(
            tor,
            gencert,
            directory[:N_AUTHORITIES],
            directory[N_AUTHORITIES:],
            ports,
            left,
            voting_interval=VOTING_INTERVAL,
        )
        # The frontend's key, as `onionbalance-config` makes it (PEM, PKCS#8).
        ob_dir = _dir(workdir / "onionbalance")
        key = Ed25519PrivateKey.generate()
        key_path = ob_dir / "frontend.key"
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        frontend_onion = onion_address(
            key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

        # Two backends: each its own server process and its own tor.
        backends = []
        for i in range(2):
            server = servers.enter_context(run_server(instance))
            node = TorNode(tor, f"backend{i}", _dir(workdir / f"backend{i}"), next(ports))
            service = OnionService(
                node.data_dir / "lanterne_backend", int(server.base_url.rsplit(":", 1)[1])
            )
            _dir(service.hs_dir)
            ob_config = (DEPLOY / "ob_config.tmpl").read_text(encoding="utf-8")
            (service.hs_dir / "ob_config").write_text(
                ob_config.replace("FRONTEND_ADDRESS.onion", frontend_onion), encoding="utf-8"
            )
            node.write_torrc(
                "\n".join(node.base_options(dir_authorities))
                + "\n"
                + render_torrc((DEPLOY / "torrc.backend.tmpl").read_text("utf-8"), service)
            )
            node.start()
            started.append(node)
            backends.append(Backend(node, service, server))

        # The frontend: no service of its own; onionbalance drives it through
        # the control socket of the template (moved into the working directory).
        frontend = TorNode(tor, "frontend", _dir(workdir / "frontend"), next(ports))
        socket_path = frontend.data_dir / "control"
        frontend_torrc = (DEPLOY / "torrc.frontend.tmpl").read_text("utf-8")
        assert "/run/tor/control" in frontend_torrc
        frontend.write_torrc(
            "\n".join(frontend.base_options(dir_authorities))
            + "\n"
            + frontend_torrc.replace("/run/tor/control", str(socket_path))
        )
        frontend.start()
        started.append(frontend)

        client_node = TorNode(tor, "client", _dir(workdir / "client"), next(ports))
        client = TorClient(client_node, next(ports), _dir(client_node.data_dir / "onion_auth"))
        client_node.write_torrc(
            "\n".join(
                [
                    *client_node.base_options(dir_authorities),
                    f"SocksPort {LOOPBACK}:{client.socks_port} ExtendedErrors",
                ]
            )
            + "\n"
        )
        client_node.start()
        started.append(client_node)

        n_routers = len(directory)
        tors = [frontend, client_node, *(b.tor for b in backends)]

        def ready() -> bool:
            for node in started:
                node.check_alive()
            with contextlib.suppress(OSError, TorNetworkError):
                return all(n.bootstrapped(n_routers) for n in tors) and all(
                    (b.service.hs_dir / "hostname").exists() for b in backends
                )
            return False

        wait_until(ready, left(), "the frontend, the backends and the client", interval=0.5)

        config = (DEPLOY / "onionbalance.yaml.tmpl").read_text("utf-8")
        config = config.replace("/etc/onionbalance/frontend.key", str(key_path))
        for i, b in enumerate(backends, 1):
            config = config.replace(
                f"BACKEND_{i}_ADDRESS.onion", read_onion_hostname(b.service.hs_dir)
            )
        (ob_dir / "config.yaml").write_text(config, encoding="utf-8")
        ob_log = ob_dir / "onionbalance.log"
        with ob_log.open("wb") as out:
            ob_proc = subprocess.Popen(
                [
                    onionbalance,
                    "-c",
                    str(ob_dir / "config.yaml"),
                    "-s",
                    str(socket_path),
                    "--is-testnet",
                    "-v",
                    "info",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        net = Balanced(frontend_onion, frontend, backends, client, directory, ob_proc, ob_log)
        seconds = net.reach(left())
        print(f"frontend reachable {seconds:.0f} s after onionbalance started", file=sys.stderr)
        yield net
    finally:
        if ob_proc is not None and ob_proc.poll() is None:
            ob_proc.terminate()
            try:
                ob_proc.wait(10)
            except subprocess.TimeoutExpired:
                ob_proc.kill()
                ob_proc.wait()
        for node in reversed(started):
            node.stop()
        servers.close()
        if os.environ.get("LANTERNE_KEEP_TOR_DIR") == "1":
            print(f"private Tor network kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def submissions(instance: Instance) -> int:
    return len(db_rows(instance, "submissions"))


def test_sources_reach_the_frontend_and_a_dead_backend_is_routed_around(
    tmp_path: Path,
) -> None:
    instance = init_instance(tmp_path)
    with balanced(instance) as net:
        url = f"http://{net.frontend_onion}"
        with SourceClient(url, proxy=net.client.proxy) as source:
            assert "Lanterne" in source.get("/en/").text
            source.first_submission("LNTCANARY-through-the-frontend", None)
        assert submissions(instance) == 1

        # One machine dies: its tor and its server. Onionbalance drops its
        # introduction points at its next publication; the address stays.
        dead = net.backends[0]
        assert dead.tor.proc is not None
        dead.tor.stop()
        dead.tor.proc = None
        dead.server.proc.kill()
        dead.server.proc.wait()
        net.client.new_identity()
        seconds = net.reach(240)
        print(f"reachable again {seconds:.0f} s after a backend died", file=sys.stderr)
        with SourceClient(url, proxy=net.client.proxy) as source:
            source.first_submission("LNTCANARY-after-a-backend-died", None)
        assert submissions(instance) == 2
        assert net.backends[1].server.proc.poll() is None
