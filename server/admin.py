"""``lanterne-server``: create an instance, register journalists, run the source interface.

Thin on purpose: each command parses its options and calls plain functions;
errors an admin can fix are turned into messages and exit code 1 here.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import click

import envelope
from server.app import SILENT
from server.db import Database
from server.settings import DEFAULT_CONFIG, ConfigError, Settings
from server.sources import InstanceSecrets, SystemClock
from server.storage import ObjectStore

# uvicorn logs: warnings and errors to stderr, no access log, no client addresses.
UVICORN_LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
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


def init_instance(data_dir: Path, journalist_files: list[Path]) -> list[envelope.PublicKey]:
    """Create (or complete) an instance in ``data_dir``; idempotent."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)  # also when it existed with looser rights
    settings = Settings(data_dir=data_dir)
    if not settings.secrets_path.exists():
        secrets = InstanceSecrets.generate()
        fd = os.open(settings.secrets_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(secrets.to_json())
    if not settings.config_path.exists():
        settings.config_path.write_text(DEFAULT_CONFIG, encoding="utf-8")
    db = Database(settings.database_path)
    db.create()
    settings.database_path.chmod(0o600)
    ObjectStore(settings.objects_dir).create_dirs()
    added = []
    for path in journalist_files:
        added.append(add_journalist(db, path))
    return added


def add_journalist(db: Database, path: Path, role: str = "journalist") -> envelope.PublicKey:
    try:
        key = envelope.PublicKey.from_json(path.read_bytes())
    except OSError as exc:
        raise AdminError(f"cannot read {path}: {exc.strerror}") from exc
    except envelope.KeyFormatError as exc:
        raise AdminError(f"{path}: {exc}") from exc
    db.add_journalist(
        key.name, key.recipient.public_bytes, key.signing_key, role, SystemClock().today()
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


@click.group()
def main() -> None:
    """Run and administer a Lanterne server."""


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path), required=True)
@click.option(
    "--journalist",
    "journalists",
    type=click.Path(path_type=Path, dir_okay=False),
    multiple=True,
    help="A journalist's NAME.pub file (repeat for several).",
)
def init(data_dir: Path, journalists: tuple[Path, ...]) -> None:
    """Create the data directory, database and instance secrets; register journalists."""
    added = init_instance(data_dir, list(journalists))
    click.echo(f"Instance ready in {data_dir}")
    for key in added:
        click.echo(f"  journalist {key.name}: {key.fingerprint}")
    settings = Settings(data_dir=data_dir)
    if not Database(settings.database_path).journalists():
        click.echo("No journalist yet: add one with `lanterne-server init --journalist NAME.pub`.")


@main.command()
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--journalist-port",
    type=int,
    help="Also serve the journalist API on this port (same host), for its own onion service.",
)
def run(data_dir: Path, host: str, port: int, journalist_port: int | None) -> None:
    """Serve the source interface (loopback only unless --host says otherwise)."""
    from server.app import create_app
    from server.journalist_api import create_journalist_app
    from server.serving import serve_all

    settings = _settings(data_dir)
    if journalist_port is not None and journalist_port == port:
        raise AdminError("--journalist-port must differ from --port")
    if not Database(settings.database_path).journalists():
        click.echo("warning: no journalist key is registered; submissions are refused", err=True)
    # A crash mid-upload can leave temporary or unlisted objects: remove them
    # before serving, while no upload can be in flight.
    db = Database(settings.database_path)
    db.create()  # idempotent: adds tables a newer release introduced
    ObjectStore(settings.objects_dir).collect_garbage(db.known_object_ids())
    apps = [(create_app(settings), host, port)]
    banner = f"Lanterne source interface on http://{host}:{port}/"
    if journalist_port is not None:
        apps.append((create_journalist_app(settings), host, journalist_port))
        banner += f", journalist API on http://{host}:{journalist_port}/api/v1/"
    click.echo(banner, err=True)
    serve_all(apps, UVICORN_LOG_CONFIG)


@main.group()
def journalists() -> None:
    """Add, list and remove the journalists who receive submissions."""


@journalists.command("add")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--role", type=click.Choice(["journalist", "admin"]), default="journalist")
@click.option("--replace", is_flag=True, help="Replace the keys of a journalist of that name.")
@click.argument("pub_file", type=click.Path(path_type=Path, dir_okay=False))
def journalists_add(data_dir: Path, role: str, replace: bool, pub_file: Path) -> None:
    """Register the journalist whose public key is PUB_FILE (NAME.pub)."""
    settings = _settings(data_dir)
    db = Database(settings.database_path)
    try:
        key = envelope.PublicKey.from_json(pub_file.read_bytes())
    except OSError as exc:
        raise AdminError(f"cannot read {pub_file}: {exc.strerror}") from exc
    except envelope.KeyFormatError as exc:
        raise AdminError(f"{pub_file}: {exc}") from exc
    existing = next((j for j in db.journalists() if j.name == key.name), None)
    if (
        existing is not None
        and existing.encryption_key != key.recipient.public_bytes
        and not replace
    ):
        raise AdminError(f"a journalist named {key.name} exists with other keys; use --replace")
    add_journalist(db, pub_file, role)
    click.echo(f"added {key.name} ({role})")
    click.echo(f"fingerprint: {key.fingerprint}")
    click.echo("Read this fingerprint aloud with the journalist before relying on it.")


@journalists.command("list")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), required=True)
def journalists_list(data_dir: Path) -> None:
    """List registered journalists with their roles and fingerprints."""
    settings = _settings(data_dir)
    rows = Database(settings.database_path).journalists()
    if not rows:
        click.echo("No journalist registered.")
    for row in rows:
        fp = envelope.fingerprint(row.encryption_key, row.signing_key)
        click.echo(f"{row.name:20} {row.role:10} {fp}")


@journalists.command("remove")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.argument("name")
def journalists_remove(data_dir: Path, name: str) -> None:
    """Remove a journalist: new submissions are no longer encrypted to them, and
    their API access ends at their next request (a running server checks every request)."""
    settings = _settings(data_dir)
    if not Database(settings.database_path).remove_journalist(name):
        raise AdminError(f"no journalist named {name}")
    click.echo(f"removed {name}")


@main.command("list")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), required=True)
def list_submissions(data_dir: Path) -> None:
    """List complete submissions and their encrypted objects (no content is shown)."""
    settings = _settings(data_dir)
    subs = Database(settings.database_path).submissions()
    if not subs:
        click.echo("No submission yet.")
    for sid, day, objects in subs:
        click.echo(f"submission {sid}  received {day}")
        for obj in objects:
            path = settings.objects_dir / obj.id
            click.echo(f"  {obj.kind:8}  {path}")


if __name__ == "__main__":
    sys.exit(main())
