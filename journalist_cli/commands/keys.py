"""`lanterne keys`: generate and inspect journalist keys."""

from __future__ import annotations

from pathlib import Path

import click

from envelope.keys import valid_name
from journalist_cli import identity_store
from journalist_cli.commands import HelpGroup
from journalist_cli.errors import UsageProblem
from journalist_cli.passphrase import read_passphrase

_PATH = click.Path(path_type=Path)


@click.group("keys", cls=HelpGroup)
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
@click.option(
    "--gpg",
    "gpg_fingerprint",
    metavar="FINGERPRINT",
    help="Wrap the private keys to this OpenPGP key instead (gpg-agent or a smartcard unlocks it).",
)
def generate(
    name: str,
    directory: Path,
    no_passphrase: bool,
    passphrase_file: Path | None,
    gpg_fingerprint: str | None,
) -> None:
    """Write DIR/NAME.identity (private, keep it safe) and DIR/NAME.pub (to share)."""
    if not valid_name(name):
        raise UsageProblem("--name takes 1 to 64 letters, digits, '.', '-' or '_'")
    if sum(map(bool, (no_passphrase, passphrase_file, gpg_fingerprint))) > 1:
        raise UsageProblem("choose one of --no-passphrase, --passphrase-file and --gpg")
    passphrase = None
    if not no_passphrase and not gpg_fingerprint:
        passphrase = read_passphrase(
            passphrase_file, prompt="Passphrase for the new identity", confirm=True
        )
    ident = identity_store.JournalistIdentity.generate(name)
    secret_path, public_path = identity_store.write_new_identity(
        ident, directory, passphrase, gpg_fingerprint=gpg_fingerprint
    )
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


@keys_group.command("protect")
@click.argument("file", type=_PATH)
@click.option("--gpg", "gpg_fingerprint", metavar="FINGERPRINT", help="Wrap to this OpenPGP key.")
@click.option("--new-passphrase-file", type=_PATH, help="Seal with the passphrase in this file.")
@click.option("--new-passphrase", is_flag=True, help="Seal with a new passphrase (prompted).")
@click.option("--passphrase-file", type=_PATH, help="The identity's current passphrase.")
def protect(
    file: Path,
    gpg_fingerprint: str | None,
    new_passphrase_file: Path | None,
    new_passphrase: bool,
    passphrase_file: Path | None,
) -> None:
    """Change how an identity file is protected (passphrase or OpenPGP key)."""
    if sum(map(bool, (gpg_fingerprint, new_passphrase_file, new_passphrase))) != 1:
        raise UsageProblem("choose one of --gpg, --new-passphrase and --new-passphrase-file")
    ident = load_identity(file, passphrase_file)
    passphrase = None
    if not gpg_fingerprint:
        passphrase = read_passphrase(
            new_passphrase_file,
            prompt="New passphrase",
            confirm=True,
            option="--new-passphrase-file",
        )
    text = identity_store.seal_identity(ident, passphrase, gpg_fingerprint=gpg_fingerprint)
    identity_store.write_identity_file(file, text)
    how = f"OpenPGP key {gpg_fingerprint}" if gpg_fingerprint else "a passphrase"
    click.echo(f"{file} is now protected by {how}")


def load_identity(path: Path, passphrase_file: Path | None) -> identity_store.JournalistIdentity:
    """Open an identity file, asking for its passphrase only if it has one."""
    passphrase = None
    if identity_store.needs_passphrase(path):
        passphrase = read_passphrase(passphrase_file, prompt=f"Passphrase for {path}")
    return identity_store.open_identity(path, passphrase)
