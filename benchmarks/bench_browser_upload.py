"""In-browser encryption and end-to-end upload time, JavaScript path vs no-JS path.

    .venv/bin/python benchmarks/bench_browser_upload.py [--size-mib 256] [--runs 3]

1. Encryption only: server/static/envelope.js's `encryptBlob` over an
   in-memory Blob of SIZE MiB to one recipient, the sealed chunks counted and
   dropped, in Chromium and in Firefox ESR with Tor Browser's Safer prefs
   (no JIT, no WebAssembly). Served by a tiny local server on 127.0.0.1.
2. End to end over loopback against a real Lanterne server: one SIZE MiB
   file sent from the submit page, timed from the click on "Encrypt and send"
   to the codename page. With JavaScript the page encrypts and uploads with
   tus; without it (Chromium with JS off, Firefox with Safest prefs) the
   browser posts the form and the server encrypts. The two paths alternate
   (JS, no-JS, then no-JS, JS, ...) so drift on a shared machine hits both.

Medians and ratios are printed, and the raw numbers go to
benchmarks/out/bench_browser_upload.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import envelope  # noqa: E402
from tests.e2e import browsers  # noqa: E402
from tests.server_process import init_instance, run_server  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
STATIC = ROOT / "server" / "static"
MiB = 1 << 20

PAGE = b"""<!doctype html><meta charset="utf-8"><title>running</title>
<pre id="results"></pre><script type="module" src="/bench.js"></script>"""

SCRIPT = b"""import { encryptBlob } from "/static/envelope.js";
const p = new URLSearchParams(location.search);
const size = Number(p.get("mib")) * 1048576, runs = Number(p.get("runs"));
const b64 = p.get("key").replace(/-/g, "+").replace(/_/g, "/");
const key = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const block = crypto.getRandomValues(new Uint8Array(65536)); // the most it gives at once
const parts = [];
for (let i = 0; i < 16; i++) parts.push(block);
const mib = new Blob(parts);
const blob = new Blob(Array.from({ length: size / 1048576 }, () => mib));
const out = { wasm: typeof WebAssembly, seconds: [], bytes: 0 };
try {
  for (let r = 0; r < runs; r++) {
    let n = 0;
    const t = performance.now();
    for await (const piece of encryptBlob(blob, [key])) n += piece.length;
    out.seconds.push((performance.now() - t) / 1000);
    out.bytes = n;
  }
} catch (e) { out.error = String(e); }
document.getElementById("results").textContent = JSON.stringify(out);
document.title = "done";
"""


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        body, ctype = None, "text/javascript"
        if path == "/bench.html":
            body, ctype = PAGE, "text/html; charset=utf-8"
        elif path == "/bench.js":
            body = SCRIPT
        elif path.startswith("/static/") and (STATIC / path[8:]).is_file():
            body = (STATIC / path[8:]).read_bytes()
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def encryption_only(browser: browsers.Browser, base: str, size_mib: int, runs: int) -> dict:
    key = envelope.X25519Identity.generate().recipient.to_text()
    browser.goto(f"{base}/bench.html?mib={size_mib}&runs={runs}&key={key}")
    browsers.wait_for_title(browser, "done", timeout=600)
    result = json.loads(browser.text("results"))
    assert "error" not in result, result
    padded = envelope.padded_size(size_mib * MiB + 1)
    assert result["bytes"] == 27 + 84 + 32 + padded + 16 * -(-padded // 65536), result
    result["mib_per_s"] = [size_mib / s for s in result["seconds"]]
    return result


# --- end to end ----------------------------------------------------------------------


def by() -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from marionette_driver.by import By
    return By


def time_firefox(client: object, base: str, path: Path) -> float:
    b = by()
    client.delete_all_cookies()  # type: ignore[attr-defined]
    client.navigate(f"{base}/en/submit")  # type: ignore[attr-defined]
    client.find_element(b.ID, "message").send_keys("benchmark")  # type: ignore[attr-defined]
    client.find_element(b.ID, "files").send_keys(str(path))  # type: ignore[attr-defined]
    button = client.find_element(b.CSS_SELECTOR, "button[type=submit]")  # type: ignore[attr-defined]
    start = time.perf_counter()
    button.click()
    while not client.get_url().endswith("/en/codename"):  # type: ignore[attr-defined]
        time.sleep(0.02)
        if time.perf_counter() - start > 600:
            raise TimeoutError("no codename page")
    return time.perf_counter() - start


def time_chromium(browser: object, javascript: bool, base: str, path: Path) -> float:
    ctx = browser.new_context(java_script_enabled=javascript)  # type: ignore[attr-defined]
    page = ctx.new_page()
    page.goto(f"{base}/en/submit")
    if javascript:
        page.wait_for_selector("#path-browser", state="visible")
    page.fill("#message", "benchmark")
    page.set_input_files("#files", [str(path)])
    start = time.perf_counter()
    page.click("button[type=submit]")
    page.wait_for_url("**/en/codename", timeout=600_000)
    elapsed = time.perf_counter() - start
    ctx.close()
    return elapsed


def summary(name: str, values: list[float], unit: str) -> str:
    each = ", ".join(f"{v:.1f}" for v in values)
    return f"{name}: median {statistics.median(values):.1f} {unit} ({each})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size, runs = args.size_mib, args.runs
    results: dict[str, object] = {"size_mib": size, "runs": runs}

    harness = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=harness.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{harness.server_address[1]}"
    with browsers.chromium() as chromium:
        results["encrypt_chromium"] = encryption_only(chromium, base, size, runs)
    with browsers.firefox("safer") as firefox:
        results["encrypt_firefox_safer"] = encryption_only(firefox, base, size, runs)
    harness.shutdown()
    for name in ("encrypt_chromium", "encrypt_firefox_safer"):
        print(summary(f"{name} ({size} MiB)", results[name]["mib_per_s"], "MiB/s"))  # type: ignore[index]

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="lanterne-bench-") as tmp:
        path = Path(tmp, "upload.bin")
        with path.open("wb") as f:
            for _ in range(size):
                f.write(os.urandom(MiB))
        instance = init_instance(Path(tmp, "instance"))
        times: dict[str, list[float]] = {
            k: []
            for k in ("chromium_js", "chromium_nojs", "firefox_safer_js", "firefox_safest_nojs")
        }
        with run_server(instance) as server:
            with sync_playwright() as p:
                chromium = p.chromium.launch(
                    executable_path=browsers.CHROMIUM, headless=True, args=["--no-sandbox"]
                )
                for r in range(runs):
                    order = [True, False] if r % 2 == 0 else [False, True]
                    for js in order:
                        key = "chromium_js" if js else "chromium_nojs"
                        times[key].append(time_chromium(chromium, js, server.base_url, path))
                chromium.close()
            with browsers.firefox("safer") as safer, browsers.firefox("safest") as safest:
                clients = {"firefox_safer_js": safer._client, "firefox_safest_nojs": safest._client}  # type: ignore[attr-defined]
                for r in range(runs):
                    order = ["firefox_safer_js", "firefox_safest_nojs"]
                    for key in order if r % 2 == 0 else order[::-1]:
                        times[key].append(time_firefox(clients[key], server.base_url, path))
        results["end_to_end_seconds"] = times
    for key, values in times.items():
        print(summary(f"end to end {key} ({size} MiB)", values, "s"))
    for browser, js, nojs in (
        ("chromium", "chromium_js", "chromium_nojs"),
        ("firefox", "firefox_safer_js", "firefox_safest_nojs"),
    ):
        ratio = statistics.median(times[js]) / statistics.median(times[nojs])
        print(f"{browser}: JS path / no-JS path time = {ratio:.2f}x")
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_browser_upload.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
