"""Does a Lanterne instance serve the static files of this release?

Sources run the page's JavaScript, so a server that changed ``upload.js``
could read their documents before they are encrypted. This compares, for one
instance: its published list of asset digests
(``/.well-known/lanterne-assets.json``), every asset it serves, and the
Subresource Integrity of every script and stylesheet in its pages, with the
files this release ships in ``server/static``.

The release's files are found as package data: the ``server`` package's
location is looked up without importing it (the CLI never runs server code).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from journalist_cli.workflow_errors import ServerError

MANIFEST_PATH = "/.well-known/lanterne-assets.json"
MANIFEST_TYPE = "lanterne-assets/v1"
STATIC_PREFIX = "/static/"
# Pages whose scripts and stylesheets are checked: those a source loads.
PAGES = ("/en/", "/en/submit", "/en/login", "/fr/", "/fr/submit", "/fr/login")
MAX_BYTES = 4 << 20  # no asset or page of ours comes near this
TIMEOUT = httpx.Timeout(120.0, connect=60.0)  # Tor circuits can take a while

_TAG = re.compile(r"<(script|link)\b([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


@dataclass(frozen=True)
class LocalAsset:
    sha256: str
    sha384: str


@dataclass
class Report:
    """What was compared and what differed; ``ok`` when nothing did."""

    assets_checked: int = 0
    references_checked: int = 0
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


def _get(client: httpx.Client, path: str) -> bytes:
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
    return response.content


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


def references(html: str) -> Iterable[tuple[str, str | None, str]]:
    """(tag, URL, integrity) of every script and stylesheet-like link in a page."""
    for tag, attrs_text in _TAG.findall(html):
        attrs = {k.lower(): a or b for k, a, b in _ATTR.findall(attrs_text)}
        if tag.lower() == "link":
            rel = attrs.get("rel", "").lower().split()
            if not {"stylesheet", "modulepreload", "preload"} & set(rel):
                continue
            yield "link", attrs.get("href"), attrs.get("integrity", "")
        else:
            yield "script", attrs.get("src"), attrs.get("integrity", "")


def check_site(client: httpx.Client, release: dict[str, LocalAsset]) -> Report:
    """Compare what ``client``'s base URL serves with ``release``."""
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
        html = _get(client, page).decode("utf-8", errors="replace")
        for tag, url, integrity in references(html):
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
