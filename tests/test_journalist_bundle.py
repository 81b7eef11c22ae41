"""Air-gap bundles: a round trip, forged and hostile bundles refused with nothing imported,
deletions only when confirmed."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import nacl.signing
import pytest

from journalist_cli import bundle, receive
from journalist_cli.vault import Vault
from journalist_cli.workflow_errors import BundleRejected
from tests.journalist_fixtures import add_items, build_source, journalist, store

# The journalist's signing key (online machine) and its public half (air-gapped machine).
SIGNING = nacl.signing.SigningKey.generate()
MINE = bytes(SIGNING.verify_key)


@pytest.fixture
def online(tmp_path: Path) -> Vault:
    return Vault.open(tmp_path / "online")


@pytest.fixture
def airgap(tmp_path: Path) -> Vault:
    return Vault.open(tmp_path / "airgap")


def test_round_trip_then_decrypt_on_the_air_gapped_side(
    online: Vault, airgap: Vault, tmp_path: Path
) -> None:
    me = journalist()
    r = [me.decryption.recipient]
    first = build_source(r, [("hello", [("doc.pdf", b"%PDF-1.4 fake", "application/pdf")])])
    add_items(first, "note", [("alice", "a note")], r)
    second = build_source(r, [("other", [])])
    store(online, first)
    store(online, second)
    path = tmp_path / "b.tar"
    everything = [o.id for o in online.all_objects()]
    summary = bundle.write_bundle(online, path, everything, "2026-11-26", SIGNING)
    assert (summary.sources, summary.objects) == (2, len(first.blobs) + len(second.blobs))
    imported = bundle.import_bundle(airgap, path, MINE)
    assert imported.objects == summary.objects
    assert airgap.source_ids() == online.source_ids()
    for oid in everything:
        assert airgap.object_path(oid).read_bytes() == online.object_path(oid).read_bytes()
    assert airgap.missing_objects() == []
    [res] = receive.decrypt_source(
        airgap, airgap.source(first.id), [me.decryption], tmp_path / "out", clean=False
    )
    assert (res.directory / "original" / "doc.pdf").read_bytes() == b"%PDF-1.4 fake"
    # Tar metadata says nothing about the online machine.
    with tarfile.open(fileobj=io.BytesIO(path.read_bytes()[bundle.HEADER_SIZE :])) as tar:
        for m in tar.getmembers():
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 0)


def test_incremental_bundle_and_mirrored_deletion(
    online: Vault, airgap: Vault, tmp_path: Path
) -> None:
    r = [journalist().decryption.recipient]
    a, b = build_source(r, [("a", [])]), build_source(r, [("b", [])])
    store(online, a)
    bundle.write_bundle(online, tmp_path / "1.tar", list(a.blobs), "2026-11-26", SIGNING)
    bundle.import_bundle(airgap, tmp_path / "1.tar", MINE)
    store(online, b)
    online.delete_source(a.id)
    # Only b's new objects travel; a is gone from the index, so it goes here too (confirmed).
    bundle.write_bundle(online, tmp_path / "2.tar", list(b.blobs), "2026-11-27", SIGNING)
    summary = bundle.import_bundle(airgap, tmp_path / "2.tar", MINE, delete=True)
    assert [(d.what, d.source_id) for d in summary.deleted] == [("source", a.id)]
    assert airgap.source_ids() == sorted([b.id])
    assert not any(airgap.object_path(o).exists() for o in a.blobs)


def test_a_bundle_deletes_nothing_without_confirmation(
    online: Vault, airgap: Vault, tmp_path: Path
) -> None:
    """Sources and items a bundle no longer lists are listed, and kept unless confirmed."""
    r = [journalist().decryption.recipient]
    a = build_source(r, [("a", [("f.pdf", b"%PDF", "application/pdf")])])
    add_items(a, "note", [("alice", "keep me")], r)
    b = build_source(r, [("b", [])])
    store(online, a)
    store(online, b)
    everything = [o.id for o in online.all_objects()]
    bundle.write_bundle(online, tmp_path / "1.tar", everything, "2026-11-26", SIGNING)
    bundle.import_bundle(airgap, tmp_path / "1.tar", MINE)
    before = {p.name: p.read_bytes() for p in airgap.objects_dir.iterdir()}
    [note] = online.items(a.id, "note")
    # On the online side: b deleted, a's note gone, a new source c arrives.
    online.delete_source(b.id)
    online.store_detail(dataclasses.replace(online.detail(a.id), notes=()))
    c = build_source(r, [("c", [])])
    store(online, c)
    bundle.write_bundle(online, tmp_path / "2.tar", list(c.blobs), "2026-11-27", SIGNING)

    with bundle.staged_import(airgap, tmp_path / "2.tar", MINE) as staged:
        assert sorted((d.what, d.source_id) for d in staged.deletions) == sorted(
            [("source", b.id), ("note", a.id)]
        )
        summary = staged.commit(delete=False)
    assert summary.deleted == [] and len(summary.kept) == 2
    # Nothing the vault had is gone; c came in.
    assert set(airgap.source_ids()) == {a.id, b.id, c.id}
    for name, data in before.items():
        assert (airgap.objects_dir / name).read_bytes() == data
    assert [n.id for n in airgap.items(a.id, "note")] == [note.id]

    # Confirmed: now they go.
    summary = bundle.import_bundle(airgap, tmp_path / "2.tar", MINE, delete=True)
    assert len(summary.deleted) == 2
    assert set(airgap.source_ids()) == {a.id, c.id}
    assert airgap.items(a.id, "note") == []
    assert not airgap.object_path(note.id).exists()
    assert not any(airgap.object_path(o).exists() for o in b.blobs)


# --- hostile bundles -------------------------------------------------------------


def _member(tar: tarfile.TarFile, name: str, data: bytes, **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in attrs.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data))


def _index(objects: dict[str, bytes], sources: list[object] | None = None) -> bytes:
    return json.dumps(
        {
            "type": "lanterne-bundle/v2",
            "created_on": "2026-11-26",
            "sources": sources if sources is not None else [],
            "objects": [
                {"id": k, "size": len(v), "sha256": hashlib.sha256(v).hexdigest()}
                for k, v in objects.items()
            ],
        }
    ).encode()


@pytest.fixture
def good(online: Vault) -> tuple[list[object], dict[str, bytes]]:
    """A valid index (sources) and objects, as raw material for hostile variants."""
    built = build_source([journalist().decryption.recipient], [("m", [("f", b"F", "")])])
    store(online, built)
    sources = [online.detail(built.id).to_api()]
    return sources, dict(built.blobs)


def _tar(build: Callable[[tarfile.TarFile], None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
    return buf.getvalue()


def _signed(payload: bytes, key: nacl.signing.SigningKey = SIGNING) -> bytes:
    """A bundle file as the format says: magic, signature over SHA-512 of the tar, the tar."""
    message = bundle.SIGNATURE_CONTEXT + hashlib.sha512(payload).digest()
    return bundle.MAGIC + key.sign(message).signature + payload


def _write(path: Path, build: Callable[[tarfile.TarFile], None]) -> Path:
    """A hostile tar, signed by the journalist's own key: what the parser must survive."""
    path.write_bytes(_signed(_tar(build)))
    return path


def _hostile_cases(
    sources: list[object], objects: dict[str, bytes]
) -> dict[str, Callable[[tarfile.TarFile], None]]:
    oid, blob = next(iter(objects.items()))
    index = _index(objects, sources)

    def with_index(extra: Callable[[tarfile.TarFile], None]) -> Callable[[tarfile.TarFile], None]:
        def build(tar: tarfile.TarFile) -> None:
            _member(tar, "index.json", index)
            extra(tar)

        return build

    def all_objects(tar: tarfile.TarFile) -> None:
        for k, v in objects.items():
            _member(tar, f"objects/{k}", v)

    return {
        "path traversal": with_index(lambda t: _member(t, "../../evil", b"x")),
        "traversal inside objects/": with_index(lambda t: _member(t, "objects/../evil", b"x")),
        "absolute path": with_index(lambda t: _member(t, "/tmp/evil", b"x")),
        "nested object path": with_index(lambda t: _member(t, f"objects/a/{oid}", blob)),
        "unknown member": with_index(lambda t: _member(t, "README", b"hi")),
        "symlink": with_index(
            lambda t: _member(t, f"objects/{oid}", b"", type=tarfile.SYMTYPE, linkname="/etc")
        ),
        "hard link": with_index(
            lambda t: _member(t, f"objects/{oid}", b"", type=tarfile.LNKTYPE, linkname="x")
        ),
        "directory": with_index(lambda t: _member(t, "objects", b"", type=tarfile.DIRTYPE)),
        "device": with_index(lambda t: _member(t, f"objects/{oid}", b"", type=tarfile.CHRTYPE)),
        "object not in the index": with_index(lambda t: _member(t, "objects/" + "a" * 32, b"x")),
        "object twice": with_index(lambda t: (all_objects(t), all_objects(t))),
        "wrong content": with_index(
            lambda t: _member(t, f"objects/{oid}", bytes([blob[0] ^ 1]) + blob[1:])
        ),
        "wrong size": with_index(lambda t: _member(t, f"objects/{oid}", blob + b"!")),
        "missing object": with_index(lambda t: None),
        "index not first": lambda t: (all_objects(t), _member(t, "index.json", index)),
        "two indexes": with_index(lambda t: _member(t, "index.json", index)),
        "index not JSON": lambda t: _member(t, "index.json", b"\x00not json"),
        "index of another type": lambda t: _member(
            t, "index.json", index.replace(b"lanterne-bundle/v2", b"other/v1")
        ),
        "index with a hostile id": lambda t: _member(
            t, "index.json", _index({"../x": b"x"}, sources)
        ),
        "index listing a stray object": lambda t: _member(
            t, "index.json", _index({**objects, "b" * 32: b"x"}, sources)
        ),
        "index with a malformed source": lambda t: _member(
            t, "index.json", _index(objects, [{"id": "../../x"}])
        ),
        "empty": lambda t: None,
    }


CASES = list(
    _hostile_cases([], {"0" * 32: b"LANTERNE"})  # names only; the fixture builds the real ones
)


@pytest.mark.parametrize("case", CASES)
def test_hostile_bundles_are_refused_and_change_nothing(
    case: str,
    good: tuple[list[object], dict[str, bytes]],
    airgap: Vault,
    tmp_path: Path,
) -> None:
    sources, objects = good
    path = _write(tmp_path / "hostile.tar", _hostile_cases(sources, objects)[case])
    before = sorted(p.name for p in airgap.root.rglob("*"))
    with pytest.raises(BundleRejected):
        bundle.import_bundle(airgap, path, MINE)
    assert sorted(p.name for p in airgap.root.rglob("*")) == before
    assert airgap.source_ids() == []
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()


def test_not_a_tar_and_truncated(
    good: tuple[list[object], dict[str, bytes]], airgap: Vault, tmp_path: Path
) -> None:
    sources, objects = good
    junk = tmp_path / "junk"
    junk.write_bytes(b"this is not a tar file at all" * 100)
    with pytest.raises(BundleRejected):
        bundle.import_bundle(airgap, junk, MINE)

    def build(tar: tarfile.TarFile) -> None:
        _member(tar, "index.json", _index(objects, sources))
        for k, v in objects.items():
            _member(tar, f"objects/{k}", v)

    whole = _tar(build)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(_signed(whole[: len(whole) // 2 + 700]))  # signed, but the tar is cut
    with pytest.raises(BundleRejected):
        bundle.import_bundle(airgap, cut, MINE)
    assert airgap.source_ids() == []
    assert not list(airgap.objects_dir.iterdir())


def test_oversized_index_is_refused_before_it_is_read(
    airgap: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle, "MAX_INDEX_BYTES", 1000)
    path = _write(tmp_path / "big.tar", lambda t: _member(t, "index.json", b" " * 2000))
    with pytest.raises(BundleRejected, match="too large"):
        bundle.import_bundle(airgap, path, MINE)


# --- forged and altered bundles ----------------------------------------------------


def _genuine_parts(
    good: tuple[list[object], dict[str, bytes]],
) -> bytes:
    sources, objects = good

    def build(tar: tarfile.TarFile) -> None:
        _member(tar, "index.json", _index(objects, sources))
        for k, v in objects.items():
            _member(tar, f"objects/{k}", v)

    return _tar(build)


def _refused_untouched(airgap: Vault, path: Path, match: str) -> None:
    before = sorted(p.name for p in airgap.root.rglob("*"))
    with pytest.raises(BundleRejected, match=match):
        bundle.import_bundle(airgap, path, MINE, delete=True)
    assert sorted(p.name for p in airgap.root.rglob("*")) == before
    assert airgap.source_ids() == []


def test_a_bundle_forged_with_public_keys_only_is_refused(
    good: tuple[list[object], dict[str, bytes]], airgap: Vault, tmp_path: Path
) -> None:
    """The server (or whoever holds the public keys) builds a perfect bundle: its envelopes
    decrypt, its index is well formed. Without the journalist's signing key it is refused,
    whether unsigned, signed by another key, or with an empty signature."""
    payload = _genuine_parts(good)
    unsigned = tmp_path / "unsigned.tar"
    unsigned.write_bytes(payload)  # the old, unsigned format
    _refused_untouched(airgap, unsigned, "unsigned bundle")
    other = tmp_path / "other.tar"
    other.write_bytes(_signed(payload, nacl.signing.SigningKey.generate()))
    _refused_untouched(airgap, other, "not signed by your signing key")
    zero = tmp_path / "zero.tar"
    zero.write_bytes(bundle.MAGIC + bytes(64) + payload)
    _refused_untouched(airgap, zero, "not signed by your signing key")
    short = tmp_path / "short.tar"
    short.write_bytes(bundle.MAGIC + b"x")
    _refused_untouched(airgap, short, "cut short|not signed")
    # The same bytes, signed by the journalist: accepted (the refusals were the signature's).
    mine = tmp_path / "mine.tar"
    mine.write_bytes(_signed(payload))
    assert bundle.import_bundle(airgap, mine, MINE).sources == 1


def test_a_tampered_bundle_is_refused(online: Vault, airgap: Vault, tmp_path: Path) -> None:
    """Any byte changed after signing (index, object, padding, signature) or appended: refused."""
    r = [journalist().decryption.recipient]
    built = build_source(r, [("m", [("f", b"F" * 3000, "")])])
    store(online, built)
    path = tmp_path / "b.tar"
    bundle.write_bundle(online, path, [o.id for o in online.all_objects()], "2026-11-26", SIGNING)
    data = path.read_bytes()
    index_at = data.index(b'"created_on"')
    for label, altered in {
        "index day": data.replace(b"2026-11-26", b"2026-11-25", 1),
        "index byte": data[:index_at] + b"X" + data[index_at + 1 :],
        "object byte": data[:-2000] + bytes([data[-2000] ^ 1]) + data[-1999:],
        "signature": data[:20] + bytes([data[20] ^ 1]) + data[21:],
        "trailing data": data + b"\0" * 512,
        "cut": data[:-512],
    }.items():
        assert altered != data, label
        hostile = tmp_path / f"{label}.tar"
        hostile.write_bytes(altered)
        _refused_untouched(airgap, hostile, "not signed by your signing key")
    assert bundle.import_bundle(airgap, path, MINE).sources == 1


def test_a_bundle_that_changes_between_reads_is_refused(
    good: tuple[list[object], dict[str, bytes]],
    airgap: Vault,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lying medium: the signature pass sees genuine bytes, the import pass other ones."""
    genuine = _signed(_genuine_parts(good))
    sources, objects = good
    oid, blob = next(iter(objects.items()))
    forged_objects = {oid: bytes([blob[0] ^ 1]) + blob[1:]}

    def build(tar: tarfile.TarFile) -> None:
        _member(tar, "index.json", _index(forged_objects, sources))
        for k, v in forged_objects.items():
            _member(tar, f"objects/{k}", v)

    forged = genuine[: bundle.HEADER_SIZE] + _tar(build)
    path = tmp_path / "b.tar"
    path.write_bytes(genuine)
    real_open = bundle._open_regular

    def swapping_open(p: Path) -> io.BufferedReader:
        raw = real_open(p)
        real_seek = raw.seek

        def seek(offset: int, whence: int = 0) -> int:
            path.write_bytes(forged)  # the medium answers differently the second time
            return real_seek(offset, whence)

        raw.seek = seek  # type: ignore[method-assign]
        return raw  # type: ignore[return-value]

    monkeypatch.setattr(bundle, "_open_regular", swapping_open)
    _refused_untouched(airgap, path, "changed while it was being read")


def test_a_fifo_is_not_read(airgap: Vault, tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.tar"
    os.mkfifo(fifo)
    _refused_untouched(airgap, fifo, "not a regular file")
