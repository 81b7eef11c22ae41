"""`lanterne file`: encrypt and decrypt raw envelopes, like age.

Decrypting to a file is all or nothing: the output appears only once the last
chunk has verified. Decrypting to standard output streams verified chunks; a
non-zero exit then means what was written must be discarded.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click

import envelope
from journalist_cli import identity_store
from journalist_cli.commands import HelpGroup
from journalist_cli.commands.keys import load_identity
from journalist_cli.errors import UsageProblem

_PATH = click.Path(path_type=Path)


@click.group("file", cls=HelpGroup)
def file_group() -> None:
    """Encrypt and decrypt single envelopes (for exchanges between journalists)."""


@contextlib.contextmanager
def _input(path: Path | None) -> Iterator[BinaryIO]:
    if path is None or str(path) == "-":
        yield sys.stdin.buffer
        return
    try:
        f = path.open("rb")
    except OSError as exc:
        raise UsageProblem(f"cannot read {path}: {exc.strerror}") from exc
    with f:
        yield f


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[BinaryIO]:
    if path is None or str(path) == "-":
        if sys.stdout.isatty():
            raise UsageProblem("refusing to write binary data to a terminal; use -o FILE")
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        with envelope.atomic_output(path) as out:
            yield out
    except OSError as exc:
        raise UsageProblem(f"cannot write {path}: {exc.strerror}") from exc


@file_group.command("encrypt")
@click.option(
    "-r",
    "--recipient",
    "recipients",
    type=_PATH,
    multiple=True,
    required=True,
    help="A recipient's .pub file; repeat for several.",
)
@click.option("-o", "--output", type=_PATH, help="Output file (default: standard output).")
@click.argument("input_path", metavar="[IN]", type=_PATH, required=False)
def encrypt_cmd(recipients: tuple[Path, ...], output: Path | None, input_path: Path | None) -> None:
    """Encrypt IN (or standard input) to every recipient."""
    keys = [identity_store.read_public_key(p).recipient for p in recipients]
    with _input(input_path) as src, _output(output) as dst:
        envelope.encrypt(src, dst, keys)


@file_group.command("decrypt")
@click.option(
    "-i",
    "--identity",
    "identities",
    type=_PATH,
    multiple=True,
    required=True,
    help="Your .identity file; repeat to try several.",
)
@click.option("-o", "--output", type=_PATH, help="Output file (default: standard output).")
@click.option("--passphrase-file", type=_PATH, help="Read the identity passphrase from this file.")
@click.argument("input_path", metavar="[IN]", type=_PATH, required=False)
def decrypt_cmd(
    identities: tuple[Path, ...],
    output: Path | None,
    passphrase_file: Path | None,
    input_path: Path | None,
) -> None:
    """Decrypt IN (or standard input) with your identity."""
    keys = [k for path in identities for k in load_identity(path, passphrase_file).identities()]
    with _input(input_path) as src, _output(output) as dst:
        envelope.decrypt(src, dst, keys)
