"""The README's first command, `scripts/demo.sh`, and the decryption steps it prints.

Runs the script as written (minus the install step, which the test suite's own
bootstrap already did), submits through the server it starts, then follows
the printed instructions with the journalist CLI to read the submission back.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import envelope
from tests.server_process import ROOT, SourceClient, free_port, free_port_block

# Real processes end to end: CI runs it, scripts/test.sh --fast does not (under two minutes).
pytestmark = pytest.mark.slow


def test_demo_script_serves_and_its_decrypt_steps_work(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    port = free_port_block(2)  # demo.sh serves the journalist API on PORT + 1
    env = {**os.environ, "DEMO_DIR": str(demo), "PORT": str(port), "LANTERNE_SKIP_BOOTSTRAP": "1"}
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/demo.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        printed = log.read_text()
        assert f"http://127.0.0.1:{port}/" in printed
        with SourceClient(f"http://127.0.0.1:{port}") as src:
            home = src.get("/en/").text
            assert "<strong>demo</strong>" in home
            # The demo's journalist list is signed by its newsroom key, shown to compare.
            newsroom = envelope.PublicKey.from_json((demo / "keys" / "newsroom.pub").read_bytes())
            assert envelope.newsroom_fingerprint(newsroom.signing_key) in home
            src.first_submission("demo message", [("tip.txt", b"demo file", "text/plain")])
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)

    def run(cmd: str) -> str:
        cmd = cmd.split("#", 1)[0].strip()
        result = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, (cmd, result.stderr)
        return result.stdout

    steps = [line.strip() for line in printed.splitlines() if line.strip().startswith(".venv/")]
    listing = run(steps[0])
    kinds = dict(re.findall(r"(manifest|message|file)\s+\S+/objects/([0-9a-f]{32})", listing))
    assert set(kinds) == {"manifest", "message", "file"}
    manifest = json.loads(run(steps[1].replace("<manifest id>", kinds["manifest"])))
    assert manifest["files"][0]["name"] == "tip.txt"
    assert run(steps[2].replace("<message id>", kinds["message"])) == "demo message"
    out = tmp_path / "tip.txt"
    run(steps[3].replace("<file name>", str(out)).replace("<file id>", kinds["file"]))
    assert out.read_bytes() == b"demo file"


def test_demo_journalist_workflow_steps_work(tmp_path: Path) -> None:
    """The second set of printed steps: config, pull, list, decrypt through the API."""
    demo = tmp_path / "demo"
    port = free_port()
    env = {
        **os.environ,
        "DEMO_DIR": str(demo),
        "PORT": str(port),
        "JOURNALIST_PORT": str(free_port()),
        "LANTERNE_SKIP_BOOTSTRAP": "1",
    }
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/demo.sh"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "journalist API on" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        with SourceClient(f"http://127.0.0.1:{port}") as src:
            src.first_submission(
                "via the API", [("note.txt", b"pulled and decrypted", "text/plain")]
            )
        steps = [
            line.split("#", 1)[0].strip()
            for line in log.read_text().splitlines()
            if line.strip().startswith("LANTERNE_HOME=")
        ]
        assert len(steps) == 4
        for cmd in steps[:3]:
            done = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True)
            assert done.returncode == 0, (cmd, done.stderr)
        # What a user does: read the designation off the table, type it back.
        rows = done.stdout.splitlines()
        header = next(i for i, line in enumerate(rows) if line.split()[:1] == ["source"])
        designation = " ".join(rows[header + 1].split()[:2])
        assert re.fullmatch(r"[a-z]+ [a-z]+", designation), done.stdout
        cmd = steps[3].replace("<source>", f'"{designation}"')
        done = subprocess.run(cmd, shell=True, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, (cmd, done.stderr)
        received = [p for p in (demo / "received").rglob("note.txt") if p.is_file()]
        assert any(p.read_bytes() == b"pulled and decrypted" for p in received), received
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
