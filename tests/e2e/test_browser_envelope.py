"""The envelope written by server/static/envelope.js inside real browsers.

Chromium (with and without its JIT) and Firefox ESR with Tor Browser's
"Safer" prefs each run the RFC 9180 known-answer test and the draft-ietf-hpke-pq
X-Wing KEM vectors (xwing.js: pure-JavaScript ML-KEM-768, no WebAssembly),
reproduce every `ok` project vector byte for byte (the hybrid ones in
tests/vectors/xwing included), then encrypt a random file with fresh keys,
once to an X25519 key and once to it and a hybrid key, which Python must
decrypt to the exact bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import envelope
from tests.e2e import browsers
from tests.test_hpke_kat import VECTORS as KAT_VECTORS
from tests.test_xwing_vectors import KAT_FILE as PQ_KAT_FILE
from tests.test_xwing_vectors import independent_open, xwing_public_bytes
from tests.vectors import generate

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "server" / "static"
HARNESS = Path(__file__).parent / "harness"
RANDOM_SIZE = 1024 * 1024 + 12345


def reproducible(path: Path) -> bool:
    """An `ok` vector a writer can make whole: hybrid stanzas that Python made
    and recorded have no `eseed` (tests/vectors/README.md) and are left out."""
    return None not in json.loads(path.read_text())["writer"]["ephemeral_keys"]


# Python's and the browser writer's (tests/vectors/xwing), named by their path there.
OK_VECTORS = {
    p.relative_to(generate.HERE).with_suffix("").as_posix(): p
    for p in sorted([*generate.HERE.glob("ok_*.json"), *generate.HERE.glob("xwing/ok_*.json")])
    if reproducible(p)
}


class Harness(ThreadingHTTPServer):
    uploads: dict[str, bytes]


class Handler(BaseHTTPRequestHandler):
    server: Harness

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, body: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        if path == "/vectors/ok.json":
            ok = [{**json.loads(p.read_text()), "name": k} for k, p in OK_VECTORS.items()]
            return self._send(json.dumps(ok).encode(), "application/json")
        if path == "/vectors/kat.json":
            return self._send(json.dumps(KAT_VECTORS).encode(), "application/json")
        if path == "/vectors/pqkat.json":
            pq = [v for v in json.loads(PQ_KAT_FILE.read_text()) if v["kem_id"] == 0x647A]
            return self._send(json.dumps(pq).encode(), "application/json")
        for prefix, base in (("/static/", STATIC), ("/harness/", HARNESS)):
            if path.startswith(prefix):
                f = (base / path[len(prefix) :]).resolve()
                if f.is_relative_to(base) and f.is_file():
                    ctype = "text/javascript" if f.suffix == ".js" else "text/html; charset=utf-8"
                    return self._send(f.read_bytes(), ctype)
        self.send_error(404)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.uploads[self.path] = self.rfile.read(length)
        self._send(b"ok", "text/plain")


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    server = Harness(("127.0.0.1", 0), Handler)
    server.uploads = {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def ok_vectors() -> dict[str, str]:
    return {
        k: hashlib.sha256(base64.b64decode(json.loads(p.read_text())["envelope"])).hexdigest()
        for k, p in OK_VECTORS.items()
    }


BROWSERS = {
    "chromium": lambda: browsers.chromium(),
    "chromium-jitless": lambda: browsers.chromium(jitless=True),
    "firefox-safer": lambda: browsers.firefox("safer"),
}


@pytest.mark.parametrize("which", list(BROWSERS))
def test_browser_writes_the_format_byte_for_byte(harness: Harness, which: str) -> None:
    me = envelope.X25519Identity.generate()
    hybrid_seed = os.urandom(32)
    hybrid = base64.urlsafe_b64encode(xwing_public_bytes(hybrid_seed)).decode().rstrip("=")
    harness.uploads.clear()
    port = harness.server_address[1]
    url = (
        f"http://127.0.0.1:{port}/harness/harness.html?size={RANDOM_SIZE}"
        f"&recipient={me.recipient.to_text()}&hybrid={hybrid}"
    )
    with BROWSERS[which]() as browser:
        browser.goto(url)
        browsers.wait_for_title(browser, "done", timeout=180)
        results = json.loads(browser.text("results"))
    assert "error" not in results, results
    assert results["env"]["secure"] is True
    if which != "chromium":
        assert results["env"]["wasm"] == "undefined"  # the JIT-less setting really applied
    assert results["kat"] and all(k["ok"] for k in results["kat"])
    assert len(results["xwingKat"]) == 2
    assert all(all(k.values()) for k in results["xwingKat"]), results["xwingKat"]
    produced = {v["name"]: v["sha256"] for v in results["vectors"]}
    assert produced == ok_vectors()
    assert len([k for k in produced if k.startswith("xwing/")]) >= 6  # the hybrid ones ran
    plain = harness.uploads["/upload/plain"]
    assert len(plain) == RANDOM_SIZE
    assert envelope.decrypt_bytes(harness.uploads["/upload/sealed"], [me]) == plain
    both = harness.uploads["/upload/sealed-hybrid"]
    assert independent_open(both, hybrid_seed, "xwing") == plain
    assert envelope.decrypt_bytes(both, [me]) == plain
