"""The envelope header: building, parsing and opening it (SPEC §3, §4)."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from envelope import _primitives as prim
from envelope.errors import AuthenticationError, FormatError, NoMatchingKeyError
from envelope.recipients import (
    STANZA_BODY_SIZE,
    STANZA_X25519_HPKE,
    STANZA_XWING_HPKE,
    Identity,
    Recipient,
    Stanza,
)

__all__ = [
    "STANZA_X25519_HPKE",
    "STANZA_XWING_HPKE",
    "ParsedHeader",
    "Stanza",
    "assemble_header",
    "encode_prefix",
    "header_key",
    "open_header",
    "parse_header",
    "payload_key",
    "seal_header",
]

MAGIC = b"LANTERNE"
VERSION = 1
SALT_SIZE = 16
PREFIX_SIZE = len(MAGIC) + 1 + SALT_SIZE + 2  # 27
STANZA_HEAD_SIZE = 4  # type (u16) + body length (u16)
MAC_SIZE = 32

MAX_STANZAS = 255
MAX_HEADER_SIZE = 65536

_PREFIX = struct.Struct(">8sB16sH")
_STANZA_HEAD = struct.Struct(">HH")


def encode_prefix(salt: bytes, stanza_count: int) -> bytes:
    return _PREFIX.pack(MAGIC, VERSION, salt, stanza_count)


def header_key(file_key: bytes, salt: bytes) -> bytes:
    return prim.hkdf_sha256(file_key, salt, prim.LABEL_HEADER)


def payload_key(file_key: bytes, salt: bytes) -> bytes:
    return prim.hkdf_sha256(file_key, salt, prim.LABEL_PAYLOAD)


def seal_header(file_key: bytes, salt: bytes, recipients: Sequence[Recipient]) -> bytes:
    """The complete header: prefix, one stanza per recipient in the given order, MAC.

    SPEC §4.1: writers emit the stanzas in the order of their recipient list.
    """
    if not recipients:
        raise FormatError("an envelope needs at least one recipient")
    if len(recipients) > MAX_STANZAS:
        raise FormatError(f"an envelope has at most {MAX_STANZAS} recipients")
    prefix = encode_prefix(salt, len(recipients))
    stanzas = b"".join(r.wrap(file_key, prefix).encode() for r in recipients)
    if PREFIX_SIZE + len(stanzas) + MAC_SIZE > MAX_HEADER_SIZE:
        # Readers refuse such a header (SPEC §7, §8): never write what cannot be read.
        raise FormatError(
            f"too many recipients: the header would exceed {MAX_HEADER_SIZE} bytes"
            " (at most 55 hybrid recipients)"
        )
    return assemble_header(file_key, prefix, stanzas)


def assemble_header(file_key: bytes, prefix: bytes, stanzas: bytes) -> bytes:
    """Prefix and encoded stanzas, followed by their MAC (SPEC §4.2)."""
    salt = prefix[len(MAGIC) + 1 : len(MAGIC) + 1 + SALT_SIZE]
    body = prefix + stanzas
    return body + prim.hmac_sha256(header_key(file_key, salt), body)


@dataclass(frozen=True)
class ParsedHeader:
    prefix: bytes
    salt: bytes
    stanzas: tuple[Stanza, ...]
    mac: bytes
    size: int  # bytes of header, MAC included

    @property
    def authenticated_part(self) -> bytes:
        return self.prefix + b"".join(s.encode() for s in self.stanzas)


def parse_header(buf: bytes | bytearray) -> ParsedHeader | None:
    """Parse a header at the start of ``buf``; None if more bytes are needed.

    Raises FormatError as soon as the bytes seen cannot start a valid header.
    """
    view = memoryview(buf)
    if len(view) < len(MAGIC):
        if bytes(view) != MAGIC[: len(view)]:
            raise FormatError("not a Lanterne envelope")
        return None
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise FormatError("not a Lanterne envelope")
    if len(view) < len(MAGIC) + 1:
        return None
    if view[len(MAGIC)] != VERSION:
        raise FormatError(f"unsupported envelope version {view[len(MAGIC)]} (this reads {VERSION})")
    if len(view) < PREFIX_SIZE:
        return None
    _, _, salt, count = _PREFIX.unpack_from(view)
    if not 1 <= count <= MAX_STANZAS:
        raise FormatError(f"invalid recipient count {count} (must be 1 to {MAX_STANZAS})")
    pos = PREFIX_SIZE
    stanzas = []
    for _ in range(count):
        if len(view) < pos + STANZA_HEAD_SIZE:
            return None
        stype, length = _STANZA_HEAD.unpack_from(view, pos)
        expected = STANZA_BODY_SIZE.get(stype)
        if expected is not None and length != expected:
            raise FormatError(f"malformed recipient stanza of type 0x{stype:04x}")
        end = pos + STANZA_HEAD_SIZE + length
        if end + MAC_SIZE > MAX_HEADER_SIZE:
            raise FormatError(f"header larger than {MAX_HEADER_SIZE} bytes")
        if len(view) < end:
            return None
        stanzas.append(Stanza(stype, bytes(view[pos + STANZA_HEAD_SIZE : end])))
        pos = end
    if len(view) < pos + MAC_SIZE:
        return None
    return ParsedHeader(
        prefix=bytes(view[:PREFIX_SIZE]),
        salt=bytes(salt),
        stanzas=tuple(stanzas),
        mac=bytes(view[pos : pos + MAC_SIZE]),
        size=pos + MAC_SIZE,
    )


def open_header(header: ParsedHeader, identities: Sequence[Identity]) -> bytes:
    """Find the file key with one of ``identities`` and verify the header MAC.

    Each identity passes on stanzas of types it does not handle, so stanzas of
    unknown types are skipped (SPEC §4.1). The first stanza that opens decides:
    if the MAC then fails the envelope is rejected, as in age.
    """
    for stanza in header.stanzas:
        for identity in identities:
            file_key = identity.unwrap(stanza, header.prefix)
            if file_key is None:
                continue
            if len(file_key) != prim.FILE_KEY_SIZE:
                raise AuthenticationError()
            expected = prim.hmac_sha256(
                header_key(file_key, header.salt), header.authenticated_part
            )
            if not prim.constant_time_equal(expected, header.mac):
                raise AuthenticationError()
            return file_key
    raise NoMatchingKeyError()
