"""The `lanterne` command tree: lazily loaded, complete, and light to start."""

from __future__ import annotations

import subprocess
import sys

import click

from journalist_cli.main import LAZY_COMMANDS, cli


def test_every_lazy_command_resolves_to_its_click_command() -> None:
    ctx = click.Context(cli)
    for name in LAZY_COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name


def test_starting_the_cli_does_not_import_the_network_or_cleaning_stacks() -> None:
    code = (
        "import sys, journalist_cli.main; "
        "print(sorted(m for m in ('httpx', 'rich', 'PIL', 'pikepdf') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
