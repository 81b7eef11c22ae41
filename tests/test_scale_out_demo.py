"""scripts/scale-out-demo.sh, the README's third command: it starts PostgreSQL,
moto's S3 server and two instances on one config.toml, prints their
addresses, serves a submission made on one instance to a login on the other,
and Ctrl-C stops everything and removes its temporary directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.server_process import ROOT, SourceClient, free_port_block

# slow: PostgreSQL, moto and two servers started and stopped (about 15 s).
pytestmark = pytest.mark.slow


def test_the_scale_out_demo_runs_two_instances_and_cleans_up(tmp_path: Path) -> None:
    port = free_port_block(4)  # two instances: PORT to PORT + 3
    env = {**os.environ, "LANTERNE_SKIP_BOOTSTRAP": "1", "PORT": str(port)}
    proc = subprocess.Popen(
        [ROOT / "scripts" / "scale-out-demo.sh"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches it
    )
    try:
        out = ""
        assert proc.stdout is not None
        for line in proc.stdout:
            out += line
            if "Ctrl-C stops" in line or proc.poll() is not None:
                break
        urls = re.findall(r"source interface (http://127\.0\.0\.1:\d+)/", out)
        assert urls == [f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 2}"], out
        base_match = re.search(r"logs:\s+(\S+)/instance-1\.log", out)
        assert base_match, out
        base = Path(base_match.group(1))
        assert (base / "instance" / "config.toml").read_text().startswith("[database]")

        with SourceClient(urls[0]) as first:
            codename = first.first_submission("LNTCANARY-demo-message", None)
        with SourceClient(urls[1]) as second:
            assert second.login(codename).status_code == 303  # the other instance knows it
        assert list((base / "instance" / "objects").iterdir()) == []
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does
        rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out + rest
    assert "removed" in rest
    assert not base.exists()
