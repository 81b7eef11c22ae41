"""Entry point of `lanterne`: builds the command tree and maps errors to exit codes.

This is the one place where exceptions become user messages; commands raise
domain errors and never print tracebacks.
"""

from __future__ import annotations

import importlib
import sys

import click

import envelope
from journalist_cli.commands import HelpGroup
from journalist_cli.errors import CliError, ExitCode, UsageProblem
from journalist_cli.workflow_errors import LoginRefused, ObjectRefused, ServerError

# The one map from exceptions to exit codes (ExitCode is the table; the most
# specific class first). Click's own usage errors exit with USAGE as well.
EXIT_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (LoginRefused, ExitCode.LOGIN_REFUSED),
    (ServerError, ExitCode.SERVER),
    (ObjectRefused, ExitCode.DECRYPT_FAILED),
    (envelope.KeyFormatError, ExitCode.USAGE),
    (envelope.EnvelopeError, ExitCode.DECRYPT_FAILED),
    (UsageProblem, ExitCode.USAGE),
    (CliError, ExitCode.ERROR),
    (OSError, ExitCode.ERROR),
)


# Each command's module is imported only when that command runs: importing
# them all (httpx, rich, the cleaners) costs about 0.2 s, which would dominate
# `lanterne file decrypt` on small files and cost 40 % of the CPU on 1 GiB.
LAZY_COMMANDS = {
    "keys": "journalist_cli.commands.keys",
    "file": "journalist_cli.commands.file",
    "clean": "journalist_cli.commands.clean",
    "verify-site": "journalist_cli.commands.verify_site",
    "verify-receipt": "journalist_cli.commands.receipt",
    **dict.fromkeys(
        ("config", "signing-key", "pull", "import", "list", "show", "decrypt", "export"),
        "journalist_cli.commands.workflow",
    ),
    **dict.fromkeys(
        (
            "seen",
            "star",
            "tag",
            "assign",
            "note",
            "reply",
            "move",
            "ack",
            "keep",
            "feedback-period",
            "delete",
            "journalists",
        ),
        "journalist_cli.commands.triage",
    ),
}


class LazyGroup(HelpGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands or name not in LAZY_COMMANDS:
            return super().get_command(ctx, name)
        module = importlib.import_module(LAZY_COMMANDS[name])
        for value in vars(module).values():
            if isinstance(value, click.Command) and value.name == name:
                return value
        raise RuntimeError(f"{LAZY_COMMANDS[name]} does not define the command {name!r}")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lanterne")
def cli() -> None:
    """Lanterne: receive, decrypt, clean and answer submissions."""


def _fail(message: str, code: ExitCode) -> int:
    from journalist_cli.safe_text import terminal  # messages may quote the server

    click.secho(f"lanterne: {terminal(message)}", fg="red", err=True)
    return int(code)


def exit_code_of(exc: BaseException) -> ExitCode:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    raise exc


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (also used by the console script)."""
    try:
        # Without standalone mode, click returns ctx.exit()'s code instead of exiting.
        rv = cli.main(args=argv, prog_name="lanterne", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        return _fail("interrupted", ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except BrokenPipeError:
        return ExitCode.ERROR
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}", exit_code_of(exc))
    except (CliError, envelope.EnvelopeError) as exc:
        return _fail(str(exc), exit_code_of(exc))
    return rv if isinstance(rv, int) else ExitCode.OK


def console_main() -> None:
    """Console-script wrapper: exit with main()'s code."""
    sys.exit(main())
