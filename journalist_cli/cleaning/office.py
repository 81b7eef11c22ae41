"""Office documents: OOXML (docx, xlsx, pptx) and ODF (odt, ods, odp).

Both are zips of XML. The zip is rewritten member by member: parts that only
hold metadata are dropped (and unlinked from relationships, content types and
the manifest), XML parts are parsed with defusedxml and scrubbed (revision
ids, comments, tracked changes accepted), embedded pictures go through the
image cleaner and embedded Office files through this one again. Hidden text,
speaker notes, hidden sheets and external links are content: they are kept
and flagged for a human to judge.
"""

from __future__ import annotations

import contextlib
import posixpath
import re
import xml.etree.ElementTree as ET  # trees only; parsing uses defusedxml
from collections.abc import Callable
from dataclasses import dataclass, field

from journalist_cli.cleaning import images, safexml, safezip
from journalist_cli.cleaning.detect import ODF_MIME, OOXML_MAIN
from journalist_cli.cleaning.errors import CleaningError, MalformedFile
from journalist_cli.cleaning.limits import Limits
from journalist_cli.cleaning.report import Category, Findings, Risk

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "http://schemas.openxmlformats.org/package/2006/content-types"
W14 = "http://schemas.microsoft.com/office/word/2010/wordml"
W15 = "http://schemas.microsoft.com/office/word/2012/wordml"
TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
DC = "http://purl.org/dc/elements/1.1/"
OOO = "http://openoffice.org/2009/office"
XLINK = "http://www.w3.org/1999/xlink"
PRESENTATION = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"

# OOXML parts dropped whole: (pattern, category, what to call it).
_OOXML_DROP: list[tuple[re.Pattern[str], Category, str]] = [
    (re.compile(p), c, w)
    for p, c, w in (
        (r"docProps/core\.xml", Category.AUTHOR, "core properties"),
        (r"docProps/app\.xml", Category.SOFTWARE, "application properties"),
        (r"docProps/custom\.xml", Category.OTHER, "custom properties"),
        (r"docProps/thumbnail\.[^/]+", Category.THUMBNAIL, "thumbnail"),
        (r"customXml/.*", Category.OTHER, "custom XML data (labels, server metadata)"),
        (r"(word|xl|ppt)/comments[^/]*\.xml", Category.COMMENT, "comments"),
        (r"word/people\.xml", Category.AUTHOR, "comment authors"),
        (r"xl/threadedComments/.*", Category.COMMENT, "threaded comments"),
        (r"xl/persons/.*", Category.AUTHOR, "comment authors"),
        (r"xl/revisions/.*|xl/usernames\.xml", Category.TRACKED_CHANGE, "revision log"),
        (r"ppt/comments/.*", Category.COMMENT, "comments"),
        (r"ppt/(commentAuthors|authors)\.xml", Category.AUTHOR, "comment authors"),
        (r".*/printerSettings/.*", Category.DEVICE, "printer settings"),
        (r"(word|xl|ppt)/webextensions/.*", Category.OTHER, "web add-ins"),
        (r"word/glossary/.*", Category.OTHER, "building blocks"),
        (r".*vbaProject\.bin|.*vbaData\.xml", Category.MACRO, "VBA macros"),
        (r".*/activeX/.*", Category.MACRO, "ActiveX controls"),
        (r"xl/connections\.xml", Category.EXTERNAL_LINK, "data connections (server and user)"),
        (r"(word|xl|ppt)/fonts/.*", Category.OTHER, "embedded fonts"),
        (r"ppt/changesInfos/.*|ppt/revisionInfo\.xml", Category.TRACKED_CHANGE, "revision log"),
        (r"ppt/tags/.*|word/customizations\.xml", Category.OTHER, "add-in data"),
    )
]
# Microsoft Purview sensitivity labels: the label's id and the organisation's
# tenant id (a GUID that names the employer), described then dropped.
_LABEL_INFO = "docMetadata/LabelInfo.xml"

# What an OOXML copy keeps: the parts that make up the document itself, each
# still scrubbed below. Everything else is dropped and named in the report.
_OOXML_KEEP = re.compile(
    r"""\[Content_Types\]\.xml|_rels/\.rels
    |(word|xl|ppt)/(.+/)?_rels/[^/]+\.rels
    |word/(document|styles|stylesWithEffects|settings|webSettings|fontTable|numbering
           |footnotes|endnotes)\.xml
    |word/(header|footer)\d+\.xml
    |(word|xl|ppt)/theme/theme\d+\.xml
    |(word|xl|ppt)/charts/(chart|style|colors)\d+\.xml
    |(word|xl|ppt)/diagrams/(data|layout|quickStyle|colors|drawing)\d+\.xml
    |(word|xl|ppt)/media/[^/]+
    |(word|xl|ppt)/embeddings/[^/]+
    |(xl|ppt)/drawings/(drawing\d+\.xml|vmlDrawing\d+\.vml)
    |xl/(workbook|styles|sharedStrings|calcChain)\.xml
    |xl/(worksheets|chartsheets|dialogsheets)/sheet\d+\.xml
    |xl/tables/table\d+\.xml
    |xl/pivotTables/pivotTable\d+\.xml
    |xl/pivotCache/pivotCache(Definition|Records)\d+\.xml
    |xl/externalLinks/externalLink\d+\.xml
    |ppt/(presentation|presProps|viewProps|tableStyles)\.xml
    |ppt/(slides|slideLayouts|slideMasters|notesSlides|notesMasters|handoutMasters)
        /[A-Za-z]+\d+\.xml""",
    re.VERBOSE,
)
_OOXML_DROP_ELEMENTS = {
    # Tracked changes: deleted and moved-away content goes, change records go.
    f"{{{W}}}{n}"
    for n in (
        "del",
        "moveFrom",
        "rPrChange",
        "pPrChange",
        "sectPrChange",
        "tblPrChange",
        "trPrChange",
        "tcPrChange",
        "tblGridChange",
        "numberingChange",
        "moveFromRangeStart",
        "moveFromRangeEnd",
        "moveToRangeStart",
        "moveToRangeEnd",
        "delText",
        "cellDel",
        "cellIns",
        "commentRangeStart",
        "commentRangeEnd",
        "commentReference",
        "rsids",
        "attachedTemplate",
        "docVars",
    )
} | {
    f"{{{W15}}}docId",
    f"{{{W14}}}docId",
    "{http://schemas.microsoft.com/office/spreadsheetml/2010/11/ac}absPath",
    "{http://schemas.microsoft.com/office/spreadsheetml/2014/revision}revisionPtr",
    "{http://schemas.microsoft.com/office/powerpoint/2010/main}creationId",
}
_OOXML_UNWRAP = {f"{{{W}}}ins", f"{{{W}}}moveTo"}
_OOXML_DROP_ATTRS = {
    f"{{{W14}}}paraId",
    f"{{{W14}}}textId",
    "{http://schemas.microsoft.com/office/spreadsheetml/2014/revision}uid",
}
_RSID = f"{{{W}}}rsid"


def _ooxml_drop_attr(key: str) -> bool:
    return key in _OOXML_DROP_ATTRS or key.startswith(_RSID)


_AUTO_FETCH_RELS = (
    "/attachedTemplate",
    "/oleObject",
    "/image",
    "/frame",
    "/subDocument",
    "/externalLinkPath",
    "/externalLink",
)

_ODF_DROP: list[tuple[re.Pattern[str], Category, str]] = [
    (re.compile(p), c, w)
    for p, c, w in (
        (r"(.*/)?meta\.xml", Category.AUTHOR, "document properties"),
        (r"(.*/)?settings\.xml", Category.DEVICE, "settings (printer name, view)"),
        (r"Thumbnails/.*", Category.THUMBNAIL, "thumbnail"),
        (r"Configurations2/.*", Category.OTHER, "user interface configuration"),
        (r"layout-cache", Category.OTHER, "layout cache"),
        (r"(Basic|Scripts)/.*", Category.MACRO, "macros"),
        (r"META-INF/(document|macro)signatures\.xml", Category.AUTHOR, "signatures"),
        (r"manifest\.rdf", Category.OTHER, "RDF metadata"),
    )
]
# What an ODF copy keeps; everything else is dropped and named in the report.
_ODF_KEEP = re.compile(
    r"""mimetype|content\.xml|styles\.xml|META-INF/manifest\.xml
    |Pictures/[^/]+|ObjectReplacements/Object\ \d+
    |Object\ \d+|Object\ \d+/(content|styles)\.xml""",
    re.VERBOSE,
)
# Folders whose members must be pictures the image cleaner handles.
_PICTURE_FOLDER = re.compile(r"(word|xl|ppt)/media/[^/]+|Pictures/[^/]+|ObjectReplacements/.*")
_ODF_DROP_ELEMENTS = {
    f"{{{TEXT}}}tracked-changes",
    f"{{{TEXT}}}change",
    f"{{{TEXT}}}change-start",
    f"{{{TEXT}}}change-end",
    f"{{{OFFICE}}}annotation",
    f"{{{OFFICE}}}annotation-end",
}
_ODF_DROP_ATTRS = {f"{{{OOO}}}rsid", f"{{{OOO}}}paragraph-rsid"}

_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF8", "gif"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
_ZIP_MAGIC = b"PK\x03\x04"
# Parts whose text a reader sees, where hidden text and hidden sheets or slides matter.
_CONTENT_PART = re.compile(
    r"word/(document|header\d*|footer\d*|footnotes|endnotes)\.xml|ppt/slides/[^/]+\.xml"
    r"|xl/workbook\.xml"
)


@dataclass
class _Package:
    """The members of one document while it is being cleaned."""

    kind: str
    members: list[safezip.Member]
    limits: Limits
    findings: Findings
    depth: int
    dropped: set[str] = field(default_factory=set)

    def data(self, name: str) -> bytes | None:
        for member in self.members:
            if member.name == name:
                return member.data
        return None

    def parse(self, name: str, data: bytes) -> safexml.XmlDoc:
        return safexml.parse(data, name=name, max_depth=self.limits.max_xml_depth)


def _local(tag: str) -> str:
    return safexml.split(tag)[1]


def _text_of(elem: ET.Element) -> str:
    return " ".join(t.strip() for t in elem.itertext() if t.strip())


# --- describing what is dropped ------------------------------------------------

_PROPERTY_CATEGORIES = {
    "creator": Category.AUTHOR,
    "lastModifiedBy": Category.AUTHOR,
    "initial-creator": Category.AUTHOR,
    "printed-by": Category.AUTHOR,
    "Company": Category.AUTHOR,
    "Manager": Category.AUTHOR,
    "created": Category.DATE,
    "modified": Category.DATE,
    "lastPrinted": Category.DATE,
    "creation-date": Category.DATE,
    "date": Category.DATE,
    "print-date": Category.DATE,
    "Application": Category.SOFTWARE,
    "AppVersion": Category.SOFTWARE,
    "generator": Category.SOFTWARE,
    "title": Category.DESCRIPTION,
    "subject": Category.DESCRIPTION,
    "description": Category.DESCRIPTION,
    "keywords": Category.DESCRIPTION,
    "keyword": Category.DESCRIPTION,
    "category": Category.DESCRIPTION,
    "identifier": Category.IDENTIFIER,
    "revision": Category.OTHER,
    "editing-cycles": Category.OTHER,
    "editing-duration": Category.OTHER,
    "TotalTime": Category.OTHER,
    "Template": Category.OTHER,
    "template": Category.OTHER,
    "HyperlinkBase": Category.EXTERNAL_LINK,
    "user-defined": Category.OTHER,
    "property": Category.OTHER,
    "PrinterName": Category.DEVICE,
}


def _describe_properties(pkg: _Package, name: str, data: bytes, label: str) -> None:
    doc = pkg.parse(name, data)
    for _, elem in safexml.walk(doc.root):
        local = _local(elem.tag)
        key = next((v for k, v in elem.attrib.items() if _local(k) == "name"), None)
        category = _PROPERTY_CATEGORIES.get(key or "") or _PROPERTY_CATEGORIES.get(local)
        if category is None:
            continue
        value = _text_of(elem) or " ".join(v for k, v in elem.attrib.items() if _local(k) == "href")
        if value:
            where = f"{label} {key}" if key else f"{label} {local}"
            pkg.findings.found(category, where, value)


def _describe_comments(pkg: _Package, name: str, data: bytes) -> None:
    doc = pkg.parse(name, data)
    authors: set[str] = set()
    count = 0
    for _, elem in safexml.walk(doc.root):
        author = next((v for k, v in elem.attrib.items() if _local(k) in ("author", "name")), "")
        if _local(elem.tag) in ("comment", "cm", "threadedComment", "person", "cmAuthor") or (
            author and _local(elem.tag) != "comments"
        ):
            count += 1
            if author:
                authors.add(author)
            text = _text_of(elem)
            if text and count <= 20:
                pkg.findings.found(Category.COMMENT, f"{name}", f"{author}: {text}".strip(": "))
    for author in sorted(authors):
        pkg.findings.found(Category.AUTHOR, f"{name} author", author)


def _drop_member(pkg: _Package, member: safezip.Member, category: Category, what: str) -> None:
    pkg.dropped.add(member.name)
    name = member.name
    # Described for the report when it parses; a dropped part need not parse
    # (but entities or a DTD in it still mark the file as hostile).
    with contextlib.suppress(MalformedFile):
        if name.endswith((".xml", ".rels")) and category in (
            Category.AUTHOR,
            Category.SOFTWARE,
            Category.OTHER,
            Category.DEVICE,
        ):
            if any(w in name.lower() for w in ("comment", "person", "people", "authors")):
                _describe_comments(pkg, name, member.data)
            elif not name.startswith("customXml/"):
                _describe_properties(pkg, name, member.data, what)
        elif category == Category.COMMENT and name.endswith(".xml"):
            _describe_comments(pkg, name, member.data)
    pkg.findings.found(category, name, what)
    if category == Category.MACRO:
        pkg.findings.risk(Risk.MACROS, f"{what} in {name}")


def _keep_only_known(pkg: _Package, keep: re.Pattern[str]) -> None:
    """Drop every member the format's keep-list does not name, and non-pictures in
    picture folders; the report names each one."""
    for member in pkg.members:
        name = member.name
        if name in pkg.dropped:
            continue
        if name == _LABEL_INFO:
            _drop_label_info(pkg, member)
        elif not keep.fullmatch(name):
            pkg.dropped.add(name)
            pkg.findings.found(
                Category.OTHER,
                name,
                f"{len(member.data)} bytes",
                note="a part Lanterne does not know",
            )
        elif _PICTURE_FOLDER.fullmatch(name) and _image_kind(member.data) is None:
            pkg.dropped.add(name)
            pkg.findings.found(
                Category.OTHER,
                name,
                f"{len(member.data)} bytes",
                note="not a picture Lanterne cleans",
            )


def _drop_label_info(pkg: _Package, member: safezip.Member) -> None:
    pkg.dropped.add(member.name)
    what = "sensitivity label (its id and the organisation's tenant id)"
    try:
        doc = pkg.parse(member.name, member.data)
    except CleaningError:
        pkg.findings.found(Category.IDENTIFIER, member.name, what)
        return
    found = False
    for _, elem in safexml.walk(doc.root):
        ids = [f"{_local(k)}={v}" for k, v in elem.attrib.items() if _local(k) in ("id", "siteId")]
        if ids:
            found = True
            pkg.findings.found(Category.IDENTIFIER, f"{member.name} {what}", ", ".join(ids))
    if not found:
        pkg.findings.found(Category.IDENTIFIER, member.name, what)


# --- XML scrubbing ----------------------------------------------------------------


def _scrub_tree(
    pkg: _Package,
    name: str,
    doc: safexml.XmlDoc,
    drop: set[str],
    unwrap: set[str],
    drop_attr: Callable[[str], bool],
) -> bool:
    """Scrub one part in place; return whether anything was removed."""
    changes: set[str] = set()
    counts: dict[str, int] = {}
    edits: list[tuple[str, ET.Element, ET.Element]] = []

    def drop_attrs(elem: ET.Element) -> None:
        # keys(), not attrib: attrib would give every element a new dict.
        for key in [k for k in elem.keys() if drop_attr(k)]:  # noqa: SIM118
            counts["revision ids"] = counts.get("revision ids", 0) + 1
            del elem.attrib[key]

    drop_attrs(doc.root)
    # A large part has tens of thousands of elements: iterate in C (parents
    # come before their children, as the edits below need) and keep the
    # Python work per element to a key check and two set lookups.
    for parent in doc.root.iter():
        for elem in parent:
            if elem.keys():
                drop_attrs(elem)
            tag = elem.tag
            if tag in drop:
                edits.append(("drop", parent, elem))
            elif tag in unwrap:
                edits.append(("unwrap", parent, elem))
            else:
                continue
            for k, v in elem.attrib.items():
                if _local(k) in ("author", "creator"):
                    changes.add(v)
            for sub in elem.iter():
                if _local(sub.tag) == "creator" and sub.text:
                    changes.add(sub.text.strip())
            counts[_local(tag)] = counts.get(_local(tag), 0) + 1
    # Deepest first: each element is edited while its recorded parent still holds it.
    for op, parent, elem in reversed(edits):
        if op == "unwrap":
            safexml.unwrap(parent, elem)
        else:
            safexml.remove(parent, elem)
    for what, count in sorted(counts.items()):
        category = _ELEMENT_CATEGORY.get(what, Category.OTHER)
        note = "accepted" if category == Category.TRACKED_CHANGE else ""
        pkg.findings.found(category, f"{name} {what}", f"{count}", note=note)
    for author in sorted(changes):
        pkg.findings.found(Category.AUTHOR, f"{name} change or comment author", author)
    return bool(edits or counts)


_ELEMENT_CATEGORY = {
    "del": Category.TRACKED_CHANGE,
    "ins": Category.TRACKED_CHANGE,
    "moveFrom": Category.TRACKED_CHANGE,
    "moveTo": Category.TRACKED_CHANGE,
    "rPrChange": Category.TRACKED_CHANGE,
    "pPrChange": Category.TRACKED_CHANGE,
    "tracked-changes": Category.TRACKED_CHANGE,
    "change": Category.TRACKED_CHANGE,
    "change-start": Category.TRACKED_CHANGE,
    "change-end": Category.TRACKED_CHANGE,
    "commentRangeStart": Category.COMMENT,
    "commentRangeEnd": Category.COMMENT,
    "commentReference": Category.COMMENT,
    "annotation": Category.COMMENT,
    "annotation-end": Category.COMMENT,
    "revision ids": Category.IDENTIFIER,
    "rsids": Category.IDENTIFIER,
    "docId": Category.IDENTIFIER,
    "creationId": Category.IDENTIFIER,
    "revisionPtr": Category.IDENTIFIER,
    "absPath": Category.AUTHOR,
    "attachedTemplate": Category.OTHER,
    "docVars": Category.OTHER,
}


def _flag_hidden(pkg: _Package, name: str, doc: safexml.XmlDoc) -> None:
    hidden = []
    for _, elem in safexml.walk(doc.root):
        tag = elem.tag
        if tag == f"{{{W}}}r" and elem.find(f"{{{W}}}rPr/{{{W}}}vanish") is not None:
            hidden.append(_text_of(elem))
        elif tag in (f"{{{TEXT}}}hidden-text", f"{{{TEXT}}}hidden-paragraph"):
            hidden.append(elem.get(f"{{{TEXT}}}string-value", "") or _text_of(elem))
        elif tag == f"{{{PRESENTATION}}}notes" and _text_of(elem):
            pkg.findings.kept(
                Category.HIDDEN_TEXT,
                f"{name} speaker notes",
                _text_of(elem),
                "content: remove it in the office suite if needed",
            )
        elif (tag == f"{{{TABLE}}}table" and elem.get(f"{{{TABLE}}}display") == "false") or (
            _local(tag) == "sheet" and elem.get("state") in ("hidden", "veryHidden")
        ):
            pkg.findings.kept(
                Category.HIDDEN_TEXT,
                f"{name} hidden sheet",
                elem.get("name") or elem.get(f"{{{TABLE}}}name", ""),
                "content: unhide and review it",
            )
        elif _local(tag) == "sld" and elem.get("show") == "0":
            pkg.findings.kept(Category.HIDDEN_TEXT, f"{name}", "hidden slide", "content: review it")
    text = " | ".join(t for t in hidden if t)
    if hidden:
        pkg.findings.kept(
            Category.HIDDEN_TEXT,
            f"{name} hidden text",
            text or f"{len(hidden)}",
            "content: it is kept; review it before publishing",
        )
        pkg.findings.risk(Risk.HIDDEN_CONTENT, f"hidden text in {name}")


def _flag_links(pkg: _Package, name: str, doc: safexml.XmlDoc) -> None:
    for _, elem in safexml.walk(doc.root):
        href = elem.get(f"{{{XLINK}}}href", "")
        if href.startswith(("http:", "https:", "ftp:", "file:", "//", "\\\\", "smb:")):
            pkg.findings.kept(Category.EXTERNAL_LINK, name, href, "link in the content")
            if _local(elem.tag) != "a":
                pkg.findings.risk(Risk.REMOTE_REFERENCE, f"{name} loads {href}")


# --- OOXML ------------------------------------------------------------------------


def _resolve(rels_name: str, target: str) -> str:
    """The part name a relationship target points to."""
    if target.startswith("/"):
        return target.lstrip("/")
    source_dir = posixpath.dirname(posixpath.dirname(rels_name))
    return posixpath.normpath(posixpath.join(source_dir, target))


def _source_of(rels_name: str) -> str:
    folder, base = posixpath.split(rels_name)
    return posixpath.join(posixpath.dirname(folder), base[: -len(".rels")])


def _clean_rels(pkg: _Package, name: str, doc: safexml.XmlDoc) -> set[str]:
    """Drop relationships to dropped parts; return the ids removed."""
    removed: set[str] = set()
    for rel in list(doc.root):
        target = rel.get("Target", "")
        rel_type = rel.get("Type", "")
        external = rel.get("TargetMode") == "External"
        if rel_type.endswith("/attachedTemplate"):
            pkg.findings.found(Category.OTHER, f"{name} template path", target)
            if target.startswith(("http", "\\\\", "//")):
                pkg.findings.risk(Risk.REMOTE_REFERENCE, f"remote template {target}")
        elif external:
            auto = rel_type.endswith(_AUTO_FETCH_RELS)
            pkg.findings.kept(
                Category.EXTERNAL_LINK,
                name,
                target,
                "loaded when opened" if auto else "link in the content",
            )
            if auto or not target.startswith(("http:", "https:", "mailto:")):
                pkg.findings.risk(Risk.REMOTE_REFERENCE, f"{rel_type.rsplit('/', 1)[-1]} {target}")
            continue
        elif _resolve(name, target) not in pkg.dropped:
            continue
        removed.add(rel.get("Id", ""))
        doc.root.remove(rel)
    return removed


def _clean_ooxml(pkg: _Package) -> list[safezip.Member]:
    types = pkg.data("[Content_Types].xml")
    if types is None:
        raise MalformedFile("not an Office Open XML file: [Content_Types].xml is missing")
    if OOXML_MAIN[pkg.kind].split(".main+xml")[0] not in types.decode("utf-8", "replace"):
        raise MalformedFile(f"the zip is not a {pkg.kind.upper()} document")
    for member in pkg.members:
        for pattern, category, what in _OOXML_DROP:
            if pattern.fullmatch(member.name):
                _drop_member(pkg, member, category, what)
                break
    _keep_only_known(pkg, _OOXML_KEEP)
    # Relationship files of dropped parts go with them.
    for member in pkg.members:
        if member.name.endswith(".rels") and _source_of(member.name) in pkg.dropped:
            pkg.dropped.add(member.name)
    removed_ids: dict[str, set[str]] = {}
    out: dict[str, bytes] = {}
    for member in pkg.members:
        if member.name in pkg.dropped or not member.name.endswith(".rels"):
            continue
        doc = pkg.parse(member.name, member.data)
        removed_ids[_source_of(member.name)] = _clean_rels(pkg, member.name, doc)
        out[member.name] = safexml.serialize(doc)
    for member in pkg.members:
        name = member.name
        if name in pkg.dropped or name in out:
            continue
        if name == "[Content_Types].xml":
            doc = pkg.parse(name, member.data)
            for item in list(doc.root):
                if item.get("PartName", "").lstrip("/") in pkg.dropped:
                    doc.root.remove(item)
            out[name] = safexml.serialize(doc)
        elif name.endswith(".xml"):
            doc = pkg.parse(name, member.data)
            gone = removed_ids.get(name, set())
            changed = _scrub_tree(
                pkg, name, doc, _OOXML_DROP_ELEMENTS, _OOXML_UNWRAP, _ooxml_drop_attr
            )
            for _, elem in safexml.walk(doc.root) if gone else ():
                for key in [
                    k for k, v in elem.attrib.items() if k.startswith(f"{{{R}}}") and v in gone
                ]:
                    del elem.attrib[key]
                    changed = True
            if _CONTENT_PART.search(name):
                _flag_hidden(pkg, name, doc)
            if "/notesSlides/" in name:
                text = _text_of(doc.root)
                if text:
                    pkg.findings.kept(
                        Category.HIDDEN_TEXT,
                        f"{name} speaker notes",
                        text,
                        "content: remove it in the office suite if needed",
                    )
            # A part with nothing to remove is copied byte for byte (it was still
            # parsed, so it is well-formed and free of DTDs and entities).
            keep = not changed and safexml.plain(member.data)
            out[name] = member.data if keep else safexml.serialize(doc)
        else:
            out[name] = _clean_embedded(pkg, name, member.data)
    return [safezip.Member(m.name, out[m.name], m.stored) for m in pkg.members if m.name in out]


# --- ODF --------------------------------------------------------------------------


def _clean_odf(pkg: _Package) -> list[safezip.Member]:
    if not pkg.members or pkg.members[0].name != "mimetype":
        raise MalformedFile("not an OpenDocument file: `mimetype` is not the first member")
    if pkg.members[0].data.strip() != ODF_MIME[pkg.kind].encode():
        raise MalformedFile(f"the zip is not an {pkg.kind.upper()} document")
    for member in pkg.members:
        for pattern, category, what in _ODF_DROP:
            if pattern.fullmatch(member.name):
                _drop_member(pkg, member, category, what)
                if category == Category.MACRO:
                    pkg.findings.risk(Risk.MACROS, f"macros in {member.name}")
                break
    _keep_only_known(pkg, _ODF_KEEP)
    out: list[safezip.Member] = []
    for member in pkg.members:
        name = member.name
        if name in pkg.dropped:
            continue
        if name == "mimetype":
            out.append(safezip.Member(name, member.data, stored=True))
            continue
        if name == "META-INF/manifest.xml":
            doc = pkg.parse(name, member.data)
            for entry in list(doc.root):
                if entry.find(f"{{{MANIFEST}}}encryption-data") is not None:
                    raise MalformedFile("the document is encrypted with a password")
                if entry.get(f"{{{MANIFEST}}}full-path", "") in pkg.dropped:
                    doc.root.remove(entry)
            data = safexml.serialize(doc)
        elif name.endswith(".xml"):
            doc = pkg.parse(name, member.data)
            changed = _scrub_tree(
                pkg, name, doc, _ODF_DROP_ELEMENTS, set(), _ODF_DROP_ATTRS.__contains__
            )
            _flag_hidden(pkg, name, doc)
            _flag_links(pkg, name, doc)
            keep = not changed and safexml.plain(member.data)
            data = member.data if keep else safexml.serialize(doc)
        else:
            data = _clean_embedded(pkg, name, member.data)
        out.append(safezip.Member(name, data))
    return out


# --- embedded files and entry points ---------------------------------------------


def _image_kind(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return next((kind for magic, kind in _IMAGE_MAGIC if data.startswith(magic)), None)


def _clean_embedded(pkg: _Package, name: str, data: bytes) -> bytes:
    kind = _image_kind(data)
    if kind is not None:
        sub = Findings()
        try:
            cleaned = images.clean_bytes(data, kind, pkg.limits, sub)
        except CleaningError as exc:
            raise type(exc)(f"embedded image {name}: {exc}") from exc
        pkg.findings.extend(sub, name)
        return cleaned
    if data.startswith(_ZIP_MAGIC) and pkg.depth < pkg.limits.max_zip_depth:
        zip_kind = detect_zip_kind(data, pkg.limits)
        if zip_kind is not None:
            sub = Findings()
            cleaned = clean_bytes(data, zip_kind, pkg.limits, sub, depth=pkg.depth + 1)
            pkg.findings.extend(sub, name)
            return cleaned
    if name.endswith(".vml"):
        return _clean_vml(pkg, name, data)
    # Only members the keep-list names get here: an embedded object (OLE, or
    # an Office file nested too deep). It is content, so it stays, but nothing
    # in it was checked: the copy cannot be called cleaned.
    pkg.findings.kept(
        Category.EMBEDDED_FILE,
        name,
        f"{len(data)} bytes",
        "an embedded object Lanterne cannot clean",
    )
    pkg.findings.risk(Risk.EMBEDDED_FILE, f"embedded object {name}")
    pkg.findings.cannot_vouch(name, "an embedded object Lanterne cannot clean")
    return data


def _clean_vml(pkg: _Package, name: str, data: bytes) -> bytes:
    """Legacy VML drawings (shapes of comments, form controls): XML when well formed."""
    try:
        doc = pkg.parse(name, data)
    except MalformedFile:
        # Office writes VML with unclosed <br> tags: it cannot be read as XML here.
        pkg.findings.cannot_vouch(name, "a legacy VML drawing that is not well-formed XML")
        return data
    changed = _scrub_tree(pkg, name, doc, _OOXML_DROP_ELEMENTS, _OOXML_UNWRAP, _ooxml_drop_attr)
    return data if not changed and safexml.plain(data) else safexml.serialize(doc)


def detect_zip_kind(data: bytes, limits: Limits) -> str | None:
    """Which Office format a zip holds, judged from its content, or None."""
    try:
        members = safezip.read_members(data, limits, label="embedded zip")
    except CleaningError:
        return None
    by_name = {m.name: m.data for m in members}
    if "mimetype" in by_name:
        mime = by_name["mimetype"].strip().decode("ascii", "replace")
        return next((k for k, v in ODF_MIME.items() if v == mime), None)
    types = by_name.get("[Content_Types].xml", b"").decode("utf-8", "replace")
    return next((k for k, v in OOXML_MAIN.items() if v.split(".main+xml")[0] in types), None)


def _clean_members(
    data: bytes, kind: str, limits: Limits, findings: Findings, depth: int
) -> list[safezip.Member]:
    members = safezip.read_members(data, limits, label=kind.upper())
    pkg = _Package(kind, members, limits, findings, depth)
    return _clean_ooxml(pkg) if kind in OOXML_MAIN else _clean_odf(pkg)


def clean_bytes(
    data: bytes, kind: str, limits: Limits, findings: Findings, *, depth: int = 0
) -> bytes:
    """A cleaned copy of an Office document of the given kind."""
    return safezip.write_members(_clean_members(data, kind, limits, findings, depth))


def leftovers(data: bytes, kind: str, limits: Limits) -> list[str]:
    """Cleaning the output again must find nothing more to remove."""
    again = Findings()
    _clean_members(data, kind, limits, again, 0)
    return [
        f"{f.where}: {f.value}"
        for f in again.items
        if f.removed and not f.note.startswith("replaced")
    ]
