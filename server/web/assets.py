"""Digests of the static files, computed once at start-up.

Templates reference every script and stylesheet with Subresource Integrity
(``integrity="sha384-…"``), so a browser refuses a file that differs from what
this release ships at the moment the page was rendered. The same files' SHA-256
digests are published at ``/.well-known/lanterne-assets.json`` so that anyone
can compare an instance with a release (``lanterne verify-site``).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_TYPE = "lanterne-assets/v1"
STATIC_PREFIX = "/static/"


@dataclass(frozen=True)
class Asset:
    name: str  # path relative to the static directory, with "/" separators
    sha256: str  # hex
    sha384: str  # base64, as Subresource Integrity wants it
    size: int


class Assets:
    """The static files of this release and their digests."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._by_name: dict[str, Asset] = {}
        for path in sorted(directory.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            data = path.read_bytes()
            name = path.relative_to(directory).as_posix()
            self._by_name[name] = Asset(
                name,
                hashlib.sha256(data).hexdigest(),
                base64.b64encode(hashlib.sha384(data).digest()).decode("ascii"),
                len(data),
            )

    def __iter__(self) -> Any:
        return iter(self._by_name.values())

    def url(self, name: str) -> str:
        self._by_name[name]
        return STATIC_PREFIX + name

    def integrity(self, name: str) -> str:
        return "sha384-" + self._by_name[name].sha384

    def manifest(self) -> dict[str, Any]:
        return {
            "type": MANIFEST_TYPE,
            "assets": {
                a.name: {"url": STATIC_PREFIX + a.name, "sha256": a.sha256, "size": a.size}
                for a in self
            },
        }
