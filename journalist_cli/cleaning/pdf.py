"""PDF: rebuild the document from its pages, then scrub every object.

The new file is made from an allow-list, not by deleting known bad keys from
the old one: only the pages (without annotations, actions, thumbnails or
piece info), their resources and a few catalog entries that change how the
pages look are copied. Document info, XMP, JavaScript, forms, attachments,
bookmarks and the structure tree are simply never copied. A walk over every
remaining object then removes per-object metadata and EXIF inside embedded
JPEGs, and the file is saved with a fixed document ID.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pikepdf

from journalist_cli.cleaning import jpeg, xmp
from journalist_cli.cleaning.errors import CleaningError, HostileFile, MalformedFile
from journalist_cli.cleaning.limits import Limits
from journalist_cli.cleaning.report import Category, Findings, Risk

_PAGE_KEEP = {
    "/Type",
    "/Parent",
    "/Resources",
    "/Contents",
    "/MediaBox",
    "/CropBox",
    "/BleedBox",
    "/TrimBox",
    "/ArtBox",
    "/Rotate",
    "/UserUnit",
    "/Group",
}
_CATALOG_KEEP = ("/PageLabels", "/OCProperties", "/Lang")
# Keys removed from every object that is still there after the rebuild.
_SCRUB = (
    "/Metadata",
    "/PieceInfo",
    "/AF",
    "/AA",
    "/A",
    "/OpenAction",
    "/JS",
    "/LastModified",
    "/StructParents",
    "/StructParent",
    "/Thumb",
    "/Ref",
    "/OPI",
)
_DOCINFO_CATEGORIES = {
    "/Author": Category.AUTHOR,
    "/Creator": Category.SOFTWARE,
    "/Producer": Category.SOFTWARE,
    "/CreationDate": Category.DATE,
    "/ModDate": Category.DATE,
    "/Title": Category.DESCRIPTION,
    "/Subject": Category.DESCRIPTION,
    "/Keywords": Category.DESCRIPTION,
}
_REMOTE_ACTIONS = {"/URI", "/GoToR", "/GoToE", "/SubmitForm", "/ImportData", "/Launch"}


def _open(path: Path, limits: Limits) -> pikepdf.Pdf:
    try:
        pdf = pikepdf.open(path)
    except pikepdf.PasswordError as exc:
        raise MalformedFile("the PDF is protected by a password; decrypt it first") from exc
    except (pikepdf.PdfError, OSError, ValueError, RuntimeError) as exc:
        raise MalformedFile(f"does not open as PDF ({exc})") from exc
    try:
        pages = len(pdf.pages)
        objects = len(pdf.objects)
    except (pikepdf.PdfError, RuntimeError) as exc:
        raise MalformedFile(f"the PDF page tree is broken ({exc})") from exc
    if pages > limits.max_pdf_pages:
        raise HostileFile(f"the PDF has {pages} pages (limit {limits.max_pdf_pages})")
    if objects > limits.max_pdf_objects:
        raise HostileFile(f"the PDF has {objects} objects (limit {limits.max_pdf_objects})")
    return pdf


def _walk(pdf: pikepdf.Pdf, limits: Limits) -> Iterator[Any]:
    """Every dictionary and stream: indirect objects and what they hold directly."""
    for obj in pdf.objects:
        stack: list[tuple[Any, int]] = [(obj, 0)]
        while stack:
            item, depth = stack.pop()
            if depth > limits.max_pdf_depth:
                raise HostileFile(f"PDF objects nested deeper than {limits.max_pdf_depth}")
            if isinstance(item, pikepdf.Dictionary | pikepdf.Stream):
                yield item
                children = item.values()
            elif isinstance(item, pikepdf.Array):
                children = list(item)
            else:
                continue
            for child in children:
                if isinstance(child, pikepdf.Object) and not child.is_indirect:
                    stack.append((child, depth + 1))


def _text(value: Any) -> str:
    try:
        return str(value)
    except (ValueError, TypeError, UnicodeDecodeError):
        return repr(value)


def _describe(pdf: pikepdf.Pdf, limits: Limits, findings: Findings) -> None:
    trailer = pdf.trailer
    if "/Info" in trailer and isinstance(trailer.Info, pikepdf.Dictionary):
        for key, value in trailer.Info.items():
            category = _DOCINFO_CATEGORIES.get(key, Category.OTHER)
            findings.found(category, f"Info {key[1:]}", _text(value))
    if "/ID" in trailer:
        findings.found(
            Category.IDENTIFIER,
            "trailer ID",
            "links this file to its original",
            note="replaced by a fixed ID",
        )
    root = pdf.Root
    if "/Metadata" in root and isinstance(root.Metadata, pikepdf.Stream):
        xmp.describe(bytes(root.Metadata.read_bytes()), findings, "XMP")
    if "/AcroForm" in root:
        _describe_form(root.AcroForm, findings)
    if "/Outlines" in root:
        findings.found(Category.OTHER, "bookmarks", "outline tree", note="not copied")
    if "/StructTreeRoot" in root:
        findings.found(
            Category.OTHER, "structure tree", "tags for accessibility", note="not copied"
        )
    if "/OCProperties" in root:
        findings.kept(
            Category.HIDDEN_TEXT,
            "optional content",
            "layers",
            "part of how pages look; hidden layers may hold content",
        )
        findings.risk(Risk.HIDDEN_CONTENT, "the PDF has optional content layers")
    annots: Counter[str] = Counter()
    authors: set[str] = set()
    seen_xmp = 0
    root_id = root.objgen
    for obj in _walk(pdf, limits):
        _describe_object(obj, findings, annots, authors)
        if "/Metadata" in obj and obj.objgen != root_id and seen_xmp < 10:
            meta = obj.Metadata
            if isinstance(meta, pikepdf.Stream):
                xmp.describe(bytes(meta.read_bytes()), findings, "object XMP")
                seen_xmp += 1
    for subtype, count in sorted(annots.items()):
        findings.found(Category.ANNOTATION, f"annotations {subtype}", f"{count}")
    for author in sorted(authors):
        findings.found(Category.AUTHOR, "annotation author", author)


def _name(value: Any) -> str:
    return str(value) if isinstance(value, pikepdf.Name) else ""


def _describe_object(obj: Any, findings: Findings, annots: Counter[str], authors: set[str]) -> None:
    kind = _name(obj.get("/Type"))
    action = _name(obj.get("/S"))
    if kind == "/EmbeddedFile" or "/EF" in obj:
        name = obj.get("/UF", obj.get("/F", "unnamed"))
        if kind != "/EmbeddedFile":
            findings.found(Category.EMBEDDED_FILE, "attachment", _text(name))
            findings.risk(Risk.EMBEDDED_FILE, f"attached file {_text(name)}")
            if (
                _text(name)
                .lower()
                .endswith(
                    (
                        ".exe",
                        ".bat",
                        ".cmd",
                        ".js",
                        ".vbs",
                        ".scr",
                        ".jar",
                        ".ps1",
                        ".sh",
                        ".app",
                        ".dll",
                    )
                )
            ):
                findings.risk(Risk.EXECUTABLE, f"attached program {_text(name)}")
    if action == "/JavaScript" or "/JS" in obj:
        findings.found(Category.JAVASCRIPT, "JavaScript action", _text(obj.get("/JS", ""))[:80])
        findings.risk(Risk.JAVASCRIPT, "the PDF runs JavaScript")
    if action == "/Launch":
        findings.risk(Risk.EXECUTABLE, f"launch action {_text(obj.get('/F', ''))}")
    if action in _REMOTE_ACTIONS and action != "/Launch":
        target = obj.get("/URI", obj.get("/F", ""))
        findings.found(Category.EXTERNAL_LINK, f"{action[1:]} action", _text(target))
        findings.risk(Risk.REMOTE_REFERENCE, f"{action[1:]} {_text(target)}")
    if kind == "/Annot" or ("/Subtype" in obj and "/Rect" in obj and "/P" in obj):
        annots[_name(obj.get("/Subtype"))[1:] or "Unknown"] += 1
        if "/T" in obj and obj.get("/FT") is None:
            authors.add(_text(obj.T))
    if "/PieceInfo" in obj:
        findings.found(Category.SOFTWARE, "piece info", "private data of the editing program")
    if "/Ref" in obj and obj.get("/Subtype") == "/Form":
        findings.risk(Risk.REMOTE_REFERENCE, "reference XObject pointing to another file")
    if isinstance(obj, pikepdf.Stream) and obj.get("/Filter") == "/DCTDecode":
        try:
            parsed = jpeg.parse(bytes(obj.read_raw_bytes()))
        except CleaningError:
            return
        markers = {s.marker for s in parsed.segments()}
        if jpeg.APP1 in markers or jpeg.APP13 in markers or jpeg.COM in markers:
            findings.found(Category.OTHER, "embedded JPEG", "EXIF, XMP or comments in an image")


def _describe_form(form: Any, findings: Findings) -> None:
    fields = list(form.get("/Fields", []))
    count = 0
    while fields and count < 500:
        field = fields.pop()
        count += 1
        if not isinstance(field, pikepdf.Dictionary):
            continue
        fields.extend(field.get("/Kids", []))
        if "/V" in field:
            findings.found(
                Category.FORM_DATA, f"form field {_text(field.get('/T', ''))}", _text(field.V)
            )
    if count:
        findings.found(
            Category.FORM_DATA,
            "form",
            f"{count} fields",
            note="removed with their values; --flatten keeps how they look",
        )


def _scrub(out: pikepdf.Pdf, limits: Limits) -> None:
    for obj in list(_walk(out, limits)):
        for key in _SCRUB:
            if key in obj:
                del obj[key]
        if isinstance(obj, pikepdf.Stream) and obj.get("/Filter") == "/DCTDecode":
            raw = bytes(obj.read_raw_bytes())
            try:
                cleaned = jpeg.rebuild(jpeg.parse(raw), exif=None, icc=None)
            except CleaningError:
                continue  # not parseable as JPEG: viewers will not show it either
            if cleaned != raw:
                obj.write(cleaned, filter=pikepdf.Name.DCTDecode)


def clean(src: Path, dst: Path, limits: Limits, findings: Findings) -> None:
    """Write a cleaned copy of the PDF at `src` to `dst`."""
    pdf = _open(src, limits)
    with pdf:
        try:
            _describe(pdf, limits, findings)
            out = pikepdf.new()
            for page in pdf.pages:
                for key in list(page.obj.keys()):
                    if key not in _PAGE_KEEP:
                        del page.obj[key]
            out.pages.extend(pdf.pages)
            for key in _CATALOG_KEEP:
                if key in pdf.Root:
                    out.Root[key] = out.copy_foreign(pdf.Root[key])
            _scrub(out, limits)
            out.save(dst, static_id=True, compress_streams=True)
        except (pikepdf.PdfError, RuntimeError, ValueError, TypeError) as exc:
            raise MalformedFile(f"the PDF could not be rebuilt ({exc})") from exc


def leftovers(path: Path, limits: Limits) -> list[str]:
    """Metadata a fresh look still finds in a cleaned PDF (should be none)."""
    pdf = _open(path, limits)
    remaining: list[str] = []
    with pdf:
        info = pdf.trailer.get("/Info")
        if isinstance(info, pikepdf.Dictionary) and len(info.keys()):
            remaining.append("document info dictionary")
        for key in ("/AcroForm", "/Names", "/Outlines", "/OpenAction", "/StructTreeRoot"):
            if key in pdf.Root:
                remaining.append(f"catalog {key}")
        for obj in _walk(pdf, limits):
            bad = [k for k in (*_SCRUB, "/Annots", "/EF") if k in obj]
            if _name(obj.get("/Type")) in ("/EmbeddedFile", "/Filespec", "/Annot"):
                bad.append(_name(obj.get("/Type")))
            if bad:
                remaining.append(f"object with {', '.join(bad)}")
    return remaining


def describe_file(path: Path, limits: Limits, findings: Findings) -> int:
    """Report what the PDF holds without writing anything; return its page count."""
    pdf = _open(path, limits)
    with pdf:
        try:
            _describe(pdf, limits, findings)
        except (pikepdf.PdfError, RuntimeError, ValueError, TypeError) as exc:
            raise MalformedFile(f"the PDF could not be read ({exc})") from exc
        return len(pdf.pages)
