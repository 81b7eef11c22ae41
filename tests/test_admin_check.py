"""`lanterne-server check`: passes on a good instance; reports every failing item at once."""

from __future__ import annotations

import datetime
import getpass
import subprocess
from pathlib import Path

import pytest

from server.ops.health_check import RELEASE_DATE, CheckConfig, Finding, run_checks
from server.ops.tor_config import ClientAuthKey, OnionService, add_authorized_client, render_torrc
from tests.server_process import ROOT, SERVER_CMD, make_journalist

# Real processes end to end: CI runs it, scripts/test.sh --fast does not (under two minutes).
pytestmark = pytest.mark.slow

TEMPLATES = ROOT / "deploy"
ME = getpass.getuser()


def good_instance(base: Path) -> dict[str, Path]:
    """An instance as install.sh leaves it, owned by the test's user, with its torrcs."""
    keys = base / "keys"
    keys.mkdir()
    journalist = make_journalist(keys, "alice")
    data = base / "data"
    subprocess.run(
        [*SERVER_CMD, "init", "--data-dir", data, "--journalist", journalist.pub_path],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    paths = {"data": data}
    for name in ("source", "journalist"):
        hs = base / f"{name}-hs"
        hs.mkdir(mode=0o700)
        torrc = base / f"{name}.torrc"
        # A DataDirectory of its own: without Debian's defaults file, tor's
        # default would be root's home.
        torrc.write_text(
            f"DataDirectory {base}/{name}-tor\n"
            + render_torrc((TEMPLATES / f"torrc.{name}.tmpl").read_text(), OnionService(hs, 8080))
        )
        paths[f"{name}_torrc"] = torrc
        paths[f"{name}_hs"] = hs
    add_authorized_client(paths["journalist_hs"], "alice", ClientAuthKey.generate().public_key)
    return paths


def check_cli(paths: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *SERVER_CMD,
            "check",
            "--data-dir",
            paths["data"],
            "--service-user",
            ME,
            "--source-torrc",
            paths["source_torrc"],
            "--journalist-torrc",
            paths["journalist_torrc"],
            "--hs-dir",
            paths["journalist_hs"],
            "--no-debian-defaults",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def config(paths: dict[str, Path], tmp: Path, swaps: str = "") -> CheckConfig:
    proc_swaps = tmp / "swaps"
    proc_swaps.write_text("Filename\tType\tSize\tUsed\tPriority\n" + swaps)
    return CheckConfig(
        data_dir=paths["data"],
        service_user=ME,
        source_torrc=paths["source_torrc"],
        journalist_torrc=paths["journalist_torrc"],
        journalist_hs_dir=paths["journalist_hs"],
        debian_defaults=False,
        proc_swaps=proc_swaps,
        sys_root=tmp / "sys",
    )


def failures(findings: list[Finding]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in findings:
        if not f.ok:
            out.setdefault(f.item, []).append(f.message)
    return out


def test_good_instance_passes(tmp_path: Path) -> None:
    paths = good_instance(tmp_path)
    done = check_cli(paths)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all checks passed" in done.stdout
    for item in ("permissions", "keys", "database", "journalists", "source torrc", "swap", "clock"):
        assert f"ok    {item}:" in done.stdout, item
    assert "FAIL" not in done.stdout


def test_every_failure_is_reported_together(tmp_path: Path) -> None:
    paths = good_instance(tmp_path)
    paths["data"].chmod(0o755)  # world-readable data directory
    (paths["data"] / "lanterne.sqlite3").chmod(0o640)  # group-readable database
    torrc = paths["journalist_torrc"]
    torrc.write_text(torrc.read_text() + "HiddenServicePort not-a-port\n")  # invalid torrc
    done = check_cli(paths)
    assert done.returncode == 1
    out = done.stdout
    assert "Traceback" not in done.stderr
    data = paths["data"]
    assert f"FAIL  permissions: the data directory ({data}) is open to group and others" in out
    assert f"chmod 700 {data}" in out
    assert "lanterne.sqlite3 (" in out and "is open to group (mode 0640)" in out
    assert f"chmod 600 {data / 'lanterne.sqlite3'}" in out
    assert f"FAIL  journalist torrc: {torrc} does not verify" in out
    assert "ok    source torrc" in out  # the other torrc is still checked, and fine
    assert done.stderr.strip() == "3 problem(s) found"


def test_keys_ownership_and_client_auth_problems(tmp_path: Path) -> None:
    paths = good_instance(tmp_path)
    (paths["data"] / "secrets.json").unlink()
    (paths["data"] / "objects" / "stray").symlink_to("/etc/passwd")
    # bob was removed from the database but his onion key was left behind.
    add_authorized_client(paths["journalist_hs"], "bob", ClientAuthKey.generate().public_key)
    cfg = config(paths, tmp_path)
    cfg.service_user = "nobody"
    found = failures(run_checks(cfg))
    assert any("secrets.json is missing" in m for m in found["keys"])
    perms = "\n".join(found["permissions"])
    assert "stray is a symbolic link" in perms
    assert f"is owned by {ME}" in perms and "not nobody" in perms
    assert found["client authorisation"] == [
        "keys of journalists no longer registered are still authorised: bob"
        " (`lanterne-server journalists remove NAME`, then restart the journalist tor)"
    ]


def test_empty_authorized_clients_means_open_to_anyone(tmp_path: Path) -> None:
    paths = good_instance(tmp_path)
    (paths["journalist_hs"] / "authorized_clients" / "alice.auth").unlink()
    found = failures(run_checks(config(paths, tmp_path)))
    assert "open to anyone" in found["client authorisation"][0]


def _block(sys_root: Path, name: str, uuid: str | None = None) -> Path:
    path = sys_root / "block" / name
    path.mkdir(parents=True)
    if uuid is not None:
        (path / "dm").mkdir()
        (path / "dm" / "uuid").write_text(uuid + "\n")
    return path


@pytest.mark.parametrize(
    ("swaps", "bad"),
    [
        ("", None),
        ("/dev/zram0 partition 1024 0 100\n", None),
        ("/dev/dm-0 partition 1024 0 -2\n", None),
        ("/dev/dm-1 partition 1024 0 -2\n", None),  # LVM on LUKS
        ("/dev/sda2 partition 1024 0 -2\n", "/dev/sda2"),
        ("/dev/dm-2 partition 1024 0 -2\n", "/dev/dm-2"),  # plain LVM
        ("/dev/zram0 partition 1 0 1\n/dev/sda2 partition 1 0 -2\n", "/dev/sda2"),
    ],
)
def test_swap_must_be_encrypted_or_in_ram(tmp_path: Path, swaps: str, bad: str | None) -> None:
    paths = good_instance(tmp_path)
    sys_root = tmp_path / "sys"
    _block(sys_root, "zram0")
    _block(sys_root, "sda2")
    _block(sys_root, "dm-0", "CRYPT-LUKS2-0123-swap")
    lvm = _block(sys_root, "dm-1", "LVM-abc")
    (lvm / "slaves").mkdir()
    (lvm / "slaves" / "dm-0").symlink_to(sys_root / "block" / "dm-0")
    _block(sys_root, "dm-2", "LVM-def")
    found = failures(run_checks(config(paths, tmp_path, swaps)))
    if bad is None:
        assert "swap" not in found
    else:
        [message] = found["swap"]
        assert message.startswith(f"unencrypted swap: {bad} (")


def test_clock_before_the_release_fails(tmp_path: Path) -> None:
    paths = good_instance(tmp_path)
    cfg = config(paths, tmp_path)
    cfg.today = lambda: RELEASE_DATE - datetime.timedelta(days=1)
    found = failures(run_checks(cfg))
    assert list(found) == ["clock"]
    assert "before this release" in found["clock"][0]
    cfg.today = lambda: RELEASE_DATE
    assert failures(run_checks(cfg)) == {}
