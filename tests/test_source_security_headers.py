"""The hardening middleware: every route, every response, the same strict headers.

The list of requests below must cover every route the app declares; a route
added without a case here makes the first test fail.
"""

from __future__ import annotations

import re

import httpx
from starlette.routing import Mount

from server.domain import codenames
from server.settings import Settings
from server.web.app import create_app
from tests.server_process import CODENAME_RE, SourceClient

EXPECTED = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
        "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}
LEAKY = ("server", "etag", "last-modified", "date", "x-powered-by")


def every_request(src: SourceClient) -> list[tuple[str, str, httpx.Response]]:
    """(route path, method, response) for each route, logged out then logged in."""
    out: list[tuple[str, str, httpx.Response]] = []

    def hit(route: str, method: str, path: str, **kw) -> httpx.Response:
        response = src.client.request(method, path, **kw)
        out.append((route, method, response))
        return response

    hit("/", "GET", "/")
    for lang in ("en", "fr"):
        hit("/{lang}/", "GET", f"/{lang}/")
        hit("/{lang}/submit", "GET", f"/{lang}/submit")
        hit("/{lang}/login", "GET", f"/{lang}/login")
        hit("/{lang}/inbox", "GET", f"/{lang}/inbox")  # redirect: not logged in
        hit("/{lang}/codename", "GET", f"/{lang}/codename")
        hit("/{lang}/receipt", "GET", f"/{lang}/receipt")  # redirect: no receipt
        hit("/{lang}/receipt.txt", "GET", f"/{lang}/receipt.txt")
        hit("/{lang}/delete", "GET", f"/{lang}/delete")
        hit("/{lang}/submit", "POST", f"/{lang}/submit", content=b"x")  # error page
        hit("/{lang}/login", "POST", f"/{lang}/login", data={"codename": "x"})
        hit("/{lang}/logout", "POST", f"/{lang}/logout", data={})
        hit("/{lang}/delete", "POST", f"/{lang}/delete", data={})
        hit("/{lang}/recipients.json", "GET", f"/{lang}/recipients.json")
        hit("/{lang}/submit/commit", "POST", f"/{lang}/submit/commit", data={})  # 403
    # The tus endpoints: answers without a page, the same headers.
    tus = {"Tus-Resumable": "1.0.0"}
    hit("/tus/", "OPTIONS", "/tus/")
    created = hit("/tus/", "POST", "/tus/", headers={**tus, "Upload-Length": "10"})
    where = created.headers["location"]
    hit("/tus/{upload_id}", "HEAD", where, headers=tus)
    patch = {**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    hit("/tus/{upload_id}", "PATCH", where, headers=patch, content=b"x" * 10)
    hit("/tus/{upload_id}", "DELETE", where, headers=tus)
    hit("/tus/{upload_id}", "HEAD", where, headers=tus)  # 404 now
    hit("/static", "GET", "/static/style.css")
    hit("/.well-known/lanterne-assets.json", "GET", "/.well-known/lanterne-assets.json")
    hit("/static", "GET", "/static/missing.css")
    hit("404", "GET", "/no/such/page")
    # Logged in: the pages a source sees after a first submission.
    codename = src.first_submission("header test")
    assert len(codename.split()) == 9
    hit("/{lang}/codename", "GET", "/en/codename")
    hit("/{lang}/inbox", "GET", "/en/inbox")
    hit("/{lang}/delete", "GET", "/en/delete")
    return out


def declared_routes(data_dir) -> set[tuple[str, str]]:
    app = create_app(Settings.load(data_dir))
    out = set()

    def walk(routes) -> None:
        for route in routes:
            if hasattr(route, "original_router"):  # FastAPI's wrapper of an included router
                walk(route.original_router.routes)
            elif isinstance(route, Mount):
                out.add((route.path, "GET"))
            else:
                # HEAD comes free with GET; a HEAD-only route (tus) counts on its own.
                head_only = route.methods == {"HEAD"}
                out.update((route.path, m) for m in route.methods if m != "HEAD" or head_only)

    walk(app.routes)
    assert len(out) >= 10
    return out


def test_every_route_has_every_header(served) -> None:
    instance, server = served
    with SourceClient(server.base_url) as src:
        seen = every_request(src)
    assert {(r, m) for r, m, _ in seen if r != "404"} == declared_routes(instance.data_dir)
    statuses = set()
    for _route, method, response in seen:
        statuses.add(response.status_code)
        where = f"{method} {response.request.url.path} ({response.status_code})"
        for name, value in EXPECTED.items():
            assert response.headers.get(name) == value, f"{where}: {name}"
        assert "camera=()" in response.headers["permissions-policy"], where
        for name in LEAKY:
            assert name not in response.headers, f"{where}: leaks {name}"
        assert response.status_code < 500, where
    # The list exercised pages, redirects, client errors and the stylesheet.
    assert {200, 303, 403, 404, 415} <= statuses


def test_session_cookie_is_strict_and_holds_no_codename(served) -> None:
    _instance, server = served
    with SourceClient(server.base_url) as src:
        first = src.client.get("/en/submit")
        # A page load makes no session: only the visit cookie of the form token.
        assert re.fullmatch(
            r"lanterne_visit=[A-Za-z0-9_-]{43}; HttpOnly; Path=/; SameSite=strict",
            first.headers["set-cookie"],
        )
        # A failed login makes an (anonymous) session...
        wrong = src.login(codenames.generate("en"))
        assert wrong.status_code == 403
        anonymous = src.client.cookies["lanterne_session"]
        sent = src.submit("cookie test")
        assert sent.headers["location"] == "/en/codename"
        assert re.fullmatch(
            r"lanterne_session=[A-Za-z0-9_-]{43}; HttpOnly; Path=/; SameSite=strict",
            sent.headers["set-cookie"],
        )
        match = CODENAME_RE.search(src.get("/en/codename").text)
        assert match
        cookies = " ".join(src.client.cookies.values())
        for word in match.group(1).split():
            assert word not in cookies
        # ...whose id changes when the source gets an account (no fixation).
        assert src.client.cookies["lanterne_session"] != anonymous


def test_pages_load_nothing_external_no_svg_and_only_sri_scripts(served) -> None:
    _instance, server = served
    with SourceClient(server.base_url) as src:
        pages = [r for _, m, r in every_request(src) if m == "GET" and r.status_code == 200]
    html_pages = [r for r in pages if r.headers["content-type"].startswith("text/html")]
    assert len(html_pages) >= 8
    for response in html_pages:
        text = response.text
        assert "<svg" not in text and "@font-face" not in text
        # Scripts only from this site, each pinned by Subresource Integrity.
        for tag in re.findall(r"<script[^>]*>", text):
            assert re.search(r'src="/static/[^"]+" integrity="sha384-[^"]+"', tag), tag
        for url in re.findall(r'(?:href|src|action)="([^"]+)"', text):
            assert url.startswith(("/", "#")), f"{response.request.url.path}: external {url}"
    css = next(r for r in pages if r.request.url.path == "/static/style.css").text
    assert "url(" not in css and "@import" not in css and "@font-face" not in css


def test_forms_all_carry_a_csrf_token_first(served) -> None:
    _instance, server = served
    with SourceClient(server.base_url) as src:
        responses = [r for _, m, r in every_request(src) if m == "GET" and r.status_code == 200]
    forms = 0
    for response in responses:
        for form in re.findall(r"<form .*?</form>", response.text, re.S):
            forms += 1
            first_input = re.search(r"<input [^>]*>", form)
            assert first_input and 'name="csrf_token"' in first_input.group(0), form[:200]
    assert forms >= 5
