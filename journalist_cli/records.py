"""What the journalist API answers, as typed records checked as untrusted input.

Ids become file names in the vault, so they must match ``ID_PATTERN``; sizes
are non-negative integers; anything else outside the contract raises
``ServerError``. The vault stores these records too, so they live apart from
the HTTP client: commands that work offline never import httpx.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from journalist_cli.workflow_errors import ServerError

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
TAG_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,32}")
KINDS = ("manifest", "message", "file")
MAX_ITEM_BYTES = 1 << 20  # a note or reply envelope (the contract's limit)


# --- Typed answers ---------------------------------------------------------------


def typed_field(doc: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ServerError(f"the server's answer has a bad {name!r} field")
    return value


def id_field(doc: dict[str, Any], name: str = "id") -> str:
    value = typed_field(doc, name, str)
    if not ID_PATTERN.fullmatch(value):
        raise ServerError(f"the server sent an id that is not safe to use: {value[:80]!r}")
    return str(value)


def _count(doc: dict[str, Any], name: str) -> int:
    value = typed_field(doc, name, int)
    if value < 0:
        raise ServerError(f"the server sent a negative {name!r}")
    return int(value)


def _day(doc: dict[str, Any], name: str) -> str:
    value = typed_field(doc, name, str)
    if not DAY_PATTERN.fullmatch(value):
        raise ServerError(f"the server sent a bad date in {name!r}")
    return str(value)


def _opt_name(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise ServerError(f"the server's answer has a bad {name!r} field")
    return value


DESK_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def _desk(doc: dict[str, Any]) -> str | None:
    value = doc.get("desk")
    if value is None:
        return None
    if not isinstance(value, str) or not DESK_PATTERN.fullmatch(value):
        raise ServerError("the server's answer has a bad 'desk' field")
    return value


def _names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(n, str) and DESK_PATTERN.fullmatch(n) for n in value
    ):
        raise ServerError("the server's answer has a bad 'desks' field")
    return value


def as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ServerError("the server's answer is not the expected JSON object")
    return value


def as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ServerError("the server's answer is not the expected JSON list")
    return value


@dataclass(frozen=True)
class JournalistInfo:
    name: str
    role: str
    encryption_key: str
    signing_key: str
    fingerprint: str
    hybrid_key: str | None = None  # X-Wing; absent or null for an X25519-only key
    # The desks whose sources they receive and whether they receive every desk
    # (docs/DESKS.md); from an unsigned instance's server, to be trusted as it is.
    desks: tuple[str, ...] = ()
    all_desks: bool = False

    @classmethod
    def parse(cls, raw: Any) -> JournalistInfo:
        doc = as_dict(raw)
        return cls(
            name=typed_field(doc, "name", str),
            role=typed_field(doc, "role", str),
            encryption_key=typed_field(doc, "encryption_key", str),
            signing_key=typed_field(doc, "signing_key", str),
            fingerprint=typed_field(doc, "fingerprint", str),
            hybrid_key=typed_field(doc, "hybrid_key", (str, type(None))),
            desks=tuple(_names(doc.get("desks", []))),
            all_desks=bool(doc.get("all_desks", False) is True),
        )


def _opt_day(doc: dict[str, Any], name: str) -> str | None:
    return None if doc.get(name) is None else _day(doc, name)


@dataclass(frozen=True)
class ChannelDays:
    """An official channel's days for one source (docs/OFFICIAL_CHANNEL.md): the
    first submission's day, the first acknowledgement and feedback sent, the
    days they are due by (None: nothing due), the source's own feedback period,
    and the day retention deletes it (None: never)."""

    first_received_on: str | None = None
    acknowledged_on: str | None = None
    feedback_on: str | None = None
    acknowledge_by: str | None = None
    feedback_by: str | None = None
    feedback_months: int | None = None
    expires_on: str | None = None

    FIELDS: ClassVar[tuple[str, ...]] = (
        "first_received_on",
        "acknowledged_on",
        "feedback_on",
        "acknowledge_by",
        "feedback_by",
        "expires_on",
    )

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> ChannelDays:
        """From a source's answer; all None from a server that predates them."""
        months = doc.get("feedback_months")
        if months is not None and (
            not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= 12
        ):
            raise ServerError("the server's answer has a bad 'feedback_months' field")
        return cls(**{name: _opt_day(doc, name) for name in cls.FIELDS}, feedback_months=months)

    def to_api(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in self.FIELDS},
            "feedback_months": self.feedback_months,
        }

    def next_due(self) -> str | None:
        """The nearest day something is due on (a deadline or the expiry)."""
        days = [d for d in (self.acknowledge_by, self.feedback_by, self.expires_on) if d]
        return min(days) if days else None


@dataclass(frozen=True)
class ChannelInfo:
    """``GET /channel``: the channel's declaration, the server's day, and the
    acknowledgement text per language."""

    official: bool
    acknowledge_days: int
    feedback_months: int
    feedback_months_extended: int
    retention_days: int
    today: str
    default_language: str
    ack_templates: dict[str, str]

    @classmethod
    def parse(cls, raw: Any) -> ChannelInfo:
        doc = as_dict(raw)
        templates = typed_field(doc, "ack_templates", dict)
        if not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_TEMPLATE_CHARS
            for k, v in templates.items()
        ):
            raise ServerError("the server's answer has bad acknowledgement texts")
        return cls(
            official=typed_field(doc, "official", bool),
            acknowledge_days=_count(doc, "acknowledge_days"),
            feedback_months=_count(doc, "feedback_months"),
            feedback_months_extended=_count(doc, "feedback_months_extended"),
            retention_days=_count(doc, "retention_days"),
            today=_day(doc, "today"),
            default_language=typed_field(doc, "default_language", str),
            ack_templates=dict(templates),
        )


MAX_TEMPLATE_CHARS = 4000


@dataclass(frozen=True)
class SourceInfo:
    """A source as the server lists it.

    ``reply_key`` is None once the source deleted their account (their reply
    material is gone: nothing can reach them any more); ``account_deleted``
    says so explicitly, and is False from servers that predate it.
    """

    id: str
    reply_key: str | None
    last_activity: str
    submissions: int
    size: int
    seen: bool
    starred: bool
    tags: tuple[str, ...]
    assignee: str | None
    notes: int
    replies: int
    account_deleted: bool = False
    channel: ChannelDays = field(default_factory=ChannelDays)
    desk: str | None = None  # docs/DESKS.md; None: the whole newsroom (or an older server)

    @classmethod
    def parse(cls, raw: Any) -> SourceInfo:
        doc = as_dict(raw)
        tags = typed_field(doc, "tags", list)
        if not all(isinstance(t, str) and TAG_PATTERN.fullmatch(t) for t in tags):
            raise ServerError("the server sent malformed tags")
        deleted = doc.get("account_deleted", False)  # servers before it: never deleted
        if not isinstance(deleted, bool):
            raise ServerError("the server's answer has a bad 'account_deleted' field")
        return cls(
            id=id_field(doc),
            reply_key=typed_field(doc, "reply_key", (str, type(None))),
            last_activity=_day(doc, "last_activity"),
            submissions=_count(doc, "submissions"),
            size=_count(doc, "size"),
            seen=typed_field(doc, "seen", bool),
            starred=typed_field(doc, "starred", bool),
            tags=tuple(tags),
            assignee=_opt_name(doc, "assignee"),
            notes=_count(doc, "notes"),
            replies=_count(doc, "replies"),
            account_deleted=deleted,
            channel=ChannelDays.parse(doc),
            desk=_desk(doc),
        )

    def to_api(self) -> dict[str, Any]:
        """The source as the API lists it: ``parse``'s inverse (air-gap bundles)."""
        return {
            "id": self.id,
            "reply_key": self.reply_key,
            "account_deleted": self.account_deleted,
            "last_activity": self.last_activity,
            "submissions": self.submissions,
            "size": self.size,
            "seen": self.seen,
            "starred": self.starred,
            "tags": list(self.tags),
            "assignee": self.assignee,
            "notes": self.notes,
            "replies": self.replies,
            **self.channel.to_api(),
            "desk": self.desk,
        }


@dataclass(frozen=True)
class ObjectInfo:
    id: str
    kind: str
    size: int

    @classmethod
    def parse(cls, raw: Any) -> ObjectInfo:
        doc = as_dict(raw)
        kind = typed_field(doc, "kind", str)
        if kind not in KINDS:
            raise ServerError(f"the server sent an unknown object kind {kind[:20]!r}")
        return cls(id=id_field(doc), kind=kind, size=_count(doc, "size"))


@dataclass(frozen=True)
class SubmissionInfo:
    id: str
    received_on: str
    objects: tuple[ObjectInfo, ...]

    @classmethod
    def parse(cls, raw: Any) -> SubmissionInfo:
        doc = as_dict(raw)
        return cls(
            id=id_field(doc),
            received_on=_day(doc, "received_on"),
            objects=tuple(ObjectInfo.parse(o) for o in as_list(doc.get("objects"))),
        )


@dataclass(frozen=True)
class ItemInfo:
    """A reply or a note: one envelope object, a day and its author."""

    id: str
    object_id: str
    day: str
    journalist: str | None
    size: int

    @classmethod
    def parse(cls, raw: Any, day_field: str) -> ItemInfo:
        doc = as_dict(raw)
        size = _count(doc, "size")
        if size > MAX_ITEM_BYTES:
            raise ServerError("the server listed a note or reply over the size limit")
        return cls(
            id=id_field(doc),
            object_id=id_field(doc, "object_id"),
            day=_day(doc, day_field),
            journalist=_opt_name(doc, "journalist"),
            size=size,
        )


@dataclass(frozen=True)
class SourceDetail:
    source: SourceInfo
    submissions: tuple[SubmissionInfo, ...] = ()
    replies: tuple[ItemInfo, ...] = ()
    notes: tuple[ItemInfo, ...] = ()

    @classmethod
    def parse(cls, raw: Any) -> SourceDetail:
        doc = as_dict(raw)
        items = as_dict(doc.get("items"))
        return cls(
            source=SourceInfo.parse(doc),
            submissions=tuple(SubmissionInfo.parse(s) for s in as_list(items.get("submissions"))),
            replies=tuple(ItemInfo.parse(r, "sent_on") for r in as_list(items.get("replies"))),
            notes=tuple(ItemInfo.parse(n, "written_on") for n in as_list(items.get("notes"))),
        )

    def to_api(self) -> dict[str, Any]:
        """The source with its items as the API answers: ``parse``'s inverse."""

        def item(i: ItemInfo, day_field: str) -> dict[str, Any]:
            return {
                "id": i.id,
                "object_id": i.object_id,
                day_field: i.day,
                "journalist": i.journalist,
                "size": i.size,
            }

        return {
            **self.source.to_api(),
            "items": {
                "submissions": [
                    {
                        "id": u.id,
                        "received_on": u.received_on,
                        "objects": [
                            {"id": o.id, "kind": o.kind, "size": o.size} for o in u.objects
                        ],
                    }
                    for u in self.submissions
                ],
                "replies": [item(r, "sent_on") for r in self.replies],
                "notes": [item(n, "written_on") for n in self.notes],
            },
        }


@dataclass(frozen=True)
class Created:
    id: str
    object_id: str


@dataclass
class Session:
    name: str
    role: str
    token: str = field(repr=False)
