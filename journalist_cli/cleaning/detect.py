"""The real type of a file, from its content: libmagic first, then the container.

The file name is never consulted. libmagic names the family; for zips it often
says only "zip", so the members that define an Office format (`mimetype`,
`[Content_Types].xml`) are read, within caps. Each cleaner then confirms the
type by opening the file with exactly that parser and fails if it does not fit.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import magic

from journalist_cli.cleaning.errors import HostileFile, MalformedFile, UnsupportedType
from journalist_cli.cleaning.limits import Limits

OOXML_MAIN = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
}
ODF_MIME = {
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
}

IMAGE_KINDS = {"jpeg", "png", "webp", "tiff", "gif"}
OFFICE_KINDS = set(OOXML_MAIN) | set(ODF_MIME)
AUDIO_KINDS = {"mp3", "flac", "ogg"}

NATIVE: dict[str, str] = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "image/tiff": "tiff",
    "image/gif": "gif",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    **{mime: kind for kind, mime in ODF_MIME.items()},
    "audio/mpeg": "mp3",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/ogg": "ogg",
    "audio/x-vorbis+ogg": "ogg",
    "audio/x-opus+ogg": "ogg",
}
# Formats left to mat2 where it is installed, with the extension it expects
# (mat2 picks its parser from the name, so it gets a canonical one).
MAT2: dict[str, str] = {
    "audio/x-wav": ".wav",
    "audio/wav": ".wav",
    "audio/x-aiff": ".aiff",
    "video/mp4": ".mp4",
    "video/x-msvideo": ".avi",
    "video/x-ms-asf": ".wmv",
    "image/svg+xml": ".svg",
    "image/x-portable-pixmap": ".ppm",
    "image/heic": ".heic",
}
# Formats that have no place for metadata: the bytes are the content. They are
# checked to be text (see engine) and copied as they are, reported as "nothing
# to clean" (libmagic calls CSV, TSV and Markdown text/plain).
NOTHING_TO_CLEAN = {
    "text/plain",
    "text/csv",
    "text/markdown",
    "text/x-markdown",
    "application/json",
}
_ZIP_FAMILY = {"application/zip", "application/octet-stream", "application/x-zip-compressed"}


@dataclass(frozen=True)
class Detected:
    """What a file is: its MIME type and the native cleaner or mat2 extension for it."""

    mime: str
    kind: str | None
    mat2_ext: str | None = None
    plain: bool = False  # a NOTHING_TO_CLEAN format


def _zip_kind(path: Path, limits: Limits) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > limits.max_zip_members:
                raise HostileFile(f"{len(infos)} zip members (limit {limits.max_zip_members})")
            names = {i.filename: i for i in infos}
            if "mimetype" in names:
                with archive.open(names["mimetype"]) as handle:
                    mime = handle.read(200).strip().decode("ascii", "replace")
                return next((k for k, v in ODF_MIME.items() if v == mime), None)
            if "[Content_Types].xml" in names:
                with archive.open(names["[Content_Types].xml"]) as handle:
                    types = handle.read(1 << 20).decode("utf-8", "replace")
                return next(
                    (k for k, v in OOXML_MAIN.items() if v.split(".main+xml")[0] in types), None
                )
    except (zipfile.BadZipFile, OSError, NotImplementedError, EOFError, ValueError) as exc:
        raise MalformedFile(f"broken zip container ({exc})") from exc
    return None


def detect(path: Path, limits: Limits) -> Detected:
    """Detect the type of the file at `path` from its bytes."""
    try:
        mime = str(magic.from_file(str(path), mime=True))
    except (magic.MagicException, OSError) as exc:
        raise MalformedFile(f"the type could not be read ({exc})") from exc
    if mime in ("application/x-empty", "inode/x-empty"):
        raise UnsupportedType("the file is empty")
    if mime in _ZIP_FAMILY and zipfile.is_zipfile(path):
        kind = _zip_kind(path, limits)
        if kind is None:
            raise UnsupportedType(f"a zip archive ({mime}) that is not an Office document")
        return Detected(mime, kind)
    kind = NATIVE.get(mime)
    if kind in OFFICE_KINDS:
        # libmagic's guess comes from the first members; the container decides.
        kind = _zip_kind(path, limits)
        if kind is None or NATIVE.get(mime) != kind:
            raise MalformedFile(f"looks like {mime} but the zip content disagrees")
    if kind is not None:
        return Detected(mime, kind)
    if mime in NOTHING_TO_CLEAN:
        return Detected(mime, None, plain=True)
    if mime in MAT2:
        return Detected(mime, None, MAT2[mime])
    raise UnsupportedType(f"no cleaner for {mime}")
