"""`lanterne seen | star | tag | assign | note | delete | reply | ack | keep |
feedback-period | move | journalists`.

Each logs in with the signing key, changes the shared state on the server
and mirrors the answer into the vault. Notes and replies are encrypted here
(journalist_cli.outbox); the server stores ciphertext it cannot read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

import envelope
from journalist_cli import credentials, outbox, safe_text
from journalist_cli.api_client import ApiClient
from journalist_cli.commands._shared import (
    logged_in,
    open_vault,
    passphrase_option,
    pinned_directory,
    plural,
    reply_key_warning,
    settings,
    today,
)
from journalist_cli.errors import UsageProblem
from journalist_cli.passphrase import confirm_or_stop
from journalist_cli.vault import SourceRecord, Vault
from journalist_cli.workflow_errors import ObjectRefused, ReplyRefused, ServerError, VaultError


def _patch(source: str, passphrase_file: Path | None, changes: dict[str, Any]) -> None:
    vault = open_vault()
    sid = vault.resolve(source)
    with logged_in(passphrase_file) as (client, _):
        info = client.update_source(sid, changes)
    vault.update_triage(info)
    state = "seen" if info.seen else "new"
    star = ", starred" if info.starred else ""
    tags = f", tags: {', '.join(info.tags)}" if info.tags else ""
    who = f", assigned to {info.assignee}" if info.assignee else ""
    click.echo(safe_text.terminal(f"{_label(vault, sid)}: {state}{star}{tags}{who}", one_line=True))


def _label(vault: Vault, sid: str) -> str:
    return vault.label(sid, settings().language)


@click.command("seen")
@click.argument("source")
@click.option("--off", is_flag=True, help="Mark it new again.")
@passphrase_option
def seen_command(source: str, off: bool, passphrase_file: Path | None) -> None:
    """Mark a source as seen (for every journalist)."""
    _patch(source, passphrase_file, {"seen": not off})


@click.command("star")
@click.argument("source")
@click.option("--off", is_flag=True, help="Remove the star.")
@passphrase_option
def star_command(source: str, off: bool, passphrase_file: Path | None) -> None:
    """Star a source, or remove its star."""
    _patch(source, passphrase_file, {"starred": not off})


@click.command("tag")
@click.argument("source")
@click.argument("tags", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Remove these tags instead of adding them.")
@passphrase_option
def tag_command(
    source: str, tags: tuple[str, ...], remove: bool, passphrase_file: Path | None
) -> None:
    """Add tags to a source (letters, digits, '.', '-', '_'), or remove them."""
    vault = open_vault()
    sid = vault.resolve(source)
    with logged_in(passphrase_file) as (client, _):
        # The server applies additions and removals atomically (no lost updates).
        info = client.update_source(
            sid, {"remove_tags" if remove else "add_tags": sorted(set(tags))}
        )
    vault.update_triage(info)
    listed = ", ".join(info.tags) or "(none)"
    click.echo(safe_text.terminal(f"{_label(vault, sid)}: tags: {listed}", one_line=True))


@click.command("assign")
@click.argument("source")
@click.argument("name", required=False)
@click.option("--none", "unassign", is_flag=True, help="Assign it to nobody.")
@passphrase_option
def assign_command(
    source: str, name: str | None, unassign: bool, passphrase_file: Path | None
) -> None:
    """Assign a source to a journalist (by name), or to nobody with --none."""
    if (name is None) == (not unassign):
        raise UsageProblem("give a journalist's NAME or --none")
    _patch(source, passphrase_file, {"assignee": None if unassign else name})


def _text_argument(text: str | None, what: str) -> str:
    if text == "-":
        value = sys.stdin.read()
    elif text is None:
        if not sys.stdin.isatty():
            raise UsageProblem(
                f"no terminal to open an editor on: give the {what} as TEXT, or - to read it"
                " from standard input"
            )
        edited = click.edit(f"\n# Write the {what} above. Lines starting with # are dropped.\n")
        value = "\n".join(line for line in (edited or "").splitlines() if not line.startswith("#"))
    else:
        value = text
    if not value.strip():
        raise UsageProblem(f"the {what} is empty; nothing was sent")
    return value


def _recipients(
    client: ApiClient, vault: Vault, me: envelope.PublicKey, desk: str | None
) -> list[envelope.Recipient]:
    """Whom a note or reply about a source of ``desk`` is encrypted to: that
    desk's journalists only (docs/DESKS.md), every journalist for no desk."""
    directory = pinned_directory(client)
    if directory is not None:
        # The newsroom key decides: its directory, and nothing the server adds.
        return outbox.directory_recipients(directory, me, desk)
    keys, first_use = outbox.recipients(vault, client.journalists(), me, desk)
    if first_use:
        click.echo(
            "first use: accepted the server's list of journalist keys; check their fingerprints"
            " with `lanterne journalists`",
            err=True,
        )
    return keys


@click.command("note")
@click.argument("source")
@click.argument("text")
@passphrase_option
def note_command(source: str, text: str, passphrase_file: Path | None) -> None:
    """Add a note for the journalists of the source's desk (all of them for a source
    without a desk) (TEXT, or - to read it from stdin)."""
    body = _text_argument(text, "note")
    vault = open_vault()
    sid = vault.resolve(source)
    with logged_in(passphrase_file) as (client, signer):
        desk = client.source(sid).source.desk  # where the source is now (a move changes it)
        sealed = outbox.seal_note(body, _recipients(client, vault, signer.public, desk))
        created = client.add_note(sid, sealed)
    vault.add_item(
        sid, "note", created.id, created.object_id, today().isoformat(), signer.name, sealed
    )
    whom = f"the {desk} desk's journalists" if desk else "every journalist"
    click.echo(f"note added to {_label(vault, sid)} (encrypted to {whom})")


@click.command("reply")
@click.argument("source")
@click.argument("text", required=False)
@click.option(
    "--feedback",
    is_flag=True,
    help="This reply is the feedback an official channel owes the source: its day is recorded.",
)
@passphrase_option
def reply_command(
    source: str, text: str | None, feedback: bool, passphrase_file: Path | None
) -> None:
    """Reply to a source (TEXT, - for stdin, or nothing to open $EDITOR).

    Encrypted here to the source's reply key and the keys of the journalists of
    the source's desk (every journalist for a source without a desk); the
    source reads it after logging in with their codename.
    """
    vault = open_vault()
    sid = vault.resolve(source)
    if vault.source(sid).account_deleted:  # refused before writing or logging in
        _check_reply_key(vault.source(sid), _label(vault, sid))
    body = _text_argument(text, "reply")
    with logged_in(passphrase_file) as (client, signer):
        _send_reply(client, signer, vault, sid, body, "feedback" if feedback else None)
    what = "feedback" if feedback else "reply"
    click.echo(f"{what} sent to {_label(vault, sid)}")


def _send_reply(
    client: ApiClient,
    signer: credentials.Signer,
    vault: Vault,
    sid: str,
    body: str,
    purpose: str | None,
) -> None:
    """Encrypt ``body`` to the source and the journalists, send it (with its
    ``purpose``, which the server records by its day), and mirror it in the vault."""
    current = client.source(sid).source
    vault.store_summary(current)  # pins a first key, records a change
    reply_key = _check_reply_key(vault.source(sid), _label(vault, sid))
    if reply_key is None:
        raise ServerError("the server gives no reply key for this source; no reply was sent")
    # To the journalists of the source's desk only (docs/DESKS.md).
    sealed = outbox.seal_reply(
        body, reply_key, _recipients(client, vault, signer.public, current.desk)
    )
    try:
        created = client.add_reply(sid, sealed, purpose)
    except ServerError:
        # The server refuses replies (409) to an account deleted since we asked.
        vault.store_summary(client.source(sid).source)
        if vault.source(sid).account_deleted:
            _check_reply_key(vault.source(sid), _label(vault, sid))
        raise
    vault.add_item(
        sid, "reply", created.id, created.object_id, today().isoformat(), signer.name, sealed
    )
    if purpose is not None:
        vault.store_summary(client.source(sid).source)  # the day the server recorded


@click.command("ack")
@click.argument("source")
@click.option(
    "--lang",
    "language",
    help="The language of the acknowledgement [default: the one the source wrote in,"
    " from their last submission's manifest; else the channel's default language].",
)
@passphrase_option
def ack_command(source: str, language: str | None, passphrase_file: Path | None) -> None:
    """Acknowledge a report: send the channel's acknowledgement text as a reply
    (encrypted here, like any reply) and record its day on the server."""
    vault = open_vault()
    sid = vault.resolve(source)
    record = vault.source(sid)
    unlocked = None
    if language is None:
        language, unlocked = _source_language(vault, sid, passphrase_file)
    if record.account_deleted:
        _check_reply_key(record, _label(vault, sid))
    if record.info.channel.acknowledged_on:
        click.echo(
            f"{_label(vault, sid)} was acknowledged on {record.info.channel.acknowledged_on};"
            " sending it again",
            err=True,
        )
    with logged_in(passphrase_file, unlocked) as (client, signer):
        # The text of the source's desk (else the instance's) in that language.
        text = client.acknowledgement(sid, language)
        _send_reply(client, signer, vault, sid, text, "acknowledgement")
    day = vault.source(sid).info.channel.acknowledged_on or today().isoformat()
    click.echo(f"acknowledgement sent to {_label(vault, sid)} (recorded: {day})")


def _source_language(
    vault: Vault, sid: str, passphrase_file: Path | None
) -> tuple[str | None, credentials.Signer | None]:
    """The language of the pages the source last submitted from, as their
    encrypted manifest says (the server never learns it), and the signer unlocked
    on the way; None when no pulled submission says, or with a signing identity,
    which cannot decrypt."""
    from journalist_cli import receive
    from journalist_cli.commands._shared import identity_file

    path = identity_file(None)
    if credentials.is_signing_only(path):
        click.echo(
            "a signing identity cannot read which language the source wrote in:"
            " sending the channel's default language (--lang to choose)",
            err=True,
        )
        return None, None
    ident = credentials.load_full_identity(path, passphrase_file)
    signer = credentials.Signer(ident.public, ident.signing)
    for sub in reversed(vault.submissions(sid)):
        try:
            manifest = receive.read_manifest(vault, sub, ident.identities())
        except (ObjectRefused, VaultError):
            continue
        if manifest.language:
            return manifest.language, signer
    return None, signer


@click.command("keep")
@click.argument("source")
@click.option(
    "--days",
    type=click.IntRange(1, 3660),
    required=True,
    help="Keep the source at least this many days from today.",
)
@passphrase_option
def keep_command(source: str, days: int, passphrase_file: Path | None) -> None:
    """Keep a source longer than the retention rule would (it is deleted after
    its last activity plus the channel's retention period, or after this)."""
    vault = open_vault()
    sid = vault.resolve(source)
    with logged_in(passphrase_file) as (client, _):
        info = client.update_source(sid, {"keep_days": days})
    vault.store_summary(info)
    expires = info.channel.expires_on
    when = f"now deleted on about {expires}" if expires else "retention is off on this channel"
    click.echo(f"{_label(vault, sid)}: kept {plural(days, 'day')} more; {when}")


@click.command("feedback-period")
@click.argument("source")
@click.option("--reason", help="Why this case needs the longer period (kept as a note).")
@click.option("--reset", is_flag=True, help="Back to the channel's own period.")
@passphrase_option
def feedback_period_command(
    source: str, reason: str | None, reset: bool, passphrase_file: Path | None
) -> None:
    """Give one source the channel's longer feedback period (an external
    authority's duly justified cases: 6 months). The reason is recorded as a
    note, encrypted to the journalists of the source's desk."""
    if reset == bool(reason):
        raise UsageProblem("give --reason TEXT (why the longer period), or --reset")
    vault = open_vault()
    sid = vault.resolve(source)
    with logged_in(passphrase_file) as (client, signer):
        # The server refuses (400) where the source's channel allows no longer period.
        info = client.update_source(sid, {"extended_feedback": not reset})
        vault.store_summary(info)
        if reason:
            note = f"Feedback period: {info.channel.feedback_months} months. Reason: {reason}"
            sealed = outbox.seal_note(note, _recipients(client, vault, signer.public, info.desk))
            created = client.add_note(sid, sealed)
            vault.add_item(
                sid, "note", created.id, created.object_id, today().isoformat(), signer.name, sealed
            )
    due = info.channel.feedback_by or "nothing due"
    click.echo(f"{_label(vault, sid)}: feedback due by {due}")


def _check_reply_key(record: SourceRecord, label: str) -> str | None:
    """The pinned reply key (None if none was seen yet) of a source a reply may be
    sent to; ReplyRefused if the account was deleted or the server's key changed."""
    if record.account_deleted:
        raise ReplyRefused(
            f"{label} deleted their account: a reply can no longer reach them, so none was"
            " sent. What they sent, the notes and the triage stay in the vault."
        )
    if record.reply_key_changed:
        raise ReplyRefused(reply_key_warning(label) + ". No reply was sent.")
    return record.pinned_reply_key


@click.command("delete")
@click.argument("source")
@click.option("--submission", help="Delete only this submission (its id or a prefix).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@passphrase_option
def delete_command(
    source: str, submission: str | None, yes: bool, passphrase_file: Path | None
) -> None:
    """Delete a source (or one submission) on the server and in the vault, for good."""
    vault = open_vault()
    sid = vault.resolve(source)
    name = _label(vault, sid)
    sub_id = None
    if submission is not None:
        subs = [s.id for s in vault.submissions(sid) if s.id.startswith(submission.lower())]
        if len(subs) != 1:
            raise UsageProblem(
                f"{submission!r} matches {plural(len(subs), 'submission')} of {name}"
            )
        sub_id = subs[0]
    what = f"submission {sub_id[:8]} of {name}" if sub_id else f"{name} and everything from it"
    if not yes:
        confirm_or_stop(f"Delete {what} on the server and here? This cannot be undone")
    with logged_in(passphrase_file) as (client, _):
        if sub_id:
            client.delete_submission(sub_id)
        else:
            client.delete_source(sid)
    if sub_id:
        vault.delete_submission(sub_id)
    else:
        vault.delete_source(sid)
    click.echo(f"deleted {what}")


@click.command("journalists")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--accept", is_flag=True, help="Accept the keys listed now for notes and replies.")
@passphrase_option
def journalists_command(as_json: bool, accept: bool, passphrase_file: Path | None) -> None:
    """The journalists' keys the server lists, and whether you accepted them.

    Notes and replies are encrypted only to accepted keys: compare each new
    fingerprint with its owner (aloud, not through this server) before --accept.
    """
    vault = open_vault()
    with logged_in(passphrase_file) as (client, _):
        listed = client.journalists()
    statuses = outbox.check_keys(vault, listed)
    if accept:
        vault.accept_keys(listed)
    rows = [
        {
            "name": k.info.name,
            "role": k.info.role,
            "fingerprint": k.public.fingerprint,
            "status": "accepted" if accept else k.status,
        }
        for k in statuses
    ]
    if as_json:
        click.echo(safe_text.json_text(rows), nl=False)
        return
    for row in rows:
        line = f"{row['name']:<20} {row['role']:<10} {row['fingerprint']}  {row['status']}"
        click.echo(safe_text.terminal(line, one_line=True))
    if accept:
        click.echo(f"accepted {plural(len(rows), 'key')} for notes and replies")


TRIAGE_COMMANDS = (
    seen_command,
    star_command,
    tag_command,
    assign_command,
    note_command,
    reply_command,
    ack_command,
    keep_command,
    feedback_period_command,
    delete_command,
    journalists_command,
)


@click.command("move")
@click.argument("source")
@click.argument("desk")
@passphrase_option
def move_command(source: str, desk: str, passphrase_file: Path | None) -> None:
    """Move a source to another DESK (you must be in both). Everything it sent, and
    the notes and replies about it, is decrypted here and encrypted again to the
    journalists of DESK only; the server receives the new envelopes, never the
    content. Its later messages go to DESK."""
    import tempfile

    from journalist_cli import credentials, moving
    from journalist_cli.commands._shared import home, identity_file

    vault = open_vault()
    sid = vault.resolve(source)
    ident = credentials.load_full_identity(identity_file(None), passphrase_file)
    keys = ident.identities()
    with logged_in(passphrase_file) as (client, signer):
        detail = client.source(sid)
        if detail.source.desk == desk:
            raise UsageProblem(f"{_label(vault, sid)} is in desk {desk} already")
        vault.store_summary(detail.source)  # pins a first reply key, records a change
        recipients = _recipients(client, vault, signer.public, desk)
        # Messages and files first: the manifests name them by their new ids.
        todo: list[tuple[str, int | None, list[envelope.Recipient]]] = [
            (o.id, o.size, recipients)
            for sub in detail.submissions
            for o in sub.objects
            if o.kind != "manifest"
        ]
        todo += [(n.object_id, None, recipients) for n in detail.notes]
        if detail.replies:
            reply_key = _check_reply_key(vault.source(sid), _label(vault, sid))
            if reply_key is None:
                raise ServerError("the server gives no reply key for this source; nothing moved")
            to_source = envelope.X25519Recipient.from_text(reply_key)
            todo += [(r.object_id, None, [to_source, *recipients]) for r in detail.replies]
        manifests = [
            (o.id, o.size)
            for sub in detail.submissions
            for o in sub.objects
            if o.kind == "manifest"
        ]
        replacements: dict[str, str] = {}
        with tempfile.TemporaryDirectory(dir=home()) as work:
            fetched, sealed = Path(work) / "fetched", Path(work) / "sealed"
            for object_id, size, whom in todo:
                with fetched.open("wb") as out:
                    client.download(object_id, out, 0, size, lambda _n: None)
                try:
                    with fetched.open("rb") as src, sealed.open("wb") as dst:
                        moving.reencrypt(src, dst, keys, whom)
                except envelope.NoMatchingKeyError:
                    raise _not_yours(object_id) from None
                replacements[object_id] = client.stage_replacement(sid, object_id, sealed)
            for object_id, size in manifests:
                with fetched.open("wb") as out:
                    client.download(object_id, out, 0, size, lambda _n: None)
                try:
                    plain = envelope.decrypt_bytes(fetched.read_bytes(), keys)
                except envelope.NoMatchingKeyError:
                    raise _not_yours(object_id) from None
                try:
                    rewritten = moving.rewrite_manifest(plain, replacements)
                except moving.ManifestRefused as exc:
                    raise ServerError(f"manifest {object_id}: {exc}; nothing was moved") from None
                sealed.write_bytes(envelope.encrypt_bytes(rewritten, recipients))
                replacements[object_id] = client.stage_replacement(sid, object_id, sealed)
        info = client.move_source(sid, desk, replacements)
    vault.store_summary(info)
    click.echo(
        f"{_label(vault, sid)} moved to desk {desk}: {plural(len(replacements), 'object')}"
        " encrypted again to its journalists only; run `lanterne pull` to fetch them"
    )


def _not_yours(object_id: str) -> ServerError:
    return ServerError(
        f"object {object_id} is not encrypted to you (it arrived before you joined the"
        " desk?): nothing was moved; a journalist who can read everything of this source"
        " can move it"
    )
