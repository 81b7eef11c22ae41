"""Lossless JPEG metadata removal: rewrite the marker segments, keep the scans.

Re-encoding a JPEG would change its pixels, so instead the file is walked
segment by segment (ITU T.81 annex B): every APPn and COM segment is dropped
except the two that affect decoding (JFIF without its thumbnail, Adobe APP14
colour transform), an allowed colour profile and, if the picture is rotated,
a fresh EXIF block holding only the orientation. Anything after the end-of-image
marker (extra MPF images, a polyglot tail) is dropped too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from journalist_cli.cleaning.errors import MalformedFile

SOI = b"\xff\xd8"
EOI = 0xD9
SOS = 0xDA
APP0 = 0xE0
APP1 = 0xE1
APP2 = 0xE2
APP13 = 0xED
APP14 = 0xEE
COM = 0xFE
# Markers that stand alone, without a length field.
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
ICC_TAG = b"ICC_PROFILE\x00"


@dataclass
class Segment:
    marker: int
    payload: bytes


@dataclass
class ParsedJpeg:
    """The segments of a JPEG, with entropy-coded data kept as opaque chunks."""

    parts: list[Segment | bytes] = field(default_factory=list)
    trailing: int = 0  # bytes after the end-of-image marker

    def segments(self) -> list[Segment]:
        return [p for p in self.parts if isinstance(p, Segment)]

    def icc_profile(self) -> bytes:
        chunks = [
            s.payload[14:]
            for s in self.segments()
            if s.marker == APP2 and s.payload.startswith(ICC_TAG)
        ]
        return b"".join(chunks)


def parse(data: bytes) -> ParsedJpeg:
    """Split a JPEG into segments; raise MalformedFile if the structure is broken."""
    if not data.startswith(SOI):
        raise MalformedFile("not a JPEG: the start-of-image marker is missing")
    out = ParsedJpeg()
    pos = 2
    size = len(data)
    while True:
        if pos + 2 > size or data[pos] != 0xFF:
            raise MalformedFile(f"JPEG structure broken at byte {pos}")
        while pos < size and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= size:
            raise MalformedFile("JPEG ends inside a marker")
        marker = data[pos]
        pos += 1
        if marker == EOI:
            out.trailing = size - pos
            return out
        if marker in _STANDALONE:
            out.parts.append(Segment(marker, b""))
            continue
        if pos + 2 > size:
            raise MalformedFile("JPEG ends inside a segment header")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2 or pos + length > size:
            raise MalformedFile(f"JPEG segment {marker:#04x} has an impossible length")
        out.parts.append(Segment(marker, data[pos + 2 : pos + length]))
        pos += length
        if marker == SOS:
            pos = _skip_entropy(data, pos, out)


def _skip_entropy(data: bytes, pos: int, out: ParsedJpeg) -> int:
    """Copy entropy-coded bytes up to the next real marker and return its offset."""
    start = pos
    size = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= size:
            raise MalformedFile("JPEG scan data runs to the end of the file without EOI")
        nxt = data[pos + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
            # Stuffed byte, restart marker or fill byte: still scan data.
            pos += 2 if nxt != 0xFF else 1
            continue
        out.parts.append(data[start:pos])
        return pos


def _jfif_without_thumbnail(payload: bytes) -> bytes | None:
    if not payload.startswith(b"JFIF\x00") or len(payload) < 14:
        return None  # JFXX extension or junk: it only carries thumbnails
    return payload[:12] + b"\x00\x00"


def _icc_segments(profile: bytes) -> list[Segment]:
    step = 65519 - len(ICC_TAG) - 2
    chunks = [profile[i : i + step] for i in range(0, len(profile), step)]
    return [
        Segment(APP2, ICC_TAG + bytes([n + 1, len(chunks)]) + chunk)
        for n, chunk in enumerate(chunks)
    ]


def rebuild(parsed: ParsedJpeg, *, exif: bytes | None, icc: bytes | None) -> bytes:
    """Serialise the parsed JPEG keeping only the segments decoding needs."""
    head: list[Segment] = []
    body: list[Segment | bytes] = []
    for part in parsed.parts:
        if isinstance(part, bytes):
            body.append(part)
            continue
        if part.marker == APP0:
            jfif = _jfif_without_thumbnail(part.payload)
            if jfif is not None and not head:
                head.append(Segment(APP0, jfif))
            continue
        if part.marker == APP14 and part.payload.startswith(b"Adobe"):
            body.append(Segment(APP14, part.payload[:12]))
            continue
        if APP0 <= part.marker <= 0xEF or part.marker == COM:
            continue
        body.append(part)
    if exif is not None:
        head.append(Segment(APP1, exif))
    if icc:
        head.extend(_icc_segments(icc))
    chunks = [SOI]
    for part in [*head, *body]:
        if isinstance(part, bytes):
            chunks.append(part)
        elif part.marker in _STANDALONE:
            chunks.append(bytes([0xFF, part.marker]))
        else:
            chunks.append(bytes([0xFF, part.marker]) + struct.pack(">H", len(part.payload) + 2))
            chunks.append(part.payload)
    chunks.append(b"\xff\xd9")
    return b"".join(chunks)
