"""What cleaning found, removed, could not remove, and what looks risky.

One `CleanReport` per file. It crosses the worker boundary as JSON, so
`from_json` treats its input as untrusted data: unknown categories and risks
are rejected and strings are cut to a bounded length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from journalist_cli.cleaning.errors import ERROR_KINDS, CleaningError

if TYPE_CHECKING:
    from rich.table import Table

MAX_VALUE_CHARS = 160
MAX_UNVOUCHED = 200


class Category(StrEnum):
    """Kinds of metadata a finding can be about."""

    GPS = "gps"
    AUTHOR = "author"
    DEVICE = "device"
    SOFTWARE = "software"
    DATE = "date"
    COMMENT = "comment"
    TRACKED_CHANGE = "tracked_change"
    HIDDEN_TEXT = "hidden_text"
    MACRO = "macro"
    EMBEDDED_FILE = "embedded_file"
    EXTERNAL_LINK = "external_link"
    IDENTIFIER = "identifier"
    THUMBNAIL = "thumbnail"
    JAVASCRIPT = "javascript"
    ANNOTATION = "annotation"
    FORM_DATA = "form_data"
    DESCRIPTION = "description"
    COLOUR_PROFILE = "colour_profile"
    OTHER = "other"


class Status(StrEnum):
    """What became of one file."""

    CLEANED = "cleaned"  # metadata removed, and every part of the copy was checked
    NOTHING_TO_CLEAN = "nothing to clean"  # a format with no room for metadata: copied as is
    NOT_VOUCHED = "not vouched"  # a copy was written, but it keeps parts Lanterne cannot check
    FAILED = "failed"  # no copy


class Risk(StrEnum):
    """Triage flags: things in the original that deserve care before opening it."""

    MACROS = "macros"
    JAVASCRIPT = "javascript"
    EXECUTABLE = "executable"
    REMOTE_REFERENCE = "remote_reference"
    EMBEDDED_FILE = "embedded_file"
    HIDDEN_CONTENT = "hidden_content"


def shorten(value: object) -> str:
    """A printable, bounded rendering of a metadata value."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


@dataclass(frozen=True)
class Finding:
    """One piece of metadata: where it was, what it said, and what happened to it."""

    category: Category
    where: str
    value: str = ""
    removed: bool = True
    note: str = ""  # why it was kept, or how it was removed ("accepted", "flagged")


@dataclass(frozen=True)
class RiskFlag:
    """Something in the original that could act on the reader's machine or reveal it."""

    risk: Risk
    detail: str


@dataclass
class Findings:
    """What a format cleaner collects while it works."""

    items: list[Finding] = field(default_factory=list)
    risks: list[RiskFlag] = field(default_factory=list)
    # Parts kept in the copy that Lanterne cannot check: the file is not "cleaned".
    unvouched: list[str] = field(default_factory=list)

    def cannot_vouch(self, where: str, why: str) -> None:
        entry = shorten(f"{where}: {why}")
        if entry not in self.unvouched:
            self.unvouched.append(entry)

    def found(
        self,
        category: Category,
        where: str,
        value: object = "",
        *,
        removed: bool = True,
        note: str = "",
    ) -> None:
        self.items.append(Finding(category, shorten(where), shorten(value), removed, note))

    def kept(self, category: Category, where: str, value: object, why: str) -> None:
        self.found(category, where, value, removed=False, note=why)

    def risk(self, risk: Risk, detail: str) -> None:
        flag = RiskFlag(risk, shorten(detail))
        if flag not in self.risks:
            self.risks.append(flag)

    def extend(self, other: Findings, prefix: str) -> None:
        """Add the findings of an embedded part, naming where it was."""
        for item in other.items:
            self.items.append(
                Finding(
                    item.category,
                    shorten(f"{prefix}: {item.where}"),
                    item.value,
                    item.removed,
                    item.note,
                )
            )
        for flag in other.risks:
            self.risk(flag.risk, f"{prefix}: {flag.detail}")
        for entry in other.unvouched:
            self.unvouched.append(shorten(f"{prefix}: {entry}"))


@dataclass
class CleanReport:
    """The outcome for one file, as shown in the table and in `--json`."""

    source: str
    output: str | None = None
    mime: str = ""
    backend: str = ""
    status: Status = Status.FAILED
    flattened: bool = False
    sandbox: str = ""
    error_kind: str = ""
    error: str = ""
    findings: list[Finding] = field(default_factory=list)
    risks: list[RiskFlag] = field(default_factory=list)
    unvouched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The copy can be shared as far as metadata goes: cleaned, or nothing to clean."""
        return self.status in (Status.CLEANED, Status.NOTHING_TO_CLEAN)

    @property
    def written(self) -> bool:
        """A copy was written (also for a file Lanterne could not vouch for)."""
        return self.status != Status.FAILED

    @property
    def reason(self) -> str:
        """Why the file is not (or need not be) cleaned, in one line; empty when cleaned."""
        if self.status == Status.FAILED:
            return f"{self.error_kind or 'error'}: {self.error}"
        if self.status == Status.NOT_VOUCHED:
            return "kept parts Lanterne cannot check: " + "; ".join(self.unvouched[:3])
        if self.status == Status.NOTHING_TO_CLEAN:
            return f"{self.mime or 'this format'} carries no metadata; copied as is"
        return ""

    @property
    def not_removed(self) -> list[Finding]:
        return [f for f in self.findings if not f.removed]

    def raise_for_error(self) -> None:
        """Raise the CleaningError subclass this failed report describes."""
        if self.status == Status.FAILED:
            raise ERROR_KINDS.get(self.error_kind, CleaningError)(self.error)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["removed"] = [asdict(f) for f in self.findings if f.removed]
        data["not_removed"] = [asdict(f) for f in self.findings if not f.removed]
        del data["findings"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CleanReport:
        findings = [
            Finding(
                Category(f["category"]),
                shorten(f["where"]),
                shorten(f["value"]),
                bool(f["removed"]),
                shorten(f["note"]),
            )
            for f in [*data["removed"], *data["not_removed"]]
        ]
        risks = [RiskFlag(Risk(r["risk"]), shorten(r["detail"])) for r in data["risks"]]
        return cls(
            source=str(data["source"]),
            output=None if data["output"] is None else str(data["output"]),
            mime=shorten(data["mime"]),
            backend=shorten(data["backend"]),
            status=Status(data["status"]),
            flattened=bool(data["flattened"]),
            sandbox=shorten(data["sandbox"]),
            error_kind=shorten(data["error_kind"]),
            error=shorten(data["error"]),
            findings=findings,
            risks=risks,
            unvouched=[shorten(u) for u in _bounded_list(data["unvouched"])],
        )


def summarise(reports: list[CleanReport]) -> str:
    """'2 cleaned, 1 nothing to clean, 1 not vouched, 0 failed'.

    Cleaned and failed are always counted; the two others only when there are some.
    """
    counts = {status: 0 for status in Status}
    for report in reports:
        counts[report.status] += 1
    always = (Status.CLEANED, Status.FAILED)
    return ", ".join(f"{counts[s]} {s.value}" for s in Status if s in always or counts[s])


def _bounded_list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value[:MAX_UNVOUCHED]


def render_table(report: CleanReport) -> Table:
    """A rich table for one file: findings first, then risk flags."""
    # Imported here so the worker, which never draws tables, starts faster.
    from rich.table import Table

    title = f"{report.source} → {report.output or '(not written)'}"
    caption = f"{report.mime or 'unknown type'}, {report.backend or 'no backend'}"
    if report.flattened:
        caption += ", flattened to pixels"
    if report.status == Status.FAILED:
        caption = f"FAILED ({report.error_kind}): {report.error}"
    elif report.status != Status.CLEANED:
        caption = f"{report.status.upper()}: {report.reason}"
    table = Table(title=title, caption=caption, show_lines=False, expand=False)
    table.add_column("what")
    table.add_column("where")
    table.add_column("value", overflow="fold")
    table.add_column("result")
    for f in report.findings:
        result = "removed" if f.removed else "KEPT"
        if f.note:
            result += f" ({f.note})"
        table.add_row(
            f.category.value, f.where, f.value, result, style=None if f.removed else "yellow"
        )
    for r in report.risks:
        table.add_row(f"RISK: {r.risk.value}", "", r.detail, "flagged", style="red")
    for entry in report.unvouched:
        table.add_row("NOT VOUCHED", "", entry, "kept, unchecked", style="red")
    if report.ok and not report.findings and not report.risks:
        table.add_row("-", "-", "no metadata found", "-")
    return table
