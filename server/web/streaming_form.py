"""Multipart form parsing that encrypts on arrival (DESIGN §6, "JS off").

The request body is read from ``request.stream()`` and fed to python-multipart's
callback parser; every byte of the message and of each file goes straight into
an envelope ``Encryptor`` and out to a temporary object file. Nothing is
buffered beyond one envelope chunk per open part, and nothing is spooled:
Starlette's ``request.form()``/``UploadFile`` write parts over 1 MiB to an
unencrypted temporary file, which is exactly what this module exists to avoid.

Small text fields (the CSRF token, the honeypot, answers to the questions) are
kept in memory, bounded by ``Limits.max_field_bytes``; answers end up inside the
encrypted manifest, never on disk on their own.

Parsing runs in a worker thread, batch by batch, so that AES and fsync do not
stall the event loop for other sources.
"""

from __future__ import annotations

import enum
import hmac
import re
import time
import unicodedata
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import anyio
import anyio.to_thread
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

import envelope
from server.domain.submissions import ObjectBatch
from server.settings import Limits
from server.store.protocols import PendingObject

# The body goes to the parser thread in batches. A batch is held in memory while
# it fills, for every upload in flight: a slow upload (Tor) gets batches of one
# envelope chunk, so it holds little while it waits; a fast one, whose batches
# fill at once, gets batches up to 1 MiB, so it pays few thread hand-overs.
# (Fixed 1 MiB batches cost about 1 MiB per slow upload; fixed 64 KiB ones a
# third of the throughput on loopback; docs/BENCHMARKS.md.)
MIN_BATCH_BYTES = 1 << 16
MAX_BATCH_BYTES = 1 << 20
FAST_BATCH_SECONDS = 0.05  # a batch that filled this fast doubles the next one
MAX_FILENAME_CHARS = 255
CSRF_FIELD = "csrf_token"
HONEYPOT_FIELD = "website"
MESSAGE_FIELD = "message"
FILES_FIELD = "files"
QUESTION_PREFIX = "q_"
DESK_FIELD = "desk"  # before the message and files: it says whom they are encrypted to


class Reason(enum.Enum):
    """Why a form was refused; each has a status code and a page in both languages."""

    MALFORMED = "malformed"
    TRUNCATED = "truncated"
    UNKNOWN_FIELD = "unknown_field"
    TOO_MANY_PARTS = "too_many_parts"
    BAD_FILENAME = "bad_filename"
    BAD_TEXT = "bad_text"
    EMPTY = "empty"
    HONEYPOT = "honeypot"
    CSRF = "csrf"
    FIELD_TOO_LONG = "field_too_long"
    MESSAGE_TOO_LONG = "message_too_long"
    FILE_TOO_LARGE = "file_too_large"
    TOO_MANY_FILES = "too_many_files"
    BODY_TOO_LARGE = "body_too_large"
    UNSUPPORTED_TYPE = "unsupported_type"
    NO_ROOM = "no_room"
    NO_DESK = "no_desk"

    @property
    def status(self) -> int:
        return _STATUS.get(self, 400)


_STATUS = {
    Reason.CSRF: 403,
    Reason.FIELD_TOO_LONG: 413,
    Reason.MESSAGE_TOO_LONG: 413,
    Reason.FILE_TOO_LARGE: 413,
    Reason.TOO_MANY_FILES: 413,
    Reason.BODY_TOO_LARGE: 413,
    Reason.UNSUPPORTED_TYPE: 415,
    Reason.NO_ROOM: 507,
}


class FormRejected(Exception):
    """The request cannot be accepted; nothing it sent is kept."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(reason.name)
        self.reason = reason
        self.detail = detail  # safe to show: never a piece of the body


@dataclass
class ReceivedFile:
    object_id: str
    name: str
    content_type: str
    size: int  # plaintext bytes


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    message_object: str | None = None
    message_size: int = 0
    message_object_size: int = 0
    files: list[ReceivedFile] = field(default_factory=list)
    object_sizes: dict[str, int] = field(default_factory=dict)  # ciphertext bytes


def multipart_boundary(content_type: str | None) -> bytes:
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise FormRejected(Reason.UNSUPPORTED_TYPE)
    boundary = params.get(b"boundary")
    if not boundary or len(boundary) > 70:  # RFC 2046 §5.1.1
        raise FormRejected(Reason.MALFORMED)
    return boundary


def clean_filename(raw: str) -> str:
    """The file name as the source's browser sent it, or FormRejected.

    Browsers send only the base name. A name with a path, a NUL or another
    control character is not something a browser produces, so it is refused
    rather than silently changed. The name is only ever stored encrypted.
    """
    name = unicodedata.normalize("NFC", raw)
    if (
        not name
        or len(name) > MAX_FILENAME_CHARS
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name)
    ):
        raise FormRejected(Reason.BAD_FILENAME)
    return name


_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,127}")


def clean_content_type(raw: str) -> str:
    value = raw.split(";", 1)[0].strip().lower()
    return value if _MIME.fullmatch(value) else "application/octet-stream"


class _Sink:
    def write(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class _TextSink(_Sink):
    """A small field kept in memory, with a hard size limit."""

    def __init__(self, limit: int, reason: Reason) -> None:
        self.buf = bytearray()
        self.limit = limit
        self.reason = reason

    def write(self, data: bytes | memoryview) -> None:
        if len(self.buf) + len(data) > self.limit:
            raise FormRejected(self.reason)
        self.buf += data

    def text(self) -> str:
        try:
            value = self.buf.decode("utf-8")
        except UnicodeDecodeError:
            raise FormRejected(Reason.BAD_TEXT) from None
        if "\x00" in value:
            raise FormRejected(Reason.BAD_TEXT)
        return value


class _EncryptingSink(_Sink):
    """Plaintext in, envelope out: the object file is opened at the first byte."""

    def __init__(
        self,
        open_object: Callable[[], PendingObject],
        recipients: Sequence[envelope.Recipient],
        limit: int,
        reason: Reason,
        *,
        keep_empty: bool,
    ) -> None:
        self._open_object = open_object
        self._recipients = recipients
        self._limit = limit
        self._reason = reason
        self._keep_empty = keep_empty
        self._obj: PendingObject | None = None
        self._enc: envelope.Encryptor | None = None
        self.size = 0

    def _start(self) -> tuple[PendingObject, envelope.Encryptor]:
        if self._obj is None or self._enc is None:
            self._enc = envelope.Encryptor(self._recipients)
            self._obj = self._open_object()
            self._obj.write(self._enc.header)
        return self._obj, self._enc

    def write(self, data: bytes | memoryview) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self._limit:
            raise FormRejected(self._reason)
        obj, enc = self._start()
        for sealed in enc.update_views(data):
            obj.write(sealed)

    def finish(self) -> PendingObject | None:
        """Seal and commit; None for an empty part that need not be kept."""
        if self._obj is None and not self._keep_empty:
            return None
        obj, enc = self._start()
        for sealed in enc.finish():
            obj.write(sealed)
        obj.commit()
        return obj


class EncryptingFormParser:
    """Callbacks for python-multipart that route each part to a sink.

    ``check_csrf`` must accept the first part, which must be the CSRF token, so
    a forged request is refused before a single byte of it is written.

    ``recipients`` is the list to encrypt to, or a function of the text fields
    received so far that gives it (or raises ``FormRejected``), called once, at
    the first message or file part: the desk field comes before them.
    """

    def __init__(
        self,
        boundary: bytes,
        *,
        recipients: Sequence[envelope.Recipient]
        | Callable[[Mapping[str, str]], Sequence[envelope.Recipient]],
        batch: ObjectBatch,
        limits: Limits,
        question_ids: Sequence[str],
        check_csrf: Callable[[str], bool],
    ) -> None:
        if not callable(recipients) and not recipients:
            raise ValueError("no journalist key to encrypt to")
        self.result = ReceivedForm()
        self._recipients_for = recipients
        self._recipients: Sequence[envelope.Recipient] | None = (
            None if callable(recipients) else recipients
        )
        self._batch = batch
        self._limits = limits
        self._questions = {QUESTION_PREFIX + q for q in question_ids}
        self._check_csrf = check_csrf
        self._parts = 0
        self._ended = False
        self._received = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._sink: _Sink | None = None
        self._part_name = ""
        self._filename: str | None = None
        self._content_type = ""
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
        )

    # Driving the parser

    def feed(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self._limits.max_body_bytes:
            raise FormRejected(Reason.BODY_TOO_LARGE)
        if self._ended:
            # Browsers send nothing after the closing boundary but a CRLF;
            # python-multipart ignores the epilogue, and so do we.
            return
        try:
            self._parser.write(data)
        except MultipartParseError:
            # The parser's message quotes body bytes: it is never shown or logged.
            raise FormRejected(Reason.MALFORMED) from None

    def close(self) -> ReceivedForm:
        if not self._ended:
            raise FormRejected(Reason.TRUNCATED)
        return self.result

    def abort(self) -> None:
        if self._sink is not None:
            self._sink.abort()
            self._sink = None

    # python-multipart callbacks

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > self._limits.max_parts:
            raise FormRejected(Reason.TOO_MANY_PARTS)
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition"))
        if disposition != b"form-data" or b"name" not in params:
            raise FormRejected(Reason.MALFORMED)
        try:
            name = params[b"name"].decode("utf-8")
            filename = params[b"filename"].decode("utf-8") if b"filename" in params else None
            ctype = self._headers.get(b"content-type", b"").decode("latin-1")
        except UnicodeDecodeError:
            raise FormRejected(Reason.BAD_FILENAME) from None
        self._part_name, self._filename, self._content_type = name, filename, ctype
        if self._parts == 1 and name != CSRF_FIELD:
            raise FormRejected(Reason.CSRF)
        self._sink = self._sink_for(name, filename)

    def _sink_for(self, name: str, filename: str | None) -> _Sink:
        limits = self._limits
        if name == FILES_FIELD and filename is not None:
            if filename == "":
                # An empty file input: browsers send an empty part with no name.
                return _TextSink(0, Reason.BAD_FILENAME)
            self._filename = clean_filename(filename)
            if len(self.result.files) >= limits.max_files:
                raise FormRejected(Reason.TOO_MANY_FILES)
            return self._encrypting(limits.max_file_bytes, Reason.FILE_TOO_LARGE, keep_empty=True)
        if name == FILES_FIELD:
            # An empty file input sent without a filename parameter (some clients).
            return _TextSink(0, Reason.UNKNOWN_FIELD)
        if filename is not None:
            raise FormRejected(Reason.UNKNOWN_FIELD)
        if name == MESSAGE_FIELD and self.result.message_object is None:
            return self._encrypting(
                limits.max_message_bytes, Reason.MESSAGE_TOO_LONG, keep_empty=False
            )
        if name in (CSRF_FIELD, HONEYPOT_FIELD, DESK_FIELD) or name in self._questions:
            if name in self.result.fields:
                raise FormRejected(Reason.MALFORMED)
            return _TextSink(limits.max_field_bytes, Reason.FIELD_TOO_LONG)
        raise FormRejected(Reason.UNKNOWN_FIELD)

    def recipients(self) -> Sequence[envelope.Recipient]:
        """Whom the parts are encrypted to, decided at the first that needs it."""
        if self._recipients is None:
            assert callable(self._recipients_for)
            self._recipients = self._recipients_for(dict(self.result.fields))
            if not self._recipients:
                raise ValueError("no journalist key to encrypt to")
        return self._recipients

    def _encrypting(self, limit: int, reason: Reason, *, keep_empty: bool) -> _EncryptingSink:
        return _EncryptingSink(
            self._batch.new_object, self.recipients(), limit, reason, keep_empty=keep_empty
        )

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        assert self._sink is not None
        # A view, not a slice: file data is copied only by the cipher.
        self._sink.write(memoryview(data)[start:end])

    def _on_part_end(self) -> None:
        sink, self._sink = self._sink, None
        if isinstance(sink, _TextSink):
            if self._part_name == FILES_FIELD:  # the empty file input
                return
            value = sink.text()
            if self._part_name == CSRF_FIELD and not self._check_csrf(value):
                raise FormRejected(Reason.CSRF)
            if self._part_name == HONEYPOT_FIELD and value:
                raise FormRejected(Reason.HONEYPOT)
            self.result.fields[self._part_name] = value
        elif isinstance(sink, _EncryptingSink):
            obj = sink.finish()
            if obj is None:
                return
            self._batch.committed(obj)
            self.result.object_sizes[obj.id] = obj.size
            if self._part_name == MESSAGE_FIELD:
                self.result.message_object = obj.id
                self.result.message_size = sink.size
            else:
                assert self._filename is not None
                self.result.files.append(
                    ReceivedFile(
                        obj.id, self._filename, clean_content_type(self._content_type), sink.size
                    )
                )

    def _on_end(self) -> None:
        self._ended = True


async def batched(
    stream: AsyncIterator[bytes],
    smallest: int = MIN_BATCH_BYTES,
    largest: int = MAX_BATCH_BYTES,
) -> AsyncIterator[bytes]:
    """Regroup the server's reads into batches: ``smallest`` bytes, doubling up
    to ``largest`` while each fills within FAST_BATCH_SECONDS."""
    pending: list[bytes] = []
    held = 0
    size = smallest
    started = 0.0
    async for chunk in stream:
        if not pending:
            started = time.monotonic()
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            fast = time.monotonic() - started < FAST_BATCH_SECONDS
            yield pending[0] if len(pending) == 1 else b"".join(pending)
            pending, held = [], 0
            size = min(2 * size, largest) if fast else smallest
    if pending:
        yield b"".join(pending)


async def parse_streaming(
    stream: AsyncIterator[bytes], parser: EncryptingFormParser
) -> ReceivedForm:
    """Feed the whole body to ``parser`` off the event loop; aborts the open part
    on error, off the loop too (on S3 that is a request to the bucket), and
    shielded so that a client who went away does not cut it short."""
    try:
        async for data in batched(stream):
            await anyio.to_thread.run_sync(parser.feed, data)
        return parser.close()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(parser.abort)
        raise


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


async def read_small_form(
    stream: AsyncIterator[bytes], content_type: str | None, max_bytes: int = 4096
) -> dict[str, str]:
    """An urlencoded form of a few short fields (login, logout, delete), in memory."""
    ctype, _ = parse_options_header(content_type)
    if ctype != b"application/x-www-form-urlencoded":
        raise FormRejected(Reason.UNSUPPORTED_TYPE)
    body = bytearray()
    async for chunk in stream:
        body += chunk
        if len(body) > max_bytes:
            raise FormRejected(Reason.FIELD_TOO_LONG)
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=8,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise FormRejected(Reason.MALFORMED) from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields or "\x00" in value:
            raise FormRejected(Reason.MALFORMED)
        fields[key] = value
    return fields
