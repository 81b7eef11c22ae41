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


@dataclass
class CleanReport:
    """The outcome for one file, as shown in the table and in `--json`."""

    source: str
    output: str | None = None
    mime: str = ""
    backend: str = ""
    status: str = "failed"  # "cleaned" or "failed"
    flattened: bool = False
    sandbox: str = ""
    error_kind: str = ""
    error: str = ""
    findings: list[Finding] = field(default_factory=list)
    risks: list[RiskFlag] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "cleaned"

    @property
    def not_removed(self) -> list[Finding]:
        return [f for f in self.findings if not f.removed]

    def raise_for_error(self) -> None:
        """Raise the CleaningError subclass this failed report describes."""
        if not self.ok:
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
            status="cleaned" if data["status"] == "cleaned" else "failed",
            flattened=bool(data["flattened"]),
            sandbox=shorten(data["sandbox"]),
            error_kind=shorten(data["error_kind"]),
            error=shorten(data["error"]),
            findings=findings,
            risks=risks,
        )


def render_table(report: CleanReport) -> Table:
    """A rich table for one file: findings first, then risk flags."""
    # Imported here so the worker, which never draws tables, starts faster.
    from rich.table import Table

    title = f"{report.source} → {report.output or '(not written)'}"
    caption = f"{report.mime or 'unknown type'}, {report.backend or 'no backend'}"
    if report.flattened:
        caption += ", flattened to pixels"
    if not report.ok:
        caption = f"FAILED ({report.error_kind}): {report.error}"
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
    if report.ok and not report.findings and not report.risks:
        table.add_row("-", "-", "no metadata found", "-")
    return table
