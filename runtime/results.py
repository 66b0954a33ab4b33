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
    reason: str = ""  # why it failed (one line), why it was skipped, or a note on a done one (frames dropped)
    seconds: float = 0.0  # wall time this file took in its worker (0 when skipped)
    bad_model_output: bool = False  # failed because the network's output was unusable (NaN, wrong shape)


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (source, reason)
    notes: list[tuple[Path, str]] = field(default_factory=list)  # (source, note) of done pictures

    def add(self, result: FileResult) -> None:
        if result.status == "done":
            self.done += 1
            if result.reason:
                self.notes.append((result.source, result.reason))
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
