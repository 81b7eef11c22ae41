"""server/static/xwing.js is what web/ builds, byte for byte, from pinned packages.

The bundle is the only third-party code a source's browser runs. These tests
rebuild it from scratch (a clean copy of web/, `npm ci` from the lock file,
which checks every package's integrity hash; this needs the npm registry)
and compare bytes, and check that every input is pinned: exact versions in
package.json, an integrity hash for every package in package-lock.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from server.web.assets import Assets

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
BUNDLE = ROOT / "server" / "static" / "xwing.js"


def test_a_clean_rebuild_gives_the_committed_bytes(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "build-js.sh", tmp_path / "scripts")
    (tmp_path / "web").mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(WEB / name, tmp_path / "web")
    shutil.copytree(WEB / "src", tmp_path / "web" / "src")
    out = tmp_path / "xwing.js"
    subprocess.run(
        [str(tmp_path / "scripts" / "build-js.sh"), str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert out.read_bytes() == BUNDLE.read_bytes(), "run scripts/build-js.sh and commit"


def test_every_input_is_pinned() -> None:
    manifest = json.loads((WEB / "package.json").read_text())
    wanted = {**manifest["dependencies"], **manifest["devDependencies"]}
    assert set(wanted) == {"@noble/post-quantum", "@noble/hashes", "esbuild"}
    for name, version in wanted.items():
        assert version[0].isdigit() and all(c.isdigit() or c == "." for c in version), name
    lock = json.loads((WEB / "package-lock.json").read_text())
    packages = {k: v for k, v in lock["packages"].items() if k}
    assert packages
    for path, entry in packages.items():
        assert entry["integrity"].startswith("sha512-"), path
    for name, version in wanted.items():
        assert packages[f"node_modules/{name}"]["version"] == version


def test_the_bundle_has_no_webassembly_and_names_its_sources() -> None:
    text = BUNDLE.read_text()
    assert "WebAssembly" not in text  # Tor Browser's Safer level has none
    lock = json.loads((WEB / "package-lock.json").read_text())["packages"]
    pq = lock["node_modules/@noble/post-quantum"]["version"]
    assert text.startswith("// Built by scripts/build-js.sh from web/src/xwing.js")
    assert f"@noble/post-quantum {pq}" in text.splitlines()[1]


def test_the_bundle_is_in_the_asset_manifest() -> None:
    """What `lanterne verify-site` compares an instance with (tests/test_site_integrity.py)."""
    entry = Assets(BUNDLE.parent).manifest()["assets"]["xwing.js"]
    assert entry["url"] == "/static/xwing.js"
    assert entry["size"] == BUNDLE.stat().st_size
