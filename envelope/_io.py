"""Whole-stream helpers over ``Encryptor``/``Decryptor``: file objects, paths,
bytes and async iterators. Memory stays constant: one read buffer plus a chunk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from envelope._stream import Decryptor, Encryptor
from envelope.recipients import Identity, Recipient

READ_SIZE = 1 << 20


def _write_all(dst: BinaryIO, pieces: Iterator[bytes] | list[bytes]) -> None:
    for piece in pieces:
        dst.write(piece)


def _reader(src: BinaryIO) -> Iterator[memoryview]:
    """Pieces of ``src`` read into one reused buffer (valid until the next piece).

    A fresh 1 MiB bytes object per read costs more in page faults than AES-GCM
    costs in CPU (measured in benchmarks/bench_envelope.py).
    """
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)
    readinto = getattr(src, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(view)
        else:
            data = src.read(READ_SIZE)
            n = len(data)
            view[:n] = data
        if not n:
            return
        yield view[:n]


def encrypt(src: BinaryIO, dst: BinaryIO, recipients: Sequence[Recipient]) -> None:
    """Encrypt everything readable from ``src`` to ``recipients`` into ``dst``."""
    enc = Encryptor(recipients)
    dst.write(enc.header)
    for piece in _reader(src):
        for sealed in enc.update_views(piece):
            dst.write(sealed)
    _write_all(dst, enc.finish())


def decrypt(src: BinaryIO, dst: BinaryIO, identities: Sequence[Identity]) -> None:
    """Decrypt ``src`` into ``dst``, writing only verified plaintext.

    When writing to a stream that cannot be taken back (a pipe), an error at
    the end means the output already written must be discarded; use
    ``decrypt_file`` to get an all-or-nothing file.
    """
    dec = Decryptor(identities)
    for piece in _reader(src):
        _write_all(dst, dec.update(piece))
    _write_all(dst, dec.finish())


def encrypt_bytes(data: bytes, recipients: Sequence[Recipient]) -> bytes:
    """One-shot encryption of a small object (a message, a manifest, a reply)."""
    enc = Encryptor(recipients)
    return b"".join([enc.header, *enc.update_chunks(data), *enc.finish()])


def decrypt_bytes(data: bytes, identities: Sequence[Identity]) -> bytes:
    """One-shot decryption of a small object."""
    dec = Decryptor(identities)
    return b"".join([*dec.update(data), *dec.finish()])


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: int = 0o600) -> Iterator[BinaryIO]:
    """A file that appears at ``path`` only if the block succeeds, fsynced.

    It is written under a temporary name in the same directory and renamed at
    the end; on any error the temporary file is removed and ``path`` is left
    untouched (absent if it was absent).
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.urandom(6).hex()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def encrypt_file(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], recipients: Sequence[Recipient]
) -> None:
    """Encrypt the file ``src`` into ``dst``, which appears only when complete."""
    with Path(src).open("rb") as fin, atomic_output(dst) as fout:
        encrypt(fin, fout, recipients)


def decrypt_file(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], identities: Sequence[Identity]
) -> None:
    """Decrypt ``src`` into ``dst``; ``dst`` appears only after the final chunk verifies."""
    with Path(src).open("rb") as fin, atomic_output(dst) as fout:
        decrypt(fin, fout, identities)


async def encrypt_aiter(
    chunks: AsyncIterable[bytes], recipients: Sequence[Recipient]
) -> AsyncIterator[bytes]:
    """Encrypt an async stream of plaintext pieces into ciphertext pieces."""
    enc = Encryptor(recipients)
    yield enc.header
    async for data in chunks:
        for piece in enc.update_chunks(data):
            yield piece
    for piece in enc.finish():
        yield piece


async def decrypt_aiter(
    chunks: AsyncIterable[bytes], identities: Sequence[Identity]
) -> AsyncIterator[bytes]:
    """Decrypt an async stream of ciphertext pieces into verified plaintext pieces."""
    dec = Decryptor(identities)
    async for data in chunks:
        for piece in dec.update(data):
            yield piece
    for piece in dec.finish():
        yield piece
