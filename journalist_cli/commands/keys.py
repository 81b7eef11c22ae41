"""`lanterne keys`: generate and inspect journalist keys."""

from __future__ import annotations

from pathlib import Path

import click

from envelope.keys import valid_name
from journalist_cli import identity_store
from journalist_cli.errors import UsageProblem
from journalist_cli.passphrase import read_passphrase

_PATH = click.Path(path_type=Path)


@click.group("keys")
def keys_group() -> None:
    """Generate and inspect journalist keys."""


@keys_group.command("generate")
@click.option("--name", required=True, help="Short name: letters, digits, '.', '-', '_'.")
@click.option("--dir", "directory", type=_PATH, required=True, help="Where to write the keys.")
@click.option(
    "--no-passphrase",
    is_flag=True,
    help="Store the private keys unprotected (automation only).",
)
@click.option("--passphrase-file", type=_PATH, help="Read the passphrase from this file.")
def generate(name: str, directory: Path, no_passphrase: bool, passphrase_file: Path | None) -> None:
    """Write DIR/NAME.identity (private, keep it safe) and DIR/NAME.pub (to share)."""
    if not valid_name(name):
        raise UsageProblem("--name takes 1 to 64 letters, digits, '.', '-' or '_'")
    if no_passphrase and passphrase_file:
        raise UsageProblem("--no-passphrase and --passphrase-file exclude each other")
    passphrase = None
    if not no_passphrase:
        passphrase = read_passphrase(
            passphrase_file, prompt="Passphrase for the new identity", confirm=True
        )
    ident = identity_store.JournalistIdentity.generate(name)
    secret_path, public_path = identity_store.write_new_identity(ident, directory, passphrase)
    click.echo(f"private identity: {secret_path}  (never share it)")
    click.echo(f"public key:       {public_path}  (give it to the server admin)")
    click.echo(f"fingerprint:      {ident.public.fingerprint}")
    if no_passphrase:
        click.secho("warning: the private keys are stored without a passphrase", err=True)


@keys_group.command("show")
@click.argument("file", type=_PATH)
def show(file: Path) -> None:
    """Print the name and fingerprint of a .pub or .identity file."""
    public = identity_store.read_public_key(file)
    click.echo(f"name:        {public.name}")
    click.echo(f"fingerprint: {public.fingerprint}")
    click.echo(f"encryption:  {public.recipient.to_text()}")
