"""Hybrid (X-Wing) journalists: real browsers encrypt to them, Python and `lanterne` open it.

A real server with three journalists: alice (hybrid), bruno (a key from
before hybrid keys: X25519 only) and dora (made by `lanterne keys generate`,
hybrid by default); the newsroom key signs their directory (or, in the
`unsigned` variant, there is no newsroom key). Chromium and Firefox ESR with
Tor Browser's "Safer" prefs (no JIT, no WebAssembly: the ML-KEM-768 of
xwing.js runs interpreted) send a message and a file from the submit page.

Every object the server stored must carry exactly one stanza per journalist,
in the order of recipients.json: 0x0002 for each hybrid key and never a
0x0001 for it, 0x0001 for bruno. alice's and bruno's identities open every
object with `envelope`, `lanterne file decrypt` opens them with dora's
identity file, and a reader built from SPEC.md with cryptography's HPKE
alone opens the message with alice's seed.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import envelope
from tests.cli_helpers import run
from tests.e2e import browsers
from tests.e2e.test_browser_uploads import latest_manifest, submit_in_chromium, submit_in_firefox
from tests.server_process import ROOT, SERVER_CMD, Instance, Server, make_journalist, run_server
from tests.test_newsroom_key import newsroom_identity
from tests.test_xwing_vectors import independent_open

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


class Served:
    def __init__(self, instance: Instance, server: Server, dora: Path) -> None:
        self.instance = instance
        self.server = server
        self.dora = dora  # dora's identity file, from `lanterne keys generate`


def admin(*args: object) -> None:
    done = subprocess.run(
        [*SERVER_CMD, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module", params=["signed", "unsigned"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    base = tmp_path_factory.mktemp(f"hybrid-{request.param}")
    keys_dir = base / "keys"
    keys_dir.mkdir()
    journalists = [make_journalist(keys_dir, "alice", True), make_journalist(keys_dir, "bruno")]
    generated = run("keys", "generate", "--name", "dora", "--dir", keys_dir, "--no-passphrase")
    assert generated.returncode == 0, generated.stderr
    data_dir = base / "data"
    pubs = [j.pub_path for j in journalists] + [keys_dir / "dora.pub"]
    admin("init", "--data-dir", data_dir, *(a for p in pubs for a in ("--journalist", p)))
    if request.param == "signed":
        key_file, _ = newsroom_identity(base / "newsroom")
        admin("init", "--data-dir", data_dir, "--newsroom-key", key_file)
    tmp_dir = base / "server-tmp"
    tmp_dir.mkdir()
    instance = Instance(data_dir, journalists, tmp_dir, base / "server.log")
    with run_server(instance) as server:
        page = httpx.get(f"{server.base_url}/en/submit").text
        assert ("data-newsroom-key" in page) == (request.param == "signed")
        yield Served(instance, server, keys_dir / "dora.identity")


def stanza_types(data: bytes) -> list[int]:
    """The stanza types of an envelope's header, in order (SPEC §3)."""
    (count,) = struct.unpack(">H", data[25:27])
    types, pos = [], 27
    for _ in range(count):
        stype, length = struct.unpack(">HH", data[pos : pos + 4])
        types.append(stype)
        pos += 4 + length
    return types


def check_submission(served: Served, message: str, file: Path) -> None:
    instance = served.instance
    listed = httpx.get(f"{served.server.base_url}/en/recipients.json").json()["recipients"]
    by_name = {r["name"]: r for r in listed}
    hybrid = {n for n, r in by_name.items() if any(k["type"] == "xwing" for k in r["keys"])}
    assert hybrid == {"alice", "dora"}  # `keys generate` made dora's key hybrid
    expected = [0x0002 if r["name"] in hybrid else 0x0001 for r in listed]
    manifest = latest_manifest(instance)
    objects = {
        manifest["message"]["object"]: message.encode(),
        **{f["object"]: file.read_bytes() for f in manifest["files"]},
    }
    assert len(objects) == 2
    for object_id, plain in objects.items():
        path = instance.objects_dir / object_id
        data = path.read_bytes()
        assert stanza_types(data) == expected, object_id
        for journalist in instance.journalists:  # alice (hybrid), bruno (X25519)
            assert envelope.decrypt_bytes(data, [journalist.identity]) == plain
        opened = run("file", "decrypt", "-i", served.dora, path)
        assert opened.returncode == 0, opened.stderr
        assert opened.stdout == plain
    alice = instance.journalists[0].identity
    assert isinstance(alice, envelope.HybridIdentity)
    first = instance.objects_dir / manifest["message"]["object"]
    assert independent_open(first.read_bytes(), alice.private_bytes(), "xwing") == message.encode()


def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "pièce.bin"
    path.write_bytes(bytes(range(256)) * 700)  # 179200 bytes: three chunks
    return path


def test_chromium_writes_hybrid_stanzas(served: Served, tmp_path: Path) -> None:
    file = a_file(tmp_path)
    with browsers.playwright_chromium() as chromium:
        page: Any = submit_in_chromium(
            chromium, served.server.base_url, "post-quantique", [file], "x"
        )
        page.context.close()
    check_submission(served, "post-quantique", file)


def test_firefox_safer_writes_hybrid_stanzas(served: Served, tmp_path: Path) -> None:
    file = a_file(tmp_path)
    with browsers.marionette("safer") as firefox:
        assert firefox.execute_script("return typeof WebAssembly") == "undefined"
        submit_in_firefox(firefox, served.server.base_url, "à l'abri", [file], "y")
    check_submission(served, "à l'abri", file)
