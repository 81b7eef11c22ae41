"""Hostile files: each gets a clear error, the batch goes on, nothing hangs or crashes."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

import journalist_cli.cleaning as cleaning
from journalist_cli.cleaning import Limits
from tests import metadata_corpus as corpus
from tests.cli_helpers import run


def png_bomb(path: Path, side: int = 30000) -> Path:
    """A small PNG that claims side x side pixels (its rows inflate to ~900 MB)."""

    def chunk(ctype: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + ctype
            + body
            + struct.pack(">I", zlib.crc32(ctype + body))
        )

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compressobj(9)
    data = b"".join(rows.compress(b"\x00" * (side + 1)) for _ in range(64)) + rows.flush()
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def docx_with(
    path: Path,
    replace: dict[str, bytes] | None = None,
    extra: list[tuple[str, bytes]] | None = None,
) -> Path:
    """A valid DOCX with some members replaced or added."""
    source = corpus.make_docx(path.with_suffix(".src"))
    out = io.BytesIO()
    with (
        zipfile.ZipFile(source.path) as old,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new,
    ):
        for info in old.infolist():
            new.writestr(info.filename, (replace or {}).get(info.filename, old.read(info)))
        for name, data in extra or []:
            new.writestr(name, data)
    source.path.unlink()
    path.write_bytes(out.getvalue())
    return path


def clean_one(path: Path, tmp_path: Path, **kwargs: object) -> cleaning.CleanReport:
    report = cleaning.clean_file(path, tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "out" / path.name).exists() or report.ok
    return report


def test_pixel_bomb_is_refused_and_the_batch_goes_on(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png")
    good = corpus.make_jpeg(tmp_path / "good.jpg")
    result = run("clean", bomb, good.path, "--out", tmp_path / "out", "--json")
    assert result.returncode == 1
    reports = json.loads(result.stdout)["files"]
    assert reports[0]["error_kind"] == "hostile"
    assert "pixels" in reports[0]["error"]
    assert reports[1]["status"] == "cleaned"
    assert not (tmp_path / "out" / "bomb.png").exists()
    assert (tmp_path / "out" / "good.jpg").is_file()


def test_zip_bomb_member_is_refused(tmp_path: Path) -> None:
    bomb = docx_with(tmp_path / "bomb.docx", extra=[("word/media/zeros.bin", b"\0" * 40_000_000)])
    report = clean_one(bomb, tmp_path)
    assert report.error_kind == "hostile"
    assert "zip bomb" in report.error


def test_too_many_zip_members_are_refused(tmp_path: Path) -> None:
    many = docx_with(tmp_path / "many.docx", extra=[(f"x/{n}.xml", b"<a/>") for n in range(2100)])
    report = clean_one(many, tmp_path)
    assert report.error_kind == "hostile"
    assert "zip members" in report.error


def test_xml_entity_expansion_is_refused(tmp_path: Path) -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/'
        b'main"><w:body><w:p><w:r><w:t>&c;</w:t></w:r></w:p></w:body></w:document>'
    )
    bomb = docx_with(tmp_path / "laughs.docx", replace={"word/document.xml": laughs})
    report = clean_one(bomb, tmp_path)
    assert report.error_kind == "hostile"
    assert "DTD or entities" in report.error


def test_external_entity_is_refused(tmp_path: Path) -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<office:document-meta xmlns:office='urn:oasis:names:tc:opendocument:xmlns:office:"
        b"1.0'>&x;</office:document-meta>"
    )
    item = corpus.make_odt(tmp_path / "src.odt")
    out = io.BytesIO()
    with zipfile.ZipFile(item.path) as old, zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            new.writestr(info, xxe if info.filename == "meta.xml" else old.read(info))
    target = tmp_path / "xxe.odt"
    target.write_bytes(out.getvalue())
    report = clean_one(target, tmp_path)
    assert report.error_kind == "hostile"


def test_deeply_nested_xml_is_refused(tmp_path: Path) -> None:
    deep = (
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        + b"<w:b>" * 50_000
        + b"</w:b>" * 50_000
        + b"</w:document>"
    )
    bomb = docx_with(tmp_path / "deep.docx", replace={"word/document.xml": deep})
    report = clean_one(bomb, tmp_path)
    assert report.error_kind == "hostile"
    assert "nested deeper" in report.error


def test_malformed_pdf_gets_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\n" + b"\xff" * 500)
    report = clean_one(broken, tmp_path)
    assert not report.ok
    assert report.error_kind == "malformed"


def test_deeply_nested_pdf_objects_do_not_crash(tmp_path: Path) -> None:
    item = corpus.make_pdf(tmp_path / "base.pdf")
    data = item.path.read_bytes()
    nested = b"[" * 100_000 + b"]" * 100_000
    deep = tmp_path / "deep.pdf"
    deep.write_bytes(data.replace(b"/Type /Catalog", b"/Type /Catalog /X " + nested, 1))
    report = clean_one(deep, tmp_path)
    # qpdf drops over-deep structures; either way the worker answers in time.
    assert report.ok or report.error_kind in ("malformed", "hostile")
    if report.ok:
        assert corpus.deep_scan(tmp_path / "out" / "deep.pdf", item.tokens) == set()


def test_truncated_jpeg_is_malformed(tmp_path: Path) -> None:
    photo = corpus.make_jpeg(tmp_path / "photo.jpg", tail=False)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(photo.path.read_bytes()[:700])
    report = clean_one(cut, tmp_path)
    assert report.error_kind == "malformed"


def test_a_zip_that_is_not_a_document_is_unsupported(tmp_path: Path) -> None:
    archive = tmp_path / "files.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "hello")
    report = clean_one(archive, tmp_path)
    assert report.error_kind == "unsupported"


def test_empty_file_is_unsupported(tmp_path: Path) -> None:
    empty = tmp_path / "empty.docx"
    empty.write_bytes(b"")
    report = clean_one(empty, tmp_path)
    assert report.error_kind == "unsupported"
    assert "empty" in report.error


def test_missing_input_is_reported_not_raised(tmp_path: Path) -> None:
    report = clean_one(tmp_path / "nope.pdf", tmp_path)
    assert not report.ok and "cannot read" in report.error


@pytest.mark.parametrize("sandbox", [False, True])
def test_the_worker_memory_limit_is_enforced(tmp_path: Path, sandbox: bool) -> None:
    # 49 Mpx is under the pixel cap, but its 147 MB of pixels are over this memory cap.
    big = tmp_path / "big.png"
    Image.new("RGB", (7000, 7000), (10, 20, 30)).save(big, compress_level=1)
    report = clean_one(
        big, tmp_path, limits=Limits(worker_memory=120 * 1024 * 1024), use_sandbox=sandbox
    )
    assert report.error_kind == "worker"
    assert "memory" in report.error
    assert cleaning.clean_file(big, tmp_path / "roomy", use_sandbox=sandbox).ok


def test_a_slow_worker_is_killed_at_the_timeout(tmp_path: Path) -> None:
    # Cleaning 49 Mpx takes about a second; the small files take milliseconds,
    # so with one file at a time each is judged by its own clock.
    big = tmp_path / "big.png"
    Image.new("RGB", (7000, 7000), (10, 20, 30)).save(big, compress_level=1)
    small = corpus.make_png(tmp_path / "small.png")
    reports = list(
        cleaning.clean_files(
            [big, small.path], tmp_path / "out", jobs=1, limits=Limits(worker_timeout=0.3)
        )
    )
    assert reports[0].error_kind == "worker"
    assert "gave up after 0.3 s" in reports[0].error
    assert reports[1].ok, reports[1].error
    assert not (tmp_path / "out" / "big.png").exists()


def test_bubblewrap_sandbox_is_used_when_it_works(tmp_path: Path) -> None:
    assert cleaning.sandbox_works(), "bubblewrap is installed by scripts/bootstrap.sh"
    item = corpus.make_png(tmp_path / "a.png")
    report = cleaning.clean_file(item.path, tmp_path / "out")
    assert report.ok, report.error
    assert report.sandbox == "bubblewrap+rlimits"
