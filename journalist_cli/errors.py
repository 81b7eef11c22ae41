"""Errors the CLI reports to the user.

    CliError                  a problem the user can act on (exit code 1 unless set)
    └── UsageProblem          wrong arguments or files (exit code 2)

Domain errors from other packages (``envelope.EnvelopeError`` and the
cleaning errors) are mapped to messages in ``journalist_cli.main``.
"""


class CliError(Exception):
    """A problem the user can act on; the message is shown as is."""

    exit_code = 1


class UsageProblem(CliError):
    """The command was given arguments or files it cannot use."""

    exit_code = 2
