"""`lanterne clean`: planted metadata is gone, content survives, originals are untouched.

The oracle is double: a deep scan of the cleaned bytes (every zip member,
every PDF object and stream, decompressed PNG chunks) and exiftool. Both must
find none of the tokens the corpus planted.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import docx
import pikepdf
import pytest
from odf import opendocument, teletype
from odf.text import P
from PIL import Image

import journalist_cli.cleaning as cleaning
from journalist_cli.cleaning import images, office, safexml
from journalist_cli.cleaning.detect import NOTHING_TO_CLEAN
from journalist_cli.cleaning.limits import DEFAULT_LIMITS
from journalist_cli.cleaning.report import Findings
from tests import metadata_corpus as corpus
from tests.cli_helpers import run

KINDS = ["jpeg", "png", "pdf", "docx", "odt", "mp3"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cleaned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Build the corpus once, clean it with the real console script, keep everything."""
    base = tmp_path_factory.mktemp("corpus")
    files = corpus.build(base / "in")
    before = {f.path: sha256(f.path) for f in files}
    result = run("clean", *[f.path for f in files], "--out", base / "out", "--json")
    return {
        "files": {f.kind: f for f in files},
        "before": before,
        "result": result,
        "out": base / "out",
        "json": json.loads(result.stdout),
    }


def output_of(cleaned: dict, kind: str) -> Path:
    return cleaned["out"] / cleaned["files"][kind].path.name


def report_of(cleaned: dict, kind: str) -> dict:
    name = str(cleaned["files"][kind].path)
    return next(r for r in cleaned["json"]["files"] if r["source"] == name)


def test_exiftool_and_mat2_are_installed() -> None:
    # The oracle and the benchmark baseline: a missing tool is a failure, not a skip.
    assert shutil.which("exiftool"), "install libimage-exiftool-perl (scripts/bootstrap.sh)"
    assert shutil.which("mat2"), "install mat2 (scripts/bootstrap.sh)"


def test_mat2_is_installed_by_the_runtime_setup_not_only_the_tests() -> None:
    """`scripts/demo.sh` runs bootstrap.sh without --test: cleaning must work the same."""
    import re

    script = (Path(__file__).parent.parent / "scripts" / "bootstrap.sh").read_text()
    [runtime] = re.findall(r"^debs=\((.*)\)$", script, re.MULTILINE)
    assert "mat2" in runtime.split()


def test_a_wav_without_ffmpeg_says_what_to_install(tmp_path: Path) -> None:
    import wave

    src = tmp_path / "call.wav"
    with wave.open(str(src), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 800)
    report = cleaning.clean_file(src, tmp_path / "out")
    if shutil.which("ffmpeg"):
        assert report.ok, report.reason
    else:
        assert report.error_kind == "unsupported" and "install it" in report.error


def test_the_corpus_really_carries_every_token(tmp_path: Path) -> None:
    for item in corpus.build(tmp_path):
        assert corpus.deep_scan(item.path, item.tokens) >= set(item.tokens), item.path
    gps = corpus.exiftool_scan(tmp_path / "photo.jpg", [])
    assert any(key.startswith("<GPS") for key in gps)


def test_the_batch_succeeds_and_reports_every_file(cleaned: dict) -> None:
    result = cleaned["result"]
    assert result.returncode == 0, result.stderr
    reports = cleaned["json"]["files"]
    assert [r["status"] for r in reports] == ["cleaned"] * len(KINDS)
    assert cleaned["json"]["failed"] == 0
    for kind in KINDS:
        assert output_of(cleaned, kind).is_file()
        assert report_of(cleaned, kind)["output"] == str(output_of(cleaned, kind))


@pytest.mark.parametrize("kind", KINDS)
def test_no_planted_token_survives_the_deep_scan(cleaned: dict, kind: str) -> None:
    item = cleaned["files"][kind]
    assert corpus.deep_scan(output_of(cleaned, kind), item.tokens) == set()


@pytest.mark.parametrize("kind", KINDS)
def test_exiftool_finds_no_planted_token_and_no_gps(cleaned: dict, kind: str) -> None:
    item = cleaned["files"][kind]
    assert corpus.exiftool_scan(output_of(cleaned, kind), item.tokens) == set()


def test_originals_are_never_modified(cleaned: dict) -> None:
    for path, digest in cleaned["before"].items():
        assert sha256(path) == digest


def test_image_pixels_are_identical(cleaned: dict) -> None:
    for kind in ("jpeg", "png"):
        original, out = cleaned["files"][kind].path, output_of(cleaned, kind)
        with Image.open(original) as a, Image.open(out) as b:
            assert a.size == b.size
            assert a.convert("RGB").tobytes() == b.convert("RGB").tobytes()


def test_pdf_text_and_pages_survive(cleaned: dict) -> None:
    def text(path: Path) -> str:
        return subprocess.run(
            ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout

    original, out = cleaned["files"]["pdf"].path, output_of(cleaned, "pdf")
    assert corpus.PDF_TEXT in text(out)
    assert text(out) == text(original)
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 1
        assert "/Info" not in pdf.trailer
        assert "/Annots" not in pdf.pages[0].obj


def test_docx_text_is_the_accepted_version(cleaned: dict) -> None:
    document = docx.Document(str(output_of(cleaned, "docx")))
    paragraphs = [p.text for p in document.paragraphs if p.text]
    assert paragraphs == corpus.DOCX_TEXT
    assert document.core_properties.author == ""
    assert len(document.inline_shapes) == 1  # the picture is still there
    with zipfile.ZipFile(output_of(cleaned, "docx")) as archive:
        names = archive.namelist()
        body = archive.read("word/document.xml")
    assert not any("comments" in n or n.startswith(("docProps/", "customXml/")) for n in names)
    assert b"w:rsid" not in body and b"w:ins " not in body and b"w:del " not in body
    # Office resolves mc:Ignorable by prefix: the original prefixes must survive.
    assert b"xmlns:w=" in body and b"<w:document" in body


def test_odt_text_survives_without_annotations(cleaned: dict) -> None:
    document = opendocument.load(str(output_of(cleaned, "odt")))
    texts = [teletype.extractText(p) for p in document.getElementsByType(P)]
    assert texts == corpus.ODT_TEXT
    with zipfile.ZipFile(output_of(cleaned, "odt")) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert "meta.xml" not in archive.namelist()
        assert b"rsid" not in archive.read("content.xml")


def test_mp3_keeps_exactly_the_audio_frames(cleaned: dict) -> None:
    assert output_of(cleaned, "mp3").read_bytes() == cleaned["files"]["mp3"].audio_frames


def test_reports_name_what_was_found_kept_and_risky(cleaned: dict) -> None:
    photo = report_of(cleaned, "jpeg")
    categories = {f["category"] for f in photo["removed"]}
    assert {"gps", "device", "author", "software", "comment", "thumbnail"} <= categories
    assert any("LNTCANARYJpegSerial" in f["value"] for f in photo["removed"])
    pdf = report_of(cleaned, "pdf")
    assert {r["risk"] for r in pdf["risks"]} >= {"javascript", "embedded_file", "remote_reference"}
    assert {"javascript", "embedded_file", "annotation", "form_data"} <= {
        f["category"] for f in pdf["removed"]
    }
    memo = report_of(cleaned, "docx")
    kept = memo["not_removed"]
    assert any(f["category"] == "hidden_text" and "Hidden note" in f["value"] for f in kept)
    assert {"tracked_change", "comment"} <= {f["category"] for f in memo["removed"]}
    assert any(f["category"] == "gps" for f in memo["removed"])  # in the embedded picture
    assert {"hidden_content"} <= {r["risk"] for r in memo["risks"]}


def test_the_table_output_lists_findings_and_the_summary(tmp_path: Path) -> None:
    photo = corpus.make_jpeg(tmp_path / "photo.jpg")
    result = run("clean", photo.path, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "gps" in out and "removed" in out
    assert "1 cleaned, 0 failed" in out


def test_type_comes_from_content_not_name(tmp_path: Path) -> None:
    photo = corpus.make_jpeg(tmp_path / "photo.jpg", tail=False)
    disguised = tmp_path / "invoice.pdf"
    photo.path.rename(disguised)
    report = cleaning.clean_file(disguised, tmp_path / "out")
    assert report.ok, report.error
    assert report.mime == "image/jpeg"
    assert (tmp_path / "out" / "invoice.pdf").read_bytes()[:3] == b"\xff\xd8\xff"


def test_existing_output_is_never_replaced_and_the_batch_goes_on(tmp_path: Path) -> None:
    first = corpus.make_png(tmp_path / "a.png")
    second = corpus.make_mp3(tmp_path / "b.mp3")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"already here")
    result = run("clean", first.path, second.path, "--out", out, "--json")
    assert result.returncode == 1
    assert b"could not be cleaned" in result.stderr
    reports = json.loads(result.stdout)["files"]
    assert reports[0]["error_kind"] == "output" and "already exists" in reports[0]["error"]
    assert reports[1]["status"] == "cleaned"
    assert (out / "a.png").read_bytes() == b"already here"


def test_cleaning_into_the_source_directory_refuses(tmp_path: Path) -> None:
    photo = corpus.make_png(tmp_path / "a.png")
    digest = sha256(photo.path)
    report = cleaning.clean_file(photo.path, tmp_path)
    assert not report.ok and report.error_kind == "output"
    assert sha256(photo.path) == digest
    with pytest.raises(cleaning.OutputError):
        report.raise_for_error()


def test_flatten_turns_pdf_pages_into_pixels(tmp_path: Path) -> None:
    item = corpus.make_pdf(tmp_path / "report.pdf")
    report = cleaning.clean_file(item.path, tmp_path / "out", flatten=True)
    assert report.ok, report.error
    assert report.flattened
    out = tmp_path / "out" / "report.pdf"
    assert corpus.deep_scan(out, item.tokens) == set()
    assert corpus.exiftool_scan(out, item.tokens) == set()
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 1
        resources = pdf.pages[0].obj.Resources
        assert "/Font" not in resources and list(resources.XObject.keys()) == ["/Im0"]
    text = subprocess.run(
        ["pdftotext", str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert text.strip() == ""


def test_flatten_reencodes_images_and_cleans_other_types_normally(tmp_path: Path) -> None:
    photo = corpus.make_jpeg(tmp_path / "photo.jpg")
    memo = corpus.make_odt(tmp_path / "notes.odt")
    result = run("clean", photo.path, memo.path, "--out", tmp_path / "out", "--flatten", "--json")
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout)["files"]
    assert reports[0]["flattened"] is True
    assert reports[1]["flattened"] is False
    assert any(f["where"] == "--flatten" for f in reports[1]["not_removed"])
    with Image.open(tmp_path / "out" / "photo.jpg") as image:
        assert image.size == (96, 64)
    assert corpus.deep_scan(tmp_path / "out" / "photo.jpg", photo.tokens) == set()


def test_mat2_backend_handles_a_format_without_a_native_cleaner(tmp_path: Path) -> None:
    """mat2 is a runtime dependency (scripts/bootstrap.sh installs it): a PPM comment goes."""
    picture = tmp_path / "scan"
    picture.write_bytes(b"P3\n# scanned by jdoe-LNTPPM\n1 1\n255\n0 0 0\n")
    report = cleaning.clean_file(picture, tmp_path / "out")
    assert report.ok, report.error
    assert report.backend == "mat2" and report.mime == "image/x-portable-pixmap"
    assert report.status == cleaning.Status.CLEANED
    assert b"LNTPPM" not in (tmp_path / "out" / "scan").read_bytes()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("note.txt", b"just words, no container\n"),
        ("notes.md", b"# Title\n\nSome *words*.\n"),
        ("table.csv", b"name,amount\nA,1\nB,2\n"),
        ("data.json", b'{"a": [1, 2]}\n'),
    ],
)
def test_formats_without_metadata_are_nothing_to_clean(
    tmp_path: Path, name: str, data: bytes
) -> None:
    """Text, Markdown, CSV and JSON carry no metadata: copied as they are, reported as
    "nothing to clean", not failures, and without needing mat2."""
    src = tmp_path / name
    src.write_bytes(data)
    report = cleaning.clean_file(src, tmp_path / "out")
    assert report.status == cleaning.Status.NOTHING_TO_CLEAN, report.error
    assert report.ok and report.mime in NOTHING_TO_CLEAN and report.backend != "mat2"
    assert "carries no metadata" in report.reason
    assert (tmp_path / "out" / name).read_bytes() == data


def test_invisible_characters_in_text_are_flagged(tmp_path: Path) -> None:
    src = tmp_path / "leak.txt"
    src.write_text("The memo\u200b was\u200d leaked\u2066.\n", encoding="utf-8")
    report = cleaning.clean_file(src, tmp_path / "out")
    assert report.status == cleaning.Status.NOTHING_TO_CLEAN
    [kept] = report.not_removed
    assert kept.value.startswith("3 invisible characters")
    assert [r.risk for r in report.risks] == [cleaning.Risk.HIDDEN_CONTENT]


def test_jpeg_cleaning_is_lossless_and_keeps_orientation() -> None:
    exif, _ = corpus.planted_exif("Rot")
    exif[0x0112] = 6
    raw = io.BytesIO()
    corpus.picture().save(raw, format="JPEG", exif=exif, quality=75)
    found = Findings()
    out = images.clean_bytes(raw.getvalue(), "jpeg", DEFAULT_LIMITS, found)
    with Image.open(io.BytesIO(out)) as image:
        assert dict(image.getexif()) == {0x0112: 6}
        with Image.open(raw) as original:
            assert image.tobytes() == original.tobytes()
    assert any(f.where == "EXIF Orientation" and not f.removed for f in found.items)


def test_xml_writer_keeps_prefixes_and_declarations() -> None:
    source = (
        b'<?xml version="1.0"?><w:document xmlns:w="urn:w" xmlns:w14="urn:w14" '
        b'xmlns:mc="urn:mc" mc:Ignorable="w14"><w:body><w:t xml:space="preserve">'
        b"a &amp; b</w:t></w:body></w:document>"
    )
    doc = safexml.parse(source, name="t", max_depth=10)
    out = safexml.serialize(doc)
    assert b'xmlns:w14="urn:w14"' in out  # unused by elements, named by mc:Ignorable
    assert b'<w:t xml:space="preserve">a &amp; b</w:t>' in out
    assert safexml.parse(out, name="t", max_depth=10).root.tag == "{urn:w}document"


def test_cleaned_office_files_need_no_second_pass(cleaned: dict) -> None:
    for kind in ("docx", "odt"):
        data = output_of(cleaned, kind).read_bytes()
        assert office.leftovers(data, kind, DEFAULT_LIMITS) == []


def test_public_surface_and_errors_explain_themselves() -> None:
    assert sorted(cleaning.__all__) == sorted(
        [
            "DEFAULT_LIMITS",
            "Category",
            "CleanReport",
            "CleaningError",
            "Finding",
            "HostileFile",
            "Limits",
            "MalformedFile",
            "OutputError",
            "Risk",
            "RiskFlag",
            "Status",
            "UnsupportedType",
            "VerificationFailed",
            "WorkerFailed",
            "clean_file",
            "clean_files",
            "render_table",
            "sandbox_works",
            "summarise",
        ]
    )
    for cls in (
        cleaning.UnsupportedType,
        cleaning.MalformedFile,
        cleaning.HostileFile,
        cleaning.WorkerFailed,
        cleaning.OutputError,
        cleaning.VerificationFailed,
    ):
        assert issubclass(cls, cleaning.CleaningError)
        assert cls.__doc__ and len(cls.__doc__) > 30


def test_report_json_round_trips(cleaned: dict) -> None:
    data = report_of(cleaned, "pdf")
    again = cleaning.CleanReport.from_json(data).to_json()
    assert again == data
