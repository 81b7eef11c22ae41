"""The envelope written by server/static/envelope.js inside real browsers.

Chromium (with and without its JIT) and Firefox ESR with Tor Browser's
"Safer" prefs each run the RFC 9180 known-answer test and reproduce every
`ok` project vector byte for byte, then encrypt a random file with fresh
keys, which Python must decrypt to the exact bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import envelope
from tests.e2e import browsers
from tests.test_hpke_kat import VECTORS as KAT_VECTORS
from tests.vectors import generate

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "server" / "static"
HARNESS = Path(__file__).parent / "harness"
RANDOM_SIZE = 1024 * 1024 + 12345


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
            ok = [json.loads(p.read_text()) for p in sorted(generate.HERE.glob("ok_*.json"))]
            return self._send(json.dumps(ok).encode(), "application/json")
        if path == "/vectors/kat.json":
            return self._send(json.dumps(KAT_VECTORS).encode(), "application/json")
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
        p.stem: hashlib.sha256(base64.b64decode(json.loads(p.read_text())["envelope"])).hexdigest()
        for p in generate.HERE.glob("ok_*.json")
    }


BROWSERS = {
    "chromium": lambda: browsers.chromium(),
    "chromium-jitless": lambda: browsers.chromium(jitless=True),
    "firefox-safer": lambda: browsers.firefox("safer"),
}


@pytest.mark.parametrize("which", list(BROWSERS))
def test_browser_writes_the_format_byte_for_byte(harness: Harness, which: str) -> None:
    me = envelope.X25519Identity.generate()
    harness.uploads.clear()
    port = harness.server_address[1]
    url = f"http://127.0.0.1:{port}/harness/harness.html?size={RANDOM_SIZE}&recipient={me.recipient.to_text()}"
    with BROWSERS[which]() as browser:
        browser.goto(url)
        browsers.wait_for_title(browser, "done", timeout=180)
        results = json.loads(browser.text("results"))
    assert "error" not in results, results
    assert results["env"]["secure"] is True
    if which != "chromium":
        assert results["env"]["wasm"] == "undefined"  # the JIT-less setting really applied
    assert results["kat"] and all(k["ok"] for k in results["kat"])
    produced = {v["name"]: v["sha256"] for v in results["vectors"]}
    assert produced == ok_vectors()
    plain = harness.uploads["/upload/plain"]
    assert len(plain) == RANDOM_SIZE
    assert envelope.decrypt_bytes(harness.uploads["/upload/sealed"], [me]) == plain
