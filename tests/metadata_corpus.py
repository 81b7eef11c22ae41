"""Generates files with planted, searchable metadata, and the scans that look for it.

Every planted value contains a unique token (`LNTCANARY<field>`), so a cleaned
file is checked by searching for tokens: in the raw bytes (ASCII, UTF-16), in
every zip member (recursively), in every PDF object and decoded stream, in
decompressed PNG chunks, and with exiftool. GPS positions are numbers, so
they are checked by exiftool's GPS keys instead. Files are built at test time
into a temporary directory; nothing binary is committed.

Used by tests/test_clean*.py and benchmarks/bench_clean.py.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import zipfile
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import docx
import mutagen.id3
import pikepdf
from docx.oxml.ns import qn
from docx.oxml.parser import parse_xml
from PIL import ExifTags, Image, ImageDraw, PngImagePlugin, TiffImagePlugin

PREFIX = "LNTCANARY"


def token(name: str) -> str:
    return f"{PREFIX}{name}"


@dataclass
class CorpusFile:
    """One generated file, the tokens planted in it and what must survive cleaning."""

    path: Path
    kind: str
    tokens: list[str] = field(default_factory=list)
    text: str | None = None  # the visible text a reader must still get
    audio_frames: bytes | None = None


# --- images -------------------------------------------------------------------------


def picture(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A picture with real structure, so that pixel comparisons mean something."""
    image = Image.new("RGB", size, (30, 60, 90))
    draw = ImageDraw.Draw(image)
    for x in range(0, size[0], 8):
        draw.line([(x, 0), (size[0] - x, size[1])], fill=(x * 2 % 256, 200, 255 - x % 256))
    draw.rectangle([10, 10, 40, 30], fill=(250, 20, 20))
    return image


def _rational(value: float) -> TiffImagePlugin.IFDRational:
    frac = Fraction(value).limit_denominator(10000)
    return TiffImagePlugin.IFDRational(frac.numerator, frac.denominator)


def planted_exif(prefix: str) -> tuple[Image.Exif, list[str]]:
    exif = Image.Exif()
    tokens = [
        token(f"{prefix}Make"),
        token(f"{prefix}Model"),
        token(f"{prefix}Artist"),
        token(f"{prefix}Software"),
        token(f"{prefix}Serial"),
        token(f"{prefix}Lens"),
        token(f"{prefix}Description"),
    ]
    exif[ExifTags.Base.Make] = tokens[0]
    exif[ExifTags.Base.Model] = tokens[1]
    exif[ExifTags.Base.Artist] = tokens[2]
    exif[ExifTags.Base.Software] = tokens[3]
    exif[ExifTags.Base.ImageDescription] = tokens[6]
    exif[ExifTags.Base.DateTime] = "2024:05:06 07:08:09"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.BodySerialNumber] = tokens[4]
    sub[ExifTags.Base.LensSerialNumber] = tokens[5]
    sub[ExifTags.Base.DateTimeOriginal] = "2024:05:06 07:08:09"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (_rational(48), _rational(51), _rational(29.5))
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (_rational(2), _rational(17), _rational(40.2))
    return exif, tokens


def xmp_packet(name: str) -> tuple[bytes, list[str]]:
    tokens = [token(f"{name}XmpCreator"), token(f"{name}XmpTool"), token(f"{name}XmpDocId")]
    packet = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
 xmp:CreatorTool="{tokens[1]}" xmpMM:DocumentID="{tokens[2]}">
<dc:creator><rdf:Seq><rdf:li>{tokens[0]}</rdf:li></rdf:Seq></dc:creator>
</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""
    return packet.encode("utf-8"), tokens


def _iptc_segment(byline: str) -> bytes:
    """An APP13 Photoshop block holding an IPTC By-line (Pillow cannot write one)."""
    value = byline.encode()
    iptc = b"\x1c\x02\x50" + struct.pack(">H", len(value)) + value
    iptc += b"\x00" * (len(iptc) & 1)
    block = b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    return b"\xff\xed" + struct.pack(">H", len(block) + 2) + block


def make_jpeg(path: Path, *, name: str = "Jpeg", tail: bool = True) -> CorpusFile:
    exif, tokens = planted_exif(name)
    packet, xmp_tokens = xmp_packet(name)
    comment = token(f"{name}Comment")
    out = io.BytesIO()
    picture().save(out, format="JPEG", quality=90, exif=exif, xmp=packet, comment=comment.encode())
    data = out.getvalue()
    iptc = token(f"{name}Iptc")
    data = data[:2] + _iptc_segment(iptc) + data[2:]
    all_tokens = [*tokens, *xmp_tokens, comment, iptc]
    if tail:
        # A polyglot tail after the end-of-image marker.
        data += b"PK-trailing " + token(f"{name}Tail").encode()
        all_tokens.append(token(f"{name}Tail"))
    path.write_bytes(data)
    return CorpusFile(path, "jpeg", all_tokens)


def plant_exif_thumbnail(path: Path, work: Path) -> str:
    """Add an EXIF thumbnail that itself carries a token (planted with exiftool)."""
    thumb = work / "thumb-source.jpg"
    marker = token("Thumbnail")
    picture((32, 24)).save(thumb, format="JPEG", comment=marker.encode())
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", f"-ThumbnailImage<={thumb}", str(path)],
        check=True,
        capture_output=True,
    )
    thumb.unlink()
    return marker


def make_png(path: Path) -> CorpusFile:
    exif, tokens = planted_exif("Png")
    info = PngImagePlugin.PngInfo()
    tokens += [token("PngAuthor"), token("PngComment"), token("PngItxt")]
    info.add_text("Author", tokens[-3])
    info.add_text("Comment", tokens[-2], zip=True)
    info.add_itxt("Description", tokens[-1], lang="en", tkey="Beschreibung", zip=True)
    packet, xmp_tokens = xmp_packet("Png")
    info.add_itxt("XML:com.adobe.xmp", packet.decode(), zip=False)
    out = io.BytesIO()
    picture().save(out, format="PNG", pnginfo=info, exif=exif)
    data = out.getvalue()
    # A tIME chunk and a private chunk before IEND.
    extra = b""
    for ctype, body in (
        (b"tIME", struct.pack(">HBBBBB", 2024, 5, 6, 7, 8, 9)),
        (b"prVt", token("PngPrivate").encode()),
    ):
        extra += struct.pack(">I", len(body)) + ctype + body
        extra += struct.pack(">I", zlib.crc32(ctype + body))
    data = data[:-12] + extra + data[-12:]
    path.write_bytes(data)
    return CorpusFile(path, "png", [*tokens, *xmp_tokens, token("PngPrivate")])


# --- PDF -------------------------------------------------------------------------------

PDF_TEXT = "Visible PDF content survives cleaning"


def make_pdf(path: Path) -> CorpusFile:
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
        )
    )
    photo = io.BytesIO()
    exif, photo_tokens = planted_exif("PdfImage")
    picture().save(photo, format="JPEG", exif=exif)
    image = pikepdf.Stream(pdf, photo.getvalue())
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height, image.BitsPerComponent = 96, 64, 8
    image.ColorSpace, image.Filter = pikepdf.Name.DeviceRGB, pikepdf.Name.DCTDecode
    content = f"BT /F1 18 Tf 72 720 Td ({PDF_TEXT}) Tj ET q 96 0 0 64 72 500 cm /Im0 Do Q"
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page,
        MediaBox=[0, 0, 612, 792],
        Resources=pikepdf.Dictionary(
            Font=pikepdf.Dictionary(F1=font), XObject=pikepdf.Dictionary(Im0=image)
        ),
        Contents=pdf.make_stream(content.encode()),
    )
    pdf.pages.append(pikepdf.Page(page))
    tokens = [
        token("PdfAuthor"),
        token("PdfTitle"),
        token("PdfCreator"),
        token("PdfProducer"),
        token("PdfKeywords"),
        token("PdfXmpCreator"),
        token("PdfAttachName"),
        token("PdfAttachBody"),
        token("PdfJavaScript"),
        token("PdfAnnotAuthor"),
        token("PdfAnnotText"),
        token("PdfFormValue"),
        token("PdfUri"),
    ]
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        meta["dc:creator"] = [tokens[5]]
    pdf.docinfo["/Author"] = tokens[0]
    pdf.docinfo["/Title"] = tokens[1]
    pdf.docinfo["/Creator"] = tokens[2]
    pdf.docinfo["/Producer"] = tokens[3]
    pdf.docinfo["/Keywords"] = tokens[4]
    spec = pikepdf.AttachedFileSpec(pdf, tokens[7].encode(), filename=f"{tokens[6]}.txt")
    pdf.attachments[f"{tokens[6]}.txt"] = spec
    pdf.Root.OpenAction = pikepdf.Dictionary(
        S=pikepdf.Name.JavaScript, JS=pikepdf.String(f"app.alert('{tokens[8]}');")
    )
    page_obj = pdf.pages[0].obj
    note = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Annot,
            Subtype=pikepdf.Name.Text,
            Rect=[300, 700, 320, 720],
            T=pikepdf.String(tokens[9]),
            Contents=pikepdf.String(tokens[10]),
            P=page_obj,
        )
    )
    link = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Annot,
            Subtype=pikepdf.Name.Link,
            Rect=[72, 700, 200, 720],
            A=pikepdf.Dictionary(
                S=pikepdf.Name.URI, URI=pikepdf.String(f"https://{tokens[12]}.example")
            ),
        )
    )
    field_widget = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Annot,
            Subtype=pikepdf.Name.Widget,
            FT=pikepdf.Name.Tx,
            T=pikepdf.String("name"),
            V=pikepdf.String(tokens[11]),
            Rect=[72, 600, 272, 620],
            P=page_obj,
        )
    )
    page_obj.Annots = pdf.make_indirect(pikepdf.Array([note, link, field_widget]))
    pdf.Root.AcroForm = pikepdf.Dictionary(Fields=pikepdf.Array([field_widget]))
    pdf.save(path)
    return CorpusFile(path, "pdf", [*tokens, *photo_tokens], text=PDF_TEXT)


# --- DOCX -------------------------------------------------------------------------------

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DOCX_TEXT = ["Visible paragraph with a comment.", "Kept inserted words.", "Hidden note here."]


def make_docx(path: Path) -> CorpusFile:
    tokens = {
        n: token(f"Docx{n}")
        for n in (
            "Author",
            "LastModifiedBy",
            "Title",
            "Keywords",
            "CoreComments",
            "CommentText",
            "CommentAuthor",
            "CommentInitials",
            "InsAuthor",
            "DelAuthor",
            "Deleted",
            "Company",
            "Custom",
            "Thumbnail",
            "Template",
        )
    }
    document = docx.Document()
    props = document.core_properties
    props.author = tokens["Author"]
    props.last_modified_by = tokens["LastModifiedBy"]
    props.title = tokens["Title"]
    props.keywords = tokens["Keywords"]
    props.comments = tokens["CoreComments"]
    first = document.add_paragraph(DOCX_TEXT[0])
    document.add_comment(
        first.runs,
        text=tokens["CommentText"],
        author=tokens["CommentAuthor"],
        initials=tokens["CommentInitials"],
    )
    second = document.add_paragraph("Kept ")
    second._p.append(
        parse_xml(
            f'<w:ins xmlns:w="{W_NS}" w:id="1" w:author="{tokens["InsAuthor"]}" '
            f'w:date="2024-05-06T07:08:09Z"><w:r><w:t xml:space="preserve">inserted </w:t></w:r>'
            f"</w:ins>"
        )
    )
    second._p.append(
        parse_xml(
            f'<w:del xmlns:w="{W_NS}" w:id="2" w:author="{tokens["DelAuthor"]}" '
            f'w:date="2024-05-06T07:08:09Z"><w:r><w:delText>{tokens["Deleted"]} </w:delText></w:r>'
            f"</w:del>"
        )
    )
    second.add_run("words.")
    for paragraph in (first, second):
        paragraph._p.set(qn("w:rsidR"), "00AB12CD")
        paragraph._p.set(qn("w:rsidRDefault"), "00AB12CD")
    hidden = document.add_paragraph().add_run(DOCX_TEXT[2])
    hidden.font.hidden = True
    photo = io.BytesIO()
    exif, photo_tokens = planted_exif("DocxImage")
    picture().save(photo, format="JPEG", exif=exif)
    photo.seek(0)
    document.add_picture(photo)
    raw = io.BytesIO()
    document.save(raw)
    path.write_bytes(_docx_extras(raw.getvalue(), tokens))
    return CorpusFile(path, "docx", [*tokens.values(), *photo_tokens], text="\n".join(DOCX_TEXT))


def _docx_extras(data: bytes, tokens: dict[str, str]) -> bytes:
    """Add what python-docx cannot: custom and app properties, a thumbnail, a template."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    thumb = io.BytesIO()
    picture((32, 24)).save(thumb, format="JPEG", comment=tokens["Thumbnail"].encode())
    custom = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
        'custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/'
        'docPropsVTypes"><property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" '
        f'name="Source"><vt:lpwstr>{tokens["Custom"]}</vt:lpwstr></property></Properties>'
    )
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == "docProps/app.xml":
                body = body.replace(
                    b"</Properties>",
                    f"<Company>{tokens['Company']}</Company></Properties>".encode(),
                )
            elif info.filename == "docProps/thumbnail.jpeg":
                body = thumb.getvalue()
            elif info.filename == "[Content_Types].xml":
                body = body.replace(
                    b"</Types>",
                    (
                        b'<Override PartName="/docProps/custom.xml" ContentType="application/'
                        b'vnd.openxmlformats-officedocument.custom-properties+xml"/></Types>'
                    ),
                )
            elif info.filename == "_rels/.rels":
                body = body.replace(
                    b"</Relationships>",
                    (
                        b'<Relationship Id="rIdCustom" Type="http://schemas.openxmlformats.org/'
                        b'officeDocument/2006/relationships/custom-properties" '
                        b'Target="docProps/custom.xml"/></Relationships>'
                    ),
                )
            elif info.filename == "word/settings.xml":
                body = body.replace(
                    b"</w:settings>",
                    (
                        b'<w:attachedTemplate r:id="rIdTpl"/>'
                        b'<w:rsids><w:rsidRoot w:val="00AB12CD"/>'
                        b'<w:rsid w:val="00AB12CD"/></w:rsids></w:settings>'
                    ),
                )
                if b"xmlns:r=" not in body.split(b">", 2)[1]:
                    body = body.replace(
                        b"<w:settings ",
                        b'<w:settings xmlns:r="http://schemas'
                        b'.openxmlformats.org/officeDocument/2006/relationships" ',
                        1,
                    )
            target.writestr(info, body)
        target.writestr("docProps/custom.xml", custom)
        target.writestr(
            "word/_rels/settings.xml.rels",
            (
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
                '"http://schemas.openxmlformats.org/package/2006/relationships"><Relationship '
                'Id="rIdTpl" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                'relationships/attachedTemplate" Target="file:///C:/Users/'
                f'{tokens["Template"]}/Normal.dotm" TargetMode="External"/></Relationships>'
            ),
        )
    return out.getvalue()


# --- ODT --------------------------------------------------------------------------------

ODT_TEXT = ["Hello visible world.", "Tracked text stays here."]


def make_odt(path: Path) -> CorpusFile:
    t = {
        n: token(f"Odt{n}")
        for n in (
            "InitialCreator",
            "Creator",
            "Generator",
            "UserDefined",
            "Title",
            "AnnotAuthor",
            "AnnotText",
            "ChangeAuthor",
            "Deleted",
            "Printer",
            "Thumbnail",
        )
    }
    ns = (
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
        'xmlns:config="urn:oasis:names:tc:opendocument:xmlns:config:1.0" '
        'xmlns:officeooo="http://openoffice.org/2009/office" office:version="1.3"'
    )
    date = "<dc:date>2024-05-06T07:08:09</dc:date>"
    change_info = f"<office:change-info><dc:creator>{t['ChangeAuthor']}</dc:creator>{date}"
    content = "".join(
        [
            f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content {ns}>',
            '<office:automatic-styles><style:style style:name="P1" style:family="paragraph">',
            '<style:text-properties officeooo:rsid="0012ab34"'
            ' officeooo:paragraph-rsid="0012ab34"/>',
            "</style:style></office:automatic-styles><office:body><office:text>",
            '<text:tracked-changes><text:changed-region text:id="ct1"><text:deletion>',
            f"{change_info}</office:change-info><text:p>{t['Deleted']}</text:p></text:deletion>",
            '</text:changed-region><text:changed-region text:id="ct2"><text:insertion>',
            f"{change_info}</office:change-info></text:insertion></text:changed-region>",
            "</text:tracked-changes>",
            '<text:p text:style-name="P1">Hello <office:annotation>',
            f"<dc:creator>{t['AnnotAuthor']}</dc:creator>{date}",
            f"<text:p>{t['AnnotText']}</text:p></office:annotation>visible world.</text:p>",
            '<text:p text:style-name="P1">Tracked <text:change text:change-id="ct1"/>text ',
            '<text:change-start text:change-id="ct2"/>stays<text:change-end text:change-id="ct2"/>',
            " here.</text:p></office:text></office:body></office:document-content>",
        ]
    )
    meta = "".join(
        [
            f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-meta {ns}><office:meta>',
            f"<meta:initial-creator>{t['InitialCreator']}</meta:initial-creator>",
            f"<dc:creator>{t['Creator']}</dc:creator>",
            f"<meta:generator>{t['Generator']}</meta:generator><dc:title>{t['Title']}</dc:title>",
            "<meta:creation-date>2024-05-06T07:08:09</meta:creation-date>",
            f'<meta:user-defined meta:name="Source">{t["UserDefined"]}</meta:user-defined>',
            "</office:meta></office:document-meta>",
        ]
    )
    settings = "".join(
        [
            f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-settings {ns}>',
            '<office:settings><config:config-item-set config:name="ooo:configuration-settings">',
            '<config:config-item config:name="PrinterName" config:type="string">',
            f"{t['Printer']}</config:config-item></config:config-item-set></office:settings>",
            "</office:document-settings>",
        ]
    )
    styles = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-styles {ns}>'
        "<office:styles/></office:document-styles>"
    )
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", t["Thumbnail"])
    thumb = io.BytesIO()
    picture((32, 24)).save(thumb, format="PNG", pnginfo=info)
    entries = [
        ("/", "application/vnd.oasis.opendocument.text"),
        ("content.xml", "text/xml"),
        ("styles.xml", "text/xml"),
        ("meta.xml", "text/xml"),
        ("settings.xml", "text/xml"),
        ("Thumbnails/thumbnail.png", "image/png"),
    ]
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest xmlns:manifest='
        '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
        + "".join(
            f'<manifest:file-entry manifest:full-path="{p}" manifest:media-type="{m}"/>'
            for p, m in entries
        )
        + "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "mimetype", "application/vnd.oasis.opendocument.text", compress_type=zipfile.ZIP_STORED
        )
        archive.writestr("content.xml", content)
        archive.writestr("styles.xml", styles)
        archive.writestr("meta.xml", meta)
        archive.writestr("settings.xml", settings)
        archive.writestr("Thumbnails/thumbnail.png", thumb.getvalue())
        archive.writestr("META-INF/manifest.xml", manifest)
    return CorpusFile(path, "odt", list(t.values()), text="\n".join(ODT_TEXT))


# --- MP3 --------------------------------------------------------------------------------


def mpeg_frames(count: int = 40) -> bytes:
    """Silent MPEG-1 Layer III frames, 128 kbit/s at 44.1 kHz (417 bytes each)."""
    return (b"\xff\xfb\x90\x00" + b"\x00" * 413) * count


def make_mp3(path: Path) -> CorpusFile:
    frames = mpeg_frames()
    path.write_bytes(frames)
    t = {
        n: token(f"Mp3{n}")
        for n in ("Artist", "Comment", "Custom", "Picture", "V1Artist", "Encoder")
    }
    tags = mutagen.id3.ID3()
    tags.add(mutagen.id3.TPE1(encoding=3, text=[t["Artist"]]))
    tags.add(mutagen.id3.COMM(encoding=3, lang="eng", desc="", text=[t["Comment"]]))
    tags.add(mutagen.id3.TXXX(encoding=3, desc="source", text=[t["Custom"]]))
    tags.add(mutagen.id3.TSSE(encoding=3, text=[t["Encoder"]]))
    cover = io.BytesIO()
    picture((32, 24)).save(cover, format="JPEG", comment=t["Picture"].encode())
    tags.add(
        mutagen.id3.APIC(encoding=3, mime="image/jpeg", type=3, desc="cover", data=cover.getvalue())
    )
    tags.save(path, v1=0)
    v1 = b"TAG" + b"title".ljust(30, b"\x00") + t["V1Artist"].encode()[:30].ljust(30, b"\x00")
    v1 += b"album".ljust(30, b"\x00") + b"2024" + b"comment".ljust(30, b"\x00") + b"\x0c"
    with path.open("ab") as handle:
        handle.write(v1)
    return CorpusFile(path, "mp3", list(t.values()), audio_frames=frames)


def build(directory: Path) -> list[CorpusFile]:
    """The whole corpus, one file per supported kind, in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    files = [
        make_jpeg(directory / "photo.jpg"),
        make_png(directory / "screenshot.png"),
        make_pdf(directory / "report.pdf"),
        make_docx(directory / "memo.docx"),
        make_odt(directory / "notes.odt"),
        make_mp3(directory / "call.mp3"),
    ]
    files[0].tokens.append(plant_exif_thumbnail(files[0].path, directory))
    return files


# --- scanning ---------------------------------------------------------------------------


def _forms(tokens: list[str]) -> dict[bytes, str]:
    forms: dict[bytes, str] = {}
    for tok in tokens:
        for encoding in ("ascii", "utf-16-le", "utf-16-be"):
            forms[tok.encode(encoding)] = tok
    return forms


def _scan_bytes(data: bytes, forms: dict[bytes, str], found: set[str], depth: int = 0) -> None:
    for form, tok in forms.items():
        if form in data:
            found.add(tok)
    if depth > 4:
        return
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    _scan_bytes(archive.read(info), forms, found, depth + 1)
        except zipfile.BadZipFile:
            pass
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        pos = 8
        while pos + 12 <= len(data):
            (length,) = struct.unpack_from(">I", data, pos)
            body = data[pos + 8 : pos + 8 + length]
            for start in range(min(len(body), 200)):
                if body[start : start + 1] == b"\x78":
                    try:
                        _scan_bytes(zlib.decompress(body[start:]), forms, found, depth + 1)
                        break
                    except zlib.error:
                        continue
            pos += 12 + length
    elif data[:5] == b"%PDF-":
        _scan_pdf(data, forms, found, depth)


def _scan_pdf(data: bytes, forms: dict[bytes, str], found: set[str], depth: int) -> None:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        if len(pdf.attachments):
            found.add("<pdf attachment>")
        for obj in [pdf.trailer, *pdf.objects]:
            stack = [obj]
            while stack:
                item = stack.pop()
                if isinstance(item, pikepdf.String):
                    _scan_bytes(bytes(item), forms, found, depth + 1)
                elif isinstance(item, pikepdf.Stream):
                    try:
                        _scan_bytes(item.read_bytes(), forms, found, depth + 1)
                    except pikepdf.PdfError:
                        _scan_bytes(item.read_raw_bytes(), forms, found, depth + 1)
                    stack.extend(_direct(item.values()))
                elif isinstance(item, pikepdf.Dictionary):
                    stack.extend(_direct(item.values()))
                elif isinstance(item, pikepdf.Array):
                    stack.extend(_direct(item))


def _direct(values: object) -> list[object]:
    return [v for v in values if isinstance(v, pikepdf.Object) and not v.is_indirect]


def deep_scan(path: Path, tokens: list[str]) -> set[str]:
    """Planted tokens still present anywhere inside the file."""
    found: set[str] = set()
    _scan_bytes(path.read_bytes(), _forms(tokens), found)
    return found


def exiftool_scan(path: Path, tokens: list[str]) -> set[str]:
    """Tokens (and GPS keys) exiftool still reports for the file."""
    result = subprocess.run(
        ["exiftool", "-j", "-a", "-G1", "-ee", "-u", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    found: set[str] = set()
    for record in json.loads(result.stdout):
        for key, value in record.items():
            if key in ("SourceFile", "System:FileName", "System:Directory"):
                continue
            text = json.dumps(value)
            found.update(tok for tok in tokens if tok in text)
            if key.split(":")[-1].startswith("GPS"):
                found.add(f"<GPS key {key}>")
    return found
