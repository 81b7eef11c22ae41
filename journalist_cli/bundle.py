"""Air-gap bundles: one file carrying ciphertext from the online machine.

A bundle is an uncompressed POSIX tar (ciphertext does not compress)::

    index.json            first member: what the server said about every source
    objects/<id>          envelope bytes, one member per object

``index.json``::

    {"type": "lanterne-bundle/v1", "created_on": "YYYY-MM-DD",
     "sources": [<GET /sources/{id} documents>],
     "objects": [{"id": ID, "size": N, "sha256": HEX}]}

On import nothing is trusted. The index must come first and be at most
``MAX_INDEX_BYTES``; members must be regular files named ``objects/<id>``
with an id the index lists, no duplicates, the announced size and SHA-256
(checked while copying, before the object is renamed into the vault); no
links, devices, directories, sparse or unknown members; the whole bundle is
read as a stream, so a hostile size field cannot make us seek. If any check
fails nothing is imported: objects are first written as ``.part`` files and
only renamed into the vault after the last member passed.

The objects themselves are envelopes and authenticate on decryption; the
index (triage state, days) is as trustworthy as the server that gave it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from envelope import atomic_output
from journalist_cli.records import ID_PATTERN, SourceDetail
from journalist_cli.vault import Vault
from journalist_cli.workflow_errors import BundleRejected, ServerError

BUNDLE_TYPE = "lanterne-bundle/v1"
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


def _source_doc(detail: SourceDetail) -> dict[str, Any]:
    s = detail.source
    return {
        "id": s.id,
        "reply_key": s.reply_key,
        "last_activity": s.last_activity,
        "submissions": s.submissions,
        "size": s.size,
        "seen": s.seen,
        "starred": s.starred,
        "tags": list(s.tags),
        "assignee": s.assignee,
        "notes": s.notes,
        "replies": s.replies,
        "items": {
            "submissions": [
                {
                    "id": u.id,
                    "received_on": u.received_on,
                    "objects": [{"id": o.id, "kind": o.kind, "size": o.size} for o in u.objects],
                }
                for u in detail.submissions
            ],
            "replies": [
                {
                    "id": r.id,
                    "object_id": r.object_id,
                    "sent_on": r.day,
                    "journalist": r.journalist,
                    "size": r.size,
                }
                for r in detail.replies
            ],
            "notes": [
                {
                    "id": n.id,
                    "object_id": n.object_id,
                    "written_on": n.day,
                    "journalist": n.journalist,
                    "size": n.size,
                }
                for n in detail.notes
            ],
        },
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(COPY_SIZE):
            digest.update(block)
    return digest.hexdigest()


def write_bundle(vault: Vault, path: Path, object_ids: Iterable[str], day: str) -> BundleSummary:
    """Write every source's index and the given (present) objects to ``path``, atomically."""
    wanted = set(object_ids)
    objects = [o for o in vault.all_objects() if o.present and o.id in wanted]
    entries: list[dict[str, Any]] = []
    for obj in objects:
        file = vault.object_path(obj.id)
        entries.append({"id": obj.id, "size": file.stat().st_size, "sha256": _sha256(file)})
    index = {
        "type": BUNDLE_TYPE,
        "created_on": day,
        "sources": [_source_doc(vault.detail(sid)) for sid in vault.source_ids()],
        "objects": entries,
    }
    data = json.dumps(index, indent=1).encode("utf-8")
    with (
        atomic_output(path) as out,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(_info(INDEX_NAME, len(data)), _BytesReader(data))
        for entry in entries:
            oid = str(entry["id"])
            with vault.object_path(oid).open("rb") as f:
                tar.addfile(_info(OBJECTS_PREFIX + oid, int(entry["size"])), f)
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
        raise BundleRejected("not a lanterne-bundle/v1 file")
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


def import_bundle(vault: Vault, path: Path) -> BundleSummary:
    """Validate ``path`` completely, then load its index and objects into the vault."""
    staged: list[str] = []
    try:
        with path.open("rb") as raw:
            try:
                tar = tarfile.open(fileobj=raw, mode="r|")  # noqa: SIM115 - closed with raw
            except tarfile.TarError as exc:
                raise BundleRejected(f"{path} is not a Lanterne bundle (not a tar file)") from exc
            sources, expected = _read_members(tar, vault, staged)
        missing = set(expected) - set(staged)
        if missing:
            raise BundleRejected(f"the bundle lacks {len(missing)} objects its index lists")
    except BaseException:
        for oid in staged:
            vault.partial_path(oid).unlink(missing_ok=True)
        raise
    # Everything checked: now the vault changes.
    vault.keep_only_sources(s.source.id for s in sources)
    for detail in sources:
        vault.store_detail(detail)
    for oid in staged:
        vault.complete_object(oid)
    return BundleSummary(len(sources), len(staged), sum(expected[o].size for o in staged))


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
