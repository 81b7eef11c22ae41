"""Air-gap bundles: one signed file carrying ciphertext from the online machine.

A bundle (format 2) is a fixed header followed by an uncompressed POSIX tar
(ciphertext does not compress)::

    MAGIC                 b"LANTERNE-BUNDLE/2\\n" (18 bytes): the format and its version
    signature             64 bytes, Ed25519 (PyNaCl) by the journalist's signing key over
                          SIGNATURE_CONTEXT || SHA-512(every byte after the header)
    tar:
      index.json          first member: what the server said about every source
      objects/<id>        envelope bytes, one member per object

``index.json``::

    {"type": "lanterne-bundle/v2", "created_on": "YYYY-MM-DD",
     "sources": [<GET /sources/{id} documents>],
     "objects": [{"id": ID, "size": N, "sha256": HEX}]}

The online machine signs with the key it logs in with (a signing identity
holds nothing else); the air-gapped machine checks the signature against the
signing public key of the journalist's own identity file, over the exact bytes
of the tar, *before* it parses anything. The signature is over a SHA-512 of the
tar (as minisign does for large files): a bundle may be gigabytes, and Ed25519
needs the whole message twice. A file that changes between that first pass and
the import (a lying USB stick) is caught too: the import hashes what it reads
again and compares before anything in the vault changes. A bundle built by
anyone who holds only public keys (the server, a thief of the USB stick) is
refused: its objects would decrypt, but its index would be theirs.

On import nothing else is trusted either. The index must come first and be at
most ``MAX_INDEX_BYTES``; members must be regular files named ``objects/<id>``
with an id the index lists, no duplicates, the announced size and SHA-256
(checked while copying, before the object is renamed into the vault); no
links, devices, directories, sparse or unknown members; the whole bundle is
read as a stream, so a hostile size field cannot make us seek. If any check
fails nothing is imported: objects are first written as ``.part`` files and
only renamed into the vault after the last member passed.

Deletions: a bundle mirrors the online vault, so a source or item missing from
it was deleted there. Those deletions are listed (``StagedBundle.deletions``)
and applied only when the caller says so (``commit(delete=True)``); otherwise
everything the bundle would remove stays, and the rest is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tarfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, BinaryIO

import nacl.exceptions
import nacl.signing

from envelope import atomic_output
from journalist_cli.records import ID_PATTERN, ItemInfo, SourceDetail, SubmissionInfo
from journalist_cli.vault import Vault
from journalist_cli.workflow_errors import BundleRejected, ServerError

BUNDLE_TYPE = "lanterne-bundle/v2"
MAGIC = b"LANTERNE-BUNDLE/2\n"
SIGNATURE_CONTEXT = b"lanterne-bundle/v2 signature\x00"
SIGNATURE_SIZE = 64
HEADER_SIZE = len(MAGIC) + SIGNATURE_SIZE
INDEX_NAME = "index.json"
OBJECTS_PREFIX = "objects/"
MAX_INDEX_BYTES = 64 << 20
MAX_OBJECT_BYTES = 8 << 30
MAX_MEMBERS = 1_000_000
COPY_SIZE = 1 << 20
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass
class BundleSummary:
    sources: int
    objects: int
    bytes: int


@dataclass(frozen=True)
class Removal:
    """Something in the vault that the bundle no longer lists (deleted on the online side)."""

    source_id: str
    what: str  # "source", "submission", "reply", "note" or "object"
    item_id: str  # the source, submission, item or object id
    day: str | None


@dataclass
class ImportSummary(BundleSummary):
    deleted: list[Removal] = field(default_factory=list)
    kept: list[Removal] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(COPY_SIZE):
            digest.update(block)
    return digest.hexdigest()


class _HashingWriter:
    """Passes writes through to ``out`` and hashes them (the signed part of a bundle)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hash = hashlib.sha512()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self._out.write(data)


def _signed_message(digest: bytes) -> bytes:
    return SIGNATURE_CONTEXT + digest


def write_bundle(
    vault: Vault,
    path: Path,
    object_ids: Iterable[str],
    day: str,
    signing: nacl.signing.SigningKey,
) -> BundleSummary:
    """Write every source's index and the given (present) objects to ``path``, signed."""
    wanted = set(object_ids)
    objects = [o for o in vault.all_objects() if o.present and o.id in wanted]
    entries: list[dict[str, Any]] = []
    for obj in objects:
        file = vault.object_path(obj.id)
        entries.append({"id": obj.id, "size": file.stat().st_size, "sha256": _sha256(file)})
    index = {
        "type": BUNDLE_TYPE,
        "created_on": day,
        "sources": [vault.detail(sid).to_api() for sid in vault.source_ids()],
        "objects": entries,
    }
    data = json.dumps(index, indent=1).encode("utf-8")
    with atomic_output(path) as out:
        out.write(MAGIC + bytes(SIGNATURE_SIZE))  # the signature goes here at the end
        signed = _HashingWriter(out)
        with tarfile.open(fileobj=signed, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            tar.addfile(_info(INDEX_NAME, len(data)), _BytesReader(data))
            for entry in entries:
                oid = str(entry["id"])
                with vault.object_path(oid).open("rb") as f:
                    tar.addfile(_info(OBJECTS_PREFIX + oid, int(entry["size"])), f)
        signature = signing.sign(_signed_message(signed.hash.digest())).signature
        out.seek(len(MAGIC))
        out.write(signature)
    return BundleSummary(len(index["sources"]), len(entries), sum(int(e["size"]) for e in entries))


def _info(name: str, size: int) -> tarfile.TarInfo:
    # No owner, dates or modes from this machine: the bundle says nothing about it.
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = 0
    return info


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = len(self._data)
        piece, self._data = self._data[:n], self._data[n:]
        return bytes(piece)


# --- Import ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Expected:
    size: int
    sha256: str


def parse_index(data: bytes) -> tuple[list[SourceDetail], dict[str, _Expected]]:
    """The index, validated; raises BundleRejected."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleRejected("the bundle's index is not UTF-8 JSON") from exc
    if not isinstance(doc, dict) or doc.get("type") != BUNDLE_TYPE:
        raise BundleRejected(f"not a {BUNDLE_TYPE} file")
    sources_raw, objects_raw = doc.get("sources"), doc.get("objects")
    if not isinstance(sources_raw, list) or not isinstance(objects_raw, list):
        raise BundleRejected("the bundle's index lacks its source or object list")
    try:
        sources = [SourceDetail.parse(s) for s in sources_raw]
    except ServerError as exc:
        raise BundleRejected(f"the bundle's index is malformed: {exc}") from exc
    expected: dict[str, _Expected] = {}
    for entry in objects_raw:
        if not isinstance(entry, dict):
            raise BundleRejected("an object entry of the bundle's index is malformed")
        oid, size, digest = entry.get("id"), entry.get("size"), entry.get("sha256")
        if (
            not isinstance(oid, str)
            or not ID_PATTERN.fullmatch(oid)
            or not isinstance(size, int)
            or isinstance(size, bool)
            or not 0 <= size <= MAX_OBJECT_BYTES
            or not isinstance(digest, str)
            or not SHA256_HEX.fullmatch(digest)
        ):
            raise BundleRejected("an object entry of the bundle's index is malformed")
        if oid in expected:
            raise BundleRejected(f"the bundle's index lists object {oid} twice")
        expected[oid] = _Expected(size, digest)
    listed = {o.id for s in sources for u in s.submissions for o in u.objects} | {
        i.object_id for s in sources for i in (*s.replies, *s.notes)
    }
    stray = set(expected) - listed
    if stray:
        raise BundleRejected(f"the bundle carries objects no source lists: {sorted(stray)[:3]}")
    ids = [s.source.id for s in sources]
    if len(set(ids)) != len(ids):
        raise BundleRejected("the bundle's index lists a source twice")
    return sources, expected


def _copy_checked(src: IO[bytes], dst: BinaryIO, want: _Expected, name: str) -> None:
    digest = hashlib.sha256()
    remaining = want.size
    while remaining:
        block = src.read(min(COPY_SIZE, remaining))
        if not block:
            raise BundleRejected(f"{name} is cut short")
        digest.update(block)
        dst.write(block)
        remaining -= len(block)
    if digest.hexdigest() != want.sha256:
        raise BundleRejected(f"{name} does not match its SHA-256 in the index")


class _HashingReader:
    """Reads the tar part of a bundle and hashes what it hands out (second pass)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.hash = hashlib.sha512()

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.hash.update(data)
        return data

    def drain(self) -> None:
        while self.read(COPY_SIZE):
            pass


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, refused unless it is a regular file (no FIFO, no device)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleRejected(f"cannot open {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BundleRejected(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _check_signature(raw: BinaryIO, path: Path, signing_key: bytes) -> bytes:
    """Verify the header's signature over everything after it; the verified SHA-512."""
    head = raw.read(HEADER_SIZE)
    if not head.startswith(MAGIC):
        if head[:100].rstrip(b"\0") == INDEX_NAME.encode():
            raise BundleRejected(
                f"{path} is an unsigned bundle from an older Lanterne; make a new one with"
                " `lanterne pull --bundle FILE --all` on the online machine"
            )
        raise BundleRejected(f"{path} is not a Lanterne bundle")
    if len(head) < HEADER_SIZE:
        raise BundleRejected(f"{path} is cut short")
    digest = hashlib.sha512()
    while block := raw.read(COPY_SIZE):
        digest.update(block)
    try:
        nacl.signing.VerifyKey(signing_key).verify(
            _signed_message(digest.digest()), head[len(MAGIC) :]
        )
    except nacl.exceptions.BadSignatureError:
        raise BundleRejected(
            f"{path} is not signed by your signing key: it was altered, or made by someone"
            " else (or with another identity than the one configured here)"
        ) from None
    return digest.digest()


@dataclass
class StagedBundle:
    """A verified bundle whose objects wait as ``.part`` files; nothing in the vault changed yet."""

    vault: Vault
    sources: list[SourceDetail]
    expected: dict[str, _Expected]
    staged: list[str]
    deletions: list[Removal]
    committed: bool = False

    def commit(self, *, delete: bool) -> ImportSummary:
        """Load the index and objects; apply ``deletions`` only if ``delete``."""
        vault = self.vault
        present = set(vault.source_ids())
        if delete:
            vault.keep_only_sources(s.source.id for s in self.sources)
        for detail in self.sources:
            sid = detail.source.id
            if not delete and sid in present:
                detail = _merged(detail, vault.detail(sid))
            vault.store_detail(detail)
        for oid in self.staged:
            vault.complete_object(oid)
        self.committed = True
        return ImportSummary(
            len(self.sources),
            len(self.staged),
            sum(self.expected[o].size for o in self.staged),
            deleted=list(self.deletions) if delete else [],
            kept=[] if delete else list(self.deletions),
        )


@contextmanager
def staged_import(vault: Vault, path: Path, signing_key: bytes) -> Iterator[StagedBundle]:
    """Verify ``path`` (signature first, then every member) and stage its objects.

    ``signing_key`` is the journalist's own Ed25519 public key (from their
    identity file). Nothing is parsed before the signature checks out. Staged
    files are removed on leaving unless the bundle was committed.
    """
    staged: list[str] = []
    bundle: StagedBundle | None = None
    try:
        with _open_regular(path) as raw:
            verified = _check_signature(raw, path, signing_key)
            raw.seek(HEADER_SIZE)
            reader = _HashingReader(raw)
            try:
                tar = tarfile.open(fileobj=reader, mode="r|")  # type: ignore[call-overload]  # noqa: SIM115 - closed with raw
            except tarfile.TarError as exc:
                raise BundleRejected(f"{path} is not a Lanterne bundle (not a tar file)") from exc
            sources, expected = _read_members(tar, vault, staged)
            reader.drain()
            if reader.hash.digest() != verified:
                raise BundleRejected(f"{path} changed while it was being read; nothing imported")
        missing = set(expected) - set(staged)
        if missing:
            raise BundleRejected(f"the bundle lacks {len(missing)} objects its index lists")
        bundle = StagedBundle(vault, sources, expected, staged, _removals(vault, sources))
        yield bundle
    finally:
        if bundle is None or not bundle.committed:
            for oid in staged:
                vault.partial_path(oid).unlink(missing_ok=True)


def import_bundle(
    vault: Vault, path: Path, signing_key: bytes, *, delete: bool = False
) -> ImportSummary:
    """Verify and load ``path``; the deletions it carries only with ``delete``."""
    with staged_import(vault, path, signing_key) as staged:
        return staged.commit(delete=delete)


def _object_ids(detail: SourceDetail) -> set[str]:
    return {o.id for s in detail.submissions for o in s.objects} | {
        i.object_id for i in (*detail.replies, *detail.notes)
    }


def _removals(vault: Vault, sources: list[SourceDetail]) -> list[Removal]:
    """What committing with deletions would take out of the vault."""
    incoming = {d.source.id: d for d in sources}
    out: list[Removal] = []
    for sid in vault.source_ids():
        new = incoming.get(sid)
        old = vault.detail(sid)
        if new is None:
            out.append(Removal(sid, "source", sid, old.source.last_activity))
            continue
        keep = _object_ids(new)
        new_subs = {s.id for s in new.submissions}
        for sub in old.submissions:
            if sub.id not in new_subs:
                out.append(Removal(sid, "submission", sub.id, sub.received_on))
                continue
            out += [
                Removal(sid, "object", o.id, sub.received_on)
                for o in sub.objects
                if o.id not in keep
            ]
        for kind, items in (("reply", old.replies), ("note", old.notes)):
            out += [Removal(sid, kind, i.id, i.day) for i in items if i.object_id not in keep]
    return out


def _merged(new: SourceDetail, old: SourceDetail) -> SourceDetail:
    """``new`` plus whatever of ``old`` it leaves out: an import that deletes nothing."""
    keep = _object_ids(new)
    new_subs = {s.id: s for s in new.submissions}
    subs: list[SubmissionInfo] = [s for s in old.submissions if s.id not in new_subs]
    for sub in new.submissions:
        previous = next((s for s in old.submissions if s.id == sub.id), None)
        extra = tuple(o for o in previous.objects if o.id not in keep) if previous else ()
        subs.append(replace(sub, objects=sub.objects + extra) if extra else sub)

    def items(
        old_items: tuple[ItemInfo, ...], new_items: tuple[ItemInfo, ...]
    ) -> tuple[ItemInfo, ...]:
        return tuple(i for i in old_items if i.object_id not in keep) + new_items

    replies, notes = items(old.replies, new.replies), items(old.notes, new.notes)
    source = replace(new.source, submissions=len(subs), replies=len(replies), notes=len(notes))
    return SourceDetail(source, tuple(subs), replies, notes)


def _read_members(
    tar: tarfile.TarFile, vault: Vault, staged: list[str]
) -> tuple[list[SourceDetail], dict[str, _Expected]]:
    sources: list[SourceDetail] | None = None
    expected: dict[str, _Expected] = {}
    count = 0
    try:
        for member in tar:
            count += 1
            if count > MAX_MEMBERS:
                raise BundleRejected("the bundle has too many members")
            if not member.isreg() or member.issparse():
                raise BundleRejected(f"bundle member {member.name[:80]!r} is not a regular file")
            name = member.name
            if sources is None:
                if name != INDEX_NAME:
                    raise BundleRejected("the bundle does not start with its index")
                if member.size > MAX_INDEX_BYTES:
                    raise BundleRejected("the bundle's index is too large")
                f = tar.extractfile(member)
                assert f is not None
                sources, expected = parse_index(f.read(member.size))
                continue
            oid = name.removeprefix(OBJECTS_PREFIX)
            if not name.startswith(OBJECTS_PREFIX) or not ID_PATTERN.fullmatch(oid):
                raise BundleRejected(f"unexpected bundle member {name[:80]!r}")
            want = expected.get(oid)
            if want is None:
                raise BundleRejected(f"bundle member {name} is not in the index")
            if oid in staged:
                raise BundleRejected(f"bundle member {name} appears twice")
            if member.size != want.size:
                raise BundleRejected(f"{name} is not the size its index says")
            f = tar.extractfile(member)
            assert f is not None
            staged.append(oid)
            with vault.partial_path(oid).open("wb") as out:
                _copy_checked(f, out, want, name)
    except tarfile.TarError as exc:
        raise BundleRejected(f"the bundle is damaged: {exc}") from exc
    if sources is None:
        raise BundleRejected("the bundle is empty")
    return sources, expected
