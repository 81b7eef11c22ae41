"""``lanterne-server check``: is this instance deployed as it must be?

Every item is checked and reported, even after a failure, so an admin fixes
everything in one pass. Each ``Finding`` is one line: what was checked, and
for a failure what is wrong and how to fix it. Paths, the clock, the tor
binary and /proc and /sys are parameters, so tests check fabricated machines.

Swap heuristic (documented in deploy/README.md): memory can be swapped out
with a session secret or an upload buffer in it, so every active swap area
must be encrypted or in RAM:

* ``/dev/zram*`` is compressed RAM, never written to a disk: accepted;
* a device-mapper device (``/dev/dm-N``, or ``/dev/mapper/NAME`` resolving to
  one) whose ``/sys/block/dm-N/dm/uuid`` starts with ``CRYPT-`` is dm-crypt
  (LUKS or plain, as cryptsetup names them): accepted;
* a swap *file* is judged by the block device its filesystem sits on, by the
  same two rules (through ``/sys/dev/block/MAJOR:MINOR``);
* anything else (a bare partition, LVM without crypt, a file on an
  unencrypted disk) is reported. A dm device stacked on dm-crypt (LVM on
  LUKS) is accepted when one of its ``slaves`` is dm-crypt.
"""

from __future__ import annotations

import datetime
import grp
import itertools
import json
import os
import pwd
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import envelope
from server.domain import key_directory
from server.ops.onion_admin import client_name
from server.ops.tor_config import (
    DEBIAN_DEFAULTS_TORRC,
    DEBIAN_INSTANCE_DEFAULTS_TORRC,
    DebianLayout,
    TorConfigError,
    authorized_clients,
    verify_torrc,
)
from server.settings import (
    CONFIG_NAME,
    DATABASE_NAME,
    OBJECTS_DIR,
    SECRETS_NAME,
    ConfigError,
    Settings,
)
from server.store import file_times
from server.store.db import SCHEMA_VERSION, Database
from server.store.migrations import MigrationError, current_version
from server.store.snapshots import DatabaseError
from server.store.wiring import AdminJournalistStore

# A clock before this date is certainly wrong (this release did not exist yet):
# TLS-less onion services do not care, but expiry of API tokens, session
# timeouts and the days recorded in the database do.
RELEASE_DATE = datetime.date(2026, 11, 1)
PRIVATE_FILES = (DATABASE_NAME, SECRETS_NAME, CONFIG_NAME)


@dataclass(frozen=True)
class Finding:
    item: str
    ok: bool
    message: str
    warn: bool = False  # advice: shown, but not a failure

    def line(self) -> str:
        label = "FAIL" if not self.ok else "warn" if self.warn else "ok  "
        return f"{label}  {self.item}: {self.message}"


@dataclass
class CheckConfig:
    data_dir: Path
    service_user: str = "lanterne"
    source_torrc: Path | None = None
    journalist_torrc: Path | None = None
    journalist_hs_dir: Path | None = None
    # Verify the torrcs with Debian's defaults files, as the units read them.
    debian_defaults: bool = True
    tor: str = "tor"
    proc_swaps: Path = Path("/proc/swaps")
    proc_mountinfo: Path = Path("/proc/self/mountinfo")
    sys_root: Path = Path("/sys")
    today: Callable[[], datetime.date] = datetime.date.today
    client_name: Callable[[str], str] = client_name
    # Where the scale-out backend's secrets are (PGPASSWORD, the S3 keys).
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @classmethod
    def debian(cls, data_dir: Path, layout: DebianLayout | None = None) -> CheckConfig:
        layout = layout or DebianLayout()
        return cls(
            data_dir=data_dir,
            source_torrc=layout.source_torrc,
            journalist_torrc=layout.journalist_torrc,
            journalist_hs_dir=layout.journalist.hs_dir,
        )


def run_checks(cfg: CheckConfig) -> list[Finding]:
    findings: list[Finding] = []
    for check in (
        _check_permissions,
        _check_keys,
        _check_file_times,
        _check_data_volume,
        _check_torrcs,
        _check_client_auth,
        _check_swap,
        _check_clock,
        _check_scale_out,
        _check_smtp,
    ):
        try:
            findings.extend(check(cfg))
        except Exception as exc:  # one broken check must not hide the others
            findings.append(Finding(check.__name__.removeprefix("_check_"), False, repr(exc)))
    return findings


# --- permissions ---------------------------------------------------------------


def _user_ids(name: str) -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def _owner(st: os.stat_result) -> str:
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return f"{user}:{group}"


def _check_permissions(cfg: CheckConfig) -> Iterator[Finding]:
    item = "permissions"
    root = cfg.data_dir
    try:
        top = root.lstat()
    except FileNotFoundError:
        yield Finding(item, False, f"{root} does not exist: run `lanterne-server init`")
        return
    ids = _user_ids(cfg.service_user)
    if ids is None:
        yield Finding(item, False, f"the service user {cfg.service_user!r} does not exist")
    bad = 0
    for path, st in _walk(root, top):
        mode = stat.S_IMODE(st.st_mode)
        rel = path.relative_to(root)
        name = "the data directory" if path == root else str(rel)
        if stat.S_ISLNK(st.st_mode):
            bad += 1
            yield Finding(item, False, f"{path} is a symbolic link; nothing here should be one")
            continue
        if mode & 0o077:
            bad += 1
            who = " and ".join(
                w for w, bits in (("group", 0o070), ("others", 0o007)) if mode & bits
            )
            yield Finding(
                item,
                False,
                f"{name} ({path}) is open to {who} (mode {mode:04o}): chmod "
                f"{'700' if stat.S_ISDIR(st.st_mode) else '600'} {path}",
            )
        if ids is not None and st.st_uid != ids[0]:
            bad += 1
            yield Finding(
                item,
                False,
                f"{path} is owned by {_owner(st)}, not {cfg.service_user}: "
                f"chown {cfg.service_user}: {path}",
            )
    for directory in (root, root / OBJECTS_DIR):
        if not directory.is_dir():
            bad += 1
            yield Finding(item, False, f"{directory} is missing: run `lanterne-server init`")
    for private in PRIVATE_FILES:
        path = root / private
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o600
        if mode != 0o600 and not mode & 0o077:  # open modes were reported above
            bad += 1
            yield Finding(item, False, f"{path} must be mode 0600 (it is {mode:04o})")
    if not bad:
        yield Finding(item, True, f"{root} and everything in it private to {cfg.service_user}")


def _walk(root: Path, top: os.stat_result) -> Iterator[tuple[Path, os.stat_result]]:
    yield root, top
    if not stat.S_ISDIR(top.st_mode):
        return
    for path in itertools.islice(file_times.walk(root), 1, None):  # lists without atimes
        try:
            yield path, path.lstat()
        except FileNotFoundError:
            continue  # an upload's temporary file, gone meanwhile


# --- keys and database -----------------------------------------------------------


def _check_keys(cfg: CheckConfig) -> Iterator[Finding]:
    item = "keys"
    secrets = cfg.data_dir / SECRETS_NAME
    try:
        doc = json.loads(file_times.read_bytes(secrets))
        if not isinstance(doc, dict) or not doc:
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        yield Finding(item, False, f"{secrets} is missing: sources could not log in again")
    except (OSError, ValueError) as exc:
        yield Finding(item, False, f"{secrets} is unreadable or damaged ({exc})")
    else:
        yield Finding(item, True, f"{secrets} present")
    settings = Settings.load(cfg.data_dir)
    if settings.database is not None:
        # The rows are in PostgreSQL; its own lines (_check_scale_out) say
        # whether it can be reached and its schema is current.
        from server.store.postgres import PostgresDatabase, check_database
        from server.store.postgres_stores import PostgresJournalistStore

        password = cfg.environ.get("PGPASSWORD")
        usable = check_database(settings.database.url, password=password)
        if not all(d.ok for d in usable if d.item in ("database", "schema")):
            return
        with PostgresDatabase(settings.database.url, max_size=1, password=password) as pg:
            yield from _check_rows(PostgresJournalistStore(pg), secrets)
        return
    db_path = cfg.data_dir / DATABASE_NAME
    if not db_path.exists():
        yield Finding("database", False, f"{db_path} is missing: run `lanterne-server init`")
        return
    try:
        version = current_version(db_path)
    except (MigrationError, DatabaseError, OSError) as exc:
        yield Finding("database", False, f"{db_path} cannot be read ({exc})")
        return
    if version != SCHEMA_VERSION:
        yield Finding(
            "database",
            False,
            f"schema version {version}, this release needs {SCHEMA_VERSION}:"
            " `lanterne-server init` (or a restart of the service) migrates it",
        )
    else:
        yield Finding("database", True, f"schema version {version}")
    yield from _check_rows(Database(db_path), secrets)


def _check_rows(rows: AdminJournalistStore, secrets: Path) -> Iterator[Finding]:
    """The journalists, the signed directory, desks and receipts, on whichever
    database holds the rows."""
    journalists = rows.journalists()
    if not journalists:
        yield Finding(
            "journalists",
            False,
            "no journalist key is registered: submissions are refused"
            " (`lanterne-server journalists add`)",
        )
    else:
        yield Finding("journalists", True, f"{len(journalists)} registered")
    yield from _check_directory(rows, {j.name for j in journalists})
    yield from _check_receipts(rows, secrets)


def _check_receipts(db: AdminJournalistStore, secrets_path: Path) -> Iterator[Finding]:
    """Receipts for sources (envelope/SPEC.md §12): the receipt key certified?"""
    from server.domain import receipts
    from server.ops.newsroom_key import NewsroomKeyError, instance_key

    try:
        secret = instance_key(secrets_path)
    except NewsroomKeyError:
        return  # the keys finding above says what is wrong with secrets.json
    cert = receipts.usable_certificate(db, secret)
    if cert is None:
        yield Finding(
            "receipts",
            True,
            "the receipt key is not certified by the newsroom key: sources get no receipt"
            " (`lanterne-server directory sign --newsroom-key FILE` certifies it)",
            warn=True,
        )
    else:
        yield Finding("receipts", True, f"receipt key certified by the newsroom key on {cert.day}")


def _check_directory(db: AdminJournalistStore, registered: set[str]) -> Iterator[Finding]:
    """The newsroom key's directory (envelope/SPEC.md §11): what sources encrypt to."""
    item = "key directory"
    try:
        directory = key_directory.current(db)
    except key_directory.DirectoryUnusable as exc:
        yield Finding(
            item, False, f"{exc}: nothing can be received (`lanterne-server directory sign`)"
        )
        return
    if directory is None:
        yield Finding(
            item,
            True,
            "not signed by a newsroom key: sources cannot check whose keys they encrypt to"
            " (`lanterne-server directory sign --newsroom-key FILE`)",
            warn=True,
        )
        return
    yield Finding(
        item,
        True,
        f"serial {directory.serial}, signed by the newsroom key {directory.newsroom_fingerprint}",
    )
    outside = sorted(registered - {k.name for k in directory.journalists})
    if outside:
        yield Finding(
            item,
            True,
            "registered but not in the signed directory, so receiving nothing:"
            f" {', '.join(outside)}",
            warn=True,
        )
    yield from _check_desks(db, directory)


def _check_desks(db: AdminJournalistStore, directory: envelope.KeyDirectory) -> Iterator[Finding]:
    """Desks (docs/DESKS.md): the signed directory decides whom each encrypts to;
    rows that say otherwise were changed without the newsroom key."""
    everywhere = {j.name for j in db.journalists() if j.all_desks}
    for desk in db.desks():
        item = f"desk {desk.name}"
        signed = directory.desk(desk.name)
        if signed is None:
            yield Finding(
                item, False, "not in the signed directory: nothing can be sent to it (sign again)"
            )
            continue
        rows = set(desk.members)
        if rows != set(signed.members) or everywhere != set(directory.all_desks):
            yield Finding(
                item,
                False,
                f"the database names {', '.join(sorted(rows)) or 'nobody'} but the signed"
                f" directory {', '.join(signed.members) or 'nobody'} (every desk:"
                f" {', '.join(directory.all_desks) or 'nobody'}): only the signed ones receive;"
                " changed without the newsroom key? If the rows are right, sign again",
            )
        elif receivers := directory.recipients_for(desk.name):
            names = ", ".join(k.name for k in receivers)
            yield Finding(item, True, f"encrypted to {names}")
        else:
            yield Finding(item, True, "nobody receives it: it is not offered", warn=True)


# --- tor -----------------------------------------------------------------------------


def _check_torrcs(cfg: CheckConfig) -> Iterator[Finding]:
    for what, torrc, defaults in (
        ("source", cfg.source_torrc, DEBIAN_DEFAULTS_TORRC),
        ("journalist", cfg.journalist_torrc, DEBIAN_INSTANCE_DEFAULTS_TORRC),
    ):
        item = f"{what} torrc"
        if torrc is None:
            continue
        if not torrc.is_file():
            yield Finding(item, False, f"{torrc} is missing (deploy/install.sh writes it)")
            continue
        try:
            if cfg.debian_defaults:
                with tempfile.TemporaryDirectory() as tmp:
                    yield _verify(item, torrc, cfg, _instance_defaults(defaults, Path(tmp)))
            else:
                yield _verify(item, torrc, cfg, None)
        except OSError as exc:
            yield Finding(item, False, f"cannot read tor's defaults file ({exc})")


def _instance_defaults(defaults: Path, tmp: Path) -> Path:
    if defaults != DEBIAN_INSTANCE_DEFAULTS_TORRC:
        return defaults
    # The instance unit substitutes its name into the shared defaults file.
    out = tmp / "instance-defaults"
    text = defaults.read_text(encoding="utf-8")
    out.write_text(text.replace("@@NAME@@", DebianLayout.journalist_instance), encoding="utf-8")
    return out


def _verify(item: str, torrc: Path, cfg: CheckConfig, defaults: Path | None) -> Finding:
    try:
        verify_torrc(torrc, tor=cfg.tor, defaults_torrc=defaults)
    except TorConfigError as exc:
        return Finding(item, False, str(exc))
    return Finding(item, True, f"{torrc} verifies with tor --verify-config")


def _check_client_auth(cfg: CheckConfig) -> Iterator[Finding]:
    item = "client authorisation"
    if cfg.journalist_hs_dir is None:
        return
    if not cfg.journalist_hs_dir.is_dir():
        yield Finding(item, False, f"{cfg.journalist_hs_dir} does not exist (the journalist onion)")
        return
    try:
        clients = authorized_clients(cfg.journalist_hs_dir)
    except TorConfigError as exc:
        yield Finding(item, False, f"{exc}: tor refuses to start with a malformed key file")
        return
    db_path = cfg.data_dir / DATABASE_NAME
    names = set()
    if db_path.exists():
        names = {cfg.client_name(j.name) for j in Database(db_path).journalists()}
    if not clients:
        # With no authorized client at all, tor serves the onion to ANYONE.
        yield Finding(
            item,
            False,
            f"{cfg.journalist_hs_dir}/authorized_clients is empty: the journalist onion is"
            " open to anyone who learns its address",
        )
        return
    stale = sorted(set(clients) - names)
    if stale:
        yield Finding(
            item,
            False,
            f"keys of journalists no longer registered are still authorised: {', '.join(stale)}"
            " (`lanterne-server journalists remove NAME`, then restart the journalist tor)",
        )
    missing = sorted(names - set(clients))
    if missing:
        yield Finding(
            item,
            False,
            f"registered journalists without an onion key: {', '.join(missing)}"
            " (`lanterne-server journalists add --replace --client-auth-out ...`)",
        )
    if not stale and not missing:
        yield Finding(item, True, f"{len(clients)} journalist keys, all registered")


# --- file times and the data volume ------------------------------------------------


def _check_file_times(cfg: CheckConfig) -> Iterator[Finding]:
    """Every file time under the data directory is a midnight (server/store/file_times.py)."""
    item = "file times"
    if not cfg.data_dir.is_dir():
        return
    fine = file_times.fine_times(cfg.data_dir)
    if fine:
        yield Finding(
            item,
            False,
            f"{len(fine)} paths under {cfg.data_dir} carry a time finer than the day (first:"
            f" {fine[0]}): restart the service, which brings each down to its day at start",
        )
    else:
        yield Finding(item, True, f"every time under {cfg.data_dir} is a day (00:00 UTC)")


def mount_options(mountinfo: Path, path: Path) -> tuple[str, list[str]] | None:
    """The mount point holding ``path`` and its per-mount options (proc(5) mountinfo)."""
    best: tuple[str, list[str]] | None = None
    target = str(path.resolve())
    for line in mountinfo.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, fields[5].split(","))
    return best


def _check_data_volume(cfg: CheckConfig) -> Iterator[Finding]:
    """Advice, not a failure: what user space cannot set (docs/THREAT_MODEL.md)."""
    item = "data volume"
    if not cfg.data_dir.is_dir():
        return
    advice = []
    found = mount_options(cfg.proc_mountinfo, cfg.data_dir)
    if found is None or "noatime" not in found[1]:
        advice.append(
            "not mounted noatime (a read can set a precise access time until the next"
            " stamp): install.sh's bind mount, or noatime in fstab"
        )
    dev = cfg.data_dir.stat().st_dev
    sys_block = cfg.sys_root / "dev" / "block" / f"{os.major(dev)}:{os.minor(dev)}"
    try:
        encrypted = _block_is_safe(sys_block, cfg.sys_root)
    except OSError:
        encrypted = False
    if not encrypted:
        advice.append(
            "not on a dm-crypt device (a seized disk shows each file's change and birth"
            " times, which no program can set): put it on LUKS"
        )
    if advice:
        yield Finding(item, True, "; ".join(advice) + " (deploy/README.md section 9)", warn=True)
    else:
        yield Finding(item, True, f"{cfg.data_dir} is on dm-crypt, mounted noatime")


# --- swap ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SwapArea:
    name: str
    kind: str  # "partition" or "file"


def read_swaps(proc_swaps: Path) -> list[SwapArea]:
    lines = proc_swaps.read_text(encoding="utf-8").splitlines()[1:]  # a header first
    areas = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 2:
            # The kernel escapes spaces in names as \040.
            areas.append(SwapArea(parts[0].replace("\\040", " "), parts[1]))
    return areas


def _block_is_safe(sys_block: Path, sys_root: Path, depth: int = 0) -> bool:
    """``sys_block``: a /sys/block/NAME or /sys/dev/block/MAJ:MIN directory."""
    name = sys_block.resolve().name if sys_block.exists() else sys_block.name
    if name.startswith("zram"):
        return True
    uuid = sys_block / "dm" / "uuid"
    if uuid.exists() and uuid.read_text(encoding="ascii").startswith("CRYPT-"):
        return True
    # LVM on LUKS: the logical volume's dm device sits on a dm-crypt one.
    slaves = sys_block / "slaves"
    if depth < 4 and slaves.is_dir():
        return any(_block_is_safe(s, sys_root, depth + 1) for s in slaves.iterdir())
    # A partition of a dm-crypt or zram device has its parent one level up.
    return False


def _swap_area_safe(area: SwapArea, sys_root: Path) -> bool:
    if area.kind == "file":
        dev = Path(area.name).stat().st_dev
        return _block_is_safe(
            sys_root / "dev" / "block" / f"{os.major(dev)}:{os.minor(dev)}", sys_root
        )
    device = Path(area.name)
    name = device.resolve().name if device.exists() else device.name
    return _block_is_safe(sys_root / "block" / name, sys_root)


def _check_swap(cfg: CheckConfig) -> Iterator[Finding]:
    item = "swap"
    try:
        areas = read_swaps(cfg.proc_swaps)
    except OSError as exc:
        yield Finding(item, False, f"cannot read {cfg.proc_swaps} ({exc})")
        return
    if not areas:
        yield Finding(item, True, "no swap")
        return
    unsafe = []
    for area in areas:
        try:
            safe = _swap_area_safe(area, cfg.sys_root)
        except OSError:
            safe = False
        if not safe:
            unsafe.append(area.name)
    if unsafe:
        yield Finding(
            item,
            False,
            f"unencrypted swap: {', '.join(unsafe)} (memory written there outlives a reboot:"
            " swapoff it, or use dm-crypt or zram swap)",
        )
    else:
        yield Finding(item, True, f"{len(areas)} swap areas, all dm-crypt or zram")


# --- clock -------------------------------------------------------------------------------


def _check_clock(cfg: CheckConfig) -> Iterator[Finding]:
    today = cfg.today()
    if today < RELEASE_DATE:
        yield Finding(
            "clock",
            False,
            f"the system date {today} is before this release ({RELEASE_DATE}):"
            " set the clock (timedatectl), or token expiry and dates are wrong",
        )
    else:
        yield Finding("clock", True, f"{today} is after this release's date")


# --- PostgreSQL and S3 (docs/SCALE_OUT.md) ---------------------------------------


def _check_scale_out(cfg: CheckConfig) -> Iterator[Finding]:
    """The database's connection, schema version and settings, and the bucket's
    policy, when config.toml names them; nothing for the embedded backend."""
    settings = Settings.load(cfg.data_dir)
    if settings.database is not None:
        from server.store.postgres import check_database

        for d in check_database(settings.database.url, password=cfg.environ.get("PGPASSWORD")):
            yield Finding(f"PostgreSQL {d.item}", d.ok, d.message, d.warn)
    if settings.objects is not None:
        from server.store.s3_objects import check_bucket, connect

        try:
            location = settings.objects.location(cfg.environ)
        except ConfigError as exc:
            yield Finding("S3 bucket", False, str(exc))
            return
        for b in check_bucket(connect(location), location.bucket):
            yield Finding(f"S3 {b.item}", b.ok, b.message, b.warn)


# --- the daily digest's relay (server/ops/digest.py) ------------------------------


def _check_smtp(cfg: CheckConfig) -> Iterator[Finding]:
    """What ``[smtp]`` says (no connection is made: the digest's own run does)."""
    from server.ops.digest import DigestError, tls_context
    from server.settings import SMTP_PASSWORD_ENV

    smtp = Settings.load(cfg.data_dir).smtp
    if smtp is None:
        yield Finding("SMTP relay", True, "no [smtp] in config.toml: no daily digest is sent")
        return
    trust = f"CA file {smtp.ca_file}" if smtp.ca_file is not None else "the system's CA store"
    try:
        tls_context(smtp)
    except DigestError as exc:
        yield Finding("SMTP relay", False, str(exc))
        return
    yield Finding(
        "SMTP relay",
        True,
        f"{smtp.host}:{smtp.port} from {smtp.sender}, STARTTLS required, certificate"
        f" checked against {trust}",
    )
    if smtp.username is not None:
        if cfg.environ.get(SMTP_PASSWORD_ENV):
            yield Finding(
                "SMTP login", True, f"as {smtp.username}, password in {SMTP_PASSWORD_ENV}"
            )
        else:
            yield Finding(
                "SMTP login",
                True,
                f"as {smtp.username}: {SMTP_PASSWORD_ENV} is not set here; the digest's"
                ' service must have it (deploy/README.md, "The daily digest")',
                warn=True,
            )
