"""Where the CLI keeps its state, and what `lanterne config` records.

``$LANTERNE_HOME`` (default: the platform's user data directory for
"lanterne") holds ``config.json`` and the vault. The directory is created
with mode 0700 and its mode is tightened if it was looser.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import platformdirs

from envelope import atomic_output
from journalist_cli.designations import LANGUAGES, Language
from journalist_cli.errors import UsageProblem
from journalist_cli.workflow_errors import NotConfigured

CONFIG_NAME = "config.json"
PROXY_SCHEMES = ("socks5h", "socks5")


def lanterne_home(environ: Mapping[str, str] | None = None) -> Path:
    """The state directory, created 0700 (and tightened if it exists looser)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("LANTERNE_HOME") or platformdirs.user_data_dir("lanterne"))
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if home.stat().st_mode & 0o077:
        home.chmod(0o700)
    return home


@dataclass(frozen=True)
class Config:
    """What `lanterne config` recorded. Every field may be missing on an air-gapped machine."""

    server: str | None = None
    identity: str | None = None
    proxy: str | None = None
    language: Language = "en"
    newsroom: str | None = None  # the newsroom key's fingerprint (journalist_cli/newsroom.py)

    def require_server(self) -> str:
        if not self.server:
            raise NotConfigured("no server configured: run `lanterne config --server URL`")
        return self.server

    def require_identity(self) -> Path:
        if not self.identity:
            raise NotConfigured("no identity configured: run `lanterne config --identity FILE`")
        return Path(self.identity)


def check_server_url(url: str) -> str:
    """An http(s) URL with a host and no path, query or credentials; returned normalised."""
    import httpx  # only `lanterne config` needs it; offline commands start faster without

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UsageProblem(f"--server: not a URL: {url!r}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UsageProblem("--server takes http://HOST[:PORT] (an onion address over Tor)")
    if parsed.userinfo or parsed.query or parsed.fragment or parsed.path not in ("", "/"):
        raise UsageProblem("--server takes a bare http://HOST[:PORT], without a path")
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


def check_proxy_url(url: str) -> str:
    """A SOCKS5 proxy URL (Tor: socks5h://127.0.0.1:9050)."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UsageProblem(f"--proxy: not a URL: {url!r}") from exc
    if parsed.scheme not in PROXY_SCHEMES or not parsed.host or parsed.port is None:
        raise UsageProblem("--proxy takes socks5h://HOST:PORT (Tor: socks5h://127.0.0.1:9050)")
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


def load_config(home: Path) -> Config:
    path = home / CONFIG_NAME
    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Config()
    except (OSError, ValueError) as exc:
        raise UsageProblem(f"{path} is damaged; run `lanterne config` again") from exc
    if not isinstance(doc, dict):
        raise UsageProblem(f"{path} is damaged; run `lanterne config` again")
    language = doc.get("language", "en")
    return Config(
        server=_opt_str(doc.get("server")),
        identity=_opt_str(doc.get("identity")),
        proxy=_opt_str(doc.get("proxy")),
        language=language if language in LANGUAGES else "en",
        newsroom=_opt_str(doc.get("newsroom")),
    )


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def save_config(home: Path, config: Config) -> Path:
    path = home / CONFIG_NAME
    with atomic_output(path, mode=0o600) as out:
        out.write((json.dumps(asdict(config), indent=2) + "\n").encode("utf-8"))
    return path


def update_config(home: Path, **changes: Any) -> Config:
    """Record the given settings (``None`` leaves a setting as it was)."""
    current = load_config(home)
    updated = replace(current, **{k: v for k, v in changes.items() if v is not None})
    save_config(home, updated)
    return updated
