"""`lanterne keys`: generate and inspect journalist keys."""

from __future__ import annotations

from pathlib import Path

import click

from envelope import PublicKey, atomic_output
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
@click.option(
    "--x25519-only",
    is_flag=True,
    help="No post-quantum key (only for a server too old to read hybrid keys).",
)
def generate(
    name: str,
    directory: Path,
    no_passphrase: bool,
    passphrase_file: Path | None,
    gpg_fingerprint: str | None,
    x25519_only: bool,
) -> None:
    """Write DIR/NAME.identity (private, keep it safe) and DIR/NAME.pub (to share).

    The keys are hybrid: what is encrypted to them stays secret unless both
    X25519 and the post-quantum ML-KEM-768 are broken.
    """
    if not valid_name(name):
        raise UsageProblem("--name takes 1 to 64 letters, digits, '.', '-' or '_'")
    if sum(map(bool, (no_passphrase, passphrase_file, gpg_fingerprint))) > 1:
        raise UsageProblem("choose one of --no-passphrase, --passphrase-file and --gpg")
    passphrase = None
    if not no_passphrase and not gpg_fingerprint:
        passphrase = read_passphrase(
            passphrase_file, prompt="Passphrase for the new identity", confirm=True
        )
    ident = identity_store.JournalistIdentity.generate(name, hybrid=not x25519_only)
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
    if public.hybrid is not None:
        click.echo("keys:        hybrid (X-Wing: ML-KEM-768 + X25519), post-quantum")
    else:
        click.echo("keys:        X25519 only, not post-quantum: `lanterne keys upgrade`")
    click.echo(f"encryption:  {public.x25519.to_text()}")


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


@keys_group.command("upgrade")
@click.argument("file", type=_PATH)
@click.option("--passphrase-file", type=_PATH, help="The identity's passphrase.")
@click.option(
    "--pub",
    "pub_path",
    type=_PATH,
    help="Where to write the new public key (default: FILE with the suffix .pub).",
)
def upgrade(file: Path, passphrase_file: Path | None, pub_path: Path | None) -> None:
    """Add a post-quantum (hybrid) key to an existing identity.

    The identity keeps its X25519 and signing keys (everything encrypted to
    it before still opens) and keeps its protection (the same passphrase or
    OpenPGP key). Give the new .pub to the server admin: from then on,
    envelopes to you are hybrid, and your fingerprint changes.
    """
    kf = identity_store.read_key_file(file)
    passphrase = None
    if kf.needs_passphrase:
        passphrase = read_passphrase(passphrase_file, prompt=f"Passphrase for {file}")
    ident = identity_store.unlock(kf, passphrase)
    pub_path = pub_path or file.with_suffix(".pub")
    if ident.hybrid is not None:
        # Already upgraded (perhaps the .pub could not be written last time):
        # write the public key again, which is all that can be missing.
        _write_pub(pub_path, ident.public)
        click.echo(f"{file} already has a hybrid key; its public key is in {pub_path}")
        click.echo(f"fingerprint:      {ident.public.fingerprint}")
        return
    upgraded = ident.with_hybrid()
    gpg = kf.doc.get("openpgp_fingerprint") if kf.protection == "openpgp" else None
    if kf.protection == "openpgp" and not isinstance(gpg, str):
        raise UsageProblem(f"{file}: damaged OpenPGP protection")
    params = kf.doc.get("argon2id") if kf.needs_passphrase else None
    costs = {}
    if isinstance(params, dict):  # keep the cost the owner chose (checked when opening)
        costs = {"opslimit": int(params["opslimit"]), "memlimit": int(params["memlimit"])}
    text = identity_store.seal_identity(upgraded, passphrase, gpg_fingerprint=gpg, **costs)
    # The identity first: a .pub must never name a key whose private part was not saved.
    identity_store.write_identity_file(file, text)
    _write_pub(pub_path, upgraded.public)
    click.echo(f"private identity: {file}  (now with a hybrid key)")
    click.echo(f"public key:       {pub_path}  (give it to the server admin)")
    click.echo(f"old fingerprint:  {ident.public.fingerprint}")
    click.echo(f"new fingerprint:  {upgraded.public.fingerprint}")


def _write_pub(path: Path, public: PublicKey) -> None:
    with atomic_output(path, mode=0o644) as out:
        out.write(public.to_json().encode())


def load_identity(path: Path, passphrase_file: Path | None) -> identity_store.JournalistIdentity:
    """Open an identity file, asking for its passphrase only if it has one."""
    passphrase = None
    if identity_store.needs_passphrase(path):
        passphrase = read_passphrase(passphrase_file, prompt=f"Passphrase for {path}")
    return identity_store.open_identity(path, passphrase)
