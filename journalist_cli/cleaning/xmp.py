"""Reading an XMP packet (in images and PDFs) to say what it gave away."""

from __future__ import annotations

from journalist_cli.cleaning import safexml
from journalist_cli.cleaning.errors import CleaningError
from journalist_cli.cleaning.report import Category, Findings

# XMP property names (local parts) and what they reveal.
_CATEGORIES = {
    "creator": Category.AUTHOR,
    "Author": Category.AUTHOR,
    "Authors": Category.AUTHOR,
    "Owner": Category.AUTHOR,
    "OwnerName": Category.AUTHOR,
    "CameraOwnerName": Category.AUTHOR,
    "rights": Category.AUTHOR,
    "CreatorTool": Category.SOFTWARE,
    "Producer": Category.SOFTWARE,
    "softwareAgent": Category.SOFTWARE,
    "CreateDate": Category.DATE,
    "ModifyDate": Category.DATE,
    "MetadataDate": Category.DATE,
    "DateCreated": Category.DATE,
    "when": Category.DATE,
    "DocumentID": Category.IDENTIFIER,
    "InstanceID": Category.IDENTIFIER,
    "OriginalDocumentID": Category.IDENTIFIER,
    "SerialNumber": Category.DEVICE,
    "LensSerialNumber": Category.DEVICE,
    "Make": Category.DEVICE,
    "Model": Category.DEVICE,
    "title": Category.DESCRIPTION,
    "description": Category.DESCRIPTION,
    "subject": Category.DESCRIPTION,
    "Keywords": Category.DESCRIPTION,
}
MAX_FINDINGS = 40


def describe(packet: bytes, findings: Findings, where: str) -> None:
    """Add one finding per revealing XMP property (all of them are removed)."""
    try:
        doc = safexml.parse(packet.strip(b"\x00 \r\n\t"), name=where, max_depth=64)
    except CleaningError:
        findings.found(Category.OTHER, where, f"unreadable XMP packet ({len(packet)} bytes)")
        return
    count = 0
    for _, elem in safexml.walk(doc.root):
        pairs = [(safexml.split(k)[1], v) for k, v in elem.attrib.items()]
        text = (elem.text or "").strip()
        if text and not len(elem):
            pairs.append((safexml.split(elem.tag)[1], text))
        for name, value in pairs:
            category = _CATEGORIES.get(name)
            if category is None and name.startswith("GPS"):
                category = Category.GPS
            if category is None:
                continue
            findings.found(category, f"{where} {name}", value)
            count += 1
            if count >= MAX_FINDINGS:
                return
    # The parent of a leaf (rdf:li under dc:creator) carries the name: look again.
    for _, elem in safexml.walk(doc.root):
        local = safexml.split(elem.tag)[1]
        if local in _CATEGORIES and len(elem) and count < MAX_FINDINGS:
            texts = [t.strip() for t in elem.itertext() if t.strip()]
            if texts:
                findings.found(_CATEGORIES[local], f"{where} {local}", "; ".join(texts))
                count += 1
    if count == 0:
        findings.found(Category.OTHER, where, f"XMP packet ({len(packet)} bytes)")
