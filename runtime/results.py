"""Per-file results of a folder run and their summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class FileResult:
    source: Path
    target: Path | None
    status: Status
    reason: str = ""  # why it failed (one line), or why it was skipped
    seconds: float = 0.0  # wall time this file took in its worker (0 when skipped)


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (source, reason)

    def add(self, result: FileResult) -> None:
        if result.status == "done":
            self.done += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed.append((result.source, result.reason))

    @property
    def total(self) -> int:
        return self.done + self.skipped + len(self.failed)

    @property
    def ok(self) -> bool:
        return not self.failed
