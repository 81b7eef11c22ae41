"""deploy/install.sh for real, as root, then the services started as their units
would start them, then `lanterne-server check`: it passes; a world-readable data
directory and an invalid torrc make it fail, each with a clear message.

This machine has no systemd as PID 1, so the script installs the units without
starting anything; the test then runs the unit's ExecStart as its User with its
UMask, and each tor as its Debian unit would (its user, its data directory),
all under ``LANTERNE_PREFIX`` so nothing clashes with a real installation:
``$LANTERNE_INSTALL_TEST_PREFIX`` or /var/tmp/lanterne-install-test. Safe to run
again: the install is idempotent (the venv is kept between runs, everything
else under the prefix is made afresh), and every process is stopped by PID.
The tors cannot bootstrap (no internet); they only need to start, write their
onion keys and accept the torrcs, which is what `check` and `onions` look at.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from journalist_cli.identity_store import JournalistIdentity, write_new_identity
from server.ops.tor_config import ClientAuthKey, DebianLayout, read_onion_hostname
from server.store import file_times
from tests.server_process import ROOT, free_port

pytestmark = pytest.mark.e2e

PREFIX = Path(os.environ.get("LANTERNE_INSTALL_TEST_PREFIX", "/var/tmp/lanterne-install-test"))
APP_USER = "lanterne"


@dataclass
class Installed:
    prefix: Path
    layout: DebianLayout
    venv: Path
    data_dir: Path
    log: str
    processes: list[subprocess.Popen[bytes]]

    @property
    def server(self) -> Path:
        return self.venv / "bin" / "lanterne-server"

    def admin(self, *args: object) -> subprocess.CompletedProcess[str]:
        """The installed lanterne-server, run as root, as the admin runs it."""
        return subprocess.run(
            [self.server, *map(str, args)], capture_output=True, text=True, timeout=120
        )

    def check(self) -> subprocess.CompletedProcess[str]:
        return self.admin("check", "--data-dir", self.data_dir, "--layout-prefix", self.prefix)


def _fresh_prefix() -> None:
    """Keep the venv (pip is the slow part; reinstalling over it is the upgrade
    path), remove everything else a previous run left."""
    PREFIX.mkdir(mode=0o755, parents=True, exist_ok=True)
    PREFIX.chmod(0o755)  # the service users must traverse it
    for entry in PREFIX.iterdir():
        if entry.name != "opt":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _unit_exec(unit: Path) -> tuple[list[str], str]:
    fields = {}
    for line in unit.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("ExecStart", "User"):
            fields[key] = value
    return shlex.split(fields["ExecStart"]), fields["User"]


def _as_user(user: str, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    entry = pwd.getpwnam(user)
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            user=entry.pw_uid,
            group=entry.pw_gid,
            extra_groups=[],
            umask=0o077,  # the unit's UMask=
            env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/"},
            cwd="/",
        )


def _wait_for(what: str, ready: object, procs: list[subprocess.Popen[bytes]], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{p.args!r} exited: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError):
            if ready():  # type: ignore[operator]
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    assert os.geteuid() == 0, "the install test runs as root (CI does)"
    assert shutil.which("tor"), "tor is required (apt-get install tor)"
    _fresh_prefix()
    source_port, api_port = free_port(), free_port()
    env = {
        **os.environ,
        "LANTERNE_PREFIX": str(PREFIX),
        "LANTERNE_SOURCE_PORT": str(source_port),
        "LANTERNE_JOURNALIST_PORT": str(api_port),
        # tor and python3-venv are bootstrap requirements of the test machine;
        # apt would need the network.
        "LANTERNE_SKIP_APT": "1",
    }
    done = subprocess.run(
        [ROOT / "deploy" / "install.sh"], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    layout = DebianLayout(prefix=PREFIX, source_port=source_port, journalist_port=api_port)
    logs = tmp_path_factory.mktemp("install-logs")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        argv, user = _unit_exec(PREFIX / "etc" / "systemd" / "system" / "lanterne.service")
        assert user == APP_USER
        procs.append(_as_user(user, argv, logs / "app.log"))
        # Each tor as its Debian unit runs it: its user and data directory
        # (the defaults files name the real ones, hence the options here).
        instance_home = layout.journalist.hs_dir.parent
        for tor_user, torrc, data_dir in (
            ("debian-tor", layout.source_torrc, layout.source.hs_dir.parent),
            ("_tor-lanternejournalist", layout.journalist_torrc, instance_home),
        ):
            procs.append(
                _as_user(
                    tor_user,
                    ["tor", "-f", str(torrc), "--DataDirectory", str(data_dir),
                     "--Log", "notice stdout", "--GeoIPFile", "", "--GeoIPv6File", ""],
                    logs / f"{tor_user}.log",
                )
            )  # fmt: skip
        for port in (source_port, api_port):
            _wait_for(
                f"the app on {port}",
                lambda p=port: socket.create_connection(("127.0.0.1", p), 0.2).close() or True,
                procs,
                logs / "app.log",
            )
        for hs in (layout.source.hs_dir, layout.journalist.hs_dir):
            _wait_for(f"{hs}/hostname", (hs / "hostname").exists, procs, logs / "app.log")
        yield Installed(PREFIX, layout, PREFIX / "opt/lanterne/venv", PREFIX / "var/lib/lanterne",
                        done.stdout, procs)  # fmt: skip
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_install_then_check_passes(installed: Installed, tmp_path: Path) -> None:
    assert "torrcs verified" in installed.log
    assert f"lanterne-server check --data-dir {installed.data_dir}" in installed.log
    link = installed.prefix / "usr/local/sbin/lanterne-server"
    assert link.resolve() == installed.server.resolve()
    data = installed.data_dir
    assert data.stat().st_mode & 0o777 == 0o700
    assert data.owner() == APP_USER
    # The app runs as the service user, from the root-owned venv.
    assert installed.venv.owner() == "root"
    # The daily digest: its unit runs `digest` as the service user on this data
    # directory, its timer at a fixed time; the password file is root's, 0600.
    units = installed.prefix / "etc" / "systemd" / "system"
    argv, user = _unit_exec(units / "lanterne-digest.service")
    assert argv[1:] == ["digest", "--data-dir", str(data)] and user == APP_USER
    assert "OnCalendar=*-*-* 07:00:00 UTC" in (units / "lanterne-digest.timer").read_text()
    env_file = installed.prefix / "etc" / "lanterne" / "digest.env"
    assert env_file.owner() == "root" and env_file.stat().st_mode & 0o777 == 0o600
    assert f"EnvironmentFile=-{env_file}" in (units / "lanterne-digest.service").read_text()

    # The admin adds a journalist: key registered, onion client key written.
    keys = tmp_path / "keys"
    write_new_identity(JournalistIdentity.generate("alice"), keys, None)
    auth = tmp_path / "alice.auth_private"
    done = installed.admin(
        "journalists", "add", "--data-dir", data, "--client-auth-out", auth,
        "--hs-dir", installed.layout.journalist.hs_dir, keys / "alice.pub",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    journalist_onion = read_onion_hostname(installed.layout.journalist.hs_dir)
    assert f"journalist onion: http://{journalist_onion}/" in done.stdout
    # No systemd here: the admin is told what to run.
    assert "systemctl reload tor@lanternejournalist.service" in done.stdout
    assert ClientAuthKey.from_private_line(auth.read_text())[0] == journalist_onion
    auth_file = installed.layout.journalist.hs_dir / "authorized_clients" / "alice.auth"
    assert auth_file.owner() == "_tor-lanternejournalist"  # tor must read what root wrote

    onions = installed.admin("onions", "--layout-prefix", installed.prefix)
    assert onions.returncode == 0, onions.stdout
    source_onion = read_onion_hostname(installed.layout.source.hs_dir)
    assert f"source interface: http://{source_onion}/" in onions.stdout

    check = installed.check()
    assert check.returncode == 0, check.stdout + check.stderr
    assert "all checks passed" in check.stdout
    # Nothing under the data directory is the admin's (root's) after these commands.
    # Listed with O_NOATIME, as `check` does: a plain listing would set precise
    # access times on the directories, which the next `check` reports.
    for path in file_times.walk(data):
        assert path.owner() == APP_USER, path


def test_backup_and_restore_for_the_service_user(installed: Installed, tmp_path: Path) -> None:
    admin = JournalistIdentity.generate("admin")
    write_new_identity(admin, tmp_path, None)
    backup = tmp_path / "instance.backup"
    done = installed.admin(
        "backup", "--data-dir", installed.data_dir, "--to", backup,
        "--signing-key", tmp_path / "admin.identity",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    restored = installed.prefix / "var/lib/lanterne-restored"
    shutil.rmtree(restored, ignore_errors=True)
    done = installed.admin(
        "restore", "--data-dir", restored, "--from", backup,
        "--identity", tmp_path / "admin.identity", "--owner", APP_USER,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        for path in (restored, *restored.rglob("*")):
            assert path.owner() == APP_USER, path
        check = installed.admin(
            "check", "--data-dir", restored, "--layout-prefix", installed.prefix
        )
        # Permissions and keys as check wants them (the other items depend on
        # what the other tests registered).
        assert f"ok    permissions: {restored} and everything in it private" in check.stdout
        assert "ok    keys:" in check.stdout and "ok    database:" in check.stdout
    finally:
        shutil.rmtree(restored)


def test_misconfiguration_makes_check_fail_clearly(installed: Installed) -> None:
    data = installed.data_dir
    torrc = installed.layout.journalist_torrc
    original = torrc.read_text()
    try:
        data.chmod(0o755)
        torrc.write_text(original + "HiddenServiceVersion 2\n")
        check = installed.check()
        assert check.returncode == 1
        out = check.stdout
        assert f"FAIL  permissions: the data directory ({data}) is open to group and others" in out
        assert f"chmod 700 {data}" in out
        assert f"FAIL  journalist torrc: {torrc} does not verify" in out
        assert "ok    source torrc" in out
        assert check.stderr.strip() == "2 problem(s) found"
    finally:
        data.chmod(0o700)
        torrc.write_text(original)
    assert installed.check().returncode == 0
