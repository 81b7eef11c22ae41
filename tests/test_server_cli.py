"""`lanterne-server` as an admin meets it, and `--help` of both commands.

`-h` and `--version` work as in `lanterne`; every option says what it is for;
`--data-dir` can come from LANTERNE_DATA_DIR; a port already in use is one
clear line and exit 1, with no "serving on" line before it and no traceback;
no command description in any `--help` is cut off with "...".
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from journalist_cli.main import cli as lanterne_cli
from server.ops.admin import main as server_cli
from tests.cli_helpers import LANTERNE
from tests.server_process import ROOT, Instance, init_instance

# Real processes end to end: CI runs it, scripts/test.sh --fast does not (under two minutes).
pytestmark = pytest.mark.slow

SERVER = shutil.which("lanterne-server", path=str(Path(sys.executable).parent)) or "lanterne-server"


def admin(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SERVER, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80", **(env or {})},
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_short_help_and_version_like_lanterne() -> None:
    long, short = admin("--help"), admin("-h")
    assert long.returncode == short.returncode == 0
    assert short.stdout == long.stdout and long.stdout.startswith("Usage: lanterne-server ")
    version = admin("--version")
    assert version.returncode == 0
    mine = subprocess.run([LANTERNE, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout == mine.stdout.replace("lanterne,", "lanterne-server,")
    assert admin("run", "-h").stdout == admin("run", "--help").stdout


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None
        yield " ".join((*path, name)), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*path, name))


def test_every_server_option_has_help_text() -> None:
    missing = [
        f"{name} {param.opts[0]}"
        for name, cmd in _commands(server_cli)
        for param in cmd.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert missing == []


def test_data_dir_from_the_environment(tmp_path: Path) -> None:
    data = tmp_path / "instance"
    env = {"LANTERNE_DATA_DIR": str(data)}
    done = admin("init", env=env)
    assert done.returncode == 0, done.stderr
    assert (data / "secrets.json").is_file()
    listed = admin("list", env=env)
    assert listed.returncode == 0 and "No submission yet." in listed.stdout
    assert "LANTERNE_DATA_DIR" in admin("run", "--help").stdout
    # The option still wins over the environment.
    other = tmp_path / "other"
    assert admin("init", "--data-dir", other, env=env).returncode == 0
    assert (other / "secrets.json").is_file()
    unset = admin("list", env={"LANTERNE_DATA_DIR": ""})
    assert unset.returncode == 2 and "--data-dir" in unset.stderr


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Instance:
    return init_instance(tmp_path_factory.mktemp("server-cli"))


@pytest.mark.parametrize("which", ["--port", "--journalist-port"])
def test_a_port_in_use_is_one_line_and_exit_1(instance: Instance, which: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]  # released before the server binds it
        args = ["--port", busy] if which == "--port" else ["--port", free, which, busy]
        done = subprocess.run(
            [SERVER, "run", "--data-dir", instance.data_dir, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(busy) in lines[0] and "already in use" in lines[0]
    assert "Traceback" not in done.stderr and "Lanterne source interface on" not in done.stderr
    assert done.stdout == ""


# --- --help of both commands: no description cut off ---------------------------------


def _help_pages(group: click.Group, prog: str) -> Iterator[tuple[str, str]]:
    from click.testing import CliRunner

    runner = CliRunner()
    paths = [()] + [
        tuple(name.split()) for name, cmd in _commands(group) if isinstance(cmd, click.Group)
    ]
    for path in paths:
        result = runner.invoke(group, [*path, "--help"], prog_name=prog, terminal_width=80)
        assert result.exit_code == 0, result.output
        yield " ".join((prog, *path)), result.output


@pytest.mark.parametrize(
    ("group", "prog"), [(lanterne_cli, "lanterne"), (server_cli, "lanterne-server")]
)
def test_no_command_description_is_cut_off(group: click.Group, prog: str) -> None:
    pages = dict(_help_pages(group, prog))
    assert len(pages) > 1  # the top level and its subgroups
    for where, text in pages.items():
        listing = text[text.index("Commands:") :]
        assert "..." not in listing and "…" not in listing, (where, listing)
        # Each command's description ends its first sentence.
        entries = " ".join(listing.split()[1:])
        assert entries.endswith("."), (where, listing)
