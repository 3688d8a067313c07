"""Problems a reader tolerated or ``mirstd data check`` found, each naming a file (and line).

Readers never drop input silently: whatever they skip becomes a :class:`Finding` in
``SequenceDataset.findings``. ``severity`` is ``"error"`` (the dataset is wrong: a missing or
unreadable frame, a label for a frame that does not exist, ...; ``data check`` exits 1) or
``"warning"`` (a known quirk handled by a documented rule, e.g. SIRST v1 XML boxes that disagree
with the masks; boxes then come from the masks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Finding:
    path: str
    message: str
    line: int | None = None
    severity: str = "error"  # "error" | "warning"
    kind: str = "other"  # short machine tag: missing_frame, bad_label, size_mismatch, ...

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{self.severity}: {where}: {self.message}"


class DataError(ValueError):
    """A dataset failed to load; the message lists the findings (file and line)."""

    def __init__(self, findings: list[Finding], root: str | Path | None = None):
        self.findings = findings
        shown = "\n  ".join(str(f) for f in findings[:10])
        more = f"\n  ... and {len(findings) - 10} more" if len(findings) > 10 else ""
        hint = f" (run `mirstd data check {root}` for the full list; strict=False skips them)" if root else ""
        # the first line (all the CLI prints) names the first problem's file
        first = f"{findings[0]}" if findings else "problems in the dataset"
        n = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        super().__init__(f"{first}{n}{hint}\n{len(findings)} problem(s) in the dataset:\n  {shown}{more}")


class Collector:
    """Accumulates findings while a reader runs."""

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def error(self, path: str | Path, message: str, line: int | None = None, kind: str = "other") -> None:
        self.items.append(Finding(str(path), message, line, "error", kind))

    def warn(self, path: str | Path, message: str, line: int | None = None, kind: str = "other") -> None:
        self.items.append(Finding(str(path), message, line, "warning", kind))
