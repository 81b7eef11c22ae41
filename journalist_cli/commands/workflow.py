"""`lanterne config | signing-key | pull | import | list | show | decrypt | export`."""

from __future__ import annotations

import dataclasses
import datetime
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from journalist_cli import config, credentials, designations, openpgp, safe_text
from journalist_cli.commands._shared import (
    PATH,
    coarse_age,
    deadline_today,
    home,
    human_size,
    identity_file,
    identity_option,
    logged_in,
    open_vault,
    passphrase_option,
    pinned_directory,
    plural,
    settings,
    source_warnings,
    today,
)
from journalist_cli.errors import UsageProblem
from journalist_cli.passphrase import read_passphrase
from journalist_cli.safe_text import terminal as terminal_safe
from journalist_cli.vault import ObjectRecord, SourceRecord, SubmissionRecord, Vault
from journalist_cli.workflow_errors import ObjectRefused, VaultError

if TYPE_CHECKING:
    from journalist_cli.bundle import Removal

err_console = Console(stderr=True)


# --- config and keys -------------------------------------------------------------


@click.command("config")
@click.option("--server", help="The journalist API's address, e.g. http://XYZ.onion.")
@click.option(
    "--identity",
    type=PATH,
    help="Your identity file, or a signing identity on the online machine of an air-gapped setup.",
)
@click.option("--proxy", help="SOCKS proxy for Tor, e.g. socks5h://127.0.0.1:9050.")
@click.option("--no-proxy", is_flag=True, help="Forget the proxy (direct connections).")
@click.option(
    "--language", type=click.Choice(designations.LANGUAGES), help="Language of source designations."
)
@click.option(
    "--newsroom",
    metavar="FINGERPRINT",
    help="Pin the newsroom key's fingerprint, as the newsroom publishes it outside this server:"
    " notes and replies then go only to keys it signed.",
)
def config_command(
    server: str | None,
    identity: Path | None,
    proxy: str | None,
    no_proxy: bool,
    language: str | None,
    newsroom: str | None,
) -> None:
    """Record the server, identity, proxy and newsroom key; without options, show them."""
    from journalist_cli import newsroom as pinning

    if proxy and no_proxy:
        raise UsageProblem("choose --proxy or --no-proxy")
    changes: dict[str, Any] = {"language": language}
    if newsroom is not None:
        changes["newsroom"] = pinning.check_fingerprint(newsroom)
    if server is not None:
        changes["server"] = config.check_server_url(server)
    if proxy is not None:
        changes["proxy"] = config.check_proxy_url(proxy)
    if identity is not None:
        public = credentials.public_key_of(identity)  # reads the public part, unlocks nothing
        changes["identity"] = str(identity.resolve())
        kind = "signing identity" if credentials.is_signing_only(identity) else "identity"
        click.echo(f"{kind}: {public.name}, fingerprint {public.fingerprint}")
    state = home()
    cfg = config.update_config(state, **changes)
    if no_proxy:
        cfg = dataclasses.replace(cfg, proxy=None)
        config.save_config(state, cfg)
    click.echo(f"state:    {state}")
    click.echo(f"server:   {cfg.server or '(none)'}")
    click.echo(f"identity: {cfg.identity or '(none)'}")
    click.echo(f"newsroom: {cfg.newsroom or '(not pinned: journalist keys are accepted by hand)'}")
    click.echo(f"proxy:    {cfg.proxy or '(none: direct connections)'}")
    if cfg.server and ".onion" in cfg.server and not cfg.proxy:
        click.secho("warning: an .onion server needs --proxy socks5h://127.0.0.1:9050", err=True)


@click.command("signing-key")
@click.argument("identity", type=PATH)
@click.option("--out", "out", type=PATH, required=True, help="The signing identity to write.")
@passphrase_option
@click.option("--new-passphrase-file", type=PATH, help="Seal it with the passphrase in this file.")
@click.option("--no-passphrase", is_flag=True, help="Store it unprotected (automation only).")
@click.option("--gpg", "gpg_fingerprint", metavar="FINGERPRINT", help="Wrap it to an OpenPGP key.")
def signing_key_command(
    identity: Path,
    out: Path,
    passphrase_file: Path | None,
    new_passphrase_file: Path | None,
    no_passphrase: bool,
    gpg_fingerprint: str | None,
) -> None:
    """Write a signing identity (no decryption key) for an online machine.

    Run it on the air-gapped machine, carry the file to the online one and
    `lanterne config --identity` it there: it can pull and triage, never decrypt.
    """
    if sum(map(bool, (new_passphrase_file, no_passphrase, gpg_fingerprint))) > 1:
        raise UsageProblem("choose one of --new-passphrase-file, --no-passphrase and --gpg")
    signer = credentials.load_signer(identity, passphrase_file)
    passphrase = None
    if not no_passphrase and not gpg_fingerprint:
        passphrase = read_passphrase(
            new_passphrase_file,
            prompt="Passphrase for the signing identity",
            confirm=True,
            option="--new-passphrase-file",
        )
    text = credentials.seal_signing_identity(
        signer.public, signer.signing, passphrase, gpg_fingerprint=gpg_fingerprint
    )
    credentials.write_signing_identity(out, text)
    click.echo(f"signing identity: {out}  (can log in and triage; cannot decrypt)")


# --- pull and bundles ------------------------------------------------------------


class RichPullProgress:
    """Bars on stderr: everything to fetch, and one per object arriving now.

    Download threads call it; rich's Progress takes its own lock, and the
    dict of bars is only changed under ours.
    """

    def __init__(self, console: Console, vault: Vault) -> None:
        self.vault = vault
        self.labels: dict[str, str] = {}
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.total: TaskID | None = None
        self.bars: dict[str, TaskID] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> RichPullProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, objects: list[ObjectRecord], total_bytes: int) -> None:
        self.labels = designations.labels(self.vault.source_ids(), settings().language)
        if objects:
            self.total = self.progress.add_task(plural(len(objects), "object"), total=total_bytes)

    def object_started(self, obj: ObjectRecord, already: int) -> None:
        name = self.labels.get(obj.source_id) or designations.designation(obj.source_id)
        label = f"  {name}: {obj.kind}"
        total = obj.size if obj.size >= 0 else None
        with self.lock:
            self.bars[obj.id] = self.progress.add_task(label, total=total, completed=already)
        if self.total is not None:
            self.progress.advance(self.total, already)

    def advance(self, obj: ObjectRecord, n: int) -> None:
        for task in (self.total, self.bars.get(obj.id)):
            if task is not None:
                self.progress.advance(task, n)

    def object_done(self, obj: ObjectRecord) -> None:
        with self.lock:
            bar = self.bars.pop(obj.id, None)
        if bar is not None:
            self.progress.remove_task(bar)


@click.command("pull")
@click.option(
    "--bundle", "bundle_path", type=PATH, help="Also write a bundle for an air-gapped machine."
)
@click.option(
    "--all", "everything", is_flag=True, help="Put every object in the bundle, not only new ones."
)
@passphrase_option
def pull_command(bundle_path: Path | None, everything: bool, passphrase_file: Path | None) -> None:
    """Download new ciphertext into the vault (resumes interrupted downloads).

    Needs only the signing key: nothing is decrypted.
    """
    from journalist_cli import bundle, sync  # httpx: only commands that go online load it

    if everything and bundle_path is None:
        raise UsageProblem("--all goes with --bundle FILE")
    vault = open_vault()
    language = settings().language
    was_deleted = {r.id for r in vault.sources() if r.account_deleted}
    with (
        logged_in(passphrase_file) as (client, signer),
        RichPullProgress(err_console, vault) as bars,
    ):
        result = sync.pull(client, vault, bars)
        if pinned_directory(client) is None and client.directory() is not None:
            click.secho(
                "this server's journalist list is signed by a newsroom key you have not pinned:"
                " run `lanterne config --newsroom FINGERPRINT` with the fingerprint the newsroom"
                " publishes (not the one this server shows)",
                err=True,
                fg="yellow",
            )
    click.echo(
        f"{plural(result.sources, 'source')}; {plural(len(result.downloaded), 'new object')}"
        f" ({human_size(result.bytes)})" + (f", {result.resumed} resumed" if result.resumed else "")
    )
    for sid in result.removed_sources:
        click.echo(
            "removed from the vault (a journalist deleted it on the server):"
            f" {designations.designation(sid, language)} ({sid[: designations.SHORT_ID]})"
        )
    records = vault.sources()
    for r in records:
        if r.account_deleted and r.id not in was_deleted:
            click.echo(
                f"{r.label(language)}: account deleted by the source; its submissions, notes"
                " and triage stay in the vault, replies can no longer reach it"
            )
    source_warnings(records, language)
    if bundle_path is not None:
        ids = [o.id for o in vault.all_objects()] if everything else result.downloaded
        summary = bundle.write_bundle(vault, bundle_path, ids, today().isoformat(), signer.signing)
        click.echo(
            f"bundle {bundle_path}: {plural(summary.sources, 'source')},"
            f" {plural(summary.objects, 'object')}"
            f" ({human_size(summary.bytes)})"
        )


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--yes", is_flag=True, help="Also delete what the bundle no longer lists.")
@identity_option
def import_command(file: Path, yes: bool, identity_path: Path | None) -> None:
    """Load a bundle made by `pull --bundle` into this machine's vault (checked first).

    The bundle must be signed by your own signing key (the one in your
    identity). What it no longer lists (deleted on the online machine) is
    deleted here only after you confirm, or with --yes.
    """
    import sys

    from journalist_cli import bundle

    # The public part only: nothing is unlocked to check a signature.
    mine = credentials.public_key_of(identity_file(identity_path))
    with bundle.staged_import(open_vault(), file, mine.signing_key) as staged:
        delete = False
        if staged.deletions:
            click.echo(
                f"the bundle no longer lists {plural(len(staged.deletions), 'item')}"
                " (deleted on the online machine):"
            )
            for removal in staged.deletions:
                click.echo("  " + _describe(removal))
            if yes:
                delete = True
            elif sys.stdin.isatty():
                delete = click.confirm("Delete them from this vault too?", default=False)
        summary = staged.commit(delete=delete)
    click.echo(
        f"imported {plural(summary.objects, 'object')} ({human_size(summary.bytes)});"
        f" {plural(summary.sources, 'source')} in the bundle"
    )
    if summary.deleted:
        click.echo(f"deleted {plural(len(summary.deleted), 'item')} from this vault")
    if summary.kept:
        click.echo(
            f"kept {plural(len(summary.kept), 'item')} the bundle no longer lists;"
            f" to delete them too: lanterne import {file} --yes"
        )


def _describe(removal: Removal) -> str:
    sid = removal.source_id
    name = f"{designations.designation(sid, settings().language)} ({sid[: designations.SHORT_ID]})"
    day = f" ({removal.day})" if removal.day else ""
    if removal.what == "source":
        return terminal_safe(f"source {name} and everything from it{day}")
    return terminal_safe(f"{removal.what} {removal.item_id[:8]} of {name}{day}")


# --- list and show ----------------------------------------------------------------


def _source_json(record: SourceRecord, day: str) -> dict[str, Any]:
    info = record.info
    days = info.channel
    return {
        "id": info.id,
        "designation": designations.designation(info.id, "en"),
        "designation_fr": designations.designation(info.id, "fr"),
        "label": record.label("en"),
        "label_fr": record.label("fr"),
        "status": "seen" if info.seen else "new",
        "submissions": info.submissions,
        "replies": info.replies,
        "notes": info.notes,
        "size": info.size,
        "stored_bytes": record.stored_bytes,
        "missing_objects": record.missing,
        "starred": info.starred,
        "tags": list(info.tags),
        "assignee": info.assignee,
        "last_activity": info.last_activity,
        "account_deleted": record.account_deleted,
        "reply_key_changed": record.reply_key_changed,
        **days.to_api(),
        "acknowledgement_overdue": _overdue(days.acknowledge_by, day),
        "feedback_overdue": _overdue(days.feedback_by, day),
        "desk": info.desk,
    }


def _overdue(due: str | None, day: str) -> bool:
    """A due day is its last day: overdue from the next one."""
    return due is not None and due < day


def _due_cell(due: str | None, day: str, soon: int = 2) -> Text:
    """A due day, red and marked when overdue, yellow when it is near."""
    if due is None:
        return Text("")
    if _overdue(due, day):
        return Text(f"{due} OVERDUE", style="bold red")
    try:
        left = (datetime.date.fromisoformat(due) - datetime.date.fromisoformat(day)).days
    except ValueError:
        return Text(due)
    return Text(due, style="yellow" if left <= soon else "")


def due_lines(records: list[SourceRecord], language: designations.Language, day: str) -> list[Text]:
    """An official channel's days, a line per source, for terminals too narrow
    for a column: ``dynamic marmot: acknowledge by 2027-01-22 OVERDUE; ...``."""
    lines = []
    for r in records:
        days = r.info.channel
        parts = [
            (what, _due_cell(due, day, soon))
            for what, due, soon in (
                ("acknowledge by", days.acknowledge_by, 2),
                ("feedback by", days.feedback_by, 2),
                ("deleted on", days.expires_on, 30),
            )
            if due
        ]
        if not parts:
            continue
        line = safe_text.rich(r.label(language), one_line=True) + Text(": ")
        for i, (what, cell) in enumerate(parts):
            line.append(("; " if i else "") + f"{what} ")
            line.append_text(cell)
        lines.append(line)
    return lines


def _shows_channel(records: list[SourceRecord]) -> bool:
    return any(
        r.info.channel.acknowledge_by or r.info.channel.feedback_by or r.info.channel.expires_on
        for r in records
    )


ACCOUNT_DELETED_MARK = "†"
KEY_CHANGED_MARK = "!"


WIDE = 100  # from this width on, `list` also shows the id column
SPLIT_DUE = 140  # from this width on, an official channel's days get a column each
# Below it, one "due" column: acknowledge by, feedback by, expires (deleted on).
DUE_LABELS = ("A", "F", "X")


def source_table(
    records: list[SourceRecord],
    language: designations.Language,
    width: int,
    day: str | None = None,
) -> Table:
    """The `list` table, readable at 80 columns: no borders; state, counts, size
    and age never wrap or truncate; designations wrap at their space; tags and
    assignees wrap in their columns. The id column appears from ``WIDE``
    columns on (a designation another source shares carries its short id anyway).
    """
    now = today()
    day = day or now.isoformat()
    channel = _shows_channel(records)  # an official channel, or retention on
    wide = width >= WIDE
    desks = any(r.info.desk for r in records)  # a newsroom without desks: no column
    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("", no_wrap=True)  # ★ starred, † account deleted, ! reply key changed
    table.add_column("source", min_width=10, overflow="fold")
    if wide:
        table.add_column("id", no_wrap=True)
    if desks:
        table.add_column("desk", overflow="fold", min_width=4)
    table.add_column("state", no_wrap=True)
    table.add_column("subs", no_wrap=True, justify="right")
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("tags", overflow="fold", min_width=6)
    table.add_column("assignee", overflow="fold", min_width=6)
    table.add_column("last", no_wrap=True)
    # An official channel's days: a column each from SPLIT_DUE columns on, else
    # one "due" column with a line each, so that 80 columns still show them.
    # Under WIDE columns they are lines under the table (``due_lines``).
    split = channel and width >= SPLIT_DUE
    channel = channel and width >= WIDE
    if split:
        table.add_column("ack by", no_wrap=True)
        table.add_column("feedback by", no_wrap=True)
        table.add_column("expires", no_wrap=True)
    elif channel:
        table.add_column("due", no_wrap=True)
    for r in records:
        info = r.info
        marks = ("★" if info.starred else "") + (ACCOUNT_DELETED_MARK if r.account_deleted else "")
        marks += KEY_CHANGED_MARK if r.reply_key_changed else ""
        size = human_size(info.size) + (f"\n{r.missing} to pull" if r.missing else "")
        row: list[str | Text] = [marks, r.label(language)]
        if wide:
            row.append(info.id[: designations.SHORT_ID])
        if desks:
            row.append(info.desk or "—")
        row += [
            Text("seen") if info.seen else Text("new", style="bold green"),
            f"{info.submissions}" + (f" +{info.replies}r" if info.replies else ""),
            size,
            safe_text.rich(" ".join(info.tags), one_line=True),
            safe_text.rich(info.assignee or "", one_line=True),
            coarse_age(info.last_activity, now).removesuffix(" ago"),
        ]
        days = info.channel
        cells = [
            _due_cell(days.acknowledge_by, day),
            _due_cell(days.feedback_by, day),
            _due_cell(days.expires_on, day, soon=30),
        ]
        if split:
            row += cells
        elif channel:
            due = Text()
            for label, cell in zip(DUE_LABELS, cells, strict=True):
                if cell.plain:
                    # "OVERDUE" on a line of its own: the column stays 12 wide.
                    cell = Text(cell.plain.replace(" ", "\n  ", 1), style=cell.style)
                    due.append(("\n" if due.plain else "") + f"{label} ")
                    due.append_text(cell)
            row.append(due)
        table.add_row(*row)
    return table


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--due",
    is_flag=True,
    help="Sort by the nearest deadline or expiry (an official channel's), soonest first.",
)
def list_command(as_json: bool, due: bool) -> None:
    """Sources in the vault, most recent first (works offline).

    On an official channel, also the days the acknowledgement and the feedback
    are due by (OVERDUE in red once passed) and the day retention deletes each
    source."""
    vault = open_vault()
    records = vault.sources()
    day = deadline_today(vault)
    if due:
        # Nothing due sorts last; within a day, the order stays the most recent first.
        records.sort(key=lambda r: r.info.channel.next_due() or "9999-12-31")
    if as_json:
        click.echo(safe_text.json_text([_source_json(r, day) for r in records]), nl=False)
        return
    if not records:
        click.echo("no sources in the vault yet: run `lanterne pull` (or `lanterne import`)")
        return
    language = settings().language
    console = Console(highlight=False)
    console.print(source_table(records, language, console.width, day))
    console.print(
        Text(
            f"{plural(len(records), 'source')}; ★ starred, subs: submissions (+r replies)",
            style="dim",
        )
    )
    if _shows_channel(records) and console.width < WIDE:
        for line in due_lines(records, language, day):
            console.print(line)
    elif _shows_channel(records) and console.width < SPLIT_DUE:
        console.print(
            Text("due: A acknowledge by, F feedback by, X deleted on (retention)", style="dim")
        )
    late = [r for r in records if _overdue(r.info.channel.acknowledge_by, day)]
    late += [r for r in records if _overdue(r.info.channel.feedback_by, day)]
    if late:
        console.print(
            Text(
                f"{plural(len(late), 'deadline')} overdue (as of {day}): `lanterne ack ID`"
                " acknowledges, `lanterne reply ID --feedback` gives feedback",
                style="bold red",
            )
        )
    for r in records:
        if r.account_deleted:
            console.print(
                Text(f"{ACCOUNT_DELETED_MARK} {r.label(language)}: account deleted by the source")
            )
    source_warnings(records, language)


def _show(source: str, identity_override: Path | None, passphrase_file: Path | None) -> None:
    from journalist_cli import receive

    vault = open_vault()
    record = vault.source(vault.resolve(source))
    ident = credentials.load_full_identity(identity_file(identity_override), passphrase_file)
    keys = ident.identities()
    console = Console(highlight=False)
    language = settings().language
    info = record.info
    head = Text(f"{record.label(language)}  ", style="bold")
    head.append(f"{info.id}  {'seen' if info.seen else 'NEW'}")
    if info.starred:
        head.append("  ★")
    if info.tags:
        head.append(safe_text.rich("  tags: " + ", ".join(info.tags), one_line=True))
    if info.assignee:
        head.append(safe_text.rich(f"  assigned to {info.assignee}", one_line=True))
    head.append(f"  last activity {info.last_activity}")
    console.print(head)
    if record.account_deleted:
        console.print(
            Text(
                "account deleted by the source: what they sent, the notes and the triage stay;"
                " replies can no longer reach them",
                style="bold",
            )
        )
    source_warnings([record], language)
    refused = 0
    for sub in vault.submissions(record.id):
        console.rule(Text(f"{sub.received_on} · submission {sub.id[: designations.SHORT_ID]}"))
        try:
            shown = receive.read_submission(vault, sub, keys)
        except (ObjectRefused, VaultError) as exc:
            refused += 1
            console.print(safe_text.rich(f"[this submission cannot be shown: {exc}]"))
            continue
        if shown.message is not None:
            console.print(safe_text.rich(shown.message))
            if shown.message_truncated:
                console.print(Text("[message truncated: `lanterne decrypt` writes all of it]"))
        for a in shown.manifest.answers:
            console.print(safe_text.rich(f"{a.question}: {a.answer}", "italic"))
        for name, ctype, size in shown.files:
            console.print(safe_text.rich(f"  file: {name}  ({ctype or '?'}, {human_size(size)})"))
    items = receive.read_items(vault, record.id, keys)
    if items:
        console.rule(Text("replies and notes"))
    for item in items:
        who = item.journalist or "(removed journalist)"
        label = "reply to the source" if item.kind == "reply" else "note"
        console.print(safe_text.rich(f"{item.day} {label} by {who}:", "bold", one_line=True))
        if item.error is not None:
            refused += 1
            console.print(safe_text.rich(f"[this {label} cannot be shown: {item.error}]"))
            continue
        text = item.text if item.text is not None else "(not encrypted to your key)"
        console.print(safe_text.rich(text))
    if refused:
        raise ObjectRefused(
            f"{plural(refused, 'item')} of {record.label(language)} could not be shown (above);"
            " the rest was. Pull again; if it fails again, tell your admin."
        )


@click.command("show")
@click.argument("source")
@identity_option
@passphrase_option
def show_command(source: str, identity_path: Path | None, passphrase_file: Path | None) -> None:
    """Decrypt and print a source's messages, answers, file list, replies and notes."""
    _show(source, identity_path, passphrase_file)


# --- decrypt and export -----------------------------------------------------------


def _stored_size(sub: SubmissionRecord) -> int:
    return sum(max(o.size, 0) for o in sub.objects)


@click.command("decrypt")
@click.argument("source")
@click.option("--out", "out_dir", type=PATH, required=True, help="Where to write the files.")
@click.option("--no-clean", is_flag=True, help="Only the originals: skip metadata cleaning.")
@identity_option
@passphrase_option
def decrypt_command(
    source: str,
    out_dir: Path,
    no_clean: bool,
    identity_path: Path | None,
    passphrase_file: Path | None,
) -> None:
    """Decrypt a source's submissions: originals byte for byte, plus cleaned copies."""
    from journalist_cli import receive
    from journalist_cli.cleaning import summarise

    vault = open_vault()
    record = vault.source(vault.resolve(source))
    ident = credentials.load_full_identity(identity_file(identity_path), passphrase_file)
    subs = vault.submissions(record.id)
    total = sum(_stored_size(sub) for sub in subs)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bars:
        task = bars.add_task(f"decrypting {plural(len(subs), 'submission')}", total=total)
        results = receive.decrypt_source(
            vault,
            record,
            ident.identities(),
            out_dir,
            clean=not no_clean,
            language=settings().language,
            on_done=lambda sub: bars.advance(task, _stored_size(sub)),
        )
    failed = [r for r in results if r.error is not None]
    for r in results:
        if r.error is not None:
            click.secho(terminal_safe(f"submission {r.submission_id}: {r.error}"), err=True)
            continue
        if r.skipped:
            click.echo(f"{r.directory}: already decrypted, left as it is")
            continue
        line = f"{r.directory}: {plural(len(r.files), 'file')}" + (", message" if r.message else "")
        if not no_clean and r.files:
            line += "; " + summarise(r.cleaning)
        click.echo(line)
        for c in r.cleaning:
            if not c.ok:
                click.echo(terminal_safe(f"  {c.source}: {c.status.value}: {c.reason}"))
            for flag in c.risks:
                click.echo(terminal_safe(f"  caution: {c.source}: {flag.risk}: {flag.detail}"))
        if any(not c.ok for c in r.cleaning):
            click.echo(f"  details: {r.directory / 'cleaning.json'}")
    if failed:
        raise ObjectRefused(
            f"{plural(len(failed), 'submission')} of {plural(len(results), 'submission')}"
            " could not be decrypted (above); the others were written"
        )


@click.command("export")
@click.argument("source")
@click.option(
    "--gpg",
    "fingerprint",
    required=True,
    metavar="FINGERPRINT",
    help="The OpenPGP recipient (full fingerprint; the key must be in your keyring).",
)
@click.option("--out", "out_dir", type=PATH, required=True, help="Where to write the .gpg files.")
@identity_option
@passphrase_option
def export_command(
    source: str,
    fingerprint: str,
    out_dir: Path,
    identity_path: Path | None,
    passphrase_file: Path | None,
) -> None:
    """Re-encrypt a source's files and messages to an OpenPGP key (a colleague, a lawyer)."""
    from journalist_cli import receive

    fpr = openpgp.normalise_fingerprint(fingerprint)
    vault = open_vault()
    record = vault.source(vault.resolve(source))
    ident = credentials.load_full_identity(identity_file(identity_path), passphrase_file)
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".lanterne-export-", dir=out_dir))
    written = 0
    try:
        results = receive.decrypt_source(
            vault, record, ident.identities(), work, clean=False, language=settings().language
        )
        failed = [r for r in results if r.error is not None]
        for r in failed:
            click.secho(terminal_safe(f"submission {r.submission_id}: {r.error}"), err=True)
        for r in results:
            if r.error is not None:
                continue
            files = (p for p in r.directory.rglob("*") if p.is_file() and p.name != receive.MARKER)
            for plain in sorted(files):
                rel = plain.relative_to(work)
                target = out_dir / rel.parent / (rel.name + ".gpg")
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                if target.exists():
                    raise UsageProblem(f"{target} already exists; it was not replaced")
                openpgp.encrypt_file_to(str(plain), str(target), fpr)
                written += 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    click.echo(f"{plural(written, 'file')} encrypted to {fpr} in {out_dir}")
    if failed:
        raise ObjectRefused(
            f"{plural(len(failed), 'submission')} could not be decrypted (above) and"
            " were not exported; the others were"
        )


WORKFLOW_COMMANDS = (
    config_command,
    signing_key_command,
    pull_command,
    import_command,
    list_command,
    show_command,
    decrypt_command,
    export_command,
)
