"""Office and OpenDocument copies keep only the members known to be content.

Each hostile sample is built here with zipfile from a real corpus document:
sensitivity labels with tenant ids, unknown parts, stray files in picture
folders, embedded objects nobody can check, member names that climb out of
their folder. The copy must drop or report every one of them, and a file the
cleaner cannot vouch for is never reported as "cleaned".
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import docx
import pytest

import journalist_cli.cleaning as cleaning
from journalist_cli.cleaning import office
from tests import metadata_corpus as corpus
from tests.cli_helpers import run

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
LABEL = "f42aa342-8706-4288-bd11-ebb85995028c"
LABEL_INFO = (
    '<?xml version="1.0" encoding="utf-8" standalone="yes"?>'
    '<clbl:labelList xmlns:clbl="http://schemas.microsoft.com/office/2020/mipLabelMetadata">'
    f'<clbl:label id="{{{LABEL}}}" enabled="1" method="Standard" siteId="{{{TENANT}}}"'
    ' removed="0"/></clbl:labelList>'
).encode()
LABEL_REL = (
    b'<Relationship Id="rIdLbl" Type="http://schemas.microsoft.com/office/2020/02/'
    b'relationships/classificationlabels" Target="docMetadata/LabelInfo.xml"/>'
)
LABEL_TYPE = (
    b'<Override PartName="/docMetadata/LabelInfo.xml"'
    b' ContentType="application/vnd.ms-office.classificationlabels+xml"/>'
)


def _rebuild(
    source: Path,
    target: Path,
    *,
    edit: dict[str, bytes] | None = None,
    extra: list[tuple[str, bytes]] | None = None,
    patch: dict[str, tuple[bytes, bytes]] | None = None,
) -> Path:
    """A copy of the zip at ``source`` with members replaced, patched or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            data = (edit or {}).get(info.filename, old.read(info))
            if patch and info.filename in patch:
                before, after = patch[info.filename]
                assert before in data, (info.filename, before)
                data = data.replace(before, after, 1)
            new.writestr(info.filename, data)
        for name, data in extra or []:
            new.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    target.write_bytes(out.getvalue())
    return target


def _docx(tmp_path: Path, name: str, **changes: object) -> Path:
    source = corpus.make_docx(tmp_path / f"{name}.src").path
    return _rebuild(source, tmp_path / f"{name}.docx", **changes)  # type: ignore[arg-type]


def _members(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def _clean(path: Path, tmp_path: Path) -> tuple[cleaning.CleanReport, Path]:
    out = tmp_path / "out"
    return cleaning.clean_file(path, out), out / path.name


def test_sensitivity_labels_and_their_tenant_id_are_dropped_and_reported(tmp_path: Path) -> None:
    path = _docx(
        tmp_path,
        "labelled",
        extra=[("docMetadata/LabelInfo.xml", LABEL_INFO)],
        patch={
            "_rels/.rels": (b"</Relationships>", LABEL_REL + b"</Relationships>"),
            "[Content_Types].xml": (b"</Types>", LABEL_TYPE + b"</Types>"),
        },
    )
    report, copy = _clean(path, tmp_path)
    assert report.status == cleaning.Status.CLEANED, report.reason
    assert "docMetadata/LabelInfo.xml" not in _members(copy)
    raw = copy.read_bytes()
    with zipfile.ZipFile(copy) as archive:
        every_byte = b"".join(archive.read(n) for n in archive.namelist())
    for guid in (TENANT, LABEL):
        assert guid.encode() not in raw + every_byte
        assert any(guid in f.value for f in report.findings if f.removed), guid
    assert b"LabelInfo" not in every_byte  # no relationship or content type left pointing at it
    docx.Document(str(copy))  # still opens


def test_unknown_parts_and_stray_files_in_picture_folders_are_dropped(tmp_path: Path) -> None:
    path = _docx(
        tmp_path,
        "stray",
        extra=[
            ("word/media/notes.txt", b"source: LNTSTRAYMEDIA"),
            ("word/media/drawing.emf", b"\x01\x00\x00\x00LNTEMF made by jdoe"),
            ("word/secret.xml", b"<x>LNTUNKNOWNPART</x>"),
            ("extra/readme.txt", b"LNTEXTRA"),
            ("word/fonts/font1.odttf", b"LNTFONT"),
        ],
    )
    report, copy = _clean(path, tmp_path)
    assert report.status == cleaning.Status.CLEANED, report.reason
    names = _members(copy)
    dropped = {f.where for f in report.findings if f.removed}
    for stray in (
        "word/media/notes.txt",
        "word/media/drawing.emf",
        "word/secret.xml",
        "extra/readme.txt",
        "word/fonts/font1.odttf",
    ):
        assert stray not in names
        assert stray in dropped, stray
    assert (
        corpus.deep_scan(copy, ["LNTSTRAYMEDIA", "LNTEMF", "LNTUNKNOWNPART", "LNTEXTRA", "LNTFONT"])
        == set()
    )
    # The real picture stays (cleaned); every member left is one the keep-list names.
    assert "word/media/image1.jpg" in names
    assert all(office._OOXML_KEEP.fullmatch(n) for n in names), names
    docx.Document(str(copy))


def test_an_embedded_object_that_cannot_be_checked_is_not_reported_as_cleaned(
    tmp_path: Path,
) -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"LNTOLE author jdoe" + bytes(500)
    path = _docx(tmp_path, "ole", extra=[("word/embeddings/oleObject1.bin", ole)])
    report, copy = _clean(path, tmp_path)
    assert report.status == cleaning.Status.NOT_VOUCHED
    assert not report.ok and report.written
    assert "word/embeddings/oleObject1.bin" in report.reason
    # The copy exists (the rest was cleaned), and the CLI does not call it cleaned.
    assert copy.exists()
    done = run("clean", path, "--out", tmp_path / "cli", "--json")
    assert done.returncode == 1
    [entry] = json.loads(done.stdout)["files"]
    assert entry["status"] == "not vouched" and entry["unvouched"]
    table = run("clean", path, "--out", tmp_path / "cli2")
    assert b"0 cleaned" in table.stdout and b"not vouched" in table.stdout.lower()


@pytest.mark.parametrize(
    "name", ["../evil.txt", "word/../../evil.txt", "/etc/evil", "word\\evil.xml", "C:evil"]
)
def test_member_names_that_leave_their_folder_are_refused(tmp_path: Path, name: str) -> None:
    path = _docx(tmp_path, "climb", extra=[(name, b"LNTCLIMB")])
    assert name in _members(path)
    report, copy = _clean(path, tmp_path)
    assert report.status == cleaning.Status.FAILED
    assert "unsafe name" in report.error
    assert not copy.exists()


def test_duplicate_names_differing_only_by_case_are_refused(tmp_path: Path) -> None:
    path = _docx(tmp_path, "case", extra=[("WORD/document.xml", b"<x/>")])
    report, _copy = _clean(path, tmp_path)
    assert report.status == cleaning.Status.FAILED and "duplicate" in report.error


def test_odf_keeps_only_its_content_members(tmp_path: Path) -> None:
    source = corpus.make_odt(tmp_path / "src.odt").path
    path = _rebuild(
        source,
        tmp_path / "stray.odt",
        extra=[
            ("Pictures/readme.txt", b"LNTODFPIC"),
            ("manifest.rdf", b"<rdf>LNTRDF</rdf>"),
            ("secret.txt", b"LNTODFSECRET"),
            ("META-INF/extra.xml", b"<x>LNTMETAINF</x>"),
        ],
    )
    report, copy = _clean(path, tmp_path)
    assert report.status == cleaning.Status.CLEANED, report.reason
    names = _members(copy)
    assert all(office._ODF_KEEP.fullmatch(n) for n in names), names
    dropped = {f.where for f in report.findings if f.removed}
    assert {"Pictures/readme.txt", "manifest.rdf", "secret.txt", "META-INF/extra.xml"} <= dropped
    assert corpus.deep_scan(copy, ["LNTODFPIC", "LNTRDF", "LNTODFSECRET", "LNTMETAINF"]) == set()


XLSX = {
    "[Content_Types].xml": (
        b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        b'package/2006/content-types"><Default Extension="rels" ContentType="application/'
        b'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
        b'"application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName='
        b'"/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument'
        b'.spreadsheetml.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
        b"schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
        b'" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        b'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats'
        b'.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/'
        b'officeDocument/2006/relationships"><sheets><sheet name="Budget" sheetId="1" r:id='
        b'"rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
        b'schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target='
        b'"worksheets/sheet1.xml"/><Relationship Id="rId9" Type="http://schemas.openxmlformats'
        b'.org/officeDocument/2006/relationships/connections" Target="connections.xml"/>'
        b"</Relationships>"
    ),
    "xl/worksheets/sheet1.xml": (
        b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats'
        b'.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
        b"LNTCONTENT</t></is></c></row></sheetData></worksheet>"
    ),
    "xl/connections.xml": (
        b'<?xml version="1.0" encoding="UTF-8"?><connections xmlns="http://schemas.openxml'
        b'formats.org/spreadsheetml/2006/main"><connection id="1" name="q"><dbPr connection='
        b'"DSN=payroll;UID=LNTDBUSER;SERVER=fin-srv01"/></connection></connections>'
    ),
    "xl/customData/item.bin": b"LNTXLSXUNKNOWN",
}


def test_xlsx_keeps_its_sheets_and_drops_connections_and_unknown_parts(tmp_path: Path) -> None:
    path = tmp_path / "budget.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in XLSX.items():
            archive.writestr(name, data)
    report, copy = _clean(path, tmp_path)
    assert report.status == cleaning.Status.CLEANED, report.reason
    names = _members(copy)
    assert "xl/worksheets/sheet1.xml" in names
    assert "xl/connections.xml" not in names and "xl/customData/item.bin" not in names
    assert corpus.deep_scan(copy, ["LNTDBUSER", "LNTXLSXUNKNOWN"]) == set()
    assert corpus.deep_scan(copy, ["LNTCONTENT"]) == {"LNTCONTENT"}
    with zipfile.ZipFile(copy) as archive:
        assert b"connections.xml" not in archive.read("xl/_rels/workbook.xml.rels")


@pytest.mark.parametrize(
    "name",
    [
        "ppt/presentation.xml",
        "ppt/slides/slide12.xml",
        "ppt/slides/_rels/slide12.xml.rels",
        "ppt/slideLayouts/slideLayout3.xml",
        "ppt/notesSlides/notesSlide1.xml",
        "ppt/media/image4.png",
        "ppt/theme/theme1.xml",
        "word/header2.xml",
        "xl/sharedStrings.xml",
        "xl/drawings/vmlDrawing1.vml",
    ],
)
def test_the_keep_list_names_the_usual_parts(name: str) -> None:
    assert office._OOXML_KEEP.fullmatch(name)


@pytest.mark.parametrize(
    "name",
    ["docMetadata/LabelInfo.xml", "word/notes.txt", "ppt/slides/../x.xml", "customXml/item1.xml"],
)
def test_the_keep_list_names_nothing_else(name: str) -> None:
    assert not office._OOXML_KEEP.fullmatch(name)
