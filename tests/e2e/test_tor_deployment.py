"""The real deployment over a private Tor network: the real server, the real admin
commands, the real `lanterne` CLI, the deploy templates' onion services.

* a source submits through the source onion (httpx through a Tor client's SOCKS port);
* `lanterne-server journalists add --client-auth-out` writes alice's onion client
  key and reloads the journalist tor; with that key installed in her Tor client,
  `lanterne pull` fetches through the journalist onion and decrypts exactly;
* without a key the journalist onion is unreachable: the CLI says so and exits 4;
* `lanterne-server journalists remove` deletes bob's key and asks for a restart of
  the journalist tor (the seam: the fixture restarts it); bob is refused.

One network for the module (about 30 s). Tor's ExtendedErrors are on, as a
journalist's own Tor Browser-like setup may have them: socksio then raises its
own error, which the CLI must report cleanly (the failures happen in the CLI's
process, so httpcore's unclosed socket on a failed SOCKS connect does not
reach this process's warnings-as-errors).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from journalist_cli import designations
from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.ops.tor_config import ClientAuthKey
from tests.cli_helpers import run
from tests.e2e.tor_network import (
    SOCKS_OK,
    SOCKS_ONION_BAD_CLIENT_AUTH,
    SOCKS_ONION_MISSING_CLIENT_AUTH,
    TorNetwork,
    private_tor_network,
)
from tests.server_process import ROOT, SERVER_CMD, Instance, Server, SourceClient, run_server

pytestmark = [pytest.mark.e2e, pytest.mark.tor]

PDF = b"%PDF-1.4\n" + os.urandom(150_000) + b"\n%%EOF\n"
MESSAGE = "Les comptes de 2025 ont été réécrits."


@dataclass
class Deployment:
    net: TorNetwork
    server: Server
    keys: Path
    tmp: Path


def admin(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def lanterne(home: Path, *args: object) -> subprocess.CompletedProcess[bytes]:
    return run(*args, env={"LANTERNE_HOME": str(home)})


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("tor-deploy")
    keys = tmp / "keys"
    for name in ("alice", "bob"):
        write_new_identity(JournalistIdentity.generate(name), keys, None)
    data = tmp / "data"
    done = admin("init", "--data-dir", data)
    assert done.returncode == 0, done.stderr
    instance = Instance(data, [], tmp / "server-tmp", tmp / "server.log")
    instance.tmp_dir.mkdir()
    with run_server(instance, journalist_api=True) as server:
        assert server.api_url is not None
        source_port = int(server.base_url.rsplit(":", 1)[1])
        api_port = int(server.api_url.removesuffix("/api/v1").rsplit(":", 1)[1])
        with private_tor_network(
            source_port,
            api_port,
            # Nobody holds this key: it only puts the journalist onion in client
            # authorisation mode from the start (with no key at all, tor would
            # serve it to anyone). Alice and bob are added by the admin command.
            journalists={"placeholder": ClientAuthKey.generate()},
            clients={"anon": [], "alice": [], "bob": []},
            extended_errors=True,
        ) as net:
            print(
                "private Tor network up:",
                ", ".join(f"{k} {v:.1f} s" for k, v in net.timings.items()),
                file=sys.stderr,
            )
            yield Deployment(net, server, keys, tmp)


def add_journalist(d: Deployment, name: str) -> Path:
    """`journalists add` as the admin runs it, then the key installed in the
    journalist's own Tor client, as the journalist would."""
    assert d.net.journalist_tor.proc is not None
    auth = d.tmp / f"{name}.auth_private"
    d.net.settle_journalist_uploads()  # the reload below must not share its second
    done = admin(
        "journalists", "add",
        "--data-dir", d.server.instance.data_dir,
        "--client-auth-out", auth,
        "--hs-dir", d.net.journalist.hs_dir,
        "--tor-reload-cmd", f"kill -HUP {d.net.journalist_tor.proc.pid}",
        d.keys / f"{name}.pub",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"journalist onion: http://{d.net.journalist_onion}/" in done.stdout
    assert "fingerprint:" in done.stdout and "reload done" in done.stdout
    assert auth.stat().st_mode & 0o777 == 0o600
    onion, _ = ClientAuthKey.from_private_line(auth.read_text())
    assert onion == d.net.journalist_onion
    client = d.net.clients[name]
    installed = client.auth_dir / f"{name}.auth_private"
    installed.write_bytes(auth.read_bytes())
    installed.chmod(0o600)
    client.node.reload()
    d.net.reach(client, SOCKS_OK)
    home = d.tmp / f"home-{name}"
    done_cfg = lanterne(
        home,
        "config",
        "--server", f"http://{d.net.journalist_onion}",
        "--identity", d.keys / f"{name}.identity",
        "--proxy", client.proxy,
    )  # fmt: skip
    assert done_cfg.returncode == 0, done_cfg.stderr
    return home


def test_submit_pull_decrypt_and_refusals_over_tor(deployment: Deployment) -> None:
    d = deployment
    net = d.net

    # Alice, added by the admin command (submissions are refused until a
    # journalist is registered).
    alice = add_journalist(d, "alice")

    # A source, through the source onion.
    with SourceClient(f"http://{net.source_onion}", proxy=net.clients["anon"].proxy) as source:
        source.first_submission(MESSAGE, [("comptes.pdf", PDF, "application/pdf")])

    # Alice pulls through the journalist onion, with her client key.
    pulled = lanterne(alice, "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert b"1 source;" in pulled.stdout
    [row] = json.loads(lanterne(alice, "list", "--json").stdout)
    out = d.tmp / "out-alice"
    done = lanterne(alice, "decrypt", row["id"], "--out", out, "--no-clean")
    assert done.returncode == 0, done.stderr
    [sub] = (out / designations.slug(row["id"])).iterdir()
    assert (sub / "original" / "comptes.pdf").read_bytes() == PDF
    assert (sub / "message.txt").read_text() == MESSAGE

    # Bob too; then the admin removes him.
    bob = add_journalist(d, "bob")
    assert lanterne(bob, "pull").returncode == 0
    marker = d.tmp / "restart-requested"
    done = admin(
        "journalists", "remove",
        "--data-dir", d.server.instance.data_dir,
        "--hs-dir", net.journalist.hs_dir,
        "--tor-restart-cmd", f"touch {marker}",
        "bob",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "deleted bob's onion client key" in done.stdout and "restart done" in done.stdout
    assert not (net.journalist.hs_dir / "authorized_clients" / "bob.auth").exists()
    assert marker.exists()  # the command asked for the restart; the fixture does it
    net.restart_journalist()
    net.reach(net.clients["bob"], SOCKS_ONION_BAD_CLIENT_AUTH)
    refused = lanterne(bob, "pull")
    assert refused.returncode == 4, refused.stderr
    assert b"cannot reach the server through Tor" in refused.stderr
    assert b"Traceback" not in refused.stderr

    # Alice carries on after the restart.
    net.reach(net.clients["alice"], SOCKS_OK)
    again = lanterne(alice, "pull")
    assert again.returncode == 0, again.stderr
    assert b"0 new objects" in again.stdout


def test_without_a_key_the_journalist_onion_is_unreachable(deployment: Deployment) -> None:
    d = deployment
    anon = d.net.clients["anon"]
    assert anon.code(d.net.journalist_onion) == SOCKS_ONION_MISSING_CLIENT_AUTH
    home = d.tmp / "home-anon"
    done = lanterne(
        home,
        "config",
        "--server", f"http://{d.net.journalist_onion}",
        "--identity", d.keys / "alice.identity",
        "--proxy", anon.proxy,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    refused = lanterne(home, "pull")
    assert refused.returncode == 4
    assert b"cannot reach the server through Tor" in refused.stderr
    assert b"Traceback" not in refused.stderr
    # The source onion serves that same client.
    with SourceClient(f"http://{d.net.source_onion}", proxy=anon.proxy) as source:
        assert source.get("/en/").status_code == 200
