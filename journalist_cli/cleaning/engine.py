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
from journalist_cli.cleaning.report import Category, CleanReport, Findings


def clean_to(src: Path, out: Path, *, flatten_pixels: bool, limits: Limits) -> CleanReport:
    """Clean `src` into the new file `out`; raise a CleaningError if that fails."""
    # Parsers are imported per branch: a worker cleans one file, and importing
    # only the one it needs saves most of its start-up time.
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
    report.output = str(out)
    report.status = "cleaned"
    return report


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
