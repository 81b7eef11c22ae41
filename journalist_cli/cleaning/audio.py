"""Audio tags with mutagen: MP3 (ID3v1, ID3v2, APEv2), FLAC, Ogg Vorbis and Opus.

The copy is cleaned in place (mutagen edits files), then opened again to
confirm no tag is left. Container data (MP4 atoms, WAV chunks) is beyond
what mutagen can strip, so those formats go to mat2 or are refused.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import mutagen
import mutagen.apev2
import mutagen.flac
import mutagen.id3
import mutagen.mp3
import mutagen.oggopus
import mutagen.oggvorbis

from journalist_cli.cleaning.errors import MalformedFile
from journalist_cli.cleaning.report import Category, Findings

_CLASSES: dict[str, Any] = {
    "mp3": mutagen.mp3.MP3,
    "flac": mutagen.flac.FLAC,
    "ogg": (mutagen.oggvorbis.OggVorbis, mutagen.oggopus.OggOpus),
}
_TAG_CATEGORIES = {
    "TPE1": Category.AUTHOR,
    "TPE2": Category.AUTHOR,
    "TCOM": Category.AUTHOR,
    "TEXT": Category.AUTHOR,
    "TENC": Category.SOFTWARE,
    "TSSE": Category.SOFTWARE,
    "TDRC": Category.DATE,
    "TDEN": Category.DATE,
    "TDTG": Category.DATE,
    "TYER": Category.DATE,
    "COMM": Category.COMMENT,
    "APIC": Category.THUMBNAIL,
    "PRIV": Category.IDENTIFIER,
    "UFID": Category.IDENTIFIER,
    "GEOB": Category.EMBEDDED_FILE,
    "WXXX": Category.EXTERNAL_LINK,
    "artist": Category.AUTHOR,
    "encoder": Category.SOFTWARE,
    "date": Category.DATE,
    "comment": Category.COMMENT,
    "description": Category.COMMENT,
    "encoded-by": Category.SOFTWARE,
    "location": Category.GPS,
}


def _open(path: Path, kind: str) -> Any:
    classes = _CLASSES[kind]
    for cls in classes if isinstance(classes, tuple) else (classes,):
        try:
            return cls(path)
        except (mutagen.MutagenError, ValueError, OSError, EOFError, IndexError):
            continue
    raise MalformedFile(f"does not open as {kind.upper()} audio")


def _describe(audio: Any, findings: Findings) -> None:
    tags = audio.tags
    if tags is None:
        return
    for key in list(tags.keys())[:200]:
        frame = key.split(":", 1)[0]
        category = _TAG_CATEGORIES.get(frame, _TAG_CATEGORIES.get(frame.lower(), Category.OTHER))
        value = tags[key]
        text = f"{len(value.data)} bytes of picture" if frame == "APIC" else value
        findings.found(category, f"tag {key}", text)


def clean_in_place(path: Path, kind: str, findings: Findings) -> None:
    """Remove every tag from the audio file at `path` (a copy of the original)."""
    audio = _open(path, kind)
    _describe(audio, findings)
    if kind == "mp3":
        with path.open("rb") as handle:
            handle.seek(-128, 2)
            if handle.read(3) == b"TAG":
                findings.found(Category.OTHER, "ID3v1 tag", "128 bytes at the end")
        mutagen.id3.delete(path, delete_v1=True, delete_v2=True)
        with contextlib.suppress(mutagen.MutagenError):
            mutagen.apev2.delete(path)
        return
    if kind == "flac":
        flac: Any = _open(path, kind)
        if flac.pictures:
            findings.found(Category.THUMBNAIL, "FLAC pictures", f"{len(flac.pictures)}")
        flac.clear_pictures()
        flac.delete()
        flac.save(deleteid3=True)
        return
    audio.delete()


def leftovers(path: Path, kind: str) -> list[str]:
    """Tags a fresh look still finds (should be none)."""
    audio = _open(path, kind)
    remaining = [f"tag {k}" for k in (audio.tags.keys() if audio.tags is not None else [])]
    if kind == "flac" and getattr(audio, "pictures", []):
        remaining.append("FLAC pictures")
    if kind == "mp3":
        data = path.read_bytes()
        if data[:3] == b"ID3" or data[-128:-125] == b"TAG" or b"APETAGEX" in data[-4096:]:
            remaining.append("ID3 or APE tag bytes")
    return remaining
