"""The payload: padding and the STREAM of AES-256-GCM chunks (SPEC §5, §6).

``Encryptor`` and ``Decryptor`` are incremental and hold at most one chunk of
plaintext, so memory stays constant whatever the object size. A run of
padding-candidate zeros is held as a count, never as bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from envelope import _header
from envelope import _primitives as prim
from envelope.errors import AuthenticationError, FormatError
from envelope.recipients import Identity, Recipient

CHUNK_SIZE = 65536
SEALED_CHUNK_SIZE = CHUNK_SIZE + prim.TAG_SIZE
MAX_CHUNKS = 1 << 20  # SPEC §7: at most 64 GiB of padded plaintext per object
MAX_PADDED_SIZE = MAX_CHUNKS * CHUNK_SIZE
MIN_PADDED_SIZE = 4096
PAD_MARKER = 0x80

_ZERO_CHUNK = bytes(CHUNK_SIZE)
_BATCH = 16  # sealed chunks per output view: at most about 1 MiB of reused buffer


def padded_size(n: int) -> int:
    """The bucket for ``n`` bytes of plaintext plus the marker byte (SPEC §6).

    Padmé (Nikitin et al., PETS 2019): round up so that only the top
    floor(log2(E)) + 1 bits of the size can be non-zero, E = floor(log2(n)).
    Overhead is at most about 12 %, and at most 3 % above 1 GiB.
    """
    if n <= MIN_PADDED_SIZE:
        return MIN_PADDED_SIZE
    e = n.bit_length() - 1
    s = e.bit_length()
    mask = (1 << (e - s)) - 1
    return (n + mask) & ~mask


def chunk_nonce(counter: int, final: bool) -> bytes:
    """11-byte big-endian counter, then 0x01 on the final chunk and 0x00 otherwise."""
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class Encryptor:
    """Incremental writer: ``header``, then ``update()`` for each piece, then ``finish()``.

    ``file_key`` and ``salt`` exist for test vectors only; leave them unset.
    """

    def __init__(
        self,
        recipients: Sequence[Recipient],
        *,
        file_key: bytes | None = None,
        salt: bytes | None = None,
    ) -> None:
        file_key = file_key if file_key is not None else prim.random_bytes(prim.FILE_KEY_SIZE)
        salt = salt if salt is not None else prim.random_bytes(_header.SALT_SIZE)
        self.header: bytes = _header.seal_header(file_key, salt, recipients)
        self._cipher = prim.ChunkCipher(_header.payload_key(file_key, salt))
        self._init_stream()

    @classmethod
    def _with_header(cls, header: bytes, file_key: bytes, salt: bytes) -> Encryptor:
        """An encryptor whose header was built elsewhere (the vector generator)."""
        self = cls.__new__(cls)
        self.header = header
        self._cipher = prim.ChunkCipher(_header.payload_key(file_key, salt))
        self._init_stream()
        return self

    def _init_stream(self) -> None:
        self._pending = bytearray()  # < CHUNK_SIZE bytes of not yet sealed plaintext
        self._out = memoryview(bytearray())  # update_views' reused output buffer
        self._counter = 0
        self._length = 0
        self._finished = False

    def _seal(self, chunk: bytes | bytearray | memoryview, final: bool) -> bytes:
        if self._counter >= MAX_CHUNKS:
            raise FormatError("the object is larger than the 64 GiB limit")
        sealed = self._cipher.seal(chunk_nonce(self._counter, final), chunk)
        self._counter += 1
        return sealed

    def update_chunks(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Seal every full chunk now available; returns the sealed bytes."""
        return [bytes(view) for view in self.update_views(data)]

    def update_views(self, data: bytes | bytearray | memoryview) -> Iterator[memoryview]:
        """Like ``update_chunks``, but the sealed chunks are written into one reused
        buffer: each view is valid only until the next one is asked for.

        A fresh 64 KiB ``bytes`` per chunk costs the kernel more page faults than
        AES-GCM costs CPU (benchmarks/bench_envelope.py); streaming writers that
        copy each piece out at once (a file, a socket) use this.
        """
        if self._finished:
            raise ValueError("update() after finish()")
        view = memoryview(data)
        self._length += len(view)
        if self._length >= MAX_PADDED_SIZE:
            raise FormatError("the object is larger than the 64 GiB limit")
        if self._pending:
            take = min(CHUNK_SIZE - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < CHUNK_SIZE:
                return
            out = self._out_buffer(1)
            self._seal_into(self._pending, out)
            self._pending = bytearray()
            yield out
        full = len(view) // CHUNK_SIZE
        for first in range(0, full, _BATCH):
            count = min(_BATCH, full - first)
            out = self._out_buffer(count)
            for i in range(count):
                start = (first + i) * CHUNK_SIZE
                self._seal_into(
                    view[start : start + CHUNK_SIZE],
                    out[i * SEALED_CHUNK_SIZE : (i + 1) * SEALED_CHUNK_SIZE],
                )
            yield out
        self._pending += view[full * CHUNK_SIZE :]

    def _out_buffer(self, chunks: int) -> memoryview:
        """A view of ``chunks`` sealed chunks in the reused output buffer."""
        need = chunks * SEALED_CHUNK_SIZE
        if len(self._out) < need:
            self._out = memoryview(bytearray(need))
        return self._out[:need]

    def _seal_into(self, chunk: bytes | bytearray | memoryview, out: memoryview) -> None:
        if self._counter >= MAX_CHUNKS:
            raise FormatError("the object is larger than the 64 GiB limit")
        # A full chunk of data is never the last one: the padding marker follows it.
        self._cipher.seal_into(chunk_nonce(self._counter, False), chunk, out)
        self._counter += 1

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Feed plaintext; returns whatever ciphertext is ready (possibly empty)."""
        return b"".join(self.update_chunks(data))

    def finish(self) -> Iterator[bytes]:
        """Pad, seal the rest and mark the final chunk. Consume the iterator fully."""
        if self._finished:
            raise ValueError("finish() called twice")
        self._finished = True
        self._out = memoryview(bytearray())
        zeros_left = padded_size(self._length + 1) - self._length - 1
        chunk = self._pending + bytes([PAD_MARKER])
        self._pending = bytearray()
        return self._finish_chunks(chunk, zeros_left)

    def _finish_chunks(self, chunk: bytearray, zeros_left: int) -> Iterator[bytes]:
        while True:
            take = min(CHUNK_SIZE - len(chunk), zeros_left)
            zeros_left -= take
            if take == CHUNK_SIZE:
                yield self._seal(_ZERO_CHUNK, final=zeros_left == 0)
            else:
                chunk += _ZERO_CHUNK[:take]
                yield self._seal(chunk, final=zeros_left == 0)
            if zeros_left == 0:
                return
            chunk = bytearray()


# A release plan: verified plaintext pieces, or an int standing for that many zero bytes.
_Plan = list[bytes | memoryview | int]


def _materialize(plan: _Plan) -> Iterator[bytes]:
    for item in plan:
        if isinstance(item, int):
            while item > 0:
                n = min(item, CHUNK_SIZE)
                yield _ZERO_CHUNK[:n]
                item -= n
        elif len(item):
            yield bytes(item)


class Decryptor:
    """Incremental reader: ``update()`` for each piece of ciphertext, then ``finish()``.

    Both return iterators over verified plaintext: the state is updated and every
    tag checked before they return; iterating only hands out the bytes. A chunk
    is known to be final only when the input ends, so the last sealed chunk is
    kept until ``finish()``, and the padding (marker and zeros) is never released.
    """

    def __init__(self, identities: Sequence[Identity]) -> None:
        if not identities:
            raise ValueError("at least one identity is needed to decrypt")
        self._identities = tuple(identities)
        self._buf = bytearray()
        self._cipher: prim.ChunkCipher | None = None
        self._counter = 0
        self._padded_total = 0
        self._held_zeros: int | None = None  # zeros after a held marker byte, if one is held
        self._finished = False

    def update(self, data: bytes | bytearray | memoryview) -> Iterator[bytes]:
        if self._finished:
            raise ValueError("update() after finish()")
        view = memoryview(data)
        if self._cipher is None:
            self._buf += view
            if not self._read_header():
                return iter(())
            view, self._buf = memoryview(self._buf), bytearray()
        plan: _Plan = []
        # self._buf holds at most one sealed chunk: complete it first. A sealed
        # chunk is known not to be the last only once more bytes follow it.
        if self._buf:
            take = min(SEALED_CHUNK_SIZE - len(self._buf), len(view))
            self._buf += view[:take]
            view = view[take:]
            if not view:
                return iter(())
            self._absorb(self._open(memoryview(self._buf), final=False), plan)
            self._buf = bytearray()
        # Then open full chunks straight from the caller's buffer, without copying.
        pos = 0
        while len(view) - pos > SEALED_CHUNK_SIZE:
            self._absorb(self._open(view[pos : pos + SEALED_CHUNK_SIZE], final=False), plan)
            pos += SEALED_CHUNK_SIZE
        self._buf += view[pos:]
        return _materialize(plan)

    def finish(self) -> Iterator[bytes]:
        if self._finished:
            raise ValueError("finish() called twice")
        self._finished = True
        if self._cipher is None and not self._read_header():
            raise FormatError("the envelope is truncated: its header is incomplete")
        if len(self._buf) <= prim.TAG_SIZE:  # no final chunk, or an empty one
            raise AuthenticationError()
        plan: _Plan = []
        self._absorb(self._open(memoryview(self._buf), final=True), plan)
        self._buf = bytearray()
        # Bad padding can only come from a recipient's broken writer, yet it is
        # reported like any other authentication failure: one error, no detail.
        if self._held_zeros is None:
            raise AuthenticationError()
        length = self._padded_total - 1 - self._held_zeros
        if padded_size(length + 1) != self._padded_total:
            raise AuthenticationError()
        return _materialize(plan)

    def _read_header(self) -> bool:
        parsed = _header.parse_header(self._buf)
        if parsed is None:
            return False
        file_key = _header.open_header(parsed, self._identities)
        self._cipher = prim.ChunkCipher(_header.payload_key(file_key, parsed.salt))
        del self._buf[: parsed.size]
        return True

    def _open(self, sealed: memoryview, final: bool) -> bytes:
        assert self._cipher is not None
        if self._counter >= MAX_CHUNKS:
            raise FormatError("the object is larger than the 64 GiB limit")
        try:
            chunk = self._cipher.open(chunk_nonce(self._counter, final), sealed)
        except prim.PrimitiveFailure:
            raise AuthenticationError() from None
        finally:
            sealed.release()
        self._counter += 1
        return chunk

    def _absorb(self, chunk: bytes, plan: _Plan) -> None:
        """Queue a verified chunk for release, holding back a possible padding tail."""
        self._padded_total += len(chunk)
        last = chunk[-1]
        if last != 0 and last != PAD_MARKER:  # the common case: no padding candidate
            self._release_held(plan)
            plan.append(chunk)
            return
        # Whole chunks of padding are common (Padmé adds up to 3 % of the size);
        # comparing with a zero chunk is ~100 times faster than rstrip() on them.
        data = b"" if chunk == _ZERO_CHUNK[: len(chunk)] else chunk.rstrip(b"\x00")
        if not data:
            if self._held_zeros is not None:
                self._held_zeros += len(chunk)
            else:
                plan.append(chunk)
            return
        self._release_held(plan)
        if data[-1] == PAD_MARKER:
            plan.append(memoryview(chunk)[: len(data) - 1])
            self._held_zeros = len(chunk) - len(data)
        else:
            plan.append(chunk)

    def _release_held(self, plan: _Plan) -> None:
        """A held marker and zeros turned out to be data: release them."""
        if self._held_zeros is not None:
            plan.append(bytes([PAD_MARKER]))
            plan.append(self._held_zeros)
            self._held_zeros = None
