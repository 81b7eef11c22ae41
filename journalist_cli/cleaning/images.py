"""Images: JPEG, PNG and WebP are rewritten chunk by chunk (pixels untouched),
TIFF and GIF are re-encoded from their pixels by Pillow.

Either way the output is built from an allow-list: what is not needed to
show the picture is not copied. Pillow opens every file with exactly one
format allowed (no exotic decoders) and a pixel cap, which also confirms the
type libmagic reported.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from fractions import Fraction

from PIL import ExifTags, Image, ImageCms, ImageOps, ImageSequence, UnidentifiedImageError

from journalist_cli.cleaning import jpeg, xmp
from journalist_cli.cleaning.errors import HostileFile, MalformedFile
from journalist_cli.cleaning.limits import MIB, Limits
from journalist_cli.cleaning.report import Category, Findings

PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "tiff": "TIFF", "gif": "GIF"}

_EXIF_CATEGORIES = {
    "Make": Category.DEVICE,
    "Model": Category.DEVICE,
    "BodySerialNumber": Category.DEVICE,
    "LensSerialNumber": Category.DEVICE,
    "LensMake": Category.DEVICE,
    "LensModel": Category.DEVICE,
    "UniqueCameraModel": Category.DEVICE,
    "MakerNote": Category.DEVICE,
    "Artist": Category.AUTHOR,
    "Copyright": Category.AUTHOR,
    "CameraOwnerName": Category.AUTHOR,
    "XPAuthor": Category.AUTHOR,
    "Software": Category.SOFTWARE,
    "HostComputer": Category.SOFTWARE,
    "ProcessingSoftware": Category.SOFTWARE,
    "DateTime": Category.DATE,
    "DateTimeOriginal": Category.DATE,
    "DateTimeDigitized": Category.DATE,
    "ImageUniqueID": Category.IDENTIFIER,
    "ImageDescription": Category.DESCRIPTION,
    "UserComment": Category.DESCRIPTION,
    "XPComment": Category.DESCRIPTION,
    "XPTitle": Category.DESCRIPTION,
    "XPSubject": Category.DESCRIPTION,
    "XPKeywords": Category.DESCRIPTION,
    "DocumentName": Category.DESCRIPTION,
}
_ORIENTATION = 0x0112
_STANDARD_SRGB = ("sRGB",)


# --- opening and describing -------------------------------------------------


def open_image(data: bytes, kind: str, limits: Limits) -> Image.Image:
    """Open with one Pillow format only; HostileFile above the pixel cap."""
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[PILLOW_FORMATS[kind]])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise HostileFile(f"image too large ({exc})") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as exc:
        raise MalformedFile(f"does not open as {kind.upper()} ({exc})") from exc
    width, height = image.size
    if width * height > limits.max_pixels or width <= 0 or height <= 0:
        raise HostileFile(f"image is {width}x{height} pixels (limit {limits.max_pixels})")
    if getattr(image, "n_frames", 1) > limits.max_frames:
        raise HostileFile(f"image has more than {limits.max_frames} frames")
    return image


def _gps_text(gps: dict[int, object]) -> str:
    def degrees(value: object) -> float | None:
        if not isinstance(value, tuple) or len(value) != 3:
            return None
        try:
            d, m, s = (float(Fraction(str(v))) if not isinstance(v, float) else v for v in value)
        except (ValueError, ZeroDivisionError):
            return None
        return d + m / 60 + s / 3600

    lat, lon = degrees(gps.get(2)), degrees(gps.get(4))
    if lat is None or lon is None:
        return f"{len(gps)} GPS tags"
    return f"{lat:.5f} {gps.get(1, '')}, {lon:.5f} {gps.get(3, '')}".strip()


def describe_exif(exif: Image.Exif, findings: Findings, where: str) -> int:
    """Report what an EXIF block reveals; return the orientation (1 if none)."""
    orientation = 1
    technical = 0
    ifds: list[tuple[str, dict[int, object]]] = [(where, dict(exif.items()))]
    for ifd, label in ((ExifTags.IFD.Exif, "Exif"), (ExifTags.IFD.Interop, "Interop")):
        try:
            ifds.append((f"{where} {label}", dict(exif.get_ifd(ifd).items())))
        except (KeyError, ValueError, TypeError, struct.error):
            findings.found(Category.OTHER, f"{where} {label}", "unreadable block")
    try:
        gps = dict(exif.get_ifd(ExifTags.IFD.GPSInfo).items())
    except (KeyError, ValueError, TypeError, struct.error):
        gps = {0: "unreadable GPS block"}
    if gps:
        findings.found(Category.GPS, f"{where} GPS", _gps_text(gps))
    try:
        thumb = exif.get_ifd(ExifTags.IFD.IFD1)
    except (KeyError, ValueError, TypeError, struct.error):
        thumb = {}
    if thumb:
        findings.found(Category.THUMBNAIL, f"{where} thumbnail", "embedded preview image")
    pointers = {
        ExifTags.Base.ExifOffset,
        ExifTags.Base.GPSInfo,
        ExifTags.Base.ExifInteroperabilityOffset,
    }
    for label, tags in ifds:
        for tag, value in tags.items():
            if tag in pointers:
                continue
            if tag == _ORIENTATION and label == where:
                orientation = value if isinstance(value, int) and 1 <= value <= 8 else 1
                continue
            name = ExifTags.TAGS.get(tag, f"tag {tag:#06x}")
            category = _EXIF_CATEGORIES.get(name)
            if category is None:
                technical += 1
            elif name == "MakerNote":
                findings.found(category, f"{label} MakerNote", "maker notes (may hold serials)")
            else:
                findings.found(category, f"{label} {name}", value)
    if technical:
        findings.found(Category.OTHER, f"{where} tags", f"{technical} camera or technical tags")
    return orientation


def _icc_replacement(icc: bytes, findings: Findings) -> bytes | None:
    """A standard sRGB profile stays sRGB (rebuilt, nothing copied); others go."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(profile).strip()
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        description = ""
    if description.startswith(_STANDARD_SRGB):
        findings.found(
            Category.COLOUR_PROFILE,
            "ICC profile",
            description,
            note="replaced by a built-in sRGB profile",
        )
        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    findings.found(
        Category.COLOUR_PROFILE,
        "ICC profile",
        description or f"{len(icc)} bytes",
        note="removed; colours may shift slightly",
    )
    return None


# --- JPEG ---------------------------------------------------------------------


def _clean_jpeg(data: bytes, limits: Limits, findings: Findings) -> bytes:
    image = open_image(data, "jpeg", limits)
    parsed = jpeg.parse(data)
    orientation = describe_exif(image.getexif(), findings, "EXIF")
    for segment in parsed.segments():
        payload = segment.payload
        if segment.marker == jpeg.APP1 and payload.startswith(b"http://ns.adobe.com/xap/1.0/"):
            xmp.describe(payload.partition(b"\x00")[2], findings, "XMP")
        elif segment.marker == jpeg.APP1 and payload.startswith(b"http://ns.adobe.com/xmp/ext"):
            findings.found(Category.OTHER, "extended XMP", f"{len(payload)} bytes")
        elif segment.marker == jpeg.APP13:
            findings.found(Category.OTHER, "IPTC/Photoshop block", f"{len(payload)} bytes")
        elif segment.marker == jpeg.COM:
            findings.found(Category.COMMENT, "JPEG comment", payload)
        elif segment.marker == jpeg.APP2 and payload.startswith(b"MPF\x00"):
            findings.found(Category.OTHER, "MPF index", "extra images (previews, depth maps)")
        elif segment.marker == jpeg.APP0 and payload.startswith(b"JFXX"):
            findings.found(Category.THUMBNAIL, "JFIF extension", "thumbnail")
        elif jpeg.APP0 < segment.marker <= 0xEF and segment.marker not in (
            jpeg.APP1,
            jpeg.APP2,
            jpeg.APP13,
            jpeg.APP14,
        ):
            findings.found(
                Category.OTHER, f"APP{segment.marker - jpeg.APP0} segment", f"{len(payload)} bytes"
            )
    if parsed.trailing:
        findings.found(Category.OTHER, "after end of image", f"{parsed.trailing} bytes")
    exif = None
    if orientation != 1:
        kept = Image.Exif()
        kept[_ORIENTATION] = orientation
        exif = kept.tobytes()
        findings.kept(
            Category.OTHER, "EXIF Orientation", orientation, "needed to show the picture upright"
        )
    icc = parsed.icc_profile()
    new_icc = _icc_replacement(icc, findings) if icc else None
    return jpeg.rebuild(parsed, exif=exif, icc=new_icc)


# --- PNG ----------------------------------------------------------------------

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = {
    b"IHDR",
    b"PLTE",
    b"tRNS",
    b"cHRM",
    b"gAMA",
    b"sRGB",
    b"sBIT",
    b"bKGD",
    b"pHYs",
    b"hIST",
    b"acTL",
    b"fcTL",
    b"fdAT",
}


def _png_chunks(data: bytes) -> tuple[list[tuple[bytes, bytes]], int]:
    if not data.startswith(_PNG_SIG):
        raise MalformedFile("not a PNG: bad signature")
    pos, chunks = len(_PNG_SIG), []
    while pos + 12 <= len(data):
        length, ctype = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise MalformedFile(f"PNG chunk {ctype!r} runs past the end of the file")
        chunks.append((ctype, data[pos + 8 : pos + 8 + length]))
        pos = end
        if ctype == b"IEND":
            return chunks, len(data) - pos
    raise MalformedFile("PNG has no IEND chunk")


def _inflate(data: bytes, cap: int, what: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, cap + 1)
    except zlib.error as exc:
        raise MalformedFile(f"PNG {what} does not decompress ({exc})") from exc
    if len(out) > cap:
        raise HostileFile(f"PNG {what} inflates past {cap} bytes")
    return out


def _png_text(ctype: bytes, body: bytes) -> tuple[str, str]:
    keyword, _, rest = body.partition(b"\x00")
    if ctype == b"zTXt":
        rest = _inflate(rest[1:], MIB, "text chunk")
    elif ctype == b"iTXt":
        compressed = rest[:1] == b"\x01"
        rest = rest[2:].split(b"\x00", 2)[-1]
        if compressed:
            rest = _inflate(rest, MIB, "text chunk")
    return keyword.decode("latin-1"), rest.decode("utf-8", "replace")


def _raw_size(ihdr: bytes) -> int:
    """Bytes of filtered scanlines the IDAT stream must inflate to."""
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr[:13])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
    bits = channels * depth

    def plane(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlace:
        return plane(width, height)
    passes = (
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    )
    return sum(
        plane((width - x + dx - 1) // dx, (height - y + dy - 1) // dy) for x, y, dx, dy in passes
    )


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _clean_png(data: bytes, limits: Limits, findings: Findings) -> bytes:
    image = open_image(data, "png", limits)
    chunks, trailing = _png_chunks(data)
    if chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise MalformedFile("PNG does not start with a valid IHDR")
    idat = b"".join(body for ctype, body in chunks if ctype == b"IDAT")
    raw = _inflate(idat, _raw_size(chunks[0][1]), "image data")
    out = [_PNG_SIG]
    wrote_idat = False
    for ctype, body in chunks:
        if ctype in _PNG_KEEP:
            out.append(_chunk(ctype, body))
        elif ctype == b"IDAT":
            if not wrote_idat:
                # Re-deflating drops anything hidden after the zlib stream.
                out.append(_chunk(b"IDAT", zlib.compress(raw, 6)))
                wrote_idat = True
        elif ctype == b"IEND":
            out.append(_chunk(b"IEND", b""))
        elif ctype in (b"tEXt", b"zTXt", b"iTXt"):
            keyword, text = _png_text(ctype, body)
            if keyword == "XML:com.adobe.xmp":
                xmp.describe(text.encode(), findings, "XMP")
            else:
                findings.found(Category.DESCRIPTION, f"PNG text {keyword}", text)
        elif ctype == b"eXIf":
            describe_exif(image.getexif(), findings, "EXIF")
        elif ctype == b"tIME":
            findings.found(Category.DATE, "PNG tIME", body.hex())
        elif ctype == b"iCCP":
            name, _, rest = body.partition(b"\x00")
            profile = _inflate(rest[1:], 16 * MIB, "colour profile")
            kept = _icc_replacement(profile, findings)
            if kept is not None:
                out.insert(2, _chunk(b"iCCP", b"sRGB\x00\x00" + zlib.compress(kept)))
            del name
        else:
            findings.found(
                Category.OTHER, f"PNG chunk {ctype.decode('latin-1')}", f"{len(body)} bytes"
            )
    if trailing:
        findings.found(Category.OTHER, "after end of image", f"{trailing} bytes")
    return b"".join(out)


# --- WebP ---------------------------------------------------------------------

_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"}


def _clean_webp(data: bytes, limits: Limits, findings: Findings) -> bytes:
    open_image(data, "webp", limits)
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise MalformedFile("not a WebP: bad RIFF header")
    pos, out = 12, []
    end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    while pos + 8 <= end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        if len(body) != size:
            raise MalformedFile(f"WebP chunk {fourcc!r} runs past the end of the file")
        pos += 8 + size + (size & 1)
        if fourcc == b"VP8X":
            # Clear the ICC, EXIF and XMP flags: those chunks are not copied.
            body = bytes([body[0] & ~0x2C]) + body[1:]
        if fourcc in _WEBP_KEEP:
            out.append(fourcc + struct.pack("<I", size) + body + b"\x00" * (size & 1))
        elif fourcc == b"EXIF":
            exif = Image.Exif()
            exif.load(body)
            describe_exif(exif, findings, "EXIF")
        elif fourcc == b"XMP ":
            xmp.describe(body, findings, "XMP")
        elif fourcc == b"ICCP":
            findings.found(
                Category.COLOUR_PROFILE,
                "ICC profile",
                f"{size} bytes",
                note="removed; colours may shift slightly",
            )
        else:
            findings.found(
                Category.OTHER, f"WebP chunk {fourcc.decode('latin-1')}", f"{size} bytes"
            )
    if len(data) > end:
        findings.found(Category.OTHER, "after end of image", f"{len(data) - end} bytes")
    payload = b"WEBP" + b"".join(out)
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


# --- TIFF and GIF: re-encode from pixels --------------------------------------


def _describe_pillow_info(image: Image.Image, findings: Findings) -> int:
    orientation = describe_exif(image.getexif(), findings, "EXIF")
    info = image.info
    if info.get("xmp"):
        packet = info["xmp"]
        xmp.describe(packet if isinstance(packet, bytes) else str(packet).encode(), findings, "XMP")
    if info.get("comment"):
        findings.found(Category.COMMENT, "comment", info["comment"])
    if info.get("icc_profile"):
        findings.found(
            Category.COLOUR_PROFILE,
            "ICC profile",
            f"{len(info['icc_profile'])} bytes",
            note="removed; colours may shift slightly",
        )
    return orientation


def fresh_copy(frame: Image.Image) -> Image.Image:
    """A new image holding only the pixels (and palette) of a frame."""
    fresh = Image.frombytes(frame.mode, frame.size, frame.tobytes())
    if frame.mode in ("P", "PA"):
        palette = frame.getpalette()
        if palette is not None:
            fresh.putpalette(palette)
    return fresh


def _reencode(data: bytes, kind: str, limits: Limits, findings: Findings) -> bytes:
    image = open_image(data, kind, limits)
    orientation = _describe_pillow_info(image, findings)
    frames: list[Image.Image] = []
    durations: list[int] = []
    try:
        for frame in ImageSequence.Iterator(image):
            fresh = fresh_copy(frame)
            if orientation != 1:
                fresh = ImageOps.exif_transpose(_with_orientation(fresh, orientation))
            frames.append(fresh)
            durations.append(int(frame.info.get("duration", 0) or 0))
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        raise MalformedFile(f"{kind.upper()} pixels do not decode ({exc})") from exc
    if orientation != 1:
        findings.found(
            Category.OTHER, "EXIF Orientation", orientation, note="applied to the pixels"
        )
    out = io.BytesIO()
    options: dict[str, object] = {}
    if len(frames) > 1:
        options = {"save_all": True, "append_images": frames[1:]}
    if kind == "gif":
        if len(frames) > 1:
            options.update(duration=durations, loop=int(image.info.get("loop", 0) or 0))
        if "transparency" in image.info and frames[0].mode == "P":
            options["transparency"] = image.info["transparency"]
        frames[0].save(out, format="GIF", **options)
    else:
        frames[0].save(out, format="TIFF", compression="tiff_lzw", **options)
    return out.getvalue()


def _with_orientation(image: Image.Image, orientation: int) -> Image.Image:
    image.getexif()[_ORIENTATION] = orientation
    return image


# --- entry points ---------------------------------------------------------------


def clean_bytes(data: bytes, kind: str, limits: Limits, findings: Findings) -> bytes:
    """Cleaned bytes of an image of the given kind (also used inside documents)."""
    if kind == "jpeg":
        return _clean_jpeg(data, limits, findings)
    if kind == "png":
        return _clean_png(data, limits, findings)
    if kind == "webp":
        return _clean_webp(data, limits, findings)
    return _reencode(data, kind, limits, findings)


def leftovers(data: bytes, kind: str, limits: Limits) -> list[str]:
    """Metadata a fresh look still finds in a cleaned image (should be none)."""
    image = open_image(data, kind, limits)
    try:
        image.load()
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        return [f"the cleaned image does not decode ({exc})"]
    found = Findings()
    _describe_pillow_info(image, found)
    remaining = [
        f"{f.where}: {f.value}" for f in found.items if f.category != Category.COLOUR_PROFILE
    ]
    for key in image.info:
        if key in ("exif", "xmp", "XML:com.adobe.xmp", "comment") or isinstance(
            image.info[key], str
        ):
            remaining.append(f"image info {key}")
    return remaining
