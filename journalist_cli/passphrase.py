"""Asking the user: a passphrase (from a file, for scripts, or a hidden prompt)
and the confirmation of a destructive step.

Neither is asked for without a terminal to answer on (cron, a pipe, a service):
that would fail as "interrupted" after a warning from getpass. The user is told
instead which option answers the question ahead of time.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from journalist_cli.errors import UsageProblem


def read_passphrase(
    path: Path | None, *, prompt: str, confirm: bool = False, option: str = "--passphrase-file"
) -> str:
    """The first line of ``path`` if given, otherwise a hidden prompt on the terminal.

    ``option`` names the command's option that gives the passphrase in a file.
    """
    if path is not None:
        try:
            return path.read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise UsageProblem(f"cannot read a passphrase from {path}") from exc
    if not _controlling_terminal():
        raise UsageProblem(
            f"{prompt}: there is no terminal to ask on; give it in a file with {option} FILE"
        )
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm, err=True))


def confirm_or_stop(question: str) -> None:
    """Ask ``question`` (yes/no) on the terminal; "no" stops the command (Abort)."""
    if not sys.stdin.isatty():
        raise UsageProblem(
            f"{question}? There is no terminal to ask on; add --yes to confirm ahead of time"
        )
    click.confirm(question, abort=True)


def _controlling_terminal() -> bool:
    """Whether getpass can prompt: it reads from /dev/tty, whatever stdin is."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True
