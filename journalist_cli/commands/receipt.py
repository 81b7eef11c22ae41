"""`lanterne verify-receipt FILE`: check a source's receipt (envelope/SPEC.md §12)
offline against the pinned newsroom key, and find the submission it covers
among those this vault holds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

import envelope
from journalist_cli import config
from journalist_cli.errors import CliError, UsageProblem
from journalist_cli.newsroom import check_fingerprint

_READ = 1 << 20


class ReceiptRefused(CliError):
    """The receipt does not verify against the newsroom key (exit code 1)."""


def vault_match(home: Path, receipt: envelope.Receipt) -> list[tuple[str, str]]:
    """(source label, submission id) of the vault's submissions of the receipt's
    day whose ciphertext objects, all present, hash to the receipt's value."""
    from journalist_cli.vault import Vault

    if not (home / "vault").is_dir():
        return []
    vault = Vault.open(home)
    found = []
    for source_id in vault.source_ids():
        for sub in vault.submissions(source_id):
            if sub.received_on != receipt.day or len(sub.objects) != receipt.objects:
                continue
            if not all(o.present for o in sub.objects):
                continue
            hashes = [_sha256(vault.object_path(o.id)) for o in sub.objects]
            if envelope.receipt_objects_hash(hashes).hex() == receipt.sha256:
                found.append((vault.label(source_id), sub.id))
    return found


def _sha256(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_READ):
            digest.update(chunk)
    return digest.digest()


@click.command("verify-receipt")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--newsroom",
    metavar="FINGERPRINT",
    help="The newsroom key's fingerprint to check against [default: the pinned one,"
    " `lanterne config --newsroom`].",
)
def verify_receipt_command(file: Path, newsroom: str | None) -> None:
    """Check a source's receipt FILE against the newsroom key, offline.

    Prints what it certifies (who received what, on which day) and, when this
    machine's vault holds that submission, which one: its encrypted objects
    hash to the receipt's value. Exit code 1 if the receipt does not verify."""
    home = config.lanterne_home()
    fingerprint = check_fingerprint(newsroom) if newsroom else config.load_config(home).newsroom
    if fingerprint is None:
        raise UsageProblem(
            "no newsroom key to check against: give --newsroom FINGERPRINT, or pin it with"
            " `lanterne config --newsroom FINGERPRINT`"
        )
    try:
        receipt = envelope.verify_receipt(file.read_bytes(), fingerprint)
    except envelope.ReceiptError as exc:
        raise ReceiptRefused(f"{file}: not a valid receipt: {exc}") from None
    from journalist_cli.safe_text import terminal

    click.echo(f"valid receipt, signed for the newsroom key {fingerprint}")
    click.echo(f"  received by: {terminal(receipt.received_by)}")
    click.echo(f"  day:         {receipt.day}")
    click.echo(f"  objects:     {receipt.objects} (SHA-256 {receipt.sha256})")
    click.echo(f"  receipt key certified on {receipt.certified_on}")
    matches = vault_match(home, receipt)
    for label, submission in matches:
        click.echo(f"matches submission {submission} of {label} in your vault")
    if not matches:
        click.echo("no submission in your vault matches it (pull first, or it is not yours)")
