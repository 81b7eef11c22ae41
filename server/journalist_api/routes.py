"""The journalist API's routes (docs/JOURNALIST_API.md, "Resources")."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

import envelope
from envelope.keys import b64encode
from server.db import Database, JournalistRow
from server.headers import byte_range_start, decimal
from server.journalist_api.auth import (
    CHALLENGE_BYTES,
    CHALLENGE_SECONDS,
    TOKEN_SECONDS,
    Authenticator,
    AuthFailed,
)
from server.journalist_api.newsroom import Invalid, Newsroom, NotFound, SourceSummary
from server.sources import Clock

MAX_ITEM_BYTES = 1 << 20  # one note or reply envelope
READ_SIZE = 1 << 20
ENVELOPE_MAGIC = b"LANTERNE"

router = APIRouter()


@dataclass
class ApiServices:
    db: Database
    newsroom: Newsroom
    auth: Authenticator
    clock: Clock


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


def current_journalist(
    api: Api, authorization: Annotated[str | None, Header()] = None
) -> JournalistRow:
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "a bearer token is required")
    try:
        session = api.auth.session(b64decode(authorization[7:].strip()))
    except (AuthFailed, HTTPException):
        raise HTTPException(401, "unknown or expired token") from None
    for row in api.db.journalists():
        if row.id == session.journalist_id:
            return row
    raise HTTPException(401, "this journalist was removed")


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
    reply_key: str
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
        reply_key=b64encode(s.reply_key),
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
    try:
        value = api.auth.new_challenge()
    except AuthFailed:
        raise HTTPException(401, "too many outstanding challenges") from None
    return Challenge(challenge=b64encode(value), expires_in=CHALLENGE_SECONDS)


@router.post("/auth/token", response_model=Token, responses={401: {}})
def token(body: TokenRequest, request: Request, api: Api) -> Token:
    refused = HTTPException(401, "authentication failed")
    row = next((j for j in api.db.journalists() if j.name == body.journalist), None)
    host = request.headers.get("host", "")
    challenge = b64decode(body.challenge)
    if row is None or len(challenge) != CHALLENGE_BYTES:
        raise refused
    try:
        value = api.auth.redeem(challenge, b64decode(body.signature), host, row.id, row.signing_key)
    except AuthFailed:
        raise refused from None
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
    _source(api, source_id)
    body = await _read_envelope(request)
    return Created(**api.newsroom.add_item("notes", source_id, body, me.id, api.clock.today()))


@router.post(
    "/sources/{source_id}/replies",
    response_model=Created,
    status_code=201,
    responses={404: {}, 413: {}},
    openapi_extra=_ENVELOPE_BODY,
)
async def add_reply(source_id: str, request: Request, api: Api, me: Journalist) -> Created:
    _source(api, source_id)
    body = await _read_envelope(request)
    return Created(**api.newsroom.add_item("replies", source_id, body, me.id, api.clock.today()))


@router.delete("/sources/{source_id}", status_code=204, responses={404: {}})
def delete_source(source_id: str, api: Api, me: Journalist) -> Response:
    try:
        api.newsroom.delete_source(source_id)
    except NotFound:
        raise HTTPException(404, "no such source") from None
    return Response(status_code=204)


@router.delete("/submissions/{submission_id}", status_code=204, responses={404: {}})
def delete_submission(submission_id: str, api: Api, me: Journalist) -> Response:
    try:
        api.newsroom.delete_submission(submission_id)
    except NotFound:
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
    try:
        path = api.newsroom.store.path(object_id)
    except ValueError:
        raise HTTPException(404, "no such object") from None
    if not api.newsroom.object_is_known(object_id) or not path.is_file():
        raise HTTPException(404, "no such object")
    size = path.stat().st_size
    start = 0
    if range is not None:
        asked = byte_range_start(range)
        if asked is None:
            raise HTTPException(416, "only 'bytes=N-' ranges are supported")
        start = asked
        if start >= size:
            raise HTTPException(416, "range starts past the end")

    def chunks() -> Iterator[bytes]:
        with api.newsroom.store.open(object_id) as f:  # no access time (file times are days)
            f.seek(start)
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
