"""Errors the CLI reports to the user, and the exit codes they end in.

    CliError                  a problem the user can act on (ExitCode.ERROR unless set)
    └── UsageProblem          wrong arguments or files (ExitCode.USAGE)

The workflow's errors (pull, vault, triage) extend this tree in
``journalist_cli.workflow_errors``. ``journalist_cli.main`` is the one place
where an exception, ours or ``envelope``'s, becomes a message and an exit code
from ``ExitCode``. Cleaning errors never get there: they are per-file results
in each file's report, and ``clean`` and ``decrypt`` sum up failures as a
``CliError``.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What `lanterne` exits with; the table in docs/JOURNALIST_GUIDE.md §6 is this one.

    Each code carries its ``meaning``, the words the guide prints beside it
    (a test checks that they agree and triggers every code with a real command).
    """

    meaning: str

    def __new__(cls, value: int, meaning: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    OK = 0, "done"
    ERROR = (
        1,
        "a problem to act on, which the message names: a wrong passphrase, a file that"
        " could not be written or cleaned, a rejected bundle, a damaged vault",
    )
    USAGE = (
        2,
        "wrong arguments: an unknown option or source, a file named on the command line"
        " that is missing or unreadable, a key file that is not one, an argument the server"
        " refused (its reason is shown), a signing identity asked to decrypt, a passphrase"
        " or confirmation asked for with no terminal to answer it",
    )
    DECRYPT_FAILED = (
        3,
        "an object failed authentication (altered, truncated) or is not encrypted to your"
        " key: nothing from it was written",
    )
    SERVER = (
        4,
        "the server could not be reached (Tor down, wrong address) or answered outside"
        " the API contract",
    )
    LOGIN_REFUSED = 5, "the server refused your key (not registered, or removed)"
    INTERRUPTED = 130, "interrupted (Ctrl-C)"


class CliError(Exception):
    """A problem the user can act on; the message is shown as is."""

    exit_code: ExitCode = ExitCode.ERROR


class UsageProblem(CliError):
    """The command was given arguments or files it cannot use."""

    exit_code = ExitCode.USAGE
