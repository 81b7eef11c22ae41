"""Instance settings: where the data lives, limits, and the questions asked of sources.

Everything an admin may change is read from ``DATA_DIR/config.toml`` (written by
``lanterne-server init`` with the defaults spelled out); everything else is a
code default. ``Settings`` is a frozen value passed to ``create_app``: the app
keeps no module-level state.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from server.languages import FALLBACK, LANGUAGES
from server.store import file_times

if TYPE_CHECKING:
    from server.store.s3_objects import S3Location

CONFIG_NAME = "config.toml"
DATABASE_NAME = "lanterne.sqlite3"
SECRETS_NAME = "secrets.json"
OBJECTS_DIR = "objects"
UPLOADS_DIR = "uploads"

GiB = 1 << 30
MiB = 1 << 20


class ConfigError(Exception):
    """The instance's config.toml is invalid; the message says which setting."""


@dataclass(frozen=True)
class Question:
    """An optional question the admin asks on the submission form."""

    id: str
    label: Mapping[str, str]  # language -> text
    hint: Mapping[str, str] = field(default_factory=dict)
    max_length: int = 1000  # characters
    multiline: bool = False

    def label_for(self, lang: str) -> str:
        return self.label.get(lang) or self.label.get(LANGUAGES[0]) or self.id

    def hint_for(self, lang: str) -> str:
        return self.hint.get(lang) or self.hint.get(LANGUAGES[0]) or ""


@dataclass(frozen=True)
class Limits:
    """Sizes the source form accepts; over them the source gets a clear page."""

    max_file_bytes: int = 2 * GiB
    max_files: int = 20
    max_message_bytes: int = 1 * MiB  # UTF-8 bytes of the message text
    max_field_bytes: int = 16 * 1024  # any other text field (answers, tokens)
    max_parts: int = 64  # fields plus files in one request
    # How much of a rejected request body is read and thrown away so that the
    # browser can show our error page instead of "connection reset".
    max_drain_bytes: int = 64 * MiB

    @property
    def max_body_bytes(self) -> int:
        # Files, message, fields and generous room for multipart framing.
        return (
            self.max_files * self.max_file_bytes
            + self.max_message_bytes
            + self.max_parts * (self.max_field_bytes + 4096)
        )


@dataclass(frozen=True)
class UploadLimits:
    """Resumable uploads of the JavaScript path (docs/UPLOADS.md, server/store/uploads.py).

    A browser's uploads count at their declared lengths against its own caps;
    the instance counts only what arrived (docs/THREAT_MODEL.md, "Floods").
    """

    # Every upload in progress, all browsers together: what arrived (an empty
    # upload counts 1 MiB).
    max_bytes_total: int = 64 * GiB
    # One browser (one upload cookie). None: what one full submission needs.
    max_bytes_per_browser: int | None = None
    max_open_per_browser: int | None = None  # None: twice the objects of a submission
    expire_seconds: int = 24 * 3600  # after the browser's last PATCH
    # An upload that nothing ever arrived for (nor for its browser's others).
    empty_expire_seconds: int = 600
    max_patch_bytes: int = 16 * MiB
    # Bytes are refused (PATCH 507, the no-JS form 507) when the disk would keep
    # less than this free. Shared by both paths (server/store/disk_reserve.py).
    # None: 5 % of the file system, at most 1 GiB.
    disk_reserve_bytes: int | None = None
    # Expired uploads are swept at most this often, on upload requests.
    sweep_interval_seconds: int = 60


@dataclass(frozen=True)
class ServingLimits:
    """What each listener grants a client (server/ops/serving.py; docs/RELIABILITY.md says why).

    Connections are capped per listener (and lowered to what the process's
    descriptor limit holds); one over the cap gets a 503 at once.
    """

    max_connections: int = 1000  # the source interface
    journalist_max_connections: int = 100  # the journalist API
    # A request head (line and headers) must arrive within this of the connection
    # opening or of the previous response.
    header_timeout_seconds: int = 15
    # While the app is ready to read, a body must bring this much per second,
    # averaged over each window; a response left unread for a window is cut too.
    min_body_bytes_per_second: int = 1024
    body_window_seconds: int = 60
    # A stop waits this long for requests in flight, then disconnects them
    # (deploy/lanterne.service's TimeoutStopSec leaves room for it).
    stop_timeout_seconds: int = 20


# Where the scale-out backend's secrets come from (never config.toml): the
# database password through libpq's own PGPASSWORD (or its password file), and:
S3_ACCESS_KEY_ENV = "LANTERNE_S3_ACCESS_KEY_ID"
S3_SECRET_KEY_ENV = "LANTERNE_S3_SECRET_ACCESS_KEY"  # noqa: S105 (a name, not a secret)


# The SMTP relay's password for the daily digest (never config.toml).
SMTP_PASSWORD_ENV = "LANTERNE_SMTP_PASSWORD"  # noqa: S105 (a name, not a secret)


@dataclass(frozen=True)
class SmtpConfig:
    """``[smtp]``: the admin's relay for the daily digest (server/ops/digest.py).

    Always STARTTLS, the relay's certificate checked against ``ca_file`` (PEM)
    or the system's store; the password, when ``username`` is set, comes from
    the environment variable ``SMTP_PASSWORD_ENV``."""

    host: str
    sender: str  # the From address
    port: int = 587
    username: str | None = None
    ca_file: Path | None = None


@dataclass(frozen=True)
class DatabaseConfig:
    """``[database]``: PostgreSQL instead of the SQLite file (server/store/postgres.py)."""

    url: str  # postgresql://user@host:port/name, without a password
    pool_size: int = 10


@dataclass(frozen=True)
class ObjectsConfig:
    """``[objects]``: an S3-compatible bucket instead of the objects directory
    (server/store/s3_objects.py)."""

    endpoint: str
    bucket: str
    region: str = "us-east-1"
    addressing: Literal["path", "virtual"] = "path"

    def location(self, environ: Mapping[str, str]) -> S3Location:
        """Where to connect, with the credentials from ``environ``; ConfigError without them."""
        from server.store.s3_objects import S3Location

        missing = [k for k in (S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV) if not environ.get(k)]
        if missing:
            raise ConfigError(f"[objects] needs the environment variables {', '.join(missing)}")
        return S3Location(
            self.endpoint,
            self.bucket,
            environ[S3_ACCESS_KEY_ENV],
            environ[S3_SECRET_KEY_ENV],
            self.region,
            self.addressing,
        )


@dataclass(frozen=True)
class ChannelSettings:
    """``[channel]``: an official reporting channel's deadlines and retention
    (server/domain/channel.py, docs/OFFICIAL_CHANNEL.md). Days only.

    ``official``: deadlines are tracked (EU Directive 2019/1937, Art. 9 and 11).
    ``feedback_months_extended``: the longer period a journalist may set for
    one source, with a reason (an external authority's justified cases,
    Art. 11(2)(d): 6); 0: none may be set. ``retention_days``: a source with
    no activity for that long is deleted (0: never; an official channel's
    default is five years, a newsroom's is off).
    """

    official: bool = False
    acknowledge_days: int = 7
    feedback_months: int = 3
    feedback_months_extended: int = 0
    retention_days: int = 0


OFFICIAL_RETENTION_DAYS = 5 * 365


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    default_language: str = FALLBACK.code
    organisation: str = "Lanterne"
    limits: Limits = field(default_factory=Limits)
    uploads: UploadLimits = field(default_factory=UploadLimits)
    serving: ServingLimits = field(default_factory=ServingLimits)
    questions: tuple[Question, ...] = ()
    # http://<onion> offered to visitors of a clearnet landing page (server/web/onion_location.py).
    onion_location: str | None = None
    # The addresses journalists' login signatures may name (journalist_api/auth.py,
    # ServedHosts); empty: the onion recorded by the admin commands, else loopback.
    journalist_hosts: tuple[str, ...] = ()
    session_idle_seconds: int = 3600
    # Sessions of sources (logged in, or holding a new codename) and anonymous
    # sessions each have this budget; anonymous ones never push out the others.
    max_sessions: int = 10_000
    # Login throttling: failures allowed per browser session, and logins that
    # may wait for an Argon2id slot (more are refused with 503, the others go on).
    # No instance-wide rate: there are no addresses behind Tor, so it would
    # let anyone lock every source out (docs/THREAT_MODEL.md, "Floods").
    login_failures_per_session: int = 5
    max_waiting_logins: int = 32
    # Argon2id cost. A codename carries 93 bits, so the cost guards against
    # nothing a guesser could do; it exists to slow an offline attacker holding
    # the database, while keeping memory low enough to run beside uploads.
    argon2_opslimit: int = 3
    argon2_memlimit: int = 64 * MiB
    max_parallel_kdf: int = 2
    # The scale-out backend (issue 14); None: the SQLite file and the objects directory.
    database: DatabaseConfig | None = None
    objects: ObjectsConfig | None = None
    # The daily digest's relay; None: no digest is sent.
    smtp: SmtpConfig | None = None
    channel: ChannelSettings = field(default_factory=ChannelSettings)

    @property
    def database_path(self) -> Path:
        return self.data_dir / DATABASE_NAME

    @property
    def secrets_path(self) -> Path:
        return self.data_dir / SECRETS_NAME

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / OBJECTS_DIR

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / UPLOADS_DIR

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_NAME

    @classmethod
    def load(cls, data_dir: Path, **overrides: Any) -> Settings:
        """Settings for ``data_dir``, from its config.toml when there is one."""
        data_dir = Path(data_dir)
        base = cls(data_dir=data_dir)
        path = base.config_path
        if path.exists():
            try:
                doc = tomllib.loads(file_times.read_bytes(path).decode("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: {exc}") from exc
            base = _apply_config(base, doc)
        return replace(base, **overrides)


def _apply_config(base: Settings, doc: Mapping[str, Any]) -> Settings:
    updates: dict[str, Any] = {}
    if "onion_location" in doc:
        from server.onion_address import parse_onion_location

        try:
            updates["onion_location"] = parse_onion_location(doc["onion_location"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    if "journalist_hosts" in doc:
        updates["journalist_hosts"] = _hosts(doc["journalist_hosts"])
    for key in ("organisation", "default_language"):
        if key in doc:
            if not isinstance(doc[key], str):
                raise ConfigError(f"{key} must be a string")
            updates[key] = doc[key]
    if updates.get("default_language", base.default_language) not in LANGUAGES:
        raise ConfigError(f"default_language must be one of {', '.join(LANGUAGES)}")
    for key in (
        "session_idle_seconds",
        "max_sessions",
        "login_failures_per_session",
        "max_waiting_logins",
    ):
        if key in doc:
            updates[key] = _positive_int(doc[key], key)
    updates["limits"] = _table(
        doc,
        "limits",
        base.limits,
        ("max_file_bytes", "max_files", "max_message_bytes", "max_field_bytes", "max_parts"),
    )
    updates["uploads"] = _table(
        doc,
        "uploads",
        base.uploads,
        (
            "max_bytes_total",
            "max_bytes_per_browser",
            "max_open_per_browser",
            "expire_seconds",
            "empty_expire_seconds",
            "disk_reserve_bytes",
        ),
    )
    updates["serving"] = _table(
        doc,
        "server",
        base.serving,
        (
            "max_connections",
            "journalist_max_connections",
            "header_timeout_seconds",
            "min_body_bytes_per_second",
            "body_window_seconds",
            "stop_timeout_seconds",
        ),
    )
    if "channel" in doc:
        updates["channel"] = _channel(doc["channel"])
    if "database" in doc:
        updates["database"] = _database(doc["database"])
    if "objects" in doc:
        updates["objects"] = _objects(doc["objects"])
    if "smtp" in doc:
        updates["smtp"] = _smtp(doc["smtp"])
    questions = doc.get("question", [])
    if not isinstance(questions, list):
        raise ConfigError("[[question]] must be an array of tables")
    updates["questions"] = tuple(_question(q, i) for i, q in enumerate(questions))
    ids = [q.id for q in updates["questions"]]
    if len(set(ids)) != len(ids):
        raise ConfigError("two questions have the same id")
    return replace(base, **updates)


def _hosts(value: Any) -> tuple[str, ...]:
    what = 'journalist_hosts must be a list of addresses such as ["abc...xyz.onion"]'
    if not isinstance(value, list) or not value:
        raise ConfigError(what)
    for host in value:
        if (
            not isinstance(host, str)
            or not 0 < len(host) <= 255
            or not host.isascii()
            or not all(c.isalnum() or c in ".-:[]" for c in host)
        ):
            raise ConfigError(what)
    return tuple(value)


def _table(doc: Mapping[str, Any], name: str, base: Any, keys: tuple[str, ...]) -> Any:
    """``base`` (a frozen settings dataclass) with the positive integers that the
    config's ``[name]`` table sets among ``keys``."""
    table = doc.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table")
    return replace(
        base, **{key: _positive_int(table[key], f"{name}.{key}") for key in keys if key in table}
    )


def _database(table: Any) -> DatabaseConfig:
    if not isinstance(table, dict) or set(table) - {"url", "pool_size"}:
        raise ConfigError("[database] takes url and pool_size")
    url = table.get("url")
    if not isinstance(url, str):
        raise ConfigError(
            '[database] url must be a string such as "postgresql://lanterne@db/lanterne"'
        )
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError as exc:
        raise ConfigError(f"[database] url: {exc}") from exc
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise ConfigError('[database] url must look like "postgresql://lanterne@db/lanterne"')
    if has_password:
        raise ConfigError(
            "[database] url must not hold the password: set PGPASSWORD in the service's"
            " environment, or use libpq's password file"
        )
    return DatabaseConfig(url, _positive_int(table.get("pool_size", 10), "database.pool_size"))


def _objects(table: Any) -> ObjectsConfig:
    known = {"endpoint", "bucket", "region", "addressing"}
    if not isinstance(table, dict) or set(table) - known:
        raise ConfigError("[objects] takes endpoint, bucket, region and addressing")
    endpoint, bucket = table.get("endpoint"), table.get("bucket")
    if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("http", "https"):
        raise ConfigError('[objects] endpoint must be a URL such as "https://s3.internal:9000"')
    if "@" in endpoint:
        raise ConfigError(
            f"[objects] endpoint must not hold credentials: set {S3_ACCESS_KEY_ENV} and"
            f" {S3_SECRET_KEY_ENV} in the service's environment"
        )
    # S3's bucket names: 3 to 63 lower-case letters, digits, dots and hyphens.
    if not isinstance(bucket, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise ConfigError("[objects] bucket must be an S3 bucket name (lower case, 3-63)")
    region = table.get("region", "us-east-1")
    if not isinstance(region, str) or not region:
        raise ConfigError("[objects] region must be a string")
    addressing = table.get("addressing", "path")
    if addressing not in ("path", "virtual"):
        raise ConfigError('[objects] addressing must be "path" or "virtual"')
    return ObjectsConfig(endpoint, bucket, region, addressing)


_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


def valid_address(value: object) -> bool:
    """A plain e-mail address (local@domain): no name, no list, nothing a header
    could be split on."""
    return isinstance(value, str) and len(value) <= 254 and bool(_ADDRESS.fullmatch(value))


def _smtp(table: Any) -> SmtpConfig:
    known = {"host", "port", "from", "username", "ca_file"}
    if isinstance(table, dict) and "password" in table:
        raise ConfigError(f"[smtp] must not hold the password: set {SMTP_PASSWORD_ENV}")
    if not isinstance(table, dict) or set(table) - known:
        raise ConfigError("[smtp] takes host, port, from, username and ca_file")
    host = table.get("host")
    if not isinstance(host, str) or not re.fullmatch(r"[A-Za-z0-9.:\[\]-]{1,255}", host):
        raise ConfigError('[smtp] host must be the relay\'s name, such as "smtp.example.org"')
    sender = table.get("from")
    if not valid_address(sender):
        raise ConfigError('[smtp] from must be an address, such as "lanterne@example.org"')
    port = _positive_int(table.get("port", 587), "smtp.port")
    if port > 65535:
        raise ConfigError("smtp.port must be at most 65535")
    username = table.get("username")
    if username is not None and (not isinstance(username, str) or not username):
        raise ConfigError("[smtp] username must be a string")
    ca_file = table.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not ca_file.startswith("/")):
        raise ConfigError("[smtp] ca_file must be an absolute path to a PEM file")
    assert isinstance(sender, str)
    return SmtpConfig(
        host=host,
        sender=sender,
        port=port,
        username=username,
        ca_file=None if ca_file is None else Path(ca_file),
    )


CHANNEL_KEYS = (
    "official",
    "acknowledge_days",
    "feedback_months",
    "feedback_months_extended",
    "retention_days",
)


def channel_with(base: ChannelSettings, overrides: Mapping[str, Any]) -> ChannelSettings:
    """``base`` with a desk's ``overrides`` (the keys of ``[channel]``), checked by
    the same rules; a desk made official gets the official retention default
    unless it names its own. ``ConfigError`` says what is wrong."""
    merged: dict[str, Any] = {
        key: getattr(base, key)
        for key in CHANNEL_KEYS
        if not (key == "retention_days" and overrides.get("official") and not base.official)
    }
    return _channel({**merged, **overrides})


def _channel(table: Any) -> ChannelSettings:
    keys = CHANNEL_KEYS
    if not isinstance(table, dict) or set(table) - set(keys):
        raise ConfigError(f"[channel] takes {', '.join(keys)}")
    official = table.get("official", False)
    if not isinstance(official, bool):
        raise ConfigError("[channel] official must be true or false")
    values: dict[str, int] = {}
    for key, top in (
        ("acknowledge_days", 366),
        ("feedback_months", 12),
        ("feedback_months_extended", 12),
        ("retention_days", 100 * 366),
    ):
        if key in table:
            value = table[key]
            low = 0 if key in ("feedback_months_extended", "retention_days") else 1
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= top:
                raise ConfigError(f"[channel] {key} must be a whole number from {low} to {top}")
            values[key] = value
    if "retention_days" not in values and official:
        values["retention_days"] = OFFICIAL_RETENTION_DAYS
    channel = ChannelSettings(official=official, **values)
    if channel.feedback_months_extended and (
        channel.feedback_months_extended <= channel.feedback_months
    ):
        raise ConfigError("[channel] feedback_months_extended must be longer than feedback_months")
    return channel


def _positive_int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{what} must be a positive integer")
    return value


def _question(doc: Any, index: int) -> Question:
    where = f"question #{index + 1}"
    if not isinstance(doc, dict):
        raise ConfigError(f"{where} must be a table")
    qid = doc.get("id")
    # The id becomes a form field name (q_<id>), so it keeps to a safe alphabet.
    if (
        not isinstance(qid, str)
        or not (0 < len(qid) <= 40)
        or not qid.isascii()
        or not all(c.isalnum() or c == "_" for c in qid)
    ):
        raise ConfigError(f"{where}: id must be 1-40 letters, digits or underscores")
    label = _texts(doc.get("label"), f"{where}.label", required=True)
    hint = _texts(doc.get("hint", {}), f"{where}.hint", required=False)
    max_length = _positive_int(doc.get("max_length", 1000), f"{where}.max_length")
    multiline = doc.get("multiline", False)
    if not isinstance(multiline, bool):
        raise ConfigError(f"{where}.multiline must be true or false")
    return Question(id=qid, label=label, hint=hint, max_length=max_length, multiline=multiline)


def _texts(value: Any, what: str, required: bool) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigError(f'{what} must be a table of language = "text"')
    if required and LANGUAGES[0] not in value:
        raise ConfigError(f"{what} needs at least an '{LANGUAGES[0]}' text")
    return dict(value)


DEFAULT_CONFIG = """\
# Lanterne instance settings. Restart `lanterne-server run` after a change.

# The name shown at the top of every page.
organisation = "Lanterne"

# The language of the first page a source sees: one of @LANGUAGES@.
# Sources switch with a link; the browser's language is never used (Tor Browser
# hides it).
default_language = "@FALLBACK@"

# Sessions end after this many seconds without a request.
session_idle_seconds = 3600

# The addresses a journalist's login may be signed for. Unset: the journalist
# onion that `lanterne-server journalists add` (or `onions --data-dir`) recorded,
# or, before there is one, the loopback address the journalist API listens on.
# journalist_hosts = ["abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion"]

[limits]
max_file_bytes = 2147483648   # 2 GiB per file
max_files = 20
max_message_bytes = 1048576   # 1 MiB of message text
max_field_bytes = 16384       # each answer to a question below
max_parts = 64

# Uploads in progress from browsers that encrypt themselves (JavaScript on).
# All of them together count what they received (1 MiB for an empty one).
# disk_reserve_bytes (default: 5 % of the disk, at most 1 GiB) is kept free
# by both ways of sending, uploads and the plain form.
[uploads]
max_bytes_total = 68719476736  # 64 GiB for all browsers together
expire_seconds = 86400         # an upload untouched for a day is deleted

# How much each listener grants a visitor (deploy/README.md, section 10).
[server]
max_connections = 1000           # source interface; over it: "try again" at once
journalist_max_connections = 100
header_timeout_seconds = 15      # to send a request's headers
min_body_bytes_per_second = 1024 # averaged over each body_window_seconds
body_window_seconds = 60
stop_timeout_seconds = 20        # a restart waits this long for uploads in flight

# The daily digest (`lanterne-server digest`, run by lanterne-digest.timer):
# the relay it sends through, always with STARTTLS and a checked certificate.
# The password, if the relay wants one, goes in LANTERNE_SMTP_PASSWORD in the
# timer's environment file, never here (deploy/README.md, "The daily digest").
# [smtp]
# host = "smtp.example.org"
# port = 587
# from = "lanterne@example.org"
# username = "lanterne"
# ca_file = "/etc/ssl/certs/relay-ca.pem"   # default: the system's CA store

# Optional questions on the submission form. Remove or add [[question]] tables.
# Answers are encrypted with the rest of the submission.

[[question]]
id = "administration"
label.en = "Which administration or organisation is concerned?"
label.fr = "Quelle administration ou organisation est concernée ?"
max_length = 300

[[question]]
id = "dates"
label.en = "When did it happen?"
label.fr = "Quand cela s'est-il passé ?"
hint.en = "Dates or periods, as precisely as you can."
hint.fr = "Des dates ou des périodes, aussi précises que possible."
max_length = 300

[[question]]
id = "how_known"
label.en = "How do you know about it?"
label.fr = "Comment en avez-vous connaissance ?"
hint.en = "For example: you saw it, you were told, you have documents."
hint.fr = "Par exemple : vous l'avez vu, on vous l'a dit, vous avez des documents."
max_length = 2000
multiline = true
""".replace("@LANGUAGES@", ", ".join(f'"{code}"' for code in LANGUAGES)).replace(
    "@FALLBACK@", FALLBACK.code
)
