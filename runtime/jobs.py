"""Which files to colorize and where each result goes (no pixels here).

Rules (the CLI's --help repeats them):
* A folder argument is walked recursively in sorted order; only picture extensions are taken
  (runtime.imageio.INPUT_SUFFIXES), hidden files and folders (".name") are passed over, and
  symlinked folders are not followed. A file argument is always tried, whatever its name.
* Output root: `output` if given, else a sibling folder `<folder>_colorized` next to a folder
  argument, or next to the folder that holds a file argument (so `colorize pics/*.jpg` and
  `colorize pics` write to the same place). Relative paths below the argument are mirrored.
* The output suffix is the input's, or `fmt`'s (see imageio.output_suffix).
* Nothing is ever written into an input folder or over an input file: an output root inside
  an input folder is refused up front (OutputError), and every target is checked again.
* An output root that cannot be a folder (an existing file, or a path through one) is refused
  up front too, before any picture is decoded.
* A sub-folder that cannot be listed (permissions, I/O error) is not skipped silently: it
  becomes a failed job naming the folder, so the run's summary and exit code show it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from labcolor.core.errors import OutputError
from labcolor.core.imageio import INPUT_SUFFIXES, VIDEO_SUFFIXES, output_suffix

OUTPUT_FOLDER_SUFFIX = "_colorized"


@dataclass(frozen=True)
class Job:
    source: Path  # the input file, as found (absolute); for a folder that could not be listed, that folder
    target: Path | None  # where its colorized picture goes (absolute); None for an unlisted folder
    problem: str | None = None  # set when the file must not be processed (e.g. two inputs, one output)


@dataclass(frozen=True)
class WalkError:
    """A folder the walk could not list, and why."""

    folder: Path
    reason: str


def default_output_root(argument: Path) -> Path:
    """`photos/` -> `photos_colorized/` beside it; `photos/a.jpg` -> `photos_colorized/` too."""
    folder = argument if argument.is_dir() else argument.parent
    name = folder.name or "root"
    return folder.with_name(name + OUTPUT_FOLDER_SUFFIX) if folder.name else folder / (name + OUTPUT_FOLDER_SUFFIX)


def _absolute(path: Path) -> Path:
    # Resolve symlinks in the folders above, so "inside an input folder" checks see through them.
    return Path(os.path.realpath(path))


def check_inputs(inputs: Sequence[Path], output: Path | None) -> list[Path]:
    """Absolute input paths; FileNotFoundError for a missing one, OutputError for an unsafe output folder."""
    if not inputs:
        raise FileNotFoundError("no input files or folders given")
    resolved = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(f"no such file or folder: {path}")
        resolved.append(_absolute(path))
    if output is not None:
        out = _absolute(Path(output))
        _check_output_root(Path(output), out)
        for src in resolved:
            if src.is_dir() and (out == src or out.is_relative_to(src)):
                raise OutputError(
                    f"the output folder {output} is inside the input folder {src}; choose one outside it"
                )
            if out == src:
                raise OutputError(f"the output folder {output} is an input file")
    return resolved


def _check_output_root(given: Path, out: Path) -> None:
    """OutputError unless `out` is, or can be made, a folder: no file in its place or on its way."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"the output {given} is an existing file, not a folder; name a folder with -o")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"the output folder {given} cannot be made: {parent} is a file")
            break


def walk(folder: Path, suffixes: frozenset[str] = INPUT_SUFFIXES) -> Iterator[Path | WalkError]:
    """Picture files (or files with other `suffixes`: VIDEO_SUFFIXES) under `folder`, recursively, sorted, hidden
    entries skipped, symlinked folders not followed; a folder that cannot be listed comes as a WalkError in its
    place (the walk goes on)."""
    errors: list[OSError] = []
    for current, dirs, files in os.walk(folder, onerror=errors.append, followlinks=False):
        while errors:  # os.walk reports a folder it cannot list before moving on to the next one
            yield _walk_error(errors.pop(0), folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in suffixes:
                yield Path(current, name)
    while errors:
        yield _walk_error(errors.pop(0), folder)


def _walk_error(exc: OSError, root: Path) -> WalkError:
    where = Path(exc.filename) if exc.filename else root
    return WalkError(where, f"cannot list this folder: {exc.strerror or exc}; its pictures were not colorized")


def walk_pictures(folder: Path) -> Iterator[Path]:
    """The pictures of `walk`; a folder that cannot be listed raises its OSError (training and evaluation
    must not quietly run on part of their data)."""
    for entry in walk(folder):
        if isinstance(entry, WalkError):
            raise OSError(f"{entry.folder}: {entry.reason}")
        yield entry


Kind = Literal["pictures", "videos", "all"]
_KIND_SUFFIXES = {"pictures": INPUT_SUFFIXES, "videos": VIDEO_SUFFIXES, "all": INPUT_SUFFIXES | VIDEO_SUFFIXES}


def is_video_job(job: Job) -> bool:
    """A job of a video file (a folder that could not be listed is neither: it is reported with the pictures)."""
    return job.target is not None and job.source.suffix.lower() in VIDEO_SUFFIXES


def iter_jobs(inputs: Sequence[Path], output: Path | None = None, fmt: str | None = None, *,
              kind: Kind = "pictures") -> Iterator[Job]:
    """One Job per picture, per video, or per file of both `kind`s, lazily (a million-file folder is never
    listed in memory at once; "all" walks it once for both).

    Videos are the files with VIDEO_SUFFIXES, found in folders or named as files; their output keeps the
    input's extension (`fmt` is for pictures). A file named on the command line with a video extension is a
    video job; any other file argument is tried as a picture whatever its name.

    Two sources that map to the same target (a.jpg and a.png with --format png, or two arguments
    sharing an output folder) are caught: the second gets `problem` set. Within one argument this
    needs only the current folder's names; across several arguments a set of targets is kept.
    """
    args = check_inputs(inputs, output)
    out_root = _absolute(Path(output)) if output is not None else None
    input_dirs = [a for a in args if a.is_dir()]
    input_files = {a for a in args if not a.is_dir()}
    seen: dict[Path, Path] | None = {} if len(args) > 1 else None  # target -> source, across arguments
    for arg in args:
        root = out_root if out_root is not None else default_output_root(arg)
        if arg.is_dir():
            sources: Iterator[Path | WalkError] = walk(arg, _KIND_SUFFIXES[kind])
            base = arg
        elif kind == "all" or (arg.suffix.lower() in VIDEO_SUFFIXES) == (kind == "videos"):
            sources, base = iter([arg]), arg.parent
        else:
            continue  # a video among picture jobs, or a picture among video jobs: the other run takes it
        local: dict[Path, Path] = {}  # target -> source within the folder being listed
        folder = None
        for src in sources:
            if isinstance(src, WalkError):
                if kind != "videos":  # reported once, with the pictures (a folder's walk errors are the same for both)
                    yield Job(src.folder, None, src.reason)
                continue
            if src.parent != folder:
                folder, local = src.parent, {}
            target = root / src.relative_to(base)
            if target.suffix.lower() not in VIDEO_SUFFIXES or kind == "pictures":
                target = target.with_suffix(output_suffix(target.suffix, fmt))
            problem = None
            first = local.get(target) or (seen.get(target) if seen is not None else None)
            if first == src:
                continue  # the same file given twice (e.g. `colorize pics pics/a.jpg`): do it once
            if first is not None:
                problem = f"same output file as {first} ({target.name}); rename one or use --format"
            elif any(target == d or target.is_relative_to(d) for d in input_dirs) or target in input_files:
                problem = f"its output {target} would be written inside an input folder or over an input"
            local[target] = src
            if seen is not None:
                seen.setdefault(target, src)
            yield Job(src, target, problem)


def count_jobs(inputs: Sequence[Path], output: Path | None = None, fmt: str | None = None, *,
               kind: Kind = "pictures") -> int:
    """How many jobs iter_jobs would give (a cheap directory walk, for a progress bar's total)."""
    return sum(1 for _ in iter_jobs(inputs, output, fmt, kind=kind))
