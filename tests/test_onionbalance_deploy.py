"""deploy/onionbalance/: the backend's and the frontend's torrc are accepted by the
real tor (``tor --verify-config``), the backend's keeps the single machine's
defences, and the Onionbalance config parses and lists backends
(deploy/README.md, section 11)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from server.ops.tor_config import OnionService, TorConfigError, render_torrc, verify_torrc
from tests.test_tor_config import ONION

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
OB = DEPLOY / "onionbalance"


def options(torrc: str) -> set[str]:
    return {line.split()[0] for line in torrc.splitlines() if line and not line.startswith("#")}


def test_backend_torrc_verifies_and_serves_the_frontends_introductions(tmp_path: Path) -> None:
    rendered = render_torrc(
        (OB / "torrc.backend.tmpl").read_text(), OnionService(tmp_path / "hs", 8080)
    )
    assert "HiddenServiceOnionbalanceInstance 1" in rendered
    # Every option of the single machine's public service is kept.
    single = render_torrc(
        (DEPLOY / "torrc.source.tmpl").read_text(), OnionService(tmp_path / "hs", 8080)
    )
    assert options(single) <= options(rendered)
    # tor reads ob_config from the service directory and refuses to start without it.
    (tmp_path / "hs").mkdir(mode=0o700)
    frontend = ONION.removesuffix(".onion")
    ob_config = (OB / "ob_config.tmpl").read_text().replace("FRONTEND_ADDRESS", frontend)
    (tmp_path / "hs" / "ob_config").write_text(ob_config)
    torrc = tmp_path / "backend.torrc"
    torrc.write_text(f"DataDirectory {tmp_path}/data\n" + rendered)
    verify_torrc(torrc)
    (tmp_path / "hs" / "ob_config").write_text("MasterOnionAddress not-an-address.onion\n")
    with pytest.raises(TorConfigError):
        verify_torrc(torrc)


def test_frontend_torrc_verifies(tmp_path: Path) -> None:
    text = (
        (OB / "torrc.frontend.tmpl")
        .read_text()
        .replace("/run/tor/control", str(tmp_path / "control"))
    )
    torrc = tmp_path / "frontend.torrc"
    torrc.write_text(f"DataDirectory {tmp_path}/data\n" + text)
    verify_torrc(torrc)
    assert "HiddenServiceDir" not in options(text)  # the frontend's key is onionbalance's


def test_onionbalance_config_lists_backends_and_one_key() -> None:
    doc = yaml.safe_load((OB / "onionbalance.yaml.tmpl").read_text())
    [service] = doc["services"]
    assert service["key"].startswith("/etc/onionbalance/")
    assert len(service["instances"]) >= 2
    assert all(i["address"].endswith(".onion") for i in service["instances"])
    assert (OB / "ob_config.tmpl").read_text().startswith("MasterOnionAddress ")
