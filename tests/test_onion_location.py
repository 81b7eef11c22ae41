"""Onion-Location on the clearnet landing page: only when configured, only there."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import httpx
import pytest

from server.onion_address import parse_onion_location
from tests.server_process import init_instance, run_server


def onion_address(seed: str = "lanterne test onion") -> str:
    """A well-formed v3 onion address (any 32 bytes make one); the same for the
    same seed, so test ids stay stable (pytest-xdist workers must agree)."""
    pubkey = hashlib.sha256(seed.encode()).digest()
    checksum = hashlib.sha3_256(b".onion checksum" + pubkey + b"\x03").digest()[:2]
    return base64.b32encode(pubkey + checksum + b"\x03").decode().lower() + ".onion"


ONION = onion_address()


def get(base_url: str, path: str, host: str) -> httpx.Response:
    return httpx.get(base_url + path, headers={"Host": host}, follow_redirects=False)


def test_header_on_landing_pages_only_when_configured(tmp_path: Path) -> None:
    instance = init_instance(tmp_path / "on", config=f'onion_location = "http://{ONION}/"\n')
    with run_server(instance) as server:
        for path in ("/", "/en/", "/fr/"):
            response = get(server.base_url, path, "news.example.org")
            assert response.headers["onion-location"] == f"http://{ONION}{path}"
        # Other pages, and visits already through the onion, get none.
        assert (
            "onion-location" not in get(server.base_url, "/en/submit", "news.example.org").headers
        )
        assert "onion-location" not in get(server.base_url, "/", ONION).headers
        # The security headers are still all there.
        assert get(server.base_url, "/", "news.example.org").headers["referrer-policy"]

    plain = init_instance(tmp_path / "off")
    with run_server(plain) as server:
        assert "onion-location" not in get(server.base_url, "/", "news.example.org").headers


@pytest.mark.parametrize(
    "value",
    [
        "news.example.org",
        "http://example.org",
        f"ftp://{ONION}",
        f"http://{ONION}/path",
        f"http://{ONION}:8080",
        f"http://{ONION}/?q=1",
        "http://" + ONION[:-10] + "aaaa.onion",  # a typo: wrong checksum
        42,
    ],
)
def test_bad_values_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"onion_location|onion address|checksum"):
        parse_onion_location(value)


def test_a_bad_setting_stops_the_server_with_a_clear_message(tmp_path: Path) -> None:
    import subprocess

    from tests.server_process import ROOT, SERVER_CMD

    instance = init_instance(tmp_path / "bad", config='onion_location = "http://example.org"\n')
    done = subprocess.run(
        [*SERVER_CMD, "run", "--data-dir", instance.data_dir, "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "onion_location: 'example.org' is not a v3 onion address" in done.stderr
    assert "Traceback" not in done.stderr
