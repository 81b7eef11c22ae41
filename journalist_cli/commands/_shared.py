"""What the workflow commands share: where state lives, logging in, printing safely."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

import envelope
from journalist_cli import config, credentials, designations
from journalist_cli.vault import SourceRecord, Vault

if TYPE_CHECKING:
    from journalist_cli.api_client import ApiClient

F = TypeVar("F", bound=Callable[..., Any])
PATH = click.Path(path_type=Path)


def passphrase_option(func: F) -> F:
    return click.option(
        "--passphrase-file",
        type=PATH,
        envvar="LANTERNE_PASSPHRASE_FILE",
        help="Read the identity's passphrase from this file (else it is asked for).",
    )(func)


def identity_option(func: F) -> F:
    return click.option(
        "--identity",
        "identity_path",
        type=PATH,
        help="Identity file to use instead of the configured one.",
    )(func)


def home() -> Path:
    return config.lanterne_home()


def settings() -> config.Config:
    return config.load_config(home())


def open_vault() -> Vault:
    return Vault.open(home())


def identity_file(override: Path | None) -> Path:
    return override if override is not None else settings().require_identity()


@contextmanager
def logged_in(
    passphrase_file: Path | None, signer: credentials.Signer | None = None
) -> Iterator[tuple[ApiClient, credentials.Signer]]:
    """An API client logged in with the configured identity's signing key only
    (``signer``: one the command has unlocked already, not asked for twice)."""
    from journalist_cli.api_client import ApiClient  # httpx: only commands that go online

    cfg = settings()
    server = cfg.require_server()
    if signer is None:
        signer = credentials.load_signer(cfg.require_identity(), passphrase_file)
    with ApiClient(server, proxy=cfg.proxy) as client:
        client.login(signer.name, signer.signing)
        yield client, signer


def pinned_directory(client: ApiClient) -> envelope.KeyDirectory | None:
    """The server's key directory checked against the pinned newsroom key (None when
    no key is pinned); every change of journalist keys since the last one is shown."""
    from journalist_cli import newsroom
    from journalist_cli.workflow_errors import ServerError

    cfg = settings()
    if cfg.newsroom is None:
        return None
    document = client.directory()
    if document is None:
        raise ServerError(
            "you pinned a newsroom key but this server has no signed key directory: do not"
            " send notes or replies; ask the newsroom's admin"
        )
    directory, changes = newsroom.verify(home(), cfg.newsroom, document)
    for line in changes:
        click.secho(f"newsroom key directory {directory.serial}: {line}", err=True, fg="red")
    return directory


def today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def deadline_today(vault: Vault) -> str:
    """The day deadlines are measured against: this machine's day, or the server's
    at the last pull if that is later. A clock wrong on either side never hides
    an overdue deadline (docs/OFFICIAL_CHANNEL.md)."""
    mine = today().isoformat()
    channel = vault.channel()
    return max(mine, channel.today) if channel is not None else mine


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def coarse_age(day: str, now: datetime.date) -> str:
    """'today', 'yesterday', '3 days ago', '2 weeks ago', '5 months ago' (days are all we have)."""
    try:
        then = datetime.date.fromisoformat(day)
    except ValueError:
        return "unknown"
    days = (now - then).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 14:
        return f"{days} days ago"
    if days < 61:
        return f"{days // 7} weeks ago"
    if days < 730:
        return f"{days // 30} months ago"
    return f"{days // 365} years ago"


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 source', '2 sources', '0 sources' (``many`` for irregular words)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def reply_key_warning(label: str) -> str:
    """What every command says about a source whose reply key changed (vault.store_summary)."""
    return (
        f"the server now gives another reply key for {label}: this can mean the server is"
        " compromised. Replies stay encrypted to the first key only, and `lanterne reply`"
        " refuses to write to this source; tell your admin"
    )


def source_warnings(records: Iterable[SourceRecord], language: designations.Language) -> None:
    """Warnings about sources that every listing command prints (on stderr)."""
    for r in records:
        if r.reply_key_changed:
            click.secho(f"warning: {reply_key_warning(r.label(language))}", fg="yellow", err=True)
