"""What the domain and web layers may know of the store: records, errors and
small typed Protocols. No SQL, no paths, no implementation.

The SQLite-and-files implementations are ``server.store.db.Database``
(journalists and instance values), ``server.store.sources.SqliteSourceStore``,
``server.store.newsroom.SqliteNewsroomStore`` and
``server.store.objects.ObjectStore``; ``server.store.wiring`` builds them from
the settings. A second backend implements the same Protocols
(docs/SERVER_LAYERS.md).
"""

from __future__ import annotations

import enum
import errno
import secrets
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

import envelope

# Records


def new_id() -> str:
    """128 random bits: object, submission, source, item and upload ids."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class JournalistRow:
    id: int
    name: str
    encryption_key: bytes
    signing_key: bytes
    role: str
    hybrid_key: bytes | None = None  # X-Wing, 1216 bytes; None for an X25519-only key
    all_desks: bool = False  # receives what is sent to every desk (docs/DESKS.md)

    def public_key(self) -> envelope.PublicKey:
        """The journalist's keys as a ``.pub`` file holds them (hybrid if registered so)."""
        return envelope.PublicKey(
            name=self.name,
            x25519=envelope.X25519Recipient(self.encryption_key),
            signing_key=self.signing_key,
            hybrid=None if self.hybrid_key is None else envelope.HybridRecipient(self.hybrid_key),
        )


@dataclass(frozen=True)
class SourceRow:
    id: str
    login_hash: bytes
    reply_key: bytes
    desk: str | None = None  # the desk the first submission chose; None: the whole newsroom


@dataclass(frozen=True)
class DeskRow:
    """A desk: who receives what a source sends to it (docs/DESKS.md).

    ``titles`` and ``descriptions`` map a language code to what the submit page
    shows; ``members`` are journalist names. Journalists marked ``all_desks``
    receive every desk besides its members."""

    name: str
    titles: dict[str, str]
    descriptions: dict[str, str]
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectRow:
    id: str
    kind: str
    size: int


@dataclass(frozen=True)
class ReplyRow:
    id: str
    object_id: str
    sent_on: str


@dataclass
class SourceSummary:
    """One source as the journalists list it."""

    id: str
    reply_key: bytes | None  # None once the source deleted their account
    last_activity: str
    account_deleted: bool
    desk: str | None = None
    submissions: int = 0
    size: int = 0
    seen: bool = False
    starred: bool = False
    tags: list[str] = field(default_factory=list)
    assignee: str | None = None
    notes: int = 0
    replies: int = 0
    # An official channel's days (server/domain/channel.py): the first day a
    # submission was received, the first acknowledgement and feedback sent, a
    # per-source feedback period, the day a journalist kept it until, and its
    # random expiry shift (None until drawn).
    created_on: str = ""
    acknowledged_on: str | None = None
    feedback_on: str | None = None
    feedback_months: int | None = None
    kept_until: str | None = None
    expiry_shift: int | None = None


@dataclass(frozen=True)
class RetentionFacts:
    """What the retention rule reads of a source (server/domain/channel.py)."""

    id: str
    last_active_on: str
    kept_until: str | None
    expiry_shift: int | None
    desk: str | None = None  # the desk's own retention applies (server/domain/channel.py)


@dataclass(frozen=True)
class ItemRow:
    """A reply or a note: the day is when it was sent or written."""

    id: str
    object_id: str
    day: str
    journalist: str | None  # None once the journalist was removed


@dataclass(frozen=True)
class SourceItems:
    submissions: list[tuple[str, str, list[ObjectRow]]]  # (id, day received, objects)
    replies: list[ItemRow]
    notes: list[ItemRow]


class ItemKind(enum.Enum):
    """What journalists add to a source: both are envelopes the server cannot read."""

    NOTE = "notes"
    REPLY = "replies"


class ReplyPurpose(enum.Enum):
    """What a reply also counts as on an official channel: its day is recorded
    (the first one only) in ``acknowledged_on`` or ``feedback_on``."""

    ACKNOWLEDGEMENT = "acknowledgement"
    FEEDBACK = "feedback"


@dataclass(frozen=True)
class Upload:
    """A resumable upload in progress (server/store/uploads.py): ciphertext only."""

    id: str
    owner_hash: bytes
    length: int
    received: int
    active_on: str  # the day (UTC) of the last activity

    @property
    def complete(self) -> bool:
        return self.received == self.length


@dataclass(frozen=True)
class DigestSubscription:
    """A journalist who asked for the daily digest (server/domain/digest.py)."""

    journalist_id: int
    name: str
    address: str
    last_sent_on: str | None  # the day their last digest went out; None: never


# Errors


class SourceNotFound(Exception):
    """No source (or submission) with this id: never existed, or deleted by a journalist."""


class SourceGone(Exception):
    """The source deleted their account: nothing can be sent to them any more."""


class TriageRefused(Exception):
    """A triage change the store cannot make; ``what`` is ``tags`` or ``assignee``."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class DeskProblem(Exception):
    """A desk change the store cannot make. ``kind`` is ``exists`` (a desk of that
    name), ``unknown`` (no such desk), ``journalist`` (no journalist of that name,
    ``detail``) or ``in_use`` (sources are in it: ``detail`` says how many)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail


class MoveConflict(Exception):
    """A move's replacements do not cover the source's objects exactly as they
    are now (something arrived or was deleted meanwhile): nothing was changed."""


class UploadError(Exception):
    """A tus request that cannot be honoured; ``status`` is the HTTP answer."""

    def __init__(self, status: int, why: str = "") -> None:
        super().__init__(why or str(status))
        self.status = status


class CommitProblem(Exception):
    """An upload named in a commit cannot become part of a submission.

    Nothing is changed when this is raised: the uploads stay as they were.
    ``kind`` is one of ``missing``, ``incomplete``, ``not_envelope``,
    ``duplicate``, ``busy``, ``too_many``.
    """

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class NoRoom(Exception):
    """Writing this would leave the disk below its reserve; nothing was written."""


class StoreUnavailable(OSError):
    """A networked store (PostgreSQL, the S3 server) cannot be reached or answer
    for a moment. An ``OSError`` with errno ``EIO``, so that the web layer answers
    503 as for the disk (``server.web.error_pages.storage_failure``); the driver's
    own error is its ``__cause__``, never shown."""

    def __init__(self, what: str) -> None:
        super().__init__(errno.EIO, f"{what} cannot be reached")


class StoreFull(OSError):
    """A networked store says it has no room: errno ``ENOSPC``, answered 507."""

    def __init__(self, what: str) -> None:
        super().__init__(errno.ENOSPC, f"{what} is full")


# What a store raises when its database cannot be used for a moment (locked past
# its wait, the disk full, an I/O error): the web layer answers 503 or 507
# (server/web/error_pages.py, docs/RELIABILITY.md). A second backend adds its own.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (sqlite3.OperationalError,)


def database_full(exc: BaseException) -> bool:
    """Whether ``exc`` (one of ``DATABASE_UNAVAILABLE``) says the disk is full."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_FULL


# Protocols


class JournalistStore(Protocol):
    """Journalists (known by their public keys) and the instance's recorded values."""

    def journalists(self) -> list[JournalistRow]: ...

    def journalist(self, journalist_id: int) -> JournalistRow | None: ...

    def journalist_named(self, name: str) -> JournalistRow | None: ...

    def meta_value(self, key: str) -> str | None: ...

    def desks(self) -> list[DeskRow]:
        """Every desk, in the order the admin added them, with its members."""
        ...


class DeskAdmin(Protocol):
    """What the admin commands change about desks (``lanterne-server desks``):
    each method is one transaction; ``DeskProblem`` says what is refused."""

    def add_desk(self, desk: DeskRow) -> None: ...

    def set_desk_members(self, name: str, members: Sequence[str]) -> None: ...

    def set_desk_texts(
        self, name: str, titles: Mapping[str, str], descriptions: Mapping[str, str]
    ) -> None:
        """Replace the desk's title and description in every language;
        ``DeskProblem("unknown")`` if there is no such desk."""
        ...

    def remove_desk(self, name: str) -> None:
        """``DeskProblem("in_use")`` while a source is in it, ``"unknown"`` if none."""
        ...

    def desk_sources(self, name: str) -> list[str]:
        """The ids of the sources in this desk."""
        ...

    def set_all_desks(self, journalist: str, on: bool) -> None:
        """Mark a journalist as receiving every desk (or not); ``DeskProblem("journalist")``."""
        ...


class DigestStore(Protocol):
    """The daily digest's rows: who asked for it, at which address, and the day
    each last got theirs; whether anything arrived from a day on (days only)."""

    def set_digest_address(self, name: str, address: str | None) -> bool:
        """Set (None: remove) a journalist's address; False if no such journalist."""
        ...

    def digest_subscriptions(self) -> list[DigestSubscription]:
        """Every journalist with an address, by name."""
        ...

    def mark_digest_sent(self, journalist_id: int, day: str) -> None: ...

    def received_since(self, day: str, journalist_id: int) -> bool:
        """True if a submission for this journalist was received on ``day`` or
        later: from a source of one of their desks, or of no desk (the whole
        newsroom), or of any desk if they receive every desk."""
        ...


class SourceStore(Protocol):
    """Sources, their submissions, replies and notes: every change is one transaction."""

    def find_source(self, login_hash: bytes) -> SourceRow | None: ...

    def replies(self, source_id: str) -> list[ReplyRow]: ...

    def is_active(self, source_id: str) -> bool: ...

    def desk_of(self, source_id: str) -> str | None:
        """The desk a source is in; None for the whole newsroom (or no such source)."""
        ...

    def record_submission(
        self,
        submission_id: str,
        source_id: str,
        new_source: SourceRow | None,
        day: str,
        objects: Sequence[ObjectRow],
        finished_uploads: Sequence[str] = (),
    ) -> None:
        """The source (if new), the submission and its objects, and the removal of
        ``finished_uploads``' rows, in ONE transaction; ``SourceGone`` if the
        source deleted their account (nothing is recorded then)."""
        ...

    def touch(self, source_id: str, day: str) -> None: ...

    def add_item(
        self,
        kind: ItemKind,
        item_id: str,
        source_id: str,
        object_id: str,
        journalist_id: int | None,
        day: str,
        purpose: ReplyPurpose | None = None,
    ) -> None:
        """``SourceNotFound``, or ``SourceGone`` for a reply to a deleted account.
        A reply with a ``purpose`` also records ``day`` as the source's first
        acknowledgement or feedback day, in the same transaction."""
        ...

    def keep_until(self, source_id: str, day: str) -> None:
        """Keep the source at least until ``day`` (a later day already set stays).
        ``SourceNotFound`` if none."""
        ...

    def set_feedback_months(self, source_id: str, months: int | None) -> None:
        """This source's feedback period (None: the channel's). ``SourceNotFound``."""
        ...

    def retention_facts(self) -> list[RetentionFacts]:
        """Every source's last activity, kept-until day and expiry shift."""
        ...

    def set_expiry_shift(self, source_id: str, shift: int) -> None:
        """Record the source's expiry shift, unless one was drawn already."""
        ...

    def delete_by_source(self, source_id: str) -> list[str]:
        """Erase the login hash, reply key and replies; the replies' object ids."""
        ...

    def delete_source(self, source_id: str, unchanged: RetentionFacts | None = None) -> list[str]:
        """Every row of the source; its object ids. ``SourceNotFound`` if none, or
        if ``unchanged`` (what retention read) is no longer what the row says: a
        source active or kept meanwhile is not expired on stale facts."""
        ...

    def delete_submission(self, submission_id: str) -> list[str]:
        """One submission; its object ids. ``SourceNotFound`` if none."""
        ...


class NewsroomStore(Protocol):
    """What the journalists read and the triage state they share."""

    def source_summaries(self) -> list[SourceSummary]: ...

    def items_of(self, source_id: str) -> SourceItems:
        """One source's submissions (with their objects), replies and notes, oldest
        first, read in one transaction."""
        ...

    def object_is_known(self, object_id: str) -> bool: ...

    def source_of_object(self, object_id: str) -> tuple[str, str | None] | None:
        """The source an object belongs to (a submission's object, a reply or a
        note) and that source's desk; None for an unknown object."""
        ...

    def source_of_submission(self, submission_id: str) -> tuple[str, str | None] | None:
        """The source of a submission and its desk; None for an unknown submission."""
        ...

    def move_source(
        self, source_id: str, desk: str, replacements: Mapping[str, tuple[str, int]]
    ) -> None:
        """Put the source in ``desk`` and each of its objects' rows on the object
        that replaces it (``old id -> (new id, size)``), in ONE transaction.
        ``MoveConflict`` unless ``replacements`` names every object of the source
        (submissions', replies', notes') and nothing else; ``SourceNotFound``."""
        ...

    def update_triage(
        self,
        source_id: str,
        *,
        seen: bool | None,
        starred: bool | None,
        tags: list[str] | None,
        add_tags: list[str] | None,
        remove_tags: list[str] | None,
        assignee: str | None,
        clear_assignee: bool,
        max_tags: int,
    ) -> None:
        """One transaction; ``TriageRefused`` for too many tags or an unknown assignee."""
        ...


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class PendingObject(Protocol):
    """An object being written: ``commit`` makes it appear, ``abort`` removes it."""

    id: str
    size: int

    def write(self, data: bytes | memoryview) -> None: ...

    def commit(self) -> None: ...

    def abort(self) -> None: ...


class ObjectStore(Protocol):
    """Ciphertext objects named by random ids."""

    def new_object(self) -> PendingObject: ...

    def write_bytes(self, data: bytes) -> str: ...

    def read_bytes(self, object_id: str) -> bytes: ...

    def open(self, object_id: str, start: int = 0) -> AbstractContextManager[Readable]:
        """The object from byte ``start`` on; ``FileNotFoundError`` if there is none."""
        ...

    def size(self, object_id: str) -> int:
        """The object's length; ``FileNotFoundError`` if there is none, ``ValueError``
        for what is not an object id."""
        ...

    def delete(self, object_id: str) -> None: ...

    def local_bytes(self, nbytes: int) -> int:
        """The most local disk that writing an object of ``nbytes`` holds at once:
        what a write claims of the disk reserve (``DiskSpace``)."""
        ...


class DiskSpace(Protocol):
    """The disk reserve shared by every path that writes ciphertext."""

    def room(self, nbytes: int, *, key: object = None) -> bool: ...

    def claim(self, key: object, nbytes: int) -> AbstractContextManager[None]:
        """Hold ``nbytes`` while the block runs; ``NoRoom`` if they do not fit."""
        ...


class UploadLimits(Protocol):
    @property
    def max_length(self) -> int: ...

    @property
    def max_patch(self) -> int: ...


class UploadWriter(Protocol):
    """One PATCH's bytes, from the upload's offset on. Blocking: worker threads."""

    def write(self, data: bytes | bytearray) -> None: ...

    def keep(self, size: int) -> None:
        """Keep only the first ``size`` bytes written (0: none), on stable storage."""
        ...

    def save(self) -> Upload:
        """Record the new offset (received + kept) with the bytes, at once: what it
        returns survives a crash. ``UploadError(409)`` if the offset moved since
        the writer opened (another PATCH), 404 if the upload is gone; on any error
        nothing of this PATCH is kept."""
        ...


class UploadStore(Protocol):
    """Resumable uploads in progress: their rows and files, caps and expiry.

    Methods do blocking I/O: call them from a worker thread.
    """

    @property
    def policy(self) -> UploadLimits: ...

    def create(self, owner_hash: bytes, length: int) -> Upload: ...

    def get(self, upload_id: str, owner_hash: bytes | None) -> Upload: ...

    def expires_at(self, upload: Upload) -> float: ...

    def hold(
        self, upload_ids: Sequence[str], *, patch: bool = False
    ) -> AbstractContextManager[None]:
        """Exclusive use of these uploads for one request; ``UploadError(423)`` if
        one is in use. A store shared by several instances holds them across
        instances too, except for a PATCH (``patch``), which may last minutes:
        its writer's ``save`` refuses (409) if another PATCH moved the offset."""
        ...

    def receiving(self, upload: Upload, nbytes: int) -> AbstractContextManager[None]: ...

    def append_to(self, upload: Upload) -> AbstractContextManager[UploadWriter]:
        """A writer of one PATCH's bytes, from the upload's offset on."""
        ...

    def delete(self, upload_id: str) -> None: ...

    def forget_owner(self, owner_hash: bytes) -> int: ...

    def sweep_if_due(self) -> int: ...

    def check_for_commit(
        self, upload_ids: Sequence[str], owner_hash: bytes | None
    ) -> list[Upload]: ...

    def move_to_store(self, uploads: Sequence[Upload], store: ObjectStore) -> list[str]: ...

    def take_back(self, upload_ids: Sequence[str], store: ObjectStore) -> int:
        """Uploads ``move_to_store`` moved but whose submission was not recorded:
        back among the uploads, rows untouched, so the commit can be sent again."""
        ...

    def finish(self, upload_ids: Sequence[str]) -> None:
        """Once their submission is recorded: whatever of these uploads remains."""
        ...


class EphemeralStore(Protocol):
    """Short-lived state every instance shares (sessions, throttles, tokens): keyed
    hashes to opaque values, each removable after its UTC day
    (``server.store.ephemeral``; docs/SERVER_LAYERS.md, "Several instances")."""

    def get(self, kind: str, key: bytes) -> bytes | None: ...

    def update(
        self,
        kind: str,
        key: bytes,
        change: Callable[[bytes | None], bytes | None],
        *,
        tier: int = 0,
        until_day: str,
    ) -> bytes | None: ...

    def delete(self, kind: str, key: bytes) -> None: ...

    def add_once(self, kind: str, key: bytes, *, until_day: str) -> bool: ...

    def count(self, kind: str, tier: int) -> int: ...

    def trim(self, kind: str, tier: int, keep: int) -> None: ...

    def sweep(self, today: str) -> int: ...
