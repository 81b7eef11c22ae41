"""Cost of hybrid (X-Wing, stanza 0x0002) recipients in the browser.

    .venv/bin/python benchmarks/bench_browser_pq.py [--runs 15]

1. Time to wrap a file key: server/static/envelope.js's `sealHeader` for 1, 3
   and 10 hybrid recipients (the whole header: one X-Wing HPKE seal per
   recipient, then the MAC), against the same number of X25519 recipients,
   in Firefox ESR with Tor Browser's Safer prefs (no JIT, no WebAssembly),
   Chromium, and Chromium --jitless. The header is made once per file,
   whatever its size. Also the first `import()` of xwing.js (parse and
   evaluate, from a warm HTTP cache-less local server) and a first, cold
   seal. Medians of RUNS warm runs after one warm-up.
2. Page weight added: server/static/xwing.js (raw, and gzip -9 for
   comparison: the server sends static files uncompressed) and the growth of
   envelope.js since the commit before hybrid stanzas.

Served by a tiny local server on 127.0.0.1. Results are printed and written
to benchmarks/out/bench_browser_pq.json.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import statistics
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e import browsers  # noqa: E402
from tests.test_xwing_vectors import xwing_public_bytes  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
STATIC = ROOT / "server" / "static"
COUNTS = (1, 3, 10)
# envelope.js as it was before hybrid stanzas (X25519 only), for the size delta.
BEFORE_HYBRID = "6d93782"

PAGE = b"""<!doctype html><meta charset="utf-8"><title>running</title>
<pre id="results"></pre><script type="module" src="/bench.js"></script>"""

SCRIPT = b"""import { sealHeader } from "/static/envelope.js";
const keys = await (await fetch("/keys.json")).json();
const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hybrid = keys.hybrid.map(fromB64), classic = keys.x25519.map(fromB64);
const runs = Number(new URLSearchParams(location.search).get("runs"));
const out = { wasm: typeof WebAssembly, jit: null, results: {} };
const time = async (f) => { const t = performance.now(); await f(); return performance.now() - t; };
try {
  let t = performance.now();
  await import("/static/xwing.js");
  out.import_ms = performance.now() - t;
  out.first_seal_ms = await time(() => sealHeader(hybrid.slice(0, 1)));
  for (const n of [1, 3, 10]) {
    for (const [kind, list] of [["hybrid", hybrid], ["x25519", classic]]) {
      const rs = list.slice(0, n);
      await sealHeader(rs); // warm-up
      const ms = [];
      for (let r = 0; r < runs; r++) ms.push(await time(() => sealHeader(rs)));
      out.results[`${kind} x${n}`] = ms;
    }
  }
} catch (e) { out.error = String(e); }
document.getElementById("results").textContent = JSON.stringify(out);
document.title = "done";
"""


def keys_json() -> bytes:
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    hybrid = [b64(xwing_public_bytes(os.urandom(32))) for _ in range(max(COUNTS))]
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    x25519 = [
        b64(X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        for _ in range(max(COUNTS))
    ]
    return json.dumps({"hybrid": hybrid, "x25519": x25519}).encode()


class Handler(BaseHTTPRequestHandler):
    keys = b""

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        body, ctype = None, "text/javascript"
        if path == "/bench.html":
            body, ctype = PAGE, "text/html; charset=utf-8"
        elif path == "/bench.js":
            body = SCRIPT
        elif path == "/keys.json":
            body, ctype = self.keys, "application/json"
        elif path.startswith("/static/") and (STATIC / path[8:]).is_file():
            body = (STATIC / path[8:]).read_bytes()
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


def page_weight() -> dict[str, int]:
    bundle = (STATIC / "xwing.js").read_bytes()
    now = (STATIC / "envelope.js").read_bytes()
    before = subprocess.run(
        ["git", "show", f"{BEFORE_HYBRID}:server/static/envelope.js"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    return {
        "xwing.js bytes": len(bundle),
        "xwing.js gzip -9 bytes": len(gzip.compress(bundle, 9, mtime=0)),
        "envelope.js growth bytes": len(now) - len(before),
        "envelope.js growth gzip -9 bytes": len(gzip.compress(now, 9, mtime=0))
        - len(gzip.compress(before, 9, mtime=0)),
    }


BROWSERS = {
    "firefox-safer": lambda: browsers.firefox("safer"),
    "chromium": lambda: browsers.chromium(),
    "chromium-jitless": lambda: browsers.chromium(jitless=True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--browsers", default=",".join(BROWSERS))
    args = parser.parse_args()
    Handler.keys = keys_json()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    report: dict[str, object] = {"page weight": page_weight(), "runs": args.runs, "browsers": {}}
    print(json.dumps(report["page weight"]))
    try:
        for name in args.browsers.split(","):
            with BROWSERS[name]() as browser:
                browser.goto(f"{base}/bench.html?runs={args.runs}")
                browsers.wait_for_title(browser, "done", timeout=600)
                result = json.loads(browser.text("results"))
            if "error" in result:
                raise SystemExit(f"{name}: {result['error']}")
            summary = {
                k: f"{statistics.median(v):.1f} (min {min(v):.1f})"
                for k, v in result["results"].items()
            }
            summary["import xwing.js"] = f"{result['import_ms']:.1f}"
            summary["first hybrid x1"] = f"{result['first_seal_ms']:.1f}"
            entry = {"wasm": result["wasm"], "ms": summary, "raw": result}
            report["browsers"][name] = entry  # type: ignore[index]
            print(name, f"(WebAssembly: {result['wasm']}), ms:", json.dumps(summary))
    finally:
        server.shutdown()
        server.server_close()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_browser_pq.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
