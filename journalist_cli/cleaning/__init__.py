"""Metadata removal and triage of received documents (issue 6).

    clean_file(src, dst_dir, *, flatten=False) -> CleanReport

writes a cleaned copy of `src` into `dst_dir` under the same name, never
touching the original, and reports what was found, removed, kept and why,
with risk flags for triage. Every parse happens in a keyless, resource-
limited process: one zygote per batch forks a child per file (`runner`,
`worker`, `protocol`); the type comes from the content (`detect`); images,
PDFs, Office/ODF documents and audio have native cleaners; plain text, CSV,
Markdown and JSON have no metadata and are copied as "nothing to clean"; mat2
(installed by `scripts/bootstrap.sh`) covers a few more formats. Each report
has a `Status`: cleaned, nothing to clean, not vouched (a copy that keeps a
part Lanterne cannot check) or failed.

Errors (see `errors` for the tree) describe why a file failed; `clean_file`
returns them inside the report so a batch goes on, and
`CleanReport.raise_for_error()` turns a failed report back into one.
"""

from journalist_cli.cleaning.errors import (
    CleaningError,
    HostileFile,
    MalformedFile,
    OutputError,
    UnsupportedType,
    VerificationFailed,
    WorkerFailed,
)
from journalist_cli.cleaning.limits import DEFAULT_LIMITS, Limits
from journalist_cli.cleaning.report import (
    Category,
    CleanReport,
    Finding,
    Risk,
    RiskFlag,
    Status,
    render_table,
    summarise,
)
from journalist_cli.cleaning.runner import clean_file, clean_files, sandbox_works

__all__ = [
    "DEFAULT_LIMITS",
    "Category",
    "CleanReport",
    "CleaningError",
    "Finding",
    "HostileFile",
    "Limits",
    "MalformedFile",
    "OutputError",
    "Risk",
    "RiskFlag",
    "Status",
    "UnsupportedType",
    "VerificationFailed",
    "WorkerFailed",
    "clean_file",
    "clean_files",
    "render_table",
    "sandbox_works",
    "summarise",
]
