"""Does a Lanterne instance serve the static files of this release, under its policy?

Sources run the page's JavaScript, so a server that changed ``upload.js``
could read their documents before they are encrypted. This compares, for one
instance: its published list of asset digests
(``/.well-known/lanterne-assets.json``), every asset it serves, and the
Subresource Integrity of every script and stylesheet in its pages, with the
files this release ships in ``server/static``.

A server could also run code without touching a file: an inline script, an
event handler attribute (``onload=``), a ``javascript:`` URL, or a weakened
Content-Security-Policy that lets them (or another origin's scripts) run. So
every source page is also parsed for inline scripts and styles, handlers,
``javascript:`` URLs and frames, and its security headers are checked: the
CSP must be at least as strict as the release's (``EXPECTED_CSP``: no
``unsafe-*``, no other origin, no scheme source, no reporting endpoint) and
every other header must have the release's value. The release's values live
in ``server/web/security_headers.py``; the CLI never imports server code, so they
are repeated here and a test checks that both agree.

The release's files are found as package data: the ``server`` package's
location is looked up without importing it (the CLI never runs server code).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx

import envelope
from envelope.keys import b64decode
from journalist_cli.workflow_errors import ServerError

MANIFEST_PATH = "/.well-known/lanterne-assets.json"
MANIFEST_TYPE = "lanterne-assets/v1"
STATIC_PREFIX = "/static/"
# Pages whose scripts and stylesheets are checked: those a source loads.
PAGES = ("/en/", "/en/submit", "/en/login", "/fr/", "/fr/submit", "/fr/login")
MAX_BYTES = 4 << 20  # no asset or page of ours comes near this
TIMEOUT = httpx.Timeout(120.0, connect=60.0)  # Tor circuits can take a while


# What the release's server sends (server/web/security_headers.py; a test checks
# they agree). The CSP is checked directive by directive (see _check_csp);
# Permissions-Policy must deny at least these features; the others must be
# exactly these values.
EXPECTED_CSP: dict[str, frozenset[str]] = {
    "default-src": frozenset({"'none'"}),
    "script-src": frozenset({"'self'"}),
    "connect-src": frozenset({"'self'"}),
    "style-src": frozenset({"'self'"}),
    "img-src": frozenset({"'self'"}),
    "form-action": frozenset({"'self'"}),
    "base-uri": frozenset({"'none'"}),
    "frame-ancestors": frozenset({"'none'"}),
}
# Directives a served policy may add: they only restrict further.
_RESTRICTING_DIRECTIVES = {
    "sandbox",
    "upgrade-insecure-requests",
    "block-all-mixed-content",
    "require-trusted-types-for",
    "trusted-types",
}
EXPECTED_PERMISSIONS_DENIED = frozenset(
    {
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "usb",
    }
)
EXPECTED_HEADERS: dict[str, str] = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
    "pragma": "no-cache",
    "x-robots-tag": "noindex, nofollow",
}
# Attributes whose value is a URL that a browser loads or navigates to.
_URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "poster", "srcset"}
# Elements a source page never has: frames, plug-ins, a base URL.
_FORBIDDEN_ELEMENTS = {"iframe", "frame", "frameset", "object", "embed", "applet", "base"}


@dataclass(frozen=True)
class LocalAsset:
    sha256: str
    sha384: str


@dataclass
class Report:
    """What was compared and what differed; ``ok`` when nothing did."""

    assets_checked: int = 0
    references_checked: int = 0
    pages_checked: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.assets_checked > 0


def release_static_dir() -> Path:
    """``server/static`` of the installed release, found without importing ``server``."""
    spec = importlib.util.find_spec("server")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "static"
        if candidate.is_dir():
            return candidate
    raise ServerError("the installed release has no server/static directory to compare with")


def local_assets(directory: Path) -> dict[str, LocalAsset]:
    assets = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            data = path.read_bytes()
            assets[path.relative_to(directory).as_posix()] = LocalAsset(
                hashlib.sha256(data).hexdigest(),
                "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode("ascii"),
            )
    if not assets:
        raise ServerError(f"{directory} holds no files to compare with")
    return assets


def _fetch(client: httpx.Client, path: str) -> httpx.Response:
    try:
        response = client.get(path)
    except httpx.ProxyError as exc:
        raise ServerError(f"the proxy refused the connection: {exc}") from exc
    except httpx.HTTPError as exc:
        raise ServerError(f"cannot fetch {path}: {exc}") from exc
    if response.status_code != 200:
        raise ServerError(f"{path}: the server answered {response.status_code}")
    if len(response.content) > MAX_BYTES:
        raise ServerError(f"{path}: larger than any file of Lanterne")
    return response


def _get(client: httpx.Client, path: str) -> bytes:
    return _fetch(client, path).content


def _published(doc: Any) -> dict[str, str]:
    if not isinstance(doc, dict) or doc.get("type") != MANIFEST_TYPE:
        raise ServerError(f"{MANIFEST_PATH} is not a {MANIFEST_TYPE} document")
    assets = doc.get("assets")
    if not isinstance(assets, dict):
        raise ServerError(f"{MANIFEST_PATH} has no asset list")
    out = {}
    for name, entry in assets.items():
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not isinstance(digest, str):
            raise ServerError(f"{MANIFEST_PATH} has a malformed entry")
        out[name] = digest
    return out


@dataclass
class PageScan:
    """What a page holds: script and stylesheet references, and what may not be there."""

    references: list[tuple[str, str | None, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scan = PageScan()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        problems = self.scan.problems
        for name, value in values.items():
            if name.startswith("on"):
                problems.append(f"<{tag} {name}=…>: inline event handler")
            elif name == "style":
                problems.append(f"<{tag} style=…>: inline style")
            elif name in _URL_ATTRIBUTES and _is_script_url(value):
                problems.append(f"<{tag} {name}={value[:40]!r}>: javascript: URL")
        if tag in _FORBIDDEN_ELEMENTS:
            problems.append(f"<{tag}>: an element no Lanterne page has")
        elif tag == "style":
            problems.append("<style>: inline style")
        elif tag == "script":
            src = values.get("src")
            self.scan.references.append(("script", src, values.get("integrity", "")))
        elif tag == "link":
            rel = set(values.get("rel", "").lower().split())
            if {"stylesheet", "modulepreload", "preload", "prefetch", "import"} & rel:
                self.scan.references.append(
                    ("link", values.get("href"), values.get("integrity", ""))
                )
        elif tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            problems.append("<meta http-equiv=refresh>: sends the reader elsewhere")


def _is_script_url(value: str) -> bool:
    # Browsers ignore ASCII whitespace and control characters inside the scheme.
    compact = "".join(ch for ch in value if ord(ch) > 0x20).lower()
    return compact.startswith(("javascript:", "vbscript:"))


def scan_page(html: str) -> PageScan:
    """Parse a page: its references, and any inline code, style or handler in it."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    return parser.scan


def references(html: str) -> Iterable[tuple[str, str | None, str]]:
    """(tag, URL, integrity) of every script and stylesheet-like link in a page."""
    return scan_page(html).references


def parse_csp(value: str) -> dict[str, list[str]]:
    """A policy's directives (lower-case names) with their sources; the first of a name wins."""
    policy: dict[str, list[str]] = {}
    for part in value.split(";"):
        tokens = part.split()
        if tokens:
            policy.setdefault(tokens[0].lower(), tokens[1:])
    return policy


def _check_csp(values: list[str]) -> list[str]:
    """Why the served Content-Security-Policy headers are weaker than the release's."""
    if not values:
        return ["no Content-Security-Policy header"]
    # Several policies are all enforced: the page is protected if one of them
    # is as strict as ours. Report the problems of the closest one.
    best: list[str] | None = None
    for value in values:
        problems = _csp_problems(parse_csp(value))
        if best is None or len(problems) < len(best):
            best = problems
    assert best is not None
    return best


def _csp_problems(policy: dict[str, list[str]]) -> list[str]:
    problems = []
    for directive, allowed in EXPECTED_CSP.items():
        # A fetch directive that is missing falls back to default-src.
        sources = policy.get(directive)
        if sources is None and directive.endswith("-src") and directive != "default-src":
            sources = policy.get("default-src")
        if sources is None:
            problems.append(f"CSP lacks {directive}")
            continue
        extra = {s.lower() for s in sources} - allowed
        # 'none' is stricter than 'self'; an empty list means 'none'.
        if extra and not ({s.lower() for s in sources} <= {"'none'"}):
            problems.append(f"CSP {directive} allows {' '.join(sorted(extra))}")
    for directive, sources in policy.items():
        if directive in EXPECTED_CSP or directive in _RESTRICTING_DIRECTIVES:
            continue
        if directive in ("report-uri", "report-to"):
            problems.append(f"CSP {directive} sends reports to {' '.join(sources)[:80]}")
        elif (
            directive.endswith("-src")
            or directive.endswith("-src-elem")
            or directive.endswith("-src-attr")
        ):
            # A more specific directive (script-src-elem...) overrides ours.
            if {s.lower() for s in sources} - {"'none'", "'self'"}:
                problems.append(f"CSP {directive} allows {' '.join(sources)[:80]}")
        else:
            problems.append(f"CSP has an unexpected directive {directive}")
    return problems


def check_headers(headers: Mapping[str, str] | httpx.Headers) -> list[str]:
    """Why a page's security headers are missing or weaker than the release's."""
    raw = headers if isinstance(headers, httpx.Headers) else httpx.Headers(dict(headers))
    problems = _check_csp(raw.get_list("content-security-policy"))
    for name, want in EXPECTED_HEADERS.items():
        got = raw.get_list(name)
        if not got:
            problems.append(f"no {name} header")
        elif [" ".join(g.split()).lower() for g in got] != [want.lower()]:
            problems.append(f"{name} is {', '.join(got)[:80]!r}, not {want!r}")
    denied = set()
    for value in raw.get_list("permissions-policy"):
        for item in value.split(","):
            feature, _, allow = item.strip().partition("=")
            if allow.strip() == "()":
                denied.add(feature.strip().lower())
    missing = EXPECTED_PERMISSIONS_DENIED - denied
    if missing:
        problems.append(f"permissions-policy does not deny {', '.join(sorted(missing))}")
    return problems


_NEWSROOM_KEY = re.compile(r'data-newsroom-key="([A-Za-z0-9_-]{43})"')


def _newsroom_problems(html: str, page: str, fingerprint: str) -> list[str]:
    """What a source page says about the newsroom key, against the pinned fingerprint
    (journalist_cli/newsroom.py): a server that swapped the key sources see is caught."""
    found = set(_NEWSROOM_KEY.findall(html))
    if not found:
        return [f"{page}: names no newsroom key (sources are not asked to compare one)"]
    problems = []
    for text in sorted(found):
        try:
            shown = envelope.newsroom_fingerprint(b64decode(text, 32, "newsroom key"))
        except envelope.KeyFormatError:
            shown = "(malformed)"
        if shown != fingerprint:
            problems.append(f"{page}: names the newsroom key {shown}, pinned: {fingerprint}")
    if page.count("/") == 2 and page.endswith("/") and fingerprint not in html:
        problems.append(f"{page}: does not show the newsroom fingerprint {fingerprint}")
    return problems


def check_site(
    client: httpx.Client, release: dict[str, LocalAsset], newsroom: str | None = None
) -> Report:
    """Compare what ``client``'s base URL serves with ``release`` (and, with
    ``newsroom``, the newsroom key its source pages name with the pinned one)."""
    report = Report()
    bad = report.mismatches
    try:
        published = _published(json.loads(_get(client, MANIFEST_PATH)))
    except ValueError as exc:
        raise ServerError(f"{MANIFEST_PATH} is not JSON") from exc
    for name in sorted(set(published) - set(release)):
        bad.append(f"{name}: listed by the site, not part of this release")
    for name, asset in release.items():
        if name not in published:
            bad.append(f"{name}: part of this release, not listed by the site")
        elif published[name] != asset.sha256:
            bad.append(f"{name}: the site lists SHA-256 {published[name]}, release {asset.sha256}")
        served = hashlib.sha256(_get(client, STATIC_PREFIX + name)).hexdigest()
        report.assets_checked += 1
        if served != asset.sha256:
            bad.append(f"{name}: the site serves SHA-256 {served}, release {asset.sha256}")
    for page in PAGES:
        response = _fetch(client, page)
        report.pages_checked += 1
        bad.extend(f"{page}: {problem}" for problem in check_headers(response.headers))
        html = response.content.decode("utf-8", errors="replace")
        scan = scan_page(html)
        bad.extend(f"{page}: {problem}" for problem in scan.problems)
        if newsroom is not None and not page.endswith("/login"):
            bad.extend(_newsroom_problems(html, page, newsroom))
        for tag, url, integrity in scan.references:
            report.references_checked += 1
            where = f"{page}: <{tag}> {url or '(inline)'}"
            if url is None:
                if tag == "script":
                    bad.append(f"{where}: inline script, which no release contains")
                continue
            served_name = url[len(STATIC_PREFIX) :] if url.startswith(STATIC_PREFIX) else None
            if served_name is None or served_name not in release:
                bad.append(f"{where}: not a file of this release")
            elif integrity != release[served_name].sha384:
                bad.append(f"{where}: integrity {integrity or '(none)'} does not match the release")
    return report


def open_client(url: str, proxy: str | None) -> httpx.Client:
    return httpx.Client(
        base_url=url.rstrip("/"),
        proxy=proxy,
        timeout=TIMEOUT,
        headers={"User-Agent": "lanterne"},
        follow_redirects=False,
        trust_env=False,
    )
