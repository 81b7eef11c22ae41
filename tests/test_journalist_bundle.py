"""Air-gap bundles: a round trip, and hostile bundles refused with nothing imported."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from journalist_cli import bundle, receive
from journalist_cli.vault import Vault
from journalist_cli.workflow_errors import BundleRejected
from tests.journalist_fixtures import add_items, build_source, journalist, store


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
    summary = bundle.write_bundle(online, path, everything, "2026-11-26")
    assert (summary.sources, summary.objects) == (2, len(first.blobs) + len(second.blobs))
    imported = bundle.import_bundle(airgap, path)
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
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "", "", 0)


def test_incremental_bundle_and_mirrored_deletion(
    online: Vault, airgap: Vault, tmp_path: Path
) -> None:
    r = [journalist().decryption.recipient]
    a, b = build_source(r, [("a", [])]), build_source(r, [("b", [])])
    store(online, a)
    bundle.write_bundle(online, tmp_path / "1.tar", list(a.blobs), "2026-11-26")
    bundle.import_bundle(airgap, tmp_path / "1.tar")
    store(online, b)
    online.delete_source(a.id)
    # Only b's new objects travel; a is gone from the index, so it goes here too.
    bundle.write_bundle(online, tmp_path / "2.tar", list(b.blobs), "2026-11-27")
    bundle.import_bundle(airgap, tmp_path / "2.tar")
    assert airgap.source_ids() == [b.id]
    assert not any(airgap.object_path(o).exists() for o in a.blobs)


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
            "type": "lanterne-bundle/v1",
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
    sources = [bundle._source_doc(online.detail(built.id))]
    return sources, dict(built.blobs)


def _write(path: Path, build: Callable[[tarfile.TarFile], None]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        build(tar)
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
            t, "index.json", index.replace(b"lanterne-bundle/v1", b"other/v1")
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
        bundle.import_bundle(airgap, path)
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
        bundle.import_bundle(airgap, junk)

    def build(tar: tarfile.TarFile) -> None:
        _member(tar, "index.json", _index(objects, sources))
        for k, v in objects.items():
            _member(tar, f"objects/{k}", v)

    whole = _write(tmp_path / "whole.tar", build).read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[: len(whole) // 2 + 700])
    with pytest.raises(BundleRejected):
        bundle.import_bundle(airgap, cut)
    assert airgap.source_ids() == []
    assert not list(airgap.objects_dir.iterdir())


def test_oversized_index_is_refused_before_it_is_read(
    airgap: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle, "MAX_INDEX_BYTES", 1000)
    path = _write(tmp_path / "big.tar", lambda t: _member(t, "index.json", b" " * 2000))
    with pytest.raises(BundleRejected, match="too large"):
        bundle.import_bundle(airgap, path)
