"""Entry point of `lanterne`: builds the command tree and maps errors to exit codes.

This is the one place where exceptions become user messages; commands raise
domain errors and never print tracebacks.
"""

from __future__ import annotations

import sys

import click

import envelope
from journalist_cli.commands.clean import clean_command
from journalist_cli.commands.file import file_group
from journalist_cli.commands.keys import keys_group
from journalist_cli.commands.triage import TRIAGE_COMMANDS
from journalist_cli.commands.workflow import WORKFLOW_COMMANDS
from journalist_cli.errors import CliError
from journalist_cli.workflow_errors import LoginRefused, ObjectRefused, ServerError

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DECRYPT_FAILED = 3
EXIT_SERVER = 4  # the journalist API cannot be reached or broke the contract
EXIT_LOGIN_REFUSED = 5  # the server refused this journalist's key
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lanterne")
def cli() -> None:
    """Lanterne: receive, decrypt, clean and answer submissions."""


cli.add_command(keys_group)
cli.add_command(file_group)
cli.add_command(clean_command)
for _command in (*WORKFLOW_COMMANDS, *TRIAGE_COMMANDS):
    cli.add_command(_command)


def _fail(message: str, code: int) -> int:
    click.secho(f"lanterne: {message}", fg="red", err=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (also used by the console script)."""
    try:
        # Without standalone mode, click returns ctx.exit()'s code instead of exiting.
        rv = cli.main(args=argv, prog_name="lanterne", standalone_mode=False)
    except click.exceptions.Abort:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except LoginRefused as exc:
        return _fail(str(exc), EXIT_LOGIN_REFUSED)
    except ServerError as exc:
        return _fail(str(exc), EXIT_SERVER)
    except ObjectRefused as exc:
        return _fail(str(exc), EXIT_DECRYPT_FAILED)
    except envelope.KeyFormatError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except envelope.EnvelopeError as exc:
        return _fail(str(exc), EXIT_DECRYPT_FAILED)
    except CliError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", EXIT_ERROR)
    return rv if isinstance(rv, int) else EXIT_OK


def console_main() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())
