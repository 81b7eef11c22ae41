"""Errors raised while cleaning one file.

    CleaningError            base: this file was not cleaned, others in the batch go on
    ├── UnsupportedType      no cleaner for the detected content type
    ├── MalformedFile        the file does not open as the type its content claims
    ├── HostileFile          a safety limit was hit (pixel or zip bomb, XML entities, nesting)
    ├── WorkerFailed         the isolated worker crashed, ran out of time or memory
    ├── OutputError          the cleaned copy could not be written where asked
    └── VerificationFailed   the cleaned copy still showed metadata and was thrown away

Every message names what happened in words a journalist can act on; the
original file is never modified whatever the error.
"""

from __future__ import annotations


class CleaningError(Exception):
    """The file could not be cleaned; no cleaned copy was written for it."""

    kind = "error"


class UnsupportedType(CleaningError):
    """Lanterne has no cleaner for this kind of file (judged from its content, not its name)."""

    kind = "unsupported"


class MalformedFile(CleaningError):
    """The file is damaged, or its content does not match the type it appears to be."""

    kind = "malformed"


class HostileFile(CleaningError):
    """The file hit a safety limit (too many pixels, a zip bomb, XML entities, deep nesting).

    It may be an attack on the journalist's machine; open it only in an isolated system.
    """

    kind = "hostile"


class WorkerFailed(CleaningError):
    """The isolated process that parses the file crashed, timed out or ran out of memory."""

    kind = "worker"


class OutputError(CleaningError):
    """The cleaned copy could not be written (it exists already, or would replace the original)."""

    kind = "output"


class VerificationFailed(CleaningError):
    """After cleaning, a second look still found metadata, so the copy was deleted."""

    kind = "verification"


ERROR_KINDS: dict[str, type[CleaningError]] = {
    cls.kind: cls
    for cls in (
        CleaningError,
        UnsupportedType,
        MalformedFile,
        HostileFile,
        WorkerFailed,
        OutputError,
        VerificationFailed,
    )
}
