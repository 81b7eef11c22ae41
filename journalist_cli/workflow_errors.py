"""Errors of the journalist workflow (pull, vault, bundles, decryption, triage).

    CliError (journalist_cli.errors)
    ├── NotConfigured          `lanterne config` was not run, or lacks what this command needs
    ├── ServerError            the server is unreachable or answered outside the contract (exit 4)
    │   └── LoginRefused       the server refused this journalist's key or token (exit 5)
    ├── ObjectRefused          a stored object failed authentication or cannot be opened (exit 3)
    ├── UnknownSource          no source matches the id, prefix or designation given (exit 2)
    ├── RequestRefused         the server refused an argument, and said why (exit 2)
    ├── UnverifiedKeys         the server lists journalist keys this vault has not accepted
    ├── ReplyRefused           the source deleted their account, or its reply key changed
    ├── BundleRejected         an air-gap bundle failed validation; nothing was imported
    └── VaultError             the local vault is damaged or locked
        └── OutputConflict     an output folder belongs to another source or submission

Exit codes (``journalist_cli.errors.ExitCode``) are assigned in ``journalist_cli.main``
and nowhere else.
"""

from __future__ import annotations

from journalist_cli.errors import CliError, UsageProblem


class NotConfigured(UsageProblem):
    """This command needs a setting that `lanterne config` has not recorded yet."""


class ServerError(CliError):
    """The server could not be reached, or its answer does not follow the API contract."""


class LoginRefused(ServerError):
    """The server refused to authenticate this journalist (unknown or removed key)."""


class ObjectRefused(CliError):
    """A stored envelope failed authentication, or none of our keys opens it."""


class UnknownSource(UsageProblem):
    """No source, or more than one, matches what was typed."""


class RequestRefused(UsageProblem):
    """The server refused what was asked (a malformed tag, an unknown journalist...).

    The server answered within the contract (400 or 413) with its reason,
    which is the message: the argument is wrong, not the connection.
    """


class UnverifiedKeys(CliError):
    """The server lists journalist keys that were not accepted in this vault yet.

    Notes and replies are encrypted to every key the server lists; a key the
    server added on its own would let it read them, so new or changed keys
    must be compared aloud and accepted with `lanterne journalists --accept`.
    """


class BundleRejected(CliError):
    """An air-gap bundle is malformed or hostile; nothing from it was imported."""


class VaultError(CliError):
    """The local vault cannot be used (damaged index, missing object)."""


class OutputConflict(VaultError):
    """An output folder belongs to another source or submission; nothing was merged into it."""


class ReplyRefused(CliError):
    """A reply cannot be sent safely: the source deleted their account, or the
    server gives a reply key other than the one pinned in this vault."""
