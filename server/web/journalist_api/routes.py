"""The journalist API's routes (docs/JOURNALIST_API.md, "Resources")."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

import envelope
from envelope.keys import b64encode
from server.domain.clock import Clock
from server.domain.newsroom import Invalid, Newsroom, NotFound, SourceSummary
from server.domain.source_lifecycle import ItemKind, SourceGone, SourceNotFound
from server.store.protocols import JournalistRow, JournalistStore
from server.web.headers import byte_range_start, decimal
from server.web.journalist_api.auth import (
    CHALLENGE_SECONDS,
    JOURNALIST_ONION_META,
    TOKEN_SECONDS,
    Authenticator,
    AuthFailed,
    Refusal,
    ServedHosts,
)

MAX_ITEM_BYTES = 1 << 20  # one note or reply envelope
READ_SIZE = 1 << 20
ENVELOPE_MAGIC = b"LANTERNE"

router = APIRouter()


@dataclass
class ApiServices:
    db: JournalistStore
    newsroom: Newsroom
    auth: Authenticator
    clock: Clock
    hosts: ServedHosts


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


def current_journalist(
    api: Api, authorization: Annotated[str | None, Header()] = None
) -> JournalistRow:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "a bearer token is required")
    try:
        token = b64decode(authorization[7:].strip())
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


# --- Models (they make the OpenAPI schema) ------------------------------------


class Challenge(BaseModel):
    challenge: str
    expires_in: int


class TokenRequest(BaseModel):
    journalist: str = Field(min_length=1, max_length=64)
    challenge: str = Field(max_length=64)
    signature: str = Field(max_length=128)


class Token(BaseModel):
    token: str
    expires_in: int
    name: str
    role: str


class JournalistOut(BaseModel):
    name: str
    role: str
    encryption_key: str
    signing_key: str
    fingerprint: str


class SourceOut(BaseModel):
    id: str
    # null once the source deleted their account (their reply key is destroyed)
    reply_key: str | None
    account_deleted: bool
    last_activity: str
    submissions: int
    size: int
    seen: bool
    starred: bool
    tags: list[str]
    assignee: str | None
    notes: int
    replies: int


class ObjectOut(BaseModel):
    id: str
    kind: Literal["manifest", "message", "file"]
    size: int


class SubmissionOut(BaseModel):
    id: str
    received_on: str
    objects: list[ObjectOut]


class ItemOut(BaseModel):
    id: str
    object_id: str
    size: int
    journalist: str | None


class ReplyOut(ItemOut):
    sent_on: str


class NoteOut(ItemOut):
    written_on: str


class Items(BaseModel):
    submissions: list[SubmissionOut]
    replies: list[ReplyOut]
    notes: list[NoteOut]


class SourceDetail(SourceOut):
    items: Items


class TriagePatch(BaseModel):
    seen: bool | None = None
    starred: bool | None = None
    tags: list[str] | None = Field(default=None, max_length=16)
    add_tags: list[str] | None = Field(default=None, max_length=16)
    remove_tags: list[str] | None = Field(default=None, max_length=16)
    assignee: str | None = Field(default=None, max_length=64)


class Created(BaseModel):
    id: str
    object_id: str


def source_out(s: SourceSummary) -> SourceOut:
    return SourceOut(
        id=s.id,
        reply_key=b64encode(s.reply_key) if s.reply_key is not None else None,
        account_deleted=s.account_deleted,
        last_activity=s.last_activity,
        submissions=s.submissions,
        size=s.size,
        seen=s.seen,
        starred=s.starred,
        tags=s.tags,
        assignee=s.assignee,
        notes=s.notes,
        replies=s.replies,
    )


def _source(api: ApiServices, source_id: str) -> SourceSummary:
    try:
        return api.newsroom.source(source_id)
    except NotFound:
        raise HTTPException(404, "no such source") from None


# --- Authentication -------------------------------------------------------------


@router.post("/auth/challenge", response_model=Challenge)
def challenge(api: Api) -> Challenge:
    return Challenge(challenge=b64encode(api.auth.new_challenge()), expires_in=CHALLENGE_SECONDS)


@router.post("/auth/token", response_model=Token, responses={401: {}})
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
    return Token(token=b64encode(value), expires_in=TOKEN_SECONDS, name=row.name, role=row.role)


# --- Resources ------------------------------------------------------------------


@router.get("/journalists", response_model=list[JournalistOut])
def journalists(api: Api, me: Journalist) -> list[JournalistOut]:
    return [
        JournalistOut(
            name=j.name,
            role=j.role,
            encryption_key=b64encode(j.encryption_key),
            signing_key=b64encode(j.signing_key),
            fingerprint=envelope.fingerprint(j.encryption_key, j.signing_key),
        )
        for j in api.db.journalists()
    ]


@router.get("/sources", response_model=list[SourceOut])
def sources(api: Api, me: Journalist) -> list[SourceOut]:
    return [source_out(s) for s in api.newsroom.sources()]


@router.get("/sources/{source_id}", response_model=SourceDetail, responses={404: {}})
def source(source_id: str, api: Api, me: Journalist) -> SourceDetail:
    summary = source_out(_source(api, source_id))
    return SourceDetail(
        **summary.model_dump(), items=Items.model_validate(api.newsroom.items(source_id))
    )


@router.patch("/sources/{source_id}", response_model=SourceOut, responses={404: {}})
def patch_source(source_id: str, body: TriagePatch, api: Api, me: Journalist) -> SourceOut:
    _source(api, source_id)
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
    except Invalid as exc:
        raise HTTPException(400, str(exc)) from None
    return source_out(_source(api, source_id))


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


_ENVELOPE_BODY = {
    "requestBody": {
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    }
}


@router.post(
    "/sources/{source_id}/notes",
    response_model=Created,
    status_code=201,
    responses={404: {}, 413: {}},
    openapi_extra=_ENVELOPE_BODY,
)
async def add_note(source_id: str, request: Request, api: Api, me: Journalist) -> Created:
    return await _add_item(ItemKind.NOTE, source_id, request, api, me)


@router.post(
    "/sources/{source_id}/replies",
    response_model=Created,
    status_code=201,
    responses={404: {}, 409: {}, 413: {}},
    openapi_extra=_ENVELOPE_BODY,
)
async def add_reply(source_id: str, request: Request, api: Api, me: Journalist) -> Created:
    return await _add_item(ItemKind.REPLY, source_id, request, api, me)


async def _add_item(
    kind: ItemKind, source_id: str, request: Request, api: ApiServices, me: JournalistRow
) -> Created:
    summary = _source(api, source_id)
    if kind is ItemKind.REPLY and summary.account_deleted:
        raise HTTPException(409, REPLY_TO_DELETED)  # before reading the body
    body = await _read_envelope(request)
    try:
        created = await anyio.to_thread.run_sync(
            api.newsroom.add_item, kind, source_id, body, me.id, api.clock.today()
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


@router.delete("/sources/{source_id}", status_code=204, responses={404: {}})
def delete_source(source_id: str, api: Api, me: Journalist) -> Response:
    try:
        api.newsroom.lifecycle.delete_by_journalist(source_id)
    except SourceNotFound:
        raise HTTPException(404, "no such source") from None
    return Response(status_code=204)


@router.delete("/submissions/{submission_id}", status_code=204, responses={404: {}})
def delete_submission(submission_id: str, api: Api, me: Journalist) -> Response:
    try:
        api.newsroom.lifecycle.delete_submission(submission_id)
    except SourceNotFound:
        raise HTTPException(404, "no such submission") from None
    return Response(status_code=204)


@router.get(
    "/objects/{object_id}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 206: {}, 404: {}, 416: {}},
)
def get_object(
    object_id: str, api: Api, me: Journalist, range: Annotated[str | None, Header()] = None
) -> StreamingResponse:
    size = api.newsroom.object_size(object_id)
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
