"""What `check_quality` found: one `Finding` per rule, and the `QualityReport` with the accepted and rejected rows,
as a table, JSON or Markdown."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from tailored.data.bias import BiasSummary
from tailored.data.io import write_table
from tailored.errors import DataError

Severity = Literal["error", "warning", "info"]
Action = Literal["rejected", "kept", "clipped"]
GROUPS_SHOWN = 30


@dataclass(frozen=True)
class Finding:
    """What one rule found: how many rows, a few of them, and what to do."""

    rule: str
    field: str
    severity: Severity
    action: Action
    count: int
    sample_rows: tuple[int, ...]
    sample_values: tuple[str, ...]
    message: str


@dataclass(frozen=True)
class QualityReport:
    """Accepted rows (canonical dtypes), rejected rows (``row``, ``reason`` + original cells), findings and bias."""

    source: str
    clean: pd.DataFrame
    rejected: pd.DataFrame
    findings: tuple[Finding, ...]
    bias: BiasSummary
    first_line: int | None = None
    """The file line of the first row (see `check_quality`): the Markdown report then names rows by file line."""

    @property
    def errors(self) -> list[Finding]:
        """Findings of severity ``error`` that flagged at least one row."""
        return [finding for finding in self.findings if finding.severity == "error" and finding.count]

    def raise_for_errors(self, fix: str = "") -> QualityReport:
        """Raise a DataError listing every error finding (then ``fix``); return the report when there is none."""
        if self.errors:
            lines = "\n".join(f"- {finding.message}" for finding in self.errors)
            raise DataError(f"{self.source} failed {len(self.errors)} data quality rule(s):\n{lines}"
                            + (f"\n{fix}" if fix else ""))
        return self

    def to_frame(self) -> pd.DataFrame:
        """One row per finding: rule, field, severity, action, count, sample_rows, sample_values, message."""
        records = [
            asdict(finding)
            | {"sample_rows": _joined(finding.sample_rows), "sample_values": _joined(finding.sample_values)}
            for finding in self.findings
        ]
        return pd.DataFrame(records, columns=[f.name for f in fields(Finding)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: counts, findings and bias."""
        return {
            "source": self.source,
            "rows": len(self.clean) + len(self.rejected),
            "accepted": len(self.clean),
            "rejected": len(self.rejected),
            "findings": [asdict(finding) for finding in self.findings],
            "bias": self.bias.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        """The report as Markdown text (what ``tailored check`` prints)."""
        total = len(self.clean) + len(self.rejected)
        by_line = self.first_line is not None
        numbering = "Rows are named by their line in the file (the header is line 1)." if by_line else (
            "Rows are numbered from 0.")
        lines = [
            f"## Data quality: {self.source}",
            "",
            f"{total} rows checked: {len(self.clean)} accepted, {len(self.rejected)} rejected. {numbering}",
            "",
            f"| rule | field | severity | action | rows | sample {'lines' if by_line else 'rows'} |",
            "|---|---|---|---|---:|---|",
            *(
                f"| {f.rule} | {f.field} | {f.severity} | {f.action if f.count else 'ok'} | {f.count} "
                f"| {_joined(tuple(row + (self.first_line or 0) for row in f.sample_rows))} |"
                for f in self.findings
            ),
            "",
            *(f"- **{f.severity}**: {f.message}" for f in self.findings if f.count),
            "",
            "### Concentration",
            "",
            "| measure | value |",
            "|---|---:|",
            *(
                f"| {name} | {_number(value)} |"
                for name, value in self.bias.to_dict().items() if not isinstance(value, list)
            ),
        ]
        for title, table in (("User groups", self.bias.user_groups), ("Item groups", self.bias.item_groups)):
            if table is not None:
                lines += ["", f"### {title}", "", "| group | population share | interaction share |", "|---|---:|---:|"]
                shown = table.head(GROUPS_SHOWN).itertuples(index=False)
                lines += [f"| {g} | {p:.3f} | {s:.3f} |" for g, p, s in shown]
                if len(table) > GROUPS_SHOWN:
                    lines += ["", f"... and {len(table) - GROUPS_SHOWN} smaller groups "
                              "(`tailored check --report FILE` lists them all)."]
        return "\n".join(lines) + "\n"

    def write_rejected(self, path: str | Path) -> Path:
        """Write the rejected rows with their reasons (CSV or Parquet, by extension)."""
        return write_table(self.rejected, path)


def _joined(values: tuple[Any, ...]) -> str:
    return ", ".join(str(v) for v in values)


def _number(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
