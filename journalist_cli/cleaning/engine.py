"""One file, start to finish, inside the worker: detect, clean, check again.

This module parses untrusted files, so it runs in the keyless worker process
(`worker.main`); the `lanterne` process itself never calls it. Tests may.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from journalist_cli.cleaning.detect import AUDIO_KINDS, IMAGE_KINDS, OFFICE_KINDS, detect
from journalist_cli.cleaning.errors import (
    CleaningError,
    HostileFile,
    UnsupportedType,
    VerificationFailed,
    WorkerFailed,
)
from journalist_cli.cleaning.limits import Limits
from journalist_cli.cleaning.report import Category, CleanReport, Findings, Risk, Status


def clean_to(src: Path, out: Path, *, flatten_pixels: bool, limits: Limits) -> CleanReport:
    """Clean `src` into the new file `out`; raise a CleaningError if that fails."""
    detected = detect(src, limits)
    findings = Findings()
    kind = detected.kind
    report = CleanReport(source=str(src), mime=detected.mime, backend="native")
    leftovers: list[str]
    if flatten_pixels and kind == "pdf":
        from journalist_cli.cleaning import flatten, pdf

        flatten.flatten_pdf(src, out, limits, findings)
        leftovers = pdf.leftovers(out, limits)
        report.flattened = True
    elif kind in IMAGE_KINDS:
        from journalist_cli.cleaning import images

        data = src.read_bytes()
        if flatten_pixels:
            from journalist_cli.cleaning import flatten

            cleaned = flatten.flatten_image(data, kind, limits, findings)
            report.flattened = True
        else:
            cleaned = images.clean_bytes(data, kind, limits, findings)
        out.write_bytes(cleaned)
        leftovers = images.leftovers(cleaned, kind, limits)
    elif kind == "pdf":
        from journalist_cli.cleaning import pdf

        pdf.clean(src, out, limits, findings)
        leftovers = pdf.leftovers(out, limits)
    elif kind in OFFICE_KINDS:
        from journalist_cli.cleaning import office

        cleaned = office.clean_bytes(src.read_bytes(), kind, limits, findings)
        out.write_bytes(cleaned)
        leftovers = office.leftovers(cleaned, kind, limits)
    elif kind in AUDIO_KINDS:
        from journalist_cli.cleaning import audio

        if src.stat().st_size > limits.max_audio_bytes:
            raise HostileFile("the audio file is larger than the limit")
        shutil.copyfile(src, out)
        audio.clean_in_place(out, kind, findings)
        leftovers = audio.leftovers(out, kind)
    elif detected.plain:
        shutil.copyfile(src, out)
        _flag_invisible(out, findings)
        report.backend = "none needed"
        leftovers = []
    elif detected.mat2_ext is not None:
        from journalist_cli.cleaning import mat2_backend

        mat2_backend.clean(src, out, detected.mat2_ext, findings, limits.worker_timeout / 2)
        report.backend = "mat2"
        leftovers = []
    else:
        raise UnsupportedType(f"no cleaner for {detected.mime}")
    if flatten_pixels and not report.flattened:
        findings.kept(
            Category.OTHER,
            "--flatten",
            kind or detected.mime,
            "only PDFs and images can be flattened; cleaned normally",
        )
    if leftovers:
        out.unlink(missing_ok=True)
        raise VerificationFailed("metadata still found after cleaning: " + "; ".join(leftovers[:5]))
    report.findings = findings.items
    report.risks = findings.risks
    report.unvouched = findings.unvouched
    report.output = str(out)
    if detected.plain:
        report.status = Status.NOTHING_TO_CLEAN
    elif findings.unvouched:
        report.status = Status.NOT_VOUCHED
    else:
        report.status = Status.CLEANED
    return report


# Characters a reader does not see: zero-width joiners and spaces, bidi
# controls, soft hyphens, tags. In a text file they are content (Lanterne
# keeps them) but they can carry a watermark that identifies a copy.
_INVISIBLE = (
    {0x00AD, 0x180E, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0xFEFF}
    | set(range(0x200B, 0x2010))
    | set(range(0x202A, 0x202F))
    | set(range(0x2066, 0x206A))
    | set(range(0xE0000, 0xE0080))
)


def _flag_invisible(path: Path, findings: Findings) -> None:
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    count = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            text = decoder.decode(block)
            count += sum(1 for ch in text if ord(ch) in _INVISIBLE)
    # A byte-order mark at the very start is ordinary.
    with path.open("rb") as handle:
        if handle.read(3) == b"\xef\xbb\xbf":
            count -= 1
    if count:
        findings.kept(
            Category.HIDDEN_TEXT,
            "text",
            f"{count} invisible characters (zero-width, direction marks)",
            "content: they can carry a watermark; review before publishing",
        )
        findings.risk(Risk.HIDDEN_CONTENT, f"{count} invisible characters in the text")


def run(src: Path, out: Path, *, flatten_pixels: bool, limits: Limits) -> CleanReport:
    """Like `clean_to`, but every failure becomes a failed report, never an exception."""
    error: CleaningError
    try:
        return clean_to(src, out, flatten_pixels=flatten_pixels, limits=limits)
    except CleaningError as exc:
        error = exc
    except MemoryError:
        error = WorkerFailed("ran out of memory while parsing the file")
    except RecursionError:
        error = HostileFile("the file is nested too deeply to parse")
    except Exception as exc:  # a parser bug must not stop the batch
        error = CleaningError(f"unexpected {type(exc).__name__} while parsing: {exc}")
    out.unlink(missing_ok=True)
    return CleanReport(source=str(src), error_kind=error.kind, error=str(error))
