"""Journalists' onion client authorisation, as the admin commands manage it.

Adding a journalist writes ``authorized_clients/<name>.auth`` into the
journalist onion's HiddenServiceDir and the journalist's own
``.auth_private`` file, then RELOADS the journalist tor. Removing one deletes
the ``.auth`` and RESTARTS that tor: a reload keeps the introduction points
and open circuits, and the removed key still got in for over a minute
(server/ops/tor_config.py, remove_authorized_client).

How tor is told: ``TorControl``. On a systemd host it is ``systemctl reload``
or ``restart`` of ``tor@lanternejournalist``; elsewhere (a container, the CI
machine) the command is printed for the admin to run; tests pass commands of
their own (``--tor-reload-cmd``/``--tor-restart-cmd``), which is the seam.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from server.ops.tor_config import (
    DebianLayout,
    TorConfigError,
    new_client,
    read_onion_hostname,
    remove_authorized_client,
)

SYSTEMD_RUNNING = Path("/run/systemd/system")  # sd_booted(): systemd is PID 1


def client_name(journalist: str) -> str:
    """The tor client name for a journalist (tor's names take no '.')."""
    return journalist.replace(".", "_")


@dataclass(frozen=True)
class TorControl:
    """How to reload or restart the journalist tor; ``None`` means: tell the admin."""

    reload_cmd: list[str] | None
    restart_cmd: list[str] | None
    manual_reload: str
    manual_restart: str

    @classmethod
    def from_options(
        cls,
        reload_cmd: str | None,
        restart_cmd: str | None,
        layout: DebianLayout | None = None,
        systemd_running: Path = SYSTEMD_RUNNING,
    ) -> TorControl:
        unit = (layout or DebianLayout()).journalist_unit
        systemd = systemd_running.is_dir()
        default_reload = ["systemctl", "reload", unit]
        default_restart = ["systemctl", "restart", unit]
        return cls(
            reload_cmd=shlex.split(reload_cmd)
            if reload_cmd
            else (default_reload if systemd else None),
            restart_cmd=shlex.split(restart_cmd)
            if restart_cmd
            else (default_restart if systemd else None),
            manual_reload=shlex.join(default_reload),
            manual_restart=shlex.join(default_restart),
        )

    def reload(self, say: Callable[[str], None]) -> None:
        self._run(self.reload_cmd, self.manual_reload, "reload", say)

    def restart(self, say: Callable[[str], None]) -> None:
        self._run(self.restart_cmd, self.manual_restart, "restart", say)

    @staticmethod
    def _run(cmd: list[str] | None, manual: str, what: str, say: Callable[[str], None]) -> None:
        if cmd is None:
            say(f"systemd is not running here: {what} the journalist tor yourself: {manual}")
            return
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise TorConfigError(
                f"`{shlex.join(cmd)}` failed ({done.returncode}): {done.stderr.strip()[:300]}"
                f" -- run it again until it succeeds"
            )
        say(f"journalist tor: {what} done ({shlex.join(cmd)})")


def authorize_journalist(hs_dir: Path, name: str, private_out: Path) -> str:
    """Write the journalist's client key pair; the journalist onion's address."""
    new_client(hs_dir, client_name(name), private_out)
    return read_onion_hostname(hs_dir)


def revoke_journalist(hs_dir: Path, name: str) -> bool:
    """Delete the journalist's ``.auth``; True if there was one (then RESTART tor)."""
    return remove_authorized_client(hs_dir, client_name(name))


@dataclass(frozen=True)
class Onions:
    source: str | None
    journalist: str | None


def onion_addresses(source_hs: Path, journalist_hs: Path) -> Onions:
    def read(hs: Path) -> str | None:
        try:
            return read_onion_hostname(hs)
        except TorConfigError:
            return None

    return Onions(read(source_hs), read(journalist_hs))
