"""Getting a passphrase from the user: a file (for scripts) or a hidden prompt."""

from __future__ import annotations

from pathlib import Path

import click

from journalist_cli.errors import UsageProblem


def read_passphrase(path: Path | None, *, prompt: str, confirm: bool = False) -> str:
    """The first line of ``path`` if given, otherwise a hidden prompt on the terminal."""
    if path is not None:
        try:
            return path.read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise UsageProblem(f"cannot read a passphrase from {path}") from exc
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True))
