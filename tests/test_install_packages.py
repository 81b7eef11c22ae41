"""deploy/install.sh asks apt for what the server needs, libpq5 included
(psycopg's C library, for a server on PostgreSQL: docs/SCALE_OUT.md).

apt-get and dpkg-query are replaced on PATH by scripts that record what they
are asked and say that nothing is installed; the fake ``apt-get install``
fails, so the installer stops right after step 1 and changes nothing else.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.server_process import ROOT


def test_install_asks_apt_for_libpq5(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    asked = tmp_path / "apt-args"
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")  # nothing installed
    (bin_dir / "apt-get").write_text(
        f'#!/bin/sh\necho "$@" >> {asked}\n[ "$1" = update ] && exit 0\nexit 100\n'
    )
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "LANTERNE_PREFIX": str(tmp_path / "root"),
        "LANTERNE_VENV": str(tmp_path / "venv"),
        "LANTERNE_DATA_DIR": str(tmp_path / "data"),
    }
    ran = subprocess.run(
        [ROOT / "deploy" / "install.sh"], env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 100, ran.stdout + ran.stderr  # stopped at the fake apt-get install
    installs = [line.split() for line in asked.read_text().splitlines() if "install" in line]
    assert len(installs) == 1
    assert {"tor", "python3-venv", "libpq5"} <= set(installs[0])
    assert not (tmp_path / "venv").exists() and not (tmp_path / "data").exists()
