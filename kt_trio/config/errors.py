"""Config errors: every problem found in one file, each pointing at a line and column."""

from __future__ import annotations

from collections.abc import Iterable

from attrs import frozen

# The path used for a problem with the whole file (unreadable, bad syntax, not a mapping).
DOCUMENT = "<document>"


@frozen
class ConfigIssue:
    """One problem, printed as `FILE:LINE:COL: dotted.path: message` (1-based line and col)."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.path or DOCUMENT}: {self.message}"


class ConfigError(Exception):
    """Raised with every issue found, so a user fixes a file in one pass, not one error a run."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)
