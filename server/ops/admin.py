"""``lanterne-server``: create an instance, register journalists, run the source interface.

Thin on purpose: each command parses its options and calls plain functions
(server.ops.onion_admin, server.ops.health_check, server.ops.backup, server.store.migrations);
errors an admin can fix are turned into messages and exit code 1 here.

Admin commands run as root outside the service (deploy/README.md): files they
create in the data directory are handed to the data directory's owner.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

import click

import envelope
from server.domain.clock import SystemClock
from server.domain.sources import InstanceSecrets
from server.languages import LANGUAGES
from server.ops.newsroom_key import NewsroomSigner
from server.ops.tor_config import DebianLayout
from server.settings import DEFAULT_CONFIG, ConfigError, Settings
from server.store import file_times, wiring
from server.store.db import Database
from server.store.instance_files import create_private
from server.store.migrations import MigrationError, current_version
from server.store.objects import ObjectStore
from server.web.app import SILENT
from server.web.journalist_api.auth import JOURNALIST_ONION_META

FC = TypeVar("FC", bound=Callable[..., object])

# uvicorn logs: warnings and errors to stderr, no access log, no client addresses.
UVICORN_LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    # Exception messages and tracebacks can quote a request: only their type is logged.
    "filters": {"redact": {"()": "server.web.contain_errors.RedactTracebacks"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}
    },
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        "lanterne": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        # python-multipart quotes body bytes in its parse warnings: never emitted.
        "python_multipart": {"handlers": [], "level": SILENT, "propagate": False},
        "python_multipart.multipart": {"handlers": [], "level": SILENT, "propagate": False},
    },
}


class AdminError(click.ClickException):
    """A problem the admin can fix; shown as one line."""


@contextmanager
def _admin_errors() -> Iterator[None]:
    """Domain errors of the plain modules, as one-line messages (exit code 1)."""
    from server.ops.admin_identity import IdentityError
    from server.ops.backup import BackupError
    from server.ops.newsroom_key import NewsroomKeyError
    from server.ops.tor_config import TorConfigError

    try:
        yield
    except (MigrationError, TorConfigError, BackupError, IdentityError, NewsroomKeyError) as exc:
        raise AdminError(str(exc)) from exc


@contextmanager
def _backend_errors() -> Iterator[None]:
    """PostgreSQL or the bucket out of reach, a secret missing: one line, exit code 1."""
    from server.store.protocols import StoreUnavailable

    try:
        yield
    except ConfigError as exc:
        raise AdminError(str(exc)) from exc
    except StoreUnavailable as exc:
        raise AdminError(f"cannot reach {exc}: is it running, and are its secrets set?") from exc
    except Exception as exc:
        # psycopg's and botocore's own errors (a wrong password, an unknown bucket),
        # named by their type and first line: no traceback for the admin.
        if type(exc).__module__.split(".")[0] in {"psycopg", "psycopg_pool", "botocore", "boto3"}:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise AdminError(
                f"the configured backend refused: {type(exc).__name__}: {first}"
            ) from exc
        raise


def _prepared_journalists(settings: Settings) -> wiring.AdminJournalistStore:
    """The journalists where config.toml puts the rows, the PostgreSQL schema
    created or migrated first (idempotent; instances starting together upgrade once)."""
    with _backend_errors():
        pg = wiring.postgres_database(settings)
        if pg is not None:
            pg.prepare()
        return wiring.configured_journalists(settings)


def _init_rows(data_dir: Path) -> wiring.AdminJournalistStore:
    """For ``init``: the journalists where config.toml (if written yet) puts them."""
    try:
        settings = Settings.load(data_dir)
    except ConfigError as exc:
        raise AdminError(str(exc)) from exc
    if settings.database is None:
        return Database(settings.database_path)  # created by init_instance if missing
    return _prepared_journalists(settings)


def _give_to_owner(data_dir: Path) -> None:
    """Root ran this command: SQLite may have created -wal/-shm files as root,
    which the service could then not open. Hand them to the data dir's owner."""
    if os.geteuid() != 0 or not data_dir.is_dir():
        return
    owner = data_dir.stat()
    for path in data_dir.glob(f"{Settings(data_dir=data_dir).database_path.name}*"):
        if path.stat().st_uid != owner.st_uid:
            os.chown(path, owner.st_uid, owner.st_gid)


def init_instance(
    data_dir: Path, journalist_files: list[Path], replace: bool = False
) -> list[envelope.PublicKey]:
    """Create (or complete) an instance in ``data_dir``; idempotent. A journalist
    file whose name is registered with other keys is refused unless ``replace``."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # also when it existed with looser rights
    settings = Settings(data_dir=data_dir)
    if not settings.secrets_path.exists():
        create_private(settings.secrets_path, InstanceSecrets.generate().to_json())
    if not settings.config_path.exists():
        # 0600 like everything here, whatever the admin's umask (check insists).
        create_private(settings.config_path, DEFAULT_CONFIG)
    db = Database(settings.database_path)
    with _admin_errors():
        db.create()  # creates the schema, or migrates an older database
    settings.database_path.chmod(0o600)
    ObjectStore(settings.objects_dir).create_dirs()
    rows = _init_rows(data_dir)  # PostgreSQL when config.toml names [database]
    # Every file is read and checked before anyone is registered: all or nothing.
    keys = [read_journalist_key(path) for path in journalist_files]
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise AdminError("two --journalist files have the same name")
    for key in keys:
        check_replacement(rows, key, replace)
    check_header_room(rows, keys)
    for key in keys:
        register_journalist(rows, key)
    file_times.floor_tree(data_dir)  # what it wrote carries the day only
    return keys


def read_journalist_key(path: Path) -> envelope.PublicKey:
    try:
        return envelope.PublicKey.from_json(path.read_bytes())
    except OSError as exc:
        raise AdminError(f"cannot read {path}: {exc.strerror}") from exc
    except envelope.KeyFormatError as exc:
        raise AdminError(f"{path}: {exc}") from exc


def check_replacement(
    db: wiring.AdminJournalistStore, key: envelope.PublicKey, replace: bool
) -> bool:
    """Refuse to replace a journalist's keys without ``replace``; True if it would.

    Replacing any key counts (adding a hybrid key too): a new signing key ends
    the old one's API tokens at their next request, so it must never happen by
    accident."""
    existing = db.journalist_named(key.name)
    hybrid = None if key.hybrid is None else key.hybrid.public_bytes
    changed = existing is not None and (
        existing.encryption_key != key.x25519.public_bytes
        or existing.signing_key != key.signing_key
        or existing.hybrid_key != hybrid
    )
    if changed and not replace:
        raise AdminError(f"a journalist named {key.name} exists with other keys; use --replace")
    return changed


def check_header_room(db: wiring.AdminJournalistStore, keys: list[envelope.PublicKey]) -> None:
    """Refuse keys that would make envelopes to every journalist impossible.

    Every submission, note and reply is one envelope to all journalists (a reply
    to the source as well), and a header holds at most 65536 bytes: about 55
    hybrid keys (SPEC §7). Checked by writing such a header, with a stand-in
    for the source's reply key.
    """
    everyone: dict[str, envelope.PublicKey] = {}
    for row in db.journalists():
        try:
            everyone[row.name] = row.public_key()
        except envelope.KeyFormatError:
            continue  # a damaged row is `check`'s to report; it cannot be encrypted to anyway
    everyone.update({k.name: k for k in keys})
    recipients = [k.recipient for k in everyone.values()]
    try:
        envelope.Encryptor([*recipients, envelope.X25519Identity.generate().recipient])
    except envelope.FormatError as exc:
        raise AdminError(
            f"{len(everyone)} journalists' keys do not fit in one envelope ({exc});"
            " remove journalists who left before adding more"
        ) from exc


def register_journalist(
    db: wiring.AdminJournalistStore, key: envelope.PublicKey, role: str = "journalist"
) -> envelope.PublicKey:
    db.add_journalist(
        key.name,
        key.x25519.public_bytes,
        key.signing_key,
        role,
        SystemClock().today(),
        hybrid_key=None if key.hybrid is None else key.hybrid.public_bytes,
    )
    return key


def _settings(data_dir: Path) -> Settings:
    if not (data_dir / "secrets.json").exists():
        raise AdminError(f"{data_dir} is not a Lanterne instance; run `lanterne-server init` first")
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        raise AdminError(f"{data_dir} is readable by others (mode {mode:o}); chmod 700 it")
    try:
        return Settings.load(data_dir)
    except ConfigError as exc:
        raise AdminError(str(exc)) from exc


class _Group(click.Group):
    """--help lists each command's whole first sentence, wrapped, never cut off with "..."."""

    group_class = type  # subgroups (journalists) list their commands the same way

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    envvar="LANTERNE_DATA_DIR",
    show_envvar=True,
    help="The instance's data directory (/var/lib/lanterne on a deployed server).",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lanterne", prog_name="lanterne-server")
def main() -> None:
    """Run and administer a Lanterne server."""


def _newsroom_options(f: FC) -> FC:
    f = click.option(
        "--passphrase-file",
        "newsroom_passphrase_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Read the newsroom key's passphrase from this file (else it is asked for).",
    )(f)
    return click.option(
        "--newsroom-key",
        type=click.Path(path_type=Path, dir_okay=False),
        help="The newsroom's identity or signing identity (from `lanterne keys generate`"
        " / `lanterne signing-key`, on a removable medium): it signs the new key"
        " directory, and is never copied to the server. `init` makes one there if"
        " the file does not exist.",
    )(f)


def _newsroom_signer(
    db: wiring.AdminJournalistStore,
    newsroom_key: Path | None,
    passphrase_file: Path | None,
    *,
    changing: bool,
) -> NewsroomSigner | None:
    """The signer for a change to the journalist list; refused without one once the
    instance's directory is signed (an unsigned change would never be used)."""
    from server.ops import newsroom_key as nk

    if newsroom_key is None:
        if changing and nk.is_signed(db):
            raise AdminError(
                "this instance's key directory is signed: give --newsroom-key to sign the change"
            )
        return None
    with _admin_errors():
        return nk.open_signer(newsroom_key, _passphrase_reader(newsroom_key, passphrase_file))


def _new_newsroom_key(path: Path, passphrase_file: Path | None) -> NewsroomSigner:
    """init --newsroom-key PATH with nothing at PATH: make the newsroom key there."""
    from server.ops import newsroom_key as nk

    if passphrase_file is not None:
        passphrase = _passphrase_reader(path, passphrase_file)()
    else:
        passphrase = str(
            click.prompt(
                f"New passphrase for the newsroom key {path}",
                hide_input=True,
                confirmation_prompt=True,
                err=True,
            )
        )
    with _admin_errors():
        signer = nk.create(path, passphrase)
    click.echo(f"newsroom key created: {path}")
    click.echo(f"newsroom fingerprint: {signer.fingerprint}")
    click.echo(
        "Keep it off this server (a removable medium, and a copy in a safe place), and"
        " publish the fingerprint where sources and journalists can compare it."
    )
    return signer


def _publish(
    db: wiring.AdminJournalistStore,
    keys: list[envelope.PublicKey],
    signer: NewsroomSigner,
    data_dir: Path | None = None,
) -> None:
    """Sign the directory, and certify the instance's receipt key if it is not
    yet (when the instance's ``data_dir``, holding its secrets, is known)."""
    from server.ops import newsroom_key as nk

    certified = False
    with _admin_errors():
        directory = nk.publish(db, keys, signer)
        if data_dir is not None:
            instance_key = nk.instance_key(Settings(data_dir=data_dir).secrets_path)
            certified = nk.certify_receipts(db, signer, instance_key)
    click.echo(
        f"key directory {directory.serial} signed by the newsroom key {signer.fingerprint}:"
        f" {', '.join(k.name for k in directory.journalists) or 'no journalist'}"
    )
    if certified:
        click.echo("receipt key certified by the newsroom key: sources can save receipts")


@main.command()
@data_dir_option
@click.option(
    "--journalist",
    "journalists",
    type=click.Path(path_type=Path, dir_okay=False),
    multiple=True,
    help="A journalist's NAME.pub file (repeat for several).",
)
@click.option(
    "--replace",
    is_flag=True,
    help="Replace the keys of journalists already registered under these names.",
)
@_newsroom_options
def init(
    data_dir: Path,
    journalists: tuple[Path, ...],
    replace: bool,
    newsroom_key: Path | None,
    newsroom_passphrase_file: Path | None,
) -> None:
    """Create the data directory, database and instance secrets; register journalists.

    On an existing instance, completes what is missing and migrates the
    database to this release's schema (run it after every upgrade)."""
    db_path = Settings(data_dir=data_dir).database_path
    with _admin_errors():
        before = current_version(db_path) if db_path.exists() else None
    signer = None
    if newsroom_key is not None and not newsroom_key.exists():
        signer = _new_newsroom_key(newsroom_key, newsroom_passphrase_file)
    elif newsroom_key is not None:
        signer = _newsroom_signer(
            _init_rows(data_dir), newsroom_key, newsroom_passphrase_file, changing=True
        )
    elif journalists and db_path.exists():
        _newsroom_signer(_init_rows(data_dir), None, None, changing=True)  # refuses if signed
    added = init_instance(data_dir, list(journalists), replace)
    if signer is not None:
        from server.ops.newsroom_key import current_keys

        db = _init_rows(data_dir)
        keys = {k.name: k for k in current_keys(db)}
        keys.update((k.name, k) for k in added)
        _publish(db, sorted(keys.values(), key=lambda k: k.name), signer, data_dir)
    _give_to_owner(data_dir)
    after = current_version(db_path)
    if before is not None and before != after:
        click.echo(f"Database migrated: schema version {before} -> {after}")
    click.echo(f"Instance ready in {data_dir}")
    for key in added:
        click.echo(f"  journalist {key.name}: {key.fingerprint}")
    if not _init_rows(data_dir).journalists():
        click.echo("No journalist yet: add one with `lanterne-server init --journalist NAME.pub`.")


@main.command()
@data_dir_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; keep loopback behind Tor (deploy/README.md).",
)
@click.option(
    "--port", default=8080, show_default=True, type=int, help="Port of the source interface."
)
@click.option(
    "--journalist-port",
    type=int,
    help="Also serve the journalist API on this port (same host), for its own onion service.",
)
def run(data_dir: Path, host: str, port: int, journalist_port: int | None) -> None:
    """Serve the source interface (loopback only unless --host says otherwise).

    With --journalist-port, the journalist API runs in a child process of its
    own, so that a flood of one listener leaves the other answering."""
    from server.ops.serving import BindError, JournalistChild, bind_all, guarded_server, serve
    from server.store.uploads import UploadPolicy, UploadStore
    from server.web.app import create_app

    settings = _settings(data_dir)
    if journalist_port is not None and journalist_port == port:
        raise AdminError("--journalist-port must differ from --port")
    # The ports first: one that is taken is the only thing said, before any banner.
    addresses = [(host, port)] + ([(host, journalist_port)] if journalist_port is not None else [])
    try:
        sockets = bind_all(addresses)
    except BindError as exc:
        raise AdminError(str(exc)) from exc
    db = Database(settings.database_path)
    with _admin_errors():
        db.create()  # idempotent: migrates a database from an older release
        rows = _prepared_journalists(settings)
    if not rows.journalists():
        click.echo("warning: no journalist key is registered; submissions are refused", err=True)
    uploads = UploadStore(db, settings.uploads_dir, UploadPolicy.from_settings(settings))
    uploads.prepare()
    with _backend_errors():
        objects = wiring.object_store(settings)
        recorded = rows.known_object_ids()
        # Uploads in progress shared by the instances (PostgreSQL and the bucket).
        shared = wiring.shared_upload_store(settings, objects)
    if isinstance(objects, ObjectStore):
        # A crash in a commit, after uploads moved and before the record: back to
        # the uploads, so that the page's next commit goes through.
        uploads.reclaim(objects, recorded)
    # A crash mid-upload can leave temporary or unlisted objects: remove them
    # before serving. With several instances, only what is a day old (another
    # instance may be writing the rest) and what no upload in progress names.
    with _backend_errors():
        if shared is None:
            objects.collect_garbage(recorded)
        else:
            shared.objects.collect_garbage(
                recorded | shared.known_objects(), keep_uploads=shared.multipart_uploads()
            )
    # Likewise uploads in progress: expired ones, and files or rows missing their pair.
    uploads.sweep(at_start=True)
    if shared is not None:
        with _backend_errors():
            shared.sweep(at_start=True)
    # Sources past their retention period (then daily: deploy/lanterne-expire.timer).
    from server.ops.channel_admin import expire as expire_sources
    from server.ops.channel_admin import retention_on

    with _backend_errors():
        if retention_on(settings, rows):
            expire_sources(settings, SystemClock().today())
    limits = settings.serving
    server = guarded_server(
        create_app(settings), host, port, UVICORN_LOG_CONFIG, limits, limits.max_connections
    )
    banner = f"Lanterne source interface on http://{host}:{port}/"
    if journalist_port is not None:
        banner += f", journalist API on http://{host}:{journalist_port}/api/v1/"
    # Nothing is in flight yet: heal times a crash between a write and its stamp
    # left precise, or that a release before file times were days wrote.
    file_times.floor_tree(settings.data_dir)
    child = None
    if journalist_port is not None:
        child = JournalistChild(data_dir, host, journalist_port, sockets[1])
        child.start()
    click.echo(banner, err=True)
    try:
        if child is None:
            serve(server, sockets[0])
        else:
            serve(server, sockets[0], on_signal=child.forward, watch=child.watch)
    finally:
        if child is not None:
            if not child.signalled:  # the source interface failed on its own
                child.forward(1)
            child.wait(limits.stop_timeout_seconds + 10)
    if child is not None and child.failed:
        raise SystemExit(1)


@main.group()
def journalists() -> None:
    """Add, list and remove the journalists who receive submissions."""


def _hs_dir_option(help_text: str) -> Callable[[FC], FC]:
    return click.option(
        "--hs-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=lambda: str(DebianLayout().journalist.hs_dir),
        show_default="the journalist onion's, as deploy/install.sh makes it",
        help=help_text,
    )


def _tor_options(f: FC) -> FC:
    f = click.option(
        "--tor-restart-cmd",
        metavar="CMD",
        help="Command that restarts the journalist tor [default: systemctl restart"
        " tor@lanternejournalist if systemd runs, else it is printed].",
    )(f)
    return click.option(
        "--tor-reload-cmd",
        metavar="CMD",
        help="Command that reloads the journalist tor [default: systemctl reload"
        " tor@lanternejournalist if systemd runs, else it is printed].",
    )(f)


@journalists.command("add")
@data_dir_option
@click.option(
    "--role",
    type=click.Choice(["journalist", "admin"]),
    default="journalist",
    show_default=True,
    help="The role shown in listings (no permission depends on it).",
)
@click.option("--replace", is_flag=True, help="Replace the keys of a journalist of that name.")
@click.option(
    "--client-auth-out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the journalist's onion client key here (NAME.auth_private, a new file): "
    "hand it to the journalist with their server address.",
)
@click.option(
    "--no-client-auth",
    is_flag=True,
    help="Register the key for the API only (an instance without the journalist onion).",
)
@_hs_dir_option("The journalist onion's HiddenServiceDir.")
@_tor_options
@_newsroom_options
@click.argument("pub_file", type=click.Path(path_type=Path, dir_okay=False))
def journalists_add(
    data_dir: Path,
    role: str,
    replace: bool,
    client_auth_out: Path | None,
    no_client_auth: bool,
    hs_dir: Path,
    tor_reload_cmd: str | None,
    tor_restart_cmd: str | None,
    newsroom_key: Path | None,
    newsroom_passphrase_file: Path | None,
    pub_file: Path,
) -> None:
    """Register the journalist whose public key is PUB_FILE (NAME.pub), and
    authorise them on the journalist onion (--client-auth-out)."""
    from server.ops import onion_admin

    if (client_auth_out is None) == (not no_client_auth):
        raise AdminError("give --client-auth-out FILE (or --no-client-auth for the API only)")
    settings = _settings(data_dir)
    db = _prepared_journalists(settings)
    key = read_journalist_key(pub_file)
    check_replacement(db, key, replace)
    check_header_room(db, [key])
    signer = _newsroom_signer(db, newsroom_key, newsroom_passphrase_file, changing=True)
    directory_keys = None
    if signer is not None:
        from server.ops.newsroom_key import current_keys

        with _admin_errors():
            directory_keys = [k for k in current_keys(db) if k.name != key.name] + [key]
    tor = onion_admin.TorControl.from_options(tor_reload_cmd, tor_restart_cmd)
    revoked = False
    onion = None
    with _admin_errors():
        if client_auth_out is not None:
            if replace:
                revoked = onion_admin.revoke_journalist(hs_dir, key.name)
            # The client key first: if it fails, nobody was registered.
            onion = onion_admin.authorize_journalist(hs_dir, key.name, client_auth_out)
    try:
        register_journalist(db, key, role)
        if signer is not None and directory_keys is not None:
            _publish(db, sorted(directory_keys, key=lambda k: k.name), signer, data_dir)
        if onion is not None:
            # Login signatures name this address from now on (auth.ServedHosts).
            db.set_meta_value(JOURNALIST_ONION_META, onion)
    except BaseException:
        if client_auth_out is not None:
            onion_admin.revoke_journalist(hs_dir, key.name)
            client_auth_out.unlink(missing_ok=True)
        raise
    _give_to_owner(data_dir)
    click.echo(f"added {key.name} ({role})")
    click.echo(f"fingerprint: {key.fingerprint}")
    click.echo("Read this fingerprint aloud with the journalist before relying on it.")
    if client_auth_out is not None:
        click.echo(f"journalist onion: http://{onion}/")
        click.echo(f"onion client key: {client_auth_out} (give it to {key.name} only)")
        with _admin_errors():
            # An old key was removed: only a restart shuts it out (see onion_admin).
            (tor.restart if revoked else tor.reload)(click.echo)
    else:
        click.echo("No onion client key: this journalist cannot reach the journalist onion.")


@journalists.command("list")
@data_dir_option
def journalists_list(data_dir: Path) -> None:
    """List registered journalists with their roles and fingerprints."""
    settings = _settings(data_dir)
    rows = _prepared_journalists(settings).journalists()
    if not rows:
        click.echo("No journalist registered.")
    for row in rows:
        key = row.public_key()
        kind = "hybrid" if key.hybrid is not None else "X25519"
        click.echo(f"{row.name:20} {row.role:10} {kind:7} {key.fingerprint}")


@journalists.command("remove")
@data_dir_option
@_hs_dir_option("The journalist onion's HiddenServiceDir (its client key is deleted there).")
@_tor_options
@_newsroom_options
@click.argument("name")
def journalists_remove(
    data_dir: Path,
    hs_dir: Path,
    tor_reload_cmd: str | None,
    tor_restart_cmd: str | None,
    newsroom_key: Path | None,
    newsroom_passphrase_file: Path | None,
    name: str,
) -> None:
    """Remove a journalist: new submissions are no longer encrypted to them, their
    API access ends at their next request (a running server checks every request),
    and their onion client key is deleted, then the journalist tor RESTARTED."""
    from server.ops import onion_admin

    settings = _settings(data_dir)
    db = _prepared_journalists(settings)
    signer = _newsroom_signer(db, newsroom_key, newsroom_passphrase_file, changing=True)
    if signer is not None:
        from server.ops.newsroom_key import current_keys

        # The directory first: from now on nothing new is encrypted to them.
        with _admin_errors():
            keys = current_keys(db)
        if any(k.name == name for k in keys):
            _publish(db, [k for k in keys if k.name != name], signer, data_dir)
    removed = db.remove_journalist(name)
    _give_to_owner(data_dir)
    revoked = False
    with _admin_errors():
        if hs_dir.is_dir():
            revoked = onion_admin.revoke_journalist(hs_dir, name)
    if not removed and not revoked:
        raise AdminError(f"no journalist named {name}")
    if removed:
        click.echo(f"removed {name}: API access ends now")
    if revoked:
        click.echo(f"deleted {name}'s onion client key in {hs_dir}")
        tor = onion_admin.TorControl.from_options(tor_reload_cmd, tor_restart_cmd)
        with _admin_errors():
            tor.restart(click.echo)
    else:
        click.echo(f"no onion client key for {name} in {hs_dir}")


@journalists.command("notify")
@data_dir_option
@click.option("--email", "address", metavar="ADDRESS", help="Send the daily digest here.")
@click.option("--off", is_flag=True, help="Send NAME no more digests.")
@click.argument("name")
def journalists_notify(data_dir: Path, address: str | None, off: bool, name: str) -> None:
    """Send NAME the daily digest at an address (--email), or no more (--off).

    The digest says only whether something new arrived, every day at the same
    time, through the [smtp] relay of config.toml (`lanterne-server digest`)."""
    from server.settings import valid_address

    if (address is None) == (not off):
        raise AdminError("give --email ADDRESS or --off")
    if address is not None and not valid_address(address):
        raise AdminError(f"{address!r} is not an e-mail address (local@domain, nothing else)")
    settings = _settings(data_dir)
    db = _prepared_journalists(settings)
    with _backend_errors():
        found = db.set_digest_address(name, address)
    _give_to_owner(data_dir)
    if not found:
        raise AdminError(f"no journalist named {name}")
    if address is None:
        click.echo(f"{name} will receive no more digests")
        return
    click.echo(f"{name} will receive the daily digest at {address}")
    if settings.smtp is None:
        click.echo("warning: config.toml has no [smtp] relay yet: no digest is sent", err=True)


@main.command()
@data_dir_option
def digest(data_dir: Path) -> None:
    """Send today's digest to each journalist who asked (`journalists notify`):
    one mail saying only whether something new arrived. Run daily by
    lanterne-digest.timer; running it again the same day sends only what failed."""
    from server.ops.digest import DigestError, send_due

    settings = _settings(data_dir)
    if settings.smtp is None:
        raise AdminError("config.toml has no [smtp] relay: the digest cannot be sent")
    db = _prepared_journalists(settings)
    try:
        with _backend_errors():
            report = send_due(db, settings.smtp, SystemClock().today(), os.environ)
    except DigestError as exc:
        raise AdminError(str(exc)) from exc
    finally:
        _give_to_owner(data_dir)
    click.echo(
        f"digest sent to {len(report.sent)} journalist(s)"
        + (f"; {report.already} had theirs today already" if report.already else "")
    )


@main.group(cls=_Group)
def desks() -> None:
    """Add, list and remove desks: each receives what sources send it (docs/DESKS.md)."""


def _desk_signing(
    db: wiring.AdminJournalistStore, newsroom_key: Path | None, passphrase_file: Path | None
) -> Callable[[], None]:
    """What signs the directory after a desk change: nothing on an unsigned instance;
    refused without --newsroom-key on a signed one (envelope/SPEC.md §11.1)."""
    signer = _newsroom_signer(db, newsroom_key, passphrase_file, changing=True)
    if signer is None:
        return lambda: None

    def sign() -> None:
        from server.ops.newsroom_key import current_keys

        with _admin_errors():
            keys = current_keys(db)
        _publish(db, sorted(keys, key=lambda k: k.name), signer)

    return sign


def _desk_text_options(f: FC) -> FC:
    """A desk's texts as sources read them: ``desks add`` needs every language of
    the source interface, ``desks texts`` changes those it is given."""
    f = click.option(
        "--description",
        "descriptions",
        multiple=True,
        metavar="LANG=TEXT",
        help="One or two sentences saying what the desk receives, in one language (repeat).",
    )(f)
    return click.option(
        "--title",
        "titles",
        multiple=True,
        metavar="LANG=TEXT",
        help="The desk's title on the submit page, in one language (repeat: en=..., fr=...).",
    )(f)


@contextmanager
def _desk_errors() -> Iterator[None]:
    from server.ops.desks import DeskError

    try:
        with _admin_errors():
            yield
    except DeskError as exc:
        raise AdminError(str(exc)) from exc


@desks.command("add")
@data_dir_option
@_desk_text_options
@click.option(
    "--journalist",
    "members",
    multiple=True,
    metavar="NAME",
    help="A journalist of the desk (repeat for several).",
)
@_newsroom_options
@click.argument("name")
def desks_add(
    data_dir: Path,
    titles: tuple[str, ...],
    descriptions: tuple[str, ...],
    members: tuple[str, ...],
    newsroom_key: Path | None,
    newsroom_passphrase_file: Path | None,
    name: str,
) -> None:
    """Add the desk NAME (lowercase letters, digits, '-'); on a signed instance the
    new key directory names it and its journalists."""
    from server.ops import desks as desk_ops
    from server.store.protocols import DeskRow

    with _desk_errors():
        desk_ops.check_name(name)
        desk = DeskRow(
            name,
            desk_ops.parse_texts(titles, "title"),
            desk_ops.parse_texts(descriptions, "description"),
            tuple(sorted(set(members))),
        )
    db = _prepared_journalists(_settings(data_dir))
    sign = _desk_signing(db, newsroom_key, newsroom_passphrase_file)
    with _desk_errors():
        desk_ops.add(db, desk, sign)
    _give_to_owner(data_dir)
    click.echo(f"added desk {name}: {', '.join(desk.members) or 'no journalist of its own'}")


@desks.command("texts")
@data_dir_option
@_desk_text_options
@click.argument("name")
def desks_texts(
    data_dir: Path, titles: tuple[str, ...], descriptions: tuple[str, ...], name: str
) -> None:
    """Change the title or description of the desk NAME in some languages (a typo,
    a language added to the source interface). Its sources and journalists stay."""
    from server.ops import desks as desk_ops

    db = _prepared_journalists(_settings(data_dir))
    with _desk_errors():
        desk = desk_ops.set_texts(db, name, titles, descriptions)
    _give_to_owner(data_dir)
    click.echo(f"desk {name}:")
    for lang in desk.titles:
        click.echo(f"  {lang}: {desk.titles[lang]} ({desk.descriptions[lang]})")


@desks.command("list")
@data_dir_option
def desks_list(data_dir: Path) -> None:
    """List the desks, their journalists, and who receives every desk."""
    from server.languages import LANGUAGES

    db = _prepared_journalists(_settings(data_dir))
    rows = db.desks()
    everywhere = [j.name for j in db.journalists() if j.all_desks]
    if not rows:
        click.echo("No desk: sources send to every journalist.")
    for desk in rows:
        title = desk.titles.get(LANGUAGES[0]) or next(iter(desk.titles.values()), "")
        count = len(db.desk_sources(desk.name))
        click.echo(f"{desk.name:20} {title}")
        click.echo(f"  journalists: {', '.join(desk.members) or 'none of its own'}")
        click.echo(f"  sources: {count}")
    if everywhere:
        click.echo(f"receive every desk: {', '.join(everywhere)}")


@desks.command("journalists")
@data_dir_option
@click.option(
    "--journalist",
    "members",
    multiple=True,
    metavar="NAME",
    help="A journalist of the desk (repeat); the list replaces the desk's.",
)
@_newsroom_options
@click.argument("name")
def desks_journalists(
    data_dir: Path,
    members: tuple[str, ...],
    newsroom_key: Path | None,
    newsroom_passphrase_file: Path | None,
    name: str,
) -> None:
    """Set the journalists of the desk NAME. What they already received stays
    encrypted to those it was sent to: a journalist added now reads only what
    arrives from now on (or what a member moves again)."""
    from server.ops import desks as desk_ops

    db = _prepared_journalists(_settings(data_dir))
    sign = _desk_signing(db, newsroom_key, newsroom_passphrase_file)
    chosen = tuple(sorted(set(members)))
    with _desk_errors():
        before = desk_ops.set_members(db, name, chosen, sign)
    _give_to_owner(data_dir)
    click.echo(f"desk {name}: {', '.join(chosen) or 'no journalist of its own'}")
    if set(before) - set(chosen):
        click.echo(
            f"{', '.join(sorted(set(before) - set(chosen)))} no longer see this desk's"
            " sources; what they already pulled stays on their machines"
        )


@desks.command("all-desks")
@data_dir_option
@click.option("--off", is_flag=True, help="Stop this journalist receiving every desk.")
@_newsroom_options
@click.argument("journalist")
def desks_all(
    data_dir: Path,
    off: bool,
    newsroom_key: Path | None,
    newsroom_passphrase_file: Path | None,
    journalist: str,
) -> None:
    """Mark JOURNALIST as receiving every desk (an editor, a compliance officer)."""
    from server.ops import desks as desk_ops

    db = _prepared_journalists(_settings(data_dir))
    sign = _desk_signing(db, newsroom_key, newsroom_passphrase_file)
    with _desk_errors():
        desk_ops.set_all_desks(db, journalist, not off, sign)
    _give_to_owner(data_dir)
    click.echo(f"{journalist} {'no longer receives' if off else 'receives'} every desk")


@desks.command("remove")
@data_dir_option
@click.option(
    "--delete-sources",
    is_flag=True,
    help="Also delete the desk's sources and everything they sent (else a desk with"
    " sources is not removed).",
)
@_newsroom_options
@click.argument("name")
def desks_remove(
    data_dir: Path,
    delete_sources: bool,
    newsroom_key: Path | None,
    newsroom_passphrase_file: Path | None,
    name: str,
) -> None:
    """Remove the desk NAME. Refused while sources are in it: journalists move
    them first (`lanterne move`), or --delete-sources deletes them."""
    from server.ops import desks as desk_ops
    from server.store.protocols import ObjectStore as ObjectStoreProtocol
    from server.store.protocols import SourceStore

    settings = _settings(data_dir)
    db = _prepared_journalists(settings)
    sign = _desk_signing(db, newsroom_key, newsroom_passphrase_file)

    def stores() -> tuple[SourceStore, ObjectStoreProtocol]:
        with _backend_errors():
            api = wiring.configured_api_stores(settings)
        return api.sources, api.objects

    with _desk_errors(), _backend_errors():
        deleted = desk_ops.remove(db, name, sign, delete_sources=stores if delete_sources else None)
    _give_to_owner(data_dir)
    file_times.floor_tree(settings.data_dir)
    click.echo(f"removed desk {name}")
    if deleted:
        click.echo(f"deleted its {deleted} source(s) and everything they sent")


@main.command()
@click.option(
    "--layout-prefix",
    type=click.Path(path_type=Path, file_okay=False),
    default="/",
    show_default=True,
    help="Where deploy/install.sh put the tor directories (its LANTERNE_PREFIX).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Also record the journalist onion in this instance: journalists' logins are"
    " signed for that address, and the server accepts no other.",
)
def onions(layout_prefix: Path, data_dir: Path | None) -> None:
    """Print the two onion addresses (sources get the first; journalists the second)."""
    from server.ops.onion_admin import onion_addresses

    layout = DebianLayout(prefix=layout_prefix)
    found = onion_addresses(layout.source.hs_dir, layout.journalist.hs_dir)
    if data_dir is not None and found.journalist:
        db = _prepared_journalists(_settings(data_dir))
        db.set_meta_value(JOURNALIST_ONION_META, found.journalist)
        _give_to_owner(data_dir)
        click.echo(f"journalist logins now name {found.journalist} ({data_dir})")
    for what, onion, hs in (
        ("source interface", found.source, layout.source.hs_dir),
        ("journalist API  ", found.journalist, layout.journalist.hs_dir),
    ):
        text = f"http://{onion}/" if onion else f"not yet ({hs}/hostname missing: start tor)"
        click.echo(f"{what}: {text}")
    if not (found.source and found.journalist):
        raise SystemExit(1)


@main.command()
@data_dir_option
@click.option(
    "--service-user",
    default="lanterne",
    show_default=True,
    help="The user the service runs as, who must own the data directory.",
)
@click.option(
    "--layout-prefix",
    type=click.Path(path_type=Path, file_okay=False),
    default="/",
    show_default=True,
    help="Where deploy/install.sh put tor's files (its LANTERNE_PREFIX); sets the defaults below.",
)
@click.option(
    "--source-torrc",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The source onion's torrc [default: from --layout-prefix].",
)
@click.option(
    "--journalist-torrc",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The journalist onion's torrc [default: from --layout-prefix].",
)
@click.option(
    "--hs-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The journalist onion's HiddenServiceDir.",
)
@click.option(
    "--no-debian-defaults",
    is_flag=True,
    help="Verify the torrcs alone, not with Debian's tor-service-defaults-torrc files.",
)
def check(
    data_dir: Path,
    service_user: str,
    layout_prefix: Path,
    source_torrc: Path | None,
    journalist_torrc: Path | None,
    hs_dir: Path | None,
    no_debian_defaults: bool,
) -> None:
    """Check the deployment: torrcs, permissions, keys, swap, clock. Every item is
    reported; any failure exits 1."""
    from server.ops.health_check import CheckConfig, run_checks

    cfg = CheckConfig.debian(data_dir, DebianLayout(prefix=layout_prefix))
    cfg.service_user = service_user
    cfg.source_torrc = source_torrc or cfg.source_torrc
    cfg.journalist_torrc = journalist_torrc or cfg.journalist_torrc
    cfg.journalist_hs_dir = hs_dir or cfg.journalist_hs_dir
    cfg.debian_defaults = not no_debian_defaults
    findings = run_checks(cfg)
    for finding in findings:
        click.echo(finding.line())
    failed = [f for f in findings if not f.ok]
    if failed:
        click.echo(f"{len(failed)} problem(s) found", err=True)
        raise SystemExit(1)
    click.echo("all checks passed")


class SignatureRefused(AdminError):
    """A backup not signed by the expected admin key: exit code 3, nothing restored."""

    exit_code = 3


def _passphrase_reader(path: Path, passphrase_file: Path | None) -> Callable[[], str]:
    def passphrase() -> str:
        if passphrase_file is not None:
            try:
                return passphrase_file.read_text(encoding="utf-8").splitlines()[0]
            except (OSError, IndexError) as exc:
                raise AdminError(f"cannot read a passphrase from {passphrase_file}") from exc
        return str(click.prompt(f"Passphrase for {path}", hide_input=True, err=True))

    return passphrase


@main.command()
@data_dir_option
@click.option(
    "--to",
    "to",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The backup file to write (one envelope).",
)
@click.option(
    "--signing-key",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The admin's signing identity (ADMIN.signing, from `lanterne signing-key`; it"
    " cannot decrypt), or their full identity: the backup is signed with it.",
)
@click.option(
    "--recipient",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Encrypt to this Lanterne public key (ADMIN.pub) [default: the signing key's own].",
)
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the signing key's passphrase from this file (else it is asked for).",
)
def backup(
    data_dir: Path,
    to: Path,
    signing_key: Path,
    recipient: Path | None,
    passphrase_file: Path | None,
) -> None:
    """Back up the instance, while it runs, as one envelope to the admin's key,
    signed by the admin's key: its rows and objects wherever config.toml puts
    them (SQLite and files, or PostgreSQL and the bucket)."""
    from server.ops.admin_identity import admin_public_key, open_admin_signer
    from server.ops.backup import backup as make_backup

    settings = _settings(data_dir)
    with _admin_errors():
        signer = open_admin_signer(signing_key, _passphrase_reader(signing_key, passphrase_file))
        key = signer.public if recipient is None else admin_public_key(recipient)
        with _backend_errors():  # PostgreSQL and the bucket, when config.toml names them
            report = make_backup(settings.data_dir, to, key, signer)
    click.echo(f"backup written to {to}: {report.objects} objects, {report.bytes} bytes")
    click.echo(f"encrypted to {key.name} ({key.fingerprint})")
    click.echo(f"signed by {signer.public.name} ({signer.public.fingerprint})")
    if report.dropped:
        click.echo(f"{report.dropped} objects were deleted during the backup and left out")


@main.command()
@data_dir_option
@click.option(
    "--from",
    "from_",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The backup file `lanterne-server backup` wrote.",
)
@click.option(
    "--identity",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The admin's identity file (ADMIN.identity), unprotected or with a passphrase.",
)
@click.option(
    "--passphrase-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the identity's passphrase from this file (else it is asked for).",
)
@click.option(
    "--admin-key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Accept only backups signed by this key (a .pub, identity or signing identity"
    " file) [default: the --identity's own key].",
)
@click.option(
    "--admin-fingerprint",
    metavar="FINGERPRINT",
    help="Accept only backups signed by the key of this fingerprint (8 groups of 5 digits).",
)
@click.option(
    "--owner",
    help="Give the restored files to this user (and its group), e.g. lanterne; needs root.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Restore with this config.toml instead of the backup's (another database or"
    " bucket, or none: back to SQLite and files).",
)
def restore(
    data_dir: Path,
    from_: Path,
    identity: Path,
    passphrase_file: Path | None,
    admin_key: Path | None,
    admin_fingerprint: str | None,
    owner: str | None,
    config_file: Path | None,
) -> None:
    """Restore a signed backup into a new (absent or empty) data directory; all or
    nothing. When the restored config.toml names [database] or [objects], the rows
    and objects go there, into an empty database and bucket. A backup not signed
    by the expected admin key exits 3."""
    from server.ops.admin_identity import admin_public_key, open_admin_identity
    from server.ops.backup import BackupSignatureError, ExpectedSigner
    from server.ops.backup import restore as do_restore

    if admin_key is not None and admin_fingerprint is not None:
        raise AdminError("give --admin-key or --admin-fingerprint, not both")
    if admin_fingerprint is not None and not re.fullmatch(r"(\s*\d{5}){8}\s*", admin_fingerprint):
        raise AdminError("--admin-fingerprint takes 8 groups of 5 digits, as `keys show` prints")
    ids = None
    if owner is not None:
        try:
            entry = pwd.getpwnam(owner)
        except KeyError as exc:
            raise AdminError(f"no user named {owner}") from exc
        ids = (entry.pw_uid, entry.pw_gid)
    with _admin_errors():
        if admin_fingerprint is not None:
            expected = ExpectedSigner(fingerprint=admin_fingerprint)
        else:
            expected = ExpectedSigner.of(admin_public_key(admin_key or identity))
        config = None
        if config_file is not None:
            try:
                config = config_file.read_bytes()
            except OSError as exc:
                raise AdminError(f"cannot read {config_file}: {exc.strerror}") from exc
        admin = open_admin_identity(identity, _passphrase_reader(identity, passphrase_file))
        try:
            with _backend_errors():
                report = do_restore(from_, data_dir, admin, expected, ids, config)
        except BackupSignatureError as exc:
            raise SignatureRefused(str(exc)) from exc
    click.echo(f"restored {report.objects} objects into {data_dir}")
    click.echo("check it with `lanterne-server check`, then start the service")


@main.group()
def directory() -> None:
    """The key directory: which journalist keys sources encrypt to, signed by the
    newsroom key (envelope/SPEC.md §11)."""


@directory.command("show")
@data_dir_option
def directory_show(data_dir: Path) -> None:
    """Print the newsroom fingerprint and the signed directory's journalists."""
    from server.domain import key_directory

    settings = _settings(data_dir)
    db = _prepared_journalists(settings)
    try:
        current = key_directory.current(db)
    except key_directory.DirectoryUnusable as exc:
        raise AdminError(f"{exc}; sign it again with `lanterne-server directory sign`") from None
    if current is None:
        click.echo("No newsroom key: the journalist list is not signed (sources encrypt to")
        click.echo("the registered journalists). Sign it: `lanterne-server directory sign`.")
        return
    click.echo(f"newsroom key: {current.newsroom_fingerprint}")
    click.echo(f"directory {current.serial} signed on {current.day}")
    for key in current.journalists:
        click.echo(f"  {key.name:20} {key.fingerprint}")
    signed = {k.name for k in current.journalists}
    unsigned = sorted({row.name for row in db.journalists()} - signed)
    if unsigned:
        click.echo(f"registered but not in the directory (receive nothing): {', '.join(unsigned)}")


@directory.command("sign")
@data_dir_option
@_newsroom_options
def directory_sign(
    data_dir: Path, newsroom_key: Path | None, newsroom_passphrase_file: Path | None
) -> None:
    """Sign a new directory of the registered journalists with the newsroom key
    (the first time, this records the key: the instance is signed from then on)."""
    from server.ops.newsroom_key import NewsroomKeyError, current_keys, registered_keys

    if newsroom_key is None:
        raise AdminError("give --newsroom-key")
    settings = _settings(data_dir)
    db = _prepared_journalists(settings)
    signer = _newsroom_signer(db, newsroom_key, newsroom_passphrase_file, changing=True)
    assert signer is not None
    # The signed keys of those still registered (hybrid keys are kept), then the rest.
    try:
        keys = {k.name: k for k in current_keys(db)}
    except NewsroomKeyError:
        keys = {}
    registered = {k.name: k for k in registered_keys(db)}
    chosen = [keys.get(name, key) for name, key in sorted(registered.items())]
    _publish(db, chosen, signer, data_dir)


@main.command("verify-receipt")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--newsroom",
    metavar="FINGERPRINT",
    help="The newsroom key's fingerprint (8 groups of 5 digits) to check against.",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="LANTERNE_DATA_DIR",
    help="Check against this instance's recorded newsroom key (instead of --newsroom),"
    " and find the submission the receipt covers.",
)
def verify_receipt(file: Path, newsroom: str | None, data_dir: Path | None) -> None:
    """Check a source's receipt FILE (envelope/SPEC.md §12) against the newsroom
    key, offline; exit code 1 if it does not verify. With --data-dir, also say
    whether this instance holds the submission it covers."""
    from server.domain import key_directory
    from server.domain.receipts import object_hash

    if (newsroom is None) == (data_dir is None):
        raise AdminError("give --newsroom FINGERPRINT or --data-dir (or both: not both)")
    trusted: bytes | str
    settings = None
    if newsroom is not None:
        if not re.fullmatch(r"(\s*\d{5}){8}\s*", newsroom):
            raise AdminError("--newsroom takes 8 groups of 5 digits, as the landing page shows")
        trusted = newsroom
    else:
        assert data_dir is not None
        settings = _settings(data_dir)
        recorded = key_directory.newsroom_key(_prepared_journalists(settings))
        if recorded is None:
            raise AdminError("this instance records no newsroom key: give --newsroom")
        trusted = recorded
    try:
        receipt = envelope.verify_receipt(file.read_bytes(), trusted)
    except envelope.ReceiptError as exc:
        raise AdminError(f"{file}: not a valid receipt: {exc}") from exc
    click.echo(
        f"valid receipt, signed for the newsroom key"
        f" {envelope.newsroom_fingerprint(receipt.newsroom_key)}"
    )
    click.echo(f"  received by: {receipt.received_by!r}")
    click.echo(f"  day:         {receipt.day}")
    click.echo(f"  objects:     {receipt.objects} (SHA-256 {receipt.sha256})")
    click.echo(f"  receipt key certified on {receipt.certified_on}")
    if settings is None:
        return
    with _backend_errors():
        objects = wiring.object_store(settings)
        found = [
            sid
            for sid, day, objs in wiring.configured_submissions(settings)
            if day == receipt.day
            and len(objs) == receipt.objects
            and envelope.receipt_objects_hash(object_hash(objects, o.id) for o in objs).hex()
            == receipt.sha256
        ]
    for sid in found:
        click.echo(f"this instance holds the submission it covers: {sid}")
    if not found:
        click.echo("this instance holds no submission that matches it (deleted, or another's)")


@main.command("list")
@data_dir_option
def list_submissions(data_dir: Path) -> None:
    """List complete submissions and their encrypted objects (no content is shown)."""
    settings = _settings(data_dir)
    with _backend_errors():
        subs = wiring.configured_submissions(settings)
    if not subs:
        click.echo("No submission yet.")
    for sid, day, objects in subs:
        click.echo(f"submission {sid}  received {day}")
        for obj in objects:
            if settings.objects is not None:
                where = f"bucket {settings.objects.bucket}, key {obj.id}"
            else:
                where = str(settings.objects_dir / obj.id)
            click.echo(f"  {obj.kind:8}  {where}")


# --- An official channel (docs/OFFICIAL_CHANNEL.md) --------------------------------


@main.command()
@data_dir_option
def expire(data_dir: Path) -> None:
    """Delete the sources whose retention period ended ([channel] retention_days),
    rows and ciphertext; run daily by deploy/lanterne-expire.timer."""
    from server.ops.channel_admin import expire as expire_sources
    from server.ops.channel_admin import retention_on

    settings = _settings(data_dir)
    with _admin_errors():
        if settings.database is None:
            Database(settings.database_path).create()  # migrates an older database
        rows = _prepared_journalists(settings)
    with _backend_errors():
        if not retention_on(settings, rows):
            click.echo("retention is off ([channel] retention_days): nothing to delete")
            return
        deleted = expire_sources(settings, SystemClock().today())
    click.echo(f"{deleted} source(s) deleted after their retention period")


@main.group()
def channel() -> None:
    """The official channel's settings kept in the database: each desk's own
    deadlines and retention, and the acknowledgement texts."""


@channel.command("desk")
@data_dir_option
@click.option("--official/--not-official", default=None, help="Track the legal deadlines.")
@click.option("--acknowledge-days", type=int, help="Days to acknowledge a report.")
@click.option("--feedback-months", type=int, help="Months to give feedback.")
@click.option(
    "--feedback-months-extended", type=int, help="An authority's longer period (0: none)."
)
@click.option("--retention-days", type=int, help="Days without activity before deletion (0: off).")
@click.option("--reset", is_flag=True, help="No overrides: the instance's [channel] applies.")
@click.argument("name")
def channel_desk(
    data_dir: Path,
    official: bool | None,
    acknowledge_days: int | None,
    feedback_months: int | None,
    feedback_months_extended: int | None,
    retention_days: int | None,
    reset: bool,
    name: str,
) -> None:
    """A desk's own channel settings, over the instance's [channel] (a desk can
    be an official channel on a newsroom's instance); without options, show them."""
    from server.domain.channel import Channels
    from server.ops.channel_admin import DeskUnknown, reset_desk_channel, set_desk_channel

    settings = _settings(data_dir)
    rows = _prepared_journalists(settings)
    given = {
        "official": official,
        "acknowledge_days": acknowledge_days,
        "feedback_months": feedback_months,
        "feedback_months_extended": feedback_months_extended,
        "retention_days": retention_days,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    try:
        if reset:
            if changes:
                raise AdminError("--reset takes no other option")
            set_desk_channel(settings, rows, name, {})  # checks the desk exists
            reset_desk_channel(rows, name)
        elif changes:
            set_desk_channel(settings, rows, name, changes)
        elif name not in {d.name for d in rows.desks()}:
            raise DeskUnknown(f"no desk named {name!r} (lanterne-server desks list)")
    except (DeskUnknown, ConfigError) as exc:
        raise AdminError(str(exc)) from exc
    current = Channels(settings.channel, rows).lookup()(name)
    click.echo(
        f"desk {name}: official {'yes' if current.official else 'no'},"
        f" acknowledge within {current.acknowledge_days} days,"
        f" feedback within {current.feedback_months} months"
        + (
            f" ({current.feedback_months_extended} when justified)"
            if current.feedback_months_extended
            else ""
        )
        + ", retention "
        + (f"{current.retention_days} days" if current.retention_days else "off")
    )


@channel.command("ack-template")
@data_dir_option
@click.option(
    "--lang",
    "language",
    required=True,
    help="The language of this text (a code of the source pages: en, fr, ...).",
)
@click.option("--desk", help="This desk's own text (else the instance's).")
@click.option("--reset", is_flag=True, help="Go back to the instance's or the built-in text.")
@click.argument("file", type=click.File("r", encoding="utf-8"), required=False)
def channel_ack_template(
    data_dir: Path, language: str, desk: str | None, reset: bool, file: IO[str] | None
) -> None:
    """Set the acknowledgement `lanterne ack` sends in one language, from FILE
    (- for standard input); without FILE, print the current one."""
    from server.domain.channel import ack_template
    from server.ops.channel_admin import TemplateRefused, set_ack_template
    from server.web.i18n import load_translations

    settings = _settings(data_dir)
    rows = _prepared_journalists(settings)
    if file is None and not reset:
        if language not in LANGUAGES:
            raise AdminError(f"--lang must be one of {', '.join(LANGUAGES)}")
        click.echo(ack_template(rows, language, load_translations(language).gettext, desk))
        return
    try:
        set_ack_template(rows, language, None if reset else file.read() if file else None, desk)
    except (TemplateRefused, UnicodeDecodeError) as exc:
        raise AdminError(str(exc)) from exc
    click.echo(f"acknowledgement text for {language} {'reset' if reset else 'recorded'}")


if __name__ == "__main__":
    sys.exit(main())
