"""Signing the key directory with the newsroom key (docs/ADMIN_GUIDE.md, "The
newsroom key"; the format is envelope/SPEC.md §11).

The newsroom key is the Ed25519 signing key of an identity the admin made with
``lanterne keys generate`` on their own machine (``lanterne signing-key``
gives a copy that cannot decrypt), or that ``init --newsroom-key PATH`` made
at PATH, a removable medium, when nothing was there. It is read from the file
the admin names, used in memory and never copied into the data directory: the
server only ever holds its public half and the documents it signed.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import envelope
import keyfiles
from server.domain import key_directory, receipts
from server.domain.clock import SystemClock
from server.domain.sources import InstanceSecrets
from server.ops.admin_identity import IdentityError, open_admin_signer
from server.store import file_times
from server.store.instance_files import create_private
from server.store.wiring import AdminJournalistStore

SERIAL_META = "key_directory_serial"


class NewsroomKeyError(Exception):
    """The directory cannot be signed as asked; the message says why."""


@dataclass(frozen=True)
class NewsroomSigner:
    seed: bytes
    public: bytes

    @property
    def fingerprint(self) -> str:
        return envelope.newsroom_fingerprint(self.public)


def open_signer(path: Path, passphrase: Callable[[], str]) -> NewsroomSigner:
    try:
        signer = open_admin_signer(path, passphrase)
    except IdentityError as exc:
        raise NewsroomKeyError(str(exc)) from None
    seed = bytes(signer.signing)
    return NewsroomSigner(seed=seed, public=envelope.newsroom_public_key(seed))


def create(path: Path, passphrase: str) -> NewsroomSigner:
    """A new newsroom identity at ``path`` (a signing identity, sealed with
    ``passphrase``: it signs, and opens nothing); refuses to replace a file."""
    keys = keyfiles.SecretKeys.generate("newsroom").signing_only()
    try:
        text = keyfiles.seal(keys, passphrase)
        create_private(path, text)
    except keyfiles.KeyFileError as exc:
        raise NewsroomKeyError(str(exc)) from None
    except FileExistsError:
        raise NewsroomKeyError(f"{path} exists; it was not replaced") from None
    except OSError as exc:
        raise NewsroomKeyError(f"cannot write {path}: {exc.strerror}") from None
    seed = bytes(keys.signing)
    return NewsroomSigner(seed=seed, public=envelope.newsroom_public_key(seed))


def is_signed(db: AdminJournalistStore) -> bool:
    """True once a newsroom key is recorded: every change must then be signed."""
    return key_directory.newsroom_key(db) is not None


def registered_keys(db: AdminJournalistStore) -> list[envelope.PublicKey]:
    return key_directory.registered_keys(db)


def current_keys(db: AdminJournalistStore) -> list[envelope.PublicKey]:
    """The keys of the verified directory, or of the database before the first one."""
    try:
        return key_directory.keys_to_encrypt_to(db)
    except key_directory.DirectoryUnusable as exc:
        raise NewsroomKeyError(
            f"{exc}; sign a new one from the registered journalists with"
            " `lanterne-server directory sign`"
        ) from None


def signed_desks(
    db: AdminJournalistStore, keys: Sequence[envelope.PublicKey]
) -> tuple[list[envelope.DirectoryDesk], list[str]]:
    """The desks as recorded, for the directory of ``keys``: members and
    all-desk journalists outside ``keys`` (being removed) are left out."""
    names = {k.name for k in keys}
    desks = [
        envelope.DirectoryDesk(d.name, tuple(m for m in d.members if m in names))
        for d in db.desks()
    ]
    everywhere = [j.name for j in db.journalists() if j.all_desks and j.name in names]
    return desks, everywhere


def publish(
    db: AdminJournalistStore,
    keys: Sequence[envelope.PublicKey],
    signer: NewsroomSigner,
    today: datetime.date | None = None,
) -> envelope.KeyDirectory:
    """Sign the next directory for ``keys`` and store it (with the newsroom key,
    the first time). A different newsroom key than the recorded one is refused."""
    recorded = key_directory.newsroom_key(db)
    if recorded is not None and recorded != signer.public:
        raise NewsroomKeyError(
            "this instance's directory is signed by another newsroom key"
            f" ({envelope.newsroom_fingerprint(recorded)}); use that key"
        )
    # The serial goes on from the last one signed here, even when the stored
    # document no longer verifies: clients refuse anything lower than they saw.
    recorded_serial = db.meta_value(SERIAL_META) or "0"
    if not recorded_serial.isdigit():
        raise NewsroomKeyError(
            f"the recorded directory serial is damaged ({recorded_serial[:20]!r}); restore the"
            " database from a backup"
        )
    last = int(recorded_serial)
    day = today if today is not None else datetime.date.fromisoformat(SystemClock().today())
    desks, all_desks = signed_desks(db, keys)
    document = envelope.sign_directory(
        keys, serial=last + 1, day=day, seed=signer.seed, desks=desks, all_desks=all_desks
    ).decode()
    directory = envelope.verify_directory(document, signer.public)
    if recorded is None:
        db.set_meta_value(key_directory.NEWSROOM_KEY_META, key_directory.encoded_key(signer.public))
    db.set_meta_value(key_directory.DIRECTORY_META, document)
    db.set_meta_value(SERIAL_META, str(directory.serial))
    return directory


def instance_key(secrets_path: Path) -> bytes:
    """The instance secret the receipt key derives from (server/domain/receipts.py)."""
    try:
        raw = file_times.read_bytes(secrets_path)
        return InstanceSecrets.from_json(raw, str(secrets_path)).login_key
    except OSError as exc:
        raise NewsroomKeyError(f"cannot read {secrets_path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise NewsroomKeyError(f"{secrets_path} is damaged ({exc})") from None


def certify_receipts(
    db: AdminJournalistStore,
    signer: NewsroomSigner,
    secret: bytes,
    today: datetime.date | None = None,
) -> bool:
    """Certify this instance's receipt key with the newsroom key (envelope/SPEC.md
    §12.2), unless a certificate that verifies for it is recorded already; True
    if a new one was recorded. Call after ``publish`` (the newsroom key is then
    the recorded one)."""
    if receipts.usable_certificate(db, secret) is not None:
        return False
    day = today if today is not None else datetime.date.fromisoformat(SystemClock().today())
    cert = envelope.certify_receipt_key(
        receipts.receipt_public_key(secret), day=day, seed=signer.seed
    )
    db.set_meta_value(receipts.CERTIFICATE_META, receipts.encode_certificate(cert))
    return True
