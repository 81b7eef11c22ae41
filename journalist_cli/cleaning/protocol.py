"""The messages between `lanterne` and the keyless zygote: length-prefixed JSON.

Each frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON
holding one object. The reader refuses a frame longer than its cap before it
reads the body, so a broken or hostile peer cannot make the other side buffer
without bound. Two kinds of frame exist: one batch request (`lanterne` to the
zygote) and one result per file (zygote to `lanterne`); both sides check
every field they use (see `runner` and `worker`).
"""

from __future__ import annotations

import json
import struct
from typing import Any, BinaryIO

_HEADER = struct.Struct(">I")
# The batch request: at most `runner.MAX_BATCH_FILES` pairs of paths.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# Around one file's report (capped by Limits.worker_report_bytes).
RESULT_OVERHEAD = 4096


class ProtocolError(Exception):
    """The other side sent something that is not a valid frame."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame holding `message`."""
    body = json.dumps(message, ensure_ascii=False).encode("utf-8")
    return _HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object in a frame's body; anything else is a ProtocolError."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"a frame that is not JSON ({exc})") from exc
    if not isinstance(message, dict):
        raise ProtocolError("a frame that is not a JSON object")
    return message


def read_frame(stream: BinaryIO, cap: int) -> dict[str, Any] | None:
    """The next frame from a blocking stream, or None at a clean end of stream."""
    header = stream.read(_HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise ProtocolError("the stream ended inside a frame header")
    (size,) = _HEADER.unpack(header)
    if size > cap:
        raise ProtocolError(f"a frame of {size} bytes (limit {cap})")
    body = stream.read(size)
    if len(body) < size:
        raise ProtocolError("the stream ended inside a frame")
    return decode(body)


class FrameBuffer:
    """Frames out of bytes that arrive in pieces (from a non-blocking pipe)."""

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._data = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add bytes; return the frames now complete, in order."""
        self._data += data
        frames = []
        while len(self._data) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._data)
            if size > self._cap:
                raise ProtocolError(f"a frame of {size} bytes (limit {self._cap})")
            end = _HEADER.size + size
            if len(self._data) < end:
                break
            frames.append(decode(bytes(self._data[_HEADER.size : end])))
            del self._data[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes received that do not make a whole frame yet."""
        return len(self._data)
