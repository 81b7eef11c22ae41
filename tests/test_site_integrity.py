"""What an instance serves is what the release ships: SRI, the asset list, verify-site.

Every script and stylesheet in every source page carries a sha384 integrity
that matches the bytes served; ``/.well-known/lanterne-assets.json`` lists
every static file with its SHA-256; ``lanterne verify-site`` passes against
a real server (directly and through a SOCKS5 proxy, as over Tor) and fails,
naming the file, when a reverse proxy in front of it serves a modified
``upload.js``, even with a matching integrity attribute and asset list.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from journalist_cli.main import main as lanterne
from tests.server_process import Server, SourceClient, init_instance, run_server
from tests.test_journalist_api_client import Seen, socks5_proxy

# Over ~20 s of real servers and CLI runs: CI runs it, scripts/test.sh --fast does not.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "server" / "static"
PAGES = ("/en/", "/en/submit", "/en/login", "/fr/", "/fr/submit", "/fr/login")
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "content-length"}


# --- a reverse proxy on 127.0.0.1 that records bodies and can rewrite answers ---


class Proxy(ThreadingHTTPServer):
    daemon_threads = True
    upstream: int
    requests: list[tuple[str, str, bytes, int]]  # method, path, body, upstream status
    rewrite: Callable[[str, bytes], bytes] | None
    rewrite_headers: Callable[[str, list[tuple[str, str]]], list[tuple[str, str]]] | None
    before_upstream: Callable[[str, str], None] | None


class ProxyHandler(BaseHTTPRequestHandler):
    server: Proxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.server.before_upstream:
            self.server.before_upstream(self.command, self.path)
        conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        if body or self.command in ("POST", "PATCH", "PUT"):
            headers["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except OSError:
            self.server.requests.append((self.command, self.path, body, 0))
            self.send_error(502)
            return
        finally:
            conn.close()
        self.server.requests.append((self.command, self.path, body, response.status))
        if self.server.rewrite:
            data = self.server.rewrite(self.path, data)
        self.send_response_only(response.status, response.reason)
        headers = [(n, v) for n, v in response.getheaders() if n.lower() not in _HOP]
        if self.server.rewrite_headers:
            headers = self.server.rewrite_headers(self.path, headers)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_HEAD = do_DELETE = do_OPTIONS = relay


@contextmanager
def reverse_proxy(
    upstream: int,
    rewrite: Callable[[str, bytes], bytes] | None = None,
    before_upstream: Callable[[str, str], None] | None = None,
    rewrite_headers: Callable[[str, list[tuple[str, str]]], list[tuple[str, str]]] | None = None,
) -> Iterator[Proxy]:
    proxy = Proxy(("127.0.0.1", 0), ProxyHandler)
    proxy.upstream = upstream
    proxy.requests = []
    proxy.rewrite = rewrite
    proxy.rewrite_headers = rewrite_headers
    proxy.before_upstream = before_upstream
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(5)


def proxy_url(proxy: Proxy) -> str:
    return f"http://127.0.0.1:{proxy.server_address[1]}"


# --- fixtures and helpers ------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    instance = init_instance(tmp_path_factory.mktemp("integrity"))
    with run_server(instance) as srv:
        yield srv


def port_of(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def release_files() -> dict[str, bytes]:
    return {
        p.relative_to(STATIC).as_posix(): p.read_bytes() for p in STATIC.rglob("*") if p.is_file()
    }


def verify_site(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = lanterne(["verify-site", *args])
    return code, out.getvalue() + err.getvalue()


# --- tests ---------------------------------------------------------------------------


def test_every_script_and_stylesheet_carries_a_matching_integrity(server: Server) -> None:
    seen: set[str] = set()
    with SourceClient(server.base_url) as src:
        for page in PAGES:
            html = src.get(page).text
            tags = re.findall(r"<(?:script|link)\b[^>]*>", html)
            assert tags, page
            for tag in tags:
                url = re.search(r'(?:src|href)="([^"]+)"', tag)
                assert url, f"{page}: {tag}"
                integrity = re.search(r'integrity="([^"]+)"', tag)
                assert integrity, f"{page}: no integrity on {tag}"
                served = src.get(url.group(1))
                assert served.status_code == 200, url.group(1)
                assert integrity.group(1) == sri(served.content), f"{page}: {tag}"
                seen.add(url.group(1))
    # The submit page brings the whole in-browser encryption code, all checked.
    assert {
        "/static/style.css",
        "/static/upload.js",
        "/static/envelope.js",
        "/static/upload-ui.js",
        "/static/xwing.js",
    } <= seen


def test_asset_list_names_every_static_file_with_its_sha256(server: Server) -> None:
    with SourceClient(server.base_url) as src:
        response = src.get("/.well-known/lanterne-assets.json")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        doc = response.json()
        files = release_files()
        assert doc["type"] == "lanterne-assets/v1"
        assert set(doc["assets"]) == set(files)
        for name, data in files.items():
            entry = doc["assets"][name]
            assert entry["sha256"] == hashlib.sha256(data).hexdigest(), name
            assert entry["size"] == len(data)
            assert src.get(entry["url"]).content == data


def test_verify_site_passes_against_a_real_server(server: Server) -> None:
    code, out = verify_site(server.base_url)
    assert code == 0, out
    assert f"all {len(release_files())} static files" in out


def test_verify_site_goes_through_a_socks_proxy_by_name(server: Server) -> None:
    seen = Seen()
    onion = "lanternexampleexampleexampleexampleexampleexampleexample.onion"
    with socks5_proxy(port_of(server), seen) as socks:
        code, out = verify_site(f"http://{onion}", "--proxy", f"socks5h://127.0.0.1:{socks}")
    assert code == 0, out
    # socks5h: the name went to the proxy (ATYP 3), never to a local resolver.
    assert seen.socks_requests and all(r[:2] == (3, onion) for r in seen.socks_requests)


def test_verify_site_fails_when_a_served_script_differs(server: Server) -> None:
    def tamper(path: str, data: bytes) -> bytes:
        return data + b"\n// exfiltrate()\n" if path == "/static/upload.js" else data

    with reverse_proxy(port_of(server), rewrite=tamper) as proxy:
        code, out = verify_site(proxy_url(proxy))
    assert code == 1, out
    assert "upload.js: the site serves SHA-256" in out
    assert "envelope.js" not in out  # only what differs is listed


def test_verify_site_fails_when_the_ml_kem_bundle_differs(server: Server) -> None:
    """xwing.js, the one bundled third-party code a source runs, is compared like the rest."""

    def tamper(path: str, data: bytes) -> bytes:
        return data.replace(b"sha3_256(", b"sha3_224(", 1) if path == "/static/xwing.js" else data

    with reverse_proxy(port_of(server), rewrite=tamper) as proxy:
        code, out = verify_site(proxy_url(proxy))
    assert code == 1, out
    assert "xwing.js: the site serves SHA-256" in out
    assert "/en/submit: <link> /static/xwing.js" not in out  # the page itself was not changed


def test_verify_site_fails_when_page_and_list_are_forged_to_match(server: Server) -> None:
    """A hostile server rewrites the script, its integrity and its listed digest alike."""
    original = (STATIC / "upload.js").read_bytes()
    forged = original + b"\n// exfiltrate()\n"

    def tamper(path: str, data: bytes) -> bytes:
        if path == "/static/upload.js":
            return forged
        if path.endswith("lanterne-assets.json"):
            doc = json.loads(data)
            doc["assets"]["upload.js"]["sha256"] = hashlib.sha256(forged).hexdigest()
            return json.dumps(doc).encode()
        return data.replace(sri(original).encode(), sri(forged).encode())

    with reverse_proxy(port_of(server), rewrite=tamper) as proxy:
        with SourceClient(proxy_url(proxy)) as src:
            assert sri(forged) in src.get("/en/submit").text  # the forgery is consistent
        code, out = verify_site(proxy_url(proxy))
    assert code == 1, out
    assert "upload.js: the site lists SHA-256" in out
    assert "upload.js: the site serves SHA-256" in out
    assert "/en/submit: <script> /static/upload.js: integrity" in out


def test_verify_site_fails_on_an_extra_script(server: Server) -> None:
    def tamper(path: str, data: bytes) -> bytes:
        if path == "/en/submit":
            return data.replace(b"</head>", b"<script>steal()</script></head>")
        return data

    with reverse_proxy(port_of(server), rewrite=tamper) as proxy:
        code, out = verify_site(proxy_url(proxy))
    assert code == 1, out
    assert "/en/submit: <script> (inline): inline script" in out


def test_verify_site_reports_an_unreachable_site() -> None:
    code, out = verify_site("http://127.0.0.1:9")  # discard port: nothing listens
    assert code == 4, out
    assert "cannot fetch" in out


# --- inline code and the security headers ------------------------------------------

PAGE_TAMPERING = {
    "event handler on body": (b"<body>", b'<body onload="steal()">', "inline event handler"),
    "event handler on an image": (
        b"</main>",
        b'<img src="/static/style.css" onerror="steal()"></main>',
        "<img onerror=",
    ),
    "inline style element": (b"</head>", b"<style>body{}</style></head>", "<style>: inline style"),
    "style attribute": (b"<main", b'<main style="display:none"', "<main style=…>: inline style"),
    "javascript: URL": (
        b"</main>",
        b'<a href=" JaVaScRiPt:steal()">x</a></main>',
        "javascript: URL",
    ),
    "a frame": (b"</main>", b'<iframe src="/en/login"></iframe></main>', "<iframe>"),
    "a base URL": (b"</head>", b'<base href="http://evil.example/"></head>', "<base>"),
}


@pytest.mark.parametrize("case", sorted(PAGE_TAMPERING))
def test_verify_site_fails_on_inline_code_in_a_page(server: Server, case: str) -> None:
    before, after, message = PAGE_TAMPERING[case]

    def tamper(path: str, data: bytes) -> bytes:
        if path == "/fr/login":
            assert before in data, (case, path)
            return data.replace(before, after, 1)
        return data

    with reverse_proxy(port_of(server), rewrite=tamper) as proxy:
        code, out = verify_site(proxy_url(proxy))
    assert code == 1, out
    assert "/fr/login: " in out and message in out, out
    assert "/en/login:" not in out  # only the page that differs


def _csp(policy: str) -> Callable[[str, list[tuple[str, str]]], list[tuple[str, str]]]:
    def rewrite(path: str, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if path != "/en/submit":
            return headers
        kept = [(n, v) for n, v in headers if n.lower() != "content-security-policy"]
        return kept + ([("Content-Security-Policy", policy)] if policy else [])

    return rewrite


def _release_csp() -> str:
    from server.web.security_headers import CONTENT_SECURITY_POLICY

    return CONTENT_SECURITY_POLICY


HEADER_TAMPERING = {
    "no CSP": (_csp(""), "no Content-Security-Policy header"),
    "unsafe-inline scripts": (
        _csp(_release_csp().replace("script-src 'self'", "script-src 'self' 'unsafe-inline'")),
        "CSP script-src allows 'unsafe-inline'",
    ),
    "unsafe-eval": (
        _csp(_release_csp().replace("script-src 'self'", "script-src 'self' 'unsafe-eval'")),
        "CSP script-src allows 'unsafe-eval'",
    ),
    "scripts from another origin": (
        _csp(_release_csp().replace("script-src 'self'", "script-src 'self' cdn.example")),
        "CSP script-src allows cdn.example",
    ),
    "script-src dropped (falls back to a weak default)": (
        _csp("default-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"),
        "CSP default-src allows 'self' data:",
    ),
    "connections to another host": (
        _csp(_release_csp().replace("connect-src 'self'", "connect-src https://collect.example")),
        "CSP connect-src allows https://collect.example",
    ),
    "a more specific directive overriding ours": (
        _csp(_release_csp() + "; script-src-elem *"),
        "CSP script-src-elem allows *",
    ),
    "reports sent elsewhere": (
        _csp(_release_csp() + "; report-uri https://collect.example/r"),
        "CSP report-uri sends reports to https://collect.example/r",
    ),
    "frames allowed": (
        _csp(_release_csp().replace("frame-ancestors 'none'", "frame-ancestors *")),
        "CSP frame-ancestors allows *",
    ),
    "no X-Frame-Options": (
        lambda p, h: [(n, v) for n, v in h if n.lower() != "x-frame-options"],
        "no x-frame-options header",
    ),
    "a leaky Referrer-Policy": (
        lambda p, h: [(n, "unsafe-url" if n.lower() == "referrer-policy" else v) for n, v in h],
        "referrer-policy is 'unsafe-url', not 'no-referrer'",
    ),
    "cacheable pages": (
        lambda p, h: [(n, "max-age=3600" if n.lower() == "cache-control" else v) for n, v in h],
        "cache-control is 'max-age=3600'",
    ),
    "camera allowed": (
        lambda p, h: [
            (n, v.replace("camera=()", "camera=(self)") if n.lower() == "permissions-policy" else v)
            for n, v in h
        ],
        "permissions-policy does not deny camera",
    ),
}


@pytest.mark.parametrize("case", sorted(HEADER_TAMPERING))
def test_verify_site_fails_on_a_missing_or_weakened_header(server: Server, case: str) -> None:
    rewrite, message = HEADER_TAMPERING[case]
    with reverse_proxy(port_of(server), rewrite_headers=rewrite) as proxy:
        code, out = verify_site(proxy_url(proxy))
    assert code == 1, out
    assert message in out, out


def test_an_extra_stricter_policy_or_header_value_order_is_not_a_failure(server: Server) -> None:
    """Two CSP headers are both enforced: adding a stricter one weakens nothing."""

    def rewrite(path: str, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [*headers, ("Content-Security-Policy", "default-src 'none'; sandbox")]

    with reverse_proxy(port_of(server), rewrite_headers=rewrite) as proxy:
        code, out = verify_site(proxy_url(proxy))
    assert code == 0, out
    assert "6 pages carry its security headers" in out


def test_the_cli_expects_what_the_server_sends() -> None:
    """journalist_cli never imports server: the expected values are repeated, and must agree."""
    from journalist_cli import site_check
    from server.web import security_headers

    assert site_check.parse_csp(security_headers.CONTENT_SECURITY_POLICY) == {
        k: sorted(v) for k, v in site_check.EXPECTED_CSP.items()
    }
    sent = {n.decode(): v.decode() for n, v in security_headers.SECURITY_HEADERS}
    assert {n: sent[n] for n in site_check.EXPECTED_HEADERS} == site_check.EXPECTED_HEADERS
    assert set(sent) == {
        *site_check.EXPECTED_HEADERS,
        "content-security-policy",
        "permissions-policy",
    }
    assert site_check.check_headers(sent) == []
