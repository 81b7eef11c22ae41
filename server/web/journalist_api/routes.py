"""The journalist API's routes (docs/JOURNALIST_API.md, "Resources")."""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, cast

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from envelope.keys import b64encode
from server.domain import key_directory
from server.domain.channel import MAX_KEEP_DAYS, ack_template
from server.domain.clock import Clock
from server.domain.newsroom import (
    MAX_TAGS,
    TAG,
    Invalid,
    MoveConflict,
    Newsroom,
    NotFound,
    NotMember,
    Reader,
    SourceSummary,
    reader_of,
)
from server.domain.source_lifecycle import ItemKind, ReplyPurpose, SourceGone, SourceNotFound
from server.languages import LANGUAGES
from server.settings import ChannelSettings
from server.store.protocols import JournalistRow, JournalistStore
from server.web.headers import byte_range_start, decimal
from server.web.i18n import load_translations
from server.web.journalist_api.auth import (
    CHALLENGE_BYTES,
    CHALLENGE_SECONDS,
    JOURNALIST_ONION_META,
    SIGNATURE_BYTES,
    SIGNING_KEY_BYTES,
    TOKEN_BYTES,
    TOKEN_SECONDS,
    Authenticator,
    AuthFailed,
    Refusal,
    ServedHosts,
)

MAX_ITEM_BYTES = 1 << 20  # one note or reply envelope
# The JSON bodies (FastAPI reads them whole before validating them): a login, a
# triage change, and a move's list of at most 100,000 replacements of two ids
# of at most 64 characters (about 15 MB as json.dumps writes it).
MAX_LOGIN_BODY = 4 << 10
MAX_PATCH_BODY = 64 << 10
MAX_MOVE_BODY = 16 << 20
READ_SIZE = 1 << 20
ENVELOPE_MAGIC = b"LANTERNE"


def _operation_id(route: APIRoute) -> str:
    """The function's name (``add_note``), which the OpenAPI links refer to."""
    return route.name


router = APIRouter(generate_unique_id_function=_operation_id)


@dataclass
class ApiServices:
    db: JournalistStore
    newsroom: Newsroom
    auth: Authenticator
    clock: Clock
    hosts: ServedHosts
    default_language: str = LANGUAGES[0]


def services(request: Request) -> ApiServices:
    api: ApiServices = request.app.state.api
    return api


Api = Annotated[ApiServices, Depends(services)]


def b64decode(text: str, length: int | None = None) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise HTTPException(400, "not base64url") from None
    if length is not None and len(raw) != length:
        raise HTTPException(400, "wrong length")
    return raw


class Unauthorized(HTTPException):
    """A 401 whose body carries ``reason`` (auth.Refusal) besides the message."""

    MESSAGES: ClassVar[dict[Refusal, str]] = {
        Refusal.CHALLENGE: "the login challenge expired or was already used: log in again",
        Refusal.KEY: "no journalist of that name has this signing key",
        Refusal.HOST: "the login was signed for an address this server does not serve",
        Refusal.BUSY: "too many sessions at once: try again in a few minutes",
        Refusal.TOKEN: "unknown or expired token: log in again",
        Refusal.REVOKED: "this journalist was removed or their key replaced",
    }

    def __init__(self, reason: Refusal) -> None:
        super().__init__(401, self.MESSAGES[reason])
        self.reason = reason.value


# The OpenAPI security scheme; the route below gives every refusal its 401 body.
bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="`Authorization: Bearer TOKEN`, TOKEN from `POST /auth/token`",
)


def current_journalist(
    api: Api, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> JournalistRow:
    if credentials is None:
        raise HTTPException(401, "a bearer token is required")
    try:
        token = b64decode(credentials.credentials)
        session = api.auth.session(token)
    except HTTPException:
        raise Unauthorized(Refusal.TOKEN) from None
    except AuthFailed as exc:
        raise Unauthorized(exc.reason) from None
    # The database decides, at every request: the admin commands run in another
    # process, and a removed journalist or a replaced key must end the token now.
    row = api.db.journalist(session.journalist_id)
    if row is None or not hmac.compare_digest(row.signing_key, session.signing_key):
        api.auth.forget(token)
        raise Unauthorized(Refusal.REVOKED)
    return row


Journalist = Annotated[JournalistRow, Depends(current_journalist)]


# --- Models (they make the OpenAPI schema: docs/JOURNALIST_API.md) ----------------
#
# The schema is the contract: a request it allows is one the server accepts (or
# refuses for a state it cannot show: an unknown source, journalist or challenge),
# and every status an operation can answer is listed with its body (tests/
# test_journalist_api_contract.py runs schemathesis against a real server).


def b64_field(size: int | None = None, description: str = "") -> Any:
    """Unpadded URL-safe base64 (SPEC §2.1), of exactly ``size`` bytes if given."""
    chars = f"{{{-(-4 * size // 3)}}}" if size else "+"
    return Field(
        pattern=f"^[A-Za-z0-9_-]{chars}$",
        description=description or None,
        json_schema_extra={"contentEncoding": "base64url"},
    )


Day = Annotated[
    str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", json_schema_extra={"format": "date"})
]
# Ids are 32 hex digits (storage.new_id); clients may rely on this much, as file names.
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
# db.py's CHECK constraint on journalists.role
Role = Literal["journalist", "admin"]
Size = Annotated[int, Field(ge=0, description="bytes")]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class Challenge(BaseModel):
    challenge: Annotated[str, b64_field(CHALLENGE_BYTES)]
    expires_in: Annotated[int, Field(ge=1, description="seconds")]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    journalist: Name
    challenge: Annotated[str, b64_field(CHALLENGE_BYTES, "as received from /auth/challenge")]
    signature: Annotated[str, b64_field(SIGNATURE_BYTES, "Ed25519, of the signed message")]


class Token(BaseModel):
    token: Annotated[str, b64_field(TOKEN_BYTES)]
    expires_in: Annotated[int, Field(ge=1, description="seconds")]
    name: str
    role: Role


class JournalistOut(BaseModel):
    name: str
    role: Role
    encryption_key: Annotated[str, b64_field(32, "X25519")]
    signing_key: Annotated[str, b64_field(SIGNING_KEY_BYTES)]
    # X-Wing (ML-KEM-768 + X25519), null for an X25519-only key: when present,
    # notes and replies are encrypted to it and not to encryption_key.
    hybrid_key: Annotated[str, b64_field(1216, "X-Wing (ML-KEM-768 + X25519)")] | None
    fingerprint: str  # over every key (envelope/SPEC.md §2.3)
    # The desks whose sources this journalist receives, and whether they receive
    # every desk (docs/DESKS.md). The signed directory says the same, signed.
    desks: list[str]
    all_desks: bool


class DirectoryOut(BaseModel):
    """The newsroom's signed key directory, as signed (envelope/SPEC.md §11)."""

    type: Literal["lanterne-key-directory/v1"]
    newsroom_key: Annotated[str, b64_field(32)]
    payload: Annotated[str, b64_field()]
    signature: Annotated[str, b64_field(64)]


class SourceOut(BaseModel):
    id: Id
    # null once the source deleted their account (their reply key is destroyed)
    reply_key: Annotated[str, b64_field()] | None
    account_deleted: bool
    # The desk the source's first submission chose (docs/DESKS.md); null for a
    # source of the whole newsroom. What they sent is encrypted to its journalists.
    desk: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")] | None
    last_activity: Day
    submissions: Annotated[int, Field(ge=0)]
    size: Size
    seen: bool
    starred: bool
    tags: list[str]
    assignee: str | None
    notes: Annotated[int, Field(ge=0)]
    replies: Annotated[int, Field(ge=0)]
    # An official channel's days (docs/OFFICIAL_CHANNEL.md): the first submission's
    # day, the first acknowledgement and feedback sent, the days they are due by
    # (null: nothing due), this source's own feedback period (null: the
    # channel's), and the day retention deletes it (null: never).
    first_received_on: Day
    acknowledged_on: Day | None
    feedback_on: Day | None
    acknowledge_by: Day | None
    feedback_by: Day | None
    feedback_months: Annotated[int, Field(ge=1, le=12)] | None
    expires_on: Day | None


class ObjectOut(BaseModel):
    id: Id
    kind: Literal["manifest", "message", "file"]
    size: Size


class SubmissionOut(BaseModel):
    id: Id
    received_on: Day
    objects: list[ObjectOut]


class ItemOut(BaseModel):
    id: Id
    object_id: Id
    size: Annotated[int, Field(ge=0, le=MAX_ITEM_BYTES, description="bytes")]
    journalist: str | None


class ReplyOut(ItemOut):
    sent_on: Day


class NoteOut(ItemOut):
    written_on: Day


class Items(BaseModel):
    submissions: list[SubmissionOut]
    replies: list[ReplyOut]
    notes: list[NoteOut]


class SourceDetail(SourceOut):
    items: Items


# The newsroom checks tags (with its own message); the schema says the same rule.
Tag = Annotated[str, Field(json_schema_extra={"pattern": f"^{TAG.pattern}$"})]
Tags = Annotated[list[Tag] | None, Field(max_length=MAX_TAGS)]


class TriagePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seen: bool | SkipJsonSchema[None] = None
    starred: bool | SkipJsonSchema[None] = None
    tags: Tags = Field(default=None, description="replaces the list")
    add_tags: Tags = None
    remove_tags: Tags = None
    assignee: Name | None = Field(
        default=None, description="a current journalist's name (400 otherwise), or null"
    )
    keep_days: Annotated[int, Field(ge=1, le=MAX_KEEP_DAYS)] | SkipJsonSchema[None] = Field(
        default=None, description="keep the source at least this many days from today"
    )
    extended_feedback: bool | SkipJsonSchema[None] = Field(
        default=None,
        description="true: this source gets its channel's longer feedback period"
        " (`feedback_months_extended`; 400 on a channel without one); false: the channel's own",
    )


class ChannelSettingsOut(BaseModel):
    """What a channel declares (config.toml's ``[channel]``, or a desk's overrides)."""

    official: bool
    acknowledge_days: Annotated[int, Field(ge=1)]
    feedback_months: Annotated[int, Field(ge=1, le=12)]
    feedback_months_extended: Annotated[int, Field(ge=0, le=12)]
    retention_days: Annotated[int, Field(ge=0)]


class ChannelOut(ChannelSettingsOut):
    """The instance's channel, each desk's where it differs, the server's day, and
    the instance's acknowledgement text per language."""

    today: Day
    default_language: str
    ack_templates: dict[str, str]
    desks: dict[str, ChannelSettingsOut]


class Acknowledgement(BaseModel):
    """The text `lanterne ack` sends to one source: its desk's, else the instance's,
    else the built-in one, in ``language``."""

    language: str
    text: str


class Created(BaseModel):
    id: Id
    object_id: Id


class Error(BaseModel):
    """Every error the API answers in JSON (docs/JOURNALIST_API.md, "Errors")."""

    error: Literal[
        "bad_request", "forbidden", "not_found", "conflict", "too_large", "unavailable", "no_room"
    ]
    message: str


class Refused(BaseModel):
    """A 401: ``reason`` when a login or a token was refused (auth.Refusal)."""

    error: Literal["unauthorized"]
    reason: Refusal | SkipJsonSchema[None] = None
    message: str


Responses = dict[int | str, dict[str, Any]]  # FastAPI's ``responses=``


def _error(description: str, model: type[BaseModel] = Error) -> dict[str, Any]:
    return {"model": model, "description": description}


BAD_REQUEST: Responses = {400: _error("the body or a field is not what this operation takes")}
UNAUTHORIZED: Responses = {401: _error("no token, or an unknown, expired or revoked one", Refused)}
NO_SOURCE: Responses = {404: _error("no such source")}


def too_large(limit: int) -> Responses:
    return {413: _error(f"the body is over {limit} bytes")}


TOO_LARGE = too_large(MAX_ITEM_BYTES)
# app.storage_error: the database or the disk failing for a moment (503), a full disk (507).
READS: Responses = {503: _error("the storage cannot be reached for a moment")}
WRITES: Responses = {**READS, 507: _error("the disk is full: nothing was kept")}

_BYTES = {"type": "string", "format": "binary"}
_SIZE_HEADER = {"required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}}
_BYTES_UNIT = {"required": True, "schema": {"type": "string", "const": "bytes"}}
# The operations that take a source id, for the links from the answers that give one.
_SOURCE_OPERATIONS = (
    "source",
    "patch_source",
    "add_note",
    "add_reply",
    "acknowledgement",
    "delete_source",
)
_PARAMETERS = {
    "source": "source_id",
    "patch_source": "source_id",
    "add_note": "source_id",
    "add_reply": "source_id",
    "acknowledgement": "source_id",
    "delete_source": "source_id",
    "delete_submission": "submission_id",
    "get_object": "object_id",
}


def _links(value: str, *operations: str, label: str = "") -> dict[str, Any]:
    """OpenAPI links: where an id in an answer can be used next (and what
    schemathesis follows to reach real sources, submissions and objects)."""
    return {
        f"{operation}{label}": {
            "operationId": operation,
            "parameters": {_PARAMETERS[operation]: value},
        }
        for operation in operations
    }


def source_out(
    s: SourceSummary, newsroom: Newsroom, channel_of: Callable[[str | None], ChannelSettings]
) -> SourceOut:
    channel = channel_of(s.desk)
    due = newsroom.deadlines(s, channel)
    return SourceOut(
        id=s.id,
        reply_key=b64encode(s.reply_key) if s.reply_key is not None else None,
        account_deleted=s.account_deleted,
        desk=s.desk,
        last_activity=s.last_activity,
        submissions=s.submissions,
        size=s.size,
        seen=s.seen,
        starred=s.starred,
        tags=s.tags,
        assignee=s.assignee,
        notes=s.notes,
        replies=s.replies,
        first_received_on=s.created_on,
        acknowledged_on=s.acknowledged_on,
        feedback_on=s.feedback_on,
        acknowledge_by=due.acknowledge_by,
        feedback_by=due.feedback_by,
        feedback_months=s.feedback_months,
        expires_on=newsroom.expires_on(s, channel),
    )


def _reader(api: ApiServices, me: JournalistRow) -> Reader:
    """The desks ``me`` may see, read at every request (docs/DESKS.md)."""
    return reader_of(api.db, me)


def _source(api: ApiServices, source_id: str, me: JournalistRow) -> SourceSummary:
    """The source, if ``me`` may see it: another desk's is a 404 like a missing one."""
    try:
        return api.newsroom.source(source_id, _reader(api, me))
    except NotFound:
        raise HTTPException(404, "no such source") from None


# --- Authentication -------------------------------------------------------------


@router.post("/auth/challenge", response_model=Challenge)
def challenge(api: Api) -> Challenge:
    return Challenge(challenge=b64encode(api.auth.new_challenge()), expires_in=CHALLENGE_SECONDS)


@router.post(
    "/auth/token",
    response_model=Token,
    responses={
        **BAD_REQUEST,
        401: _error("the login is refused: `reason` says why", Refused),
        **too_large(MAX_LOGIN_BODY),
        **READS,
    },
    max_body_size=MAX_LOGIN_BODY,
)
def token(body: TokenRequest, request: Request, api: Api) -> Token:
    row = api.db.journalist_named(body.journalist)
    hosts = api.hosts.current(api.db.meta_value(JOURNALIST_ONION_META))
    try:
        value = api.auth.redeem(
            b64decode(body.challenge),
            b64decode(body.signature),
            hosts,
            request.headers.get("host", ""),
            (row.id, row.signing_key) if row is not None else None,
        )
    except AuthFailed as exc:
        raise Unauthorized(exc.reason) from None
    assert row is not None  # redeem refuses an unknown journalist
    return Token(
        token=b64encode(value), expires_in=TOKEN_SECONDS, name=row.name, role=cast(Role, row.role)
    )


# --- Resources ------------------------------------------------------------------


@router.get("/journalists", response_model=list[JournalistOut], responses={**UNAUTHORIZED, **READS})
def journalists(api: Api, me: Journalist) -> list[JournalistOut]:
    desks = api.db.desks()
    return [
        JournalistOut(
            name=j.name,
            role=cast(Role, j.role),
            encryption_key=b64encode(j.encryption_key),
            signing_key=b64encode(j.signing_key),
            hybrid_key=None if j.hybrid_key is None else b64encode(j.hybrid_key),
            fingerprint=j.public_key().fingerprint,
            desks=[d.name for d in desks if j.name in d.members],
            all_desks=j.all_desks,
        )
        for j in api.db.journalists()
    ]


@router.get(
    "/directory",
    response_model=DirectoryOut,
    responses={
        **UNAUTHORIZED,
        **READS,
        404: _error("this instance's journalist list is not signed by a newsroom key"),
    },
)
def directory(api: Api, me: Journalist) -> JSONResponse:
    """The signed key directory, byte for byte as the admin signed it: the CLI
    verifies it against the newsroom key it pinned, never trusting this server."""
    try:
        document = key_directory.signed_document(api.db)
    except key_directory.DirectoryUnusable:
        document = None
    if document is None:
        raise HTTPException(404, "no signed key directory")
    return JSONResponse(json.loads(document))


@router.get(
    "/sources",
    response_model=list[SourceOut],
    responses={
        200: {"links": _links("$response.body#/0/id", *_SOURCE_OPERATIONS)},
        **UNAUTHORIZED,
        **READS,
    },
)
def sources(api: Api, me: Journalist) -> list[SourceOut]:
    channel_of = api.newsroom.channel_of()
    return [source_out(s, api.newsroom, channel_of) for s in api.newsroom.sources(_reader(api, me))]


@router.get(
    "/sources/{source_id}",
    response_model=SourceDetail,
    responses={
        200: {
            "links": {
                **_links("$response.body#/items/submissions/0/id", "delete_submission"),
                **_links("$response.body#/items/submissions/0/objects/0/id", "get_object"),
                **_links("$response.body#/items/notes/0/object_id", "get_object", label="_note"),
            }
        },
        **UNAUTHORIZED,
        **NO_SOURCE,
        **READS,
    },
)
def source(source_id: str, api: Api, me: Journalist) -> SourceDetail:
    reader = _reader(api, me)
    try:
        summary = source_out(
            api.newsroom.source(source_id, reader), api.newsroom, api.newsroom.channel_of()
        )
        items = api.newsroom.items(source_id, reader)
    except NotFound:
        raise HTTPException(404, "no such source") from None
    return SourceDetail(**summary.model_dump(), items=Items.model_validate(items))


@router.patch(
    "/sources/{source_id}",
    response_model=SourceOut,
    responses={
        400: _error(
            "a field out of its bounds, a tag outside the alphabet, over"
            f" {MAX_TAGS} tags in all, or an assignee who is not a current journalist"
        ),
        **UNAUTHORIZED,
        **NO_SOURCE,
        **too_large(MAX_PATCH_BODY),
        **WRITES,
    },
    max_body_size=MAX_PATCH_BODY,
)
def patch_source(source_id: str, body: TriagePatch, api: Api, me: Journalist) -> SourceOut:
    _source(api, source_id, me)
    fields = body.model_fields_set
    try:
        api.newsroom.update_triage(
            source_id,
            seen=body.seen,
            starred=body.starred,
            tags=body.tags,
            add_tags=body.add_tags,
            remove_tags=body.remove_tags,
            assignee=body.assignee,
            clear_assignee="assignee" in fields and body.assignee is None,
        )
        if body.keep_days is not None:
            api.newsroom.keep(source_id, body.keep_days, api.clock.today())
        if body.extended_feedback is not None:
            api.newsroom.set_extended_feedback(source_id, body.extended_feedback)
    except Invalid as exc:
        raise HTTPException(400, str(exc)) from None
    except NotFound:
        raise HTTPException(404, "no such source") from None
    return source_out(_source(api, source_id, me), api.newsroom, api.newsroom.channel_of())


@functools.cache
def _catalogue(lang: str) -> Callable[[str], str]:
    """A page language's translations (the built-in acknowledgement's), read once."""
    return load_translations(lang).gettext


@router.get("/channel", response_model=ChannelOut, responses={**UNAUTHORIZED, **READS})
def channel(api: Api, me: Journalist) -> ChannelOut:
    templates = {lang: ack_template(api.db, lang, _catalogue(lang)) for lang in LANGUAGES}
    desks = api.newsroom.channels.by_desk()
    reader = _reader(api, me)  # another desk's settings are not this journalist's business
    return ChannelOut(
        **_settings_out(api.newsroom.channel).model_dump(),
        today=api.clock.today(),
        default_language=api.default_language,
        ack_templates={lang: text for lang, text in templates.items() if text},
        desks={
            name: _settings_out(settings) for name, settings in desks.items() if reader.sees(name)
        },
    )


def _settings_out(settings: ChannelSettings) -> ChannelSettingsOut:
    return ChannelSettingsOut(
        official=settings.official,
        acknowledge_days=settings.acknowledge_days,
        feedback_months=settings.feedback_months,
        feedback_months_extended=settings.feedback_months_extended,
        retention_days=settings.retention_days,
    )


@router.get(
    "/sources/{source_id}/acknowledgement",
    response_model=Acknowledgement,
    responses={
        **UNAUTHORIZED,
        404: _error("no such source, or `lang` is not a language of the source pages"),
        **READS,
    },
)
def acknowledgement(
    source_id: str,
    api: Api,
    me: Journalist,
    lang: Annotated[
        str | SkipJsonSchema[None],
        Query(description="a language of the source pages; the instance's default otherwise"),
    ] = None,
) -> Acknowledgement:
    source = _source(api, source_id, me)
    language = lang or api.default_language
    if language not in LANGUAGES:
        raise HTTPException(404, f"no such language: one of {', '.join(LANGUAGES)}")
    text = ack_template(api.db, language, _catalogue(language), source.desk)
    return Acknowledgement(language=language, text=text)


async def _read_envelope(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    size = decimal(declared)
    if declared is not None and size is None:
        raise HTTPException(400, "Content-Length is not a number")
    if size is not None and size > MAX_ITEM_BYTES:
        raise HTTPException(413, f"at most {MAX_ITEM_BYTES} bytes")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > MAX_ITEM_BYTES:
            raise HTTPException(413, f"at most {MAX_ITEM_BYTES} bytes")
    if not body.startswith(ENVELOPE_MAGIC):
        raise HTTPException(400, "the body must be a Lanterne envelope")
    return bytes(body)


# What _read_envelope takes: the server checks the magic and the size, and cannot read more.
_ENVELOPE_BODY = {
    "requestBody": {
        "required": True,
        "description": "one envelope (envelope/SPEC.md), encrypted on the journalist's machine",
        "content": {
            "application/octet-stream": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "pattern": "^" + ENVELOPE_MAGIC.decode("ascii"),
                    "minLength": len(ENVELOPE_MAGIC),
                    "maxLength": MAX_ITEM_BYTES,
                }
            }
        },
    }
}
_ENVELOPE_REFUSED: Responses = {
    400: _error("the body is not an envelope (it does not start with the envelope magic)"),
    **TOO_LARGE,
    **WRITES,
}


@router.post(
    "/sources/{source_id}/notes",
    response_model=Created,
    status_code=201,
    responses={
        201: {"links": _links("$response.body#/object_id", "get_object")},
        **_ENVELOPE_REFUSED,
        **UNAUTHORIZED,
        **NO_SOURCE,
    },
    openapi_extra=_ENVELOPE_BODY,
)
async def add_note(source_id: str, request: Request, api: Api, me: Journalist) -> Created:
    return await _add_item(ItemKind.NOTE, source_id, request, api, me)


@router.post(
    "/sources/{source_id}/replies",
    response_model=Created,
    status_code=201,
    responses={
        201: {"links": _links("$response.body#/object_id", "get_object")},
        **_ENVELOPE_REFUSED,
        **UNAUTHORIZED,
        **NO_SOURCE,
        409: _error("the source deleted their account: nothing can reach them"),
    },
    openapi_extra=_ENVELOPE_BODY,
)
async def add_reply(
    source_id: str,
    request: Request,
    api: Api,
    me: Journalist,
    purpose: Annotated[
        ReplyPurpose | SkipJsonSchema[None],
        Query(
            description="`acknowledgement` or `feedback`: the reply is also that, and its day"
            " is recorded as the source's first acknowledgement or feedback"
            " (docs/OFFICIAL_CHANNEL.md)"
        ),
    ] = None,
) -> Created:
    return await _add_item(ItemKind.REPLY, source_id, request, api, me, purpose)


async def _add_item(
    kind: ItemKind,
    source_id: str,
    request: Request,
    api: ApiServices,
    me: JournalistRow,
    purpose: ReplyPurpose | None = None,
) -> Created:
    summary = _source(api, source_id, me)
    if kind is ItemKind.REPLY and summary.account_deleted:
        raise HTTPException(409, REPLY_TO_DELETED)  # before reading the body
    body = await _read_envelope(request)
    try:
        created = await anyio.to_thread.run_sync(
            api.newsroom.add_item, kind, source_id, body, me.id, api.clock.today(), purpose
        )
    except NotFound:
        raise HTTPException(404, "no such source") from None
    except SourceGone:
        raise HTTPException(409, REPLY_TO_DELETED) from None
    return Created(**created)


REPLY_TO_DELETED = (
    "the source deleted their account: nothing can reach them any more (their reply key is"
    " destroyed); what they sent stays listed until a journalist deletes it"
)


@router.delete(
    "/sources/{source_id}", status_code=204, responses={**UNAUTHORIZED, **NO_SOURCE, **WRITES}
)
def delete_source(source_id: str, api: Api, me: Journalist) -> Response:
    _source(api, source_id, me)
    try:
        api.newsroom.lifecycle.delete_by_journalist(source_id)
    except SourceNotFound:
        raise HTTPException(404, "no such source") from None
    return Response(status_code=204)


@router.delete(
    "/submissions/{submission_id}",
    status_code=204,
    responses={**UNAUTHORIZED, 404: _error("no such submission"), **WRITES},
)
def delete_submission(submission_id: str, api: Api, me: Journalist) -> Response:
    try:
        api.newsroom.submission_source(submission_id, _reader(api, me))
    except NotFound:
        raise HTTPException(404, "no such submission") from None
    try:
        api.newsroom.lifecycle.delete_submission(submission_id)
    except SourceNotFound:
        raise HTTPException(404, "no such submission") from None
    return Response(status_code=204)


@router.get(
    "/objects/{object_id}",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the envelope's bytes",
            "content": {"application/octet-stream": {"schema": _BYTES}},
            "headers": {"Content-Length": _SIZE_HEADER, "Accept-Ranges": _BYTES_UNIT},
        },
        206: {
            "description": "the envelope's bytes from N on (`Range: bytes=N-`)",
            "content": {"application/octet-stream": {"schema": _BYTES}},
            "headers": {
                "Content-Length": _SIZE_HEADER,
                "Accept-Ranges": _BYTES_UNIT,
                "Content-Range": {
                    "required": True,
                    "schema": {"type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$"},
                },
            },
        },
        **UNAUTHORIZED,
        404: _error("no such object"),
        416: _error("not a `bytes=N-` range, or N is not before the end"),
        **READS,
    },
)
def get_object(
    object_id: str,
    api: Api,
    me: Journalist,
    range: Annotated[
        str | SkipJsonSchema[None],
        # Not a pattern: another value is no malformed request (400) but a range
        # the server does not serve (416, RFC 9110 §15.5.17).
        Header(
            description="`bytes=N-` (N in 1 to 20 ASCII digits) resumes a download; any"
            " other range is a 416"
        ),
    ] = None,
) -> StreamingResponse:
    size = api.newsroom.object_size(object_id, _reader(api, me))
    if size is None:
        raise HTTPException(404, "no such object")
    start = 0
    if range is not None:
        asked = byte_range_start(range)
        if asked is None:
            raise HTTPException(416, "only 'bytes=N-' ranges are supported")
        start = asked
        if start >= size:
            raise HTTPException(416, "range starts past the end")

    def chunks() -> Iterator[bytes]:
        with api.newsroom.store.open(object_id, start) as f:  # no access time (days only)
            while data := f.read(READ_SIZE):
                yield data

    headers = {"Content-Length": str(size - start), "Accept-Ranges": "bytes"}
    if range is not None:
        headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
    return StreamingResponse(
        chunks(),
        status_code=206 if range is not None else 200,
        media_type="application/octet-stream",
        headers=headers,
    )


# --- Moving a source to another desk (docs/DESKS.md, "Moving a source") -----------

DeskName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]


class Staged(BaseModel):
    object_id: Id
    size: Size


class Replacement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    old: Id
    new: Id


class MoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    desk: DeskName
    objects: Annotated[list[Replacement], Field(max_length=100_000)]


@router.post(
    "/sources/{source_id}/objects/{object_id}/replacement",
    response_model=Staged,
    status_code=201,
    responses={
        400: _error("the body is not an envelope"),
        413: _error("the body is larger than any re-encryption of the object can be"),
        **UNAUTHORIZED,
        404: _error("no such object of this source"),
        **WRITES,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "the object re-encrypted on the journalist's machine to the"
            " recipients of the desk it moves to (envelope/SPEC.md §11.1)",
            "content": {
                "application/octet-stream": {
                    "schema": {
                        "type": "string",
                        "format": "binary",
                        "pattern": "^" + ENVELOPE_MAGIC.decode("ascii"),
                        "minLength": len(ENVELOPE_MAGIC),
                    }
                }
            },
        }
    },
)
async def stage_replacement(
    source_id: str, object_id: str, request: Request, api: Api, me: Journalist
) -> Staged:
    """Upload the envelope that replaces one object of the source in a move. It
    is listed nowhere until ``POST /sources/{id}/move`` names it."""
    try:
        limit = api.newsroom.replacement_limit(source_id, object_id, _reader(api, me))
    except NotFound:
        raise HTTPException(404, "no such object of this source") from None
    declared = decimal(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise HTTPException(413, f"at most {limit} bytes")
    pending = api.newsroom.new_object()
    try:
        head = b""
        async for piece in request.stream():
            if len(head) < len(ENVELOPE_MAGIC):
                head += piece[: len(ENVELOPE_MAGIC) - len(head)]
                if not ENVELOPE_MAGIC.startswith(head):
                    raise HTTPException(400, "the body must be a Lanterne envelope")
            if pending.size + len(piece) > limit:
                raise HTTPException(413, f"at most {limit} bytes")
            await anyio.to_thread.run_sync(pending.write, piece)
        if head != ENVELOPE_MAGIC:
            raise HTTPException(400, "the body must be a Lanterne envelope")
        await anyio.to_thread.run_sync(pending.commit)
    except BaseException:
        pending.abort()
        raise
    return Staged(object_id=pending.id, size=pending.size)


@router.post(
    "/sources/{source_id}/move",
    response_model=SourceOut,
    responses={
        400: _error("no such desk, the source is in it already, or a replacement is missing"),
        403: _error("you are not in the desk the source would move to"),
        **UNAUTHORIZED,
        **NO_SOURCE,
        409: _error("the source's objects changed meanwhile: pull, then move again"),
        **too_large(MAX_MOVE_BODY),
        **WRITES,
    },
    max_body_size=MAX_MOVE_BODY,
)
def move_source(source_id: str, body: MoveRequest, api: Api, me: Journalist) -> SourceOut:
    """Move the source to another desk: each of its objects (submissions', notes',
    replies') is replaced by the envelope uploaded for it, re-encrypted on the
    mover's machine; the old envelopes are deleted. The mover must be in both desks."""
    replacements = {r.old: r.new for r in body.objects}
    if len(replacements) != len(body.objects):
        raise HTTPException(400, "objects: an object is named twice")
    try:
        api.newsroom.move(
            source_id,
            body.desk,
            replacements,
            _reader(api, me),
            [d.name for d in api.db.desks()],
        )
    except NotFound:
        raise HTTPException(404, "no such source") from None
    except NotMember as exc:
        raise HTTPException(403, str(exc)) from None
    except Invalid as exc:
        raise HTTPException(400, str(exc)) from None
    except MoveConflict:
        raise HTTPException(
            409, "the source's objects changed meanwhile: pull, then move again"
        ) from None
    return source_out(_source(api, source_id, me), api.newsroom, api.newsroom.channel_of())
