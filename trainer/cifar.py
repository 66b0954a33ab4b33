"""CIFAR-10 (python version) for training and evaluation: find it, load a split, fetch it.

This module is the public face; the work is done by two smaller ones, each named for what it
holds:

* ``trainer.cifar_batches``: the batch-file format and reading it safely (a restricted
  unpickler: a booby-trapped pickle cannot run code);
* ``trainer.cifar_archive``: the MD5-checked download and safe extraction (tarfile's
  ``"data"`` filter, links refused).

``load_cifar10`` accepts the archive, the extracted folder, or a folder holding either, and
extracts an archive once, next to itself. Writing CIFAR-format folders is the job of
scripts/make_cifar_from_photos.py, the one program that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from labcolor.trainer.cifar_archive import (
    ARCHIVE_NAME,
    CIFAR10_MD5,
    CIFAR10_URL,
    download_cifar10,
    extract_once,
    is_cifar_archive,
    safe_extract,
)
from labcolor.trainer.cifar_batches import (
    FOLDER_NAME,
    IMAGE_SIZE,
    META_NAME,
    NUM_TRAIN_BATCHES,
    TEST_BATCH_NAME,
    TRAIN_BATCH_PREFIX,
    TRAIN_BATCH_RE,
    CifarError,
    read_batch,
    read_batch_arrays,
    read_label_names,
)

# The public API: callers import all of it from here, wherever it is defined.
__all__ = [
    "ARCHIVE_NAME",
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "FOLDER_NAME",
    "CifarError",
    "CifarSplit",
    "download_cifar10",
    "is_cifar10",
    "load_cifar10",
    "read_batch",
    "safe_extract",
]


@dataclass(frozen=True, eq=False)  # eq=False: a generated __eq__ would compare arrays ambiguously
class CifarSplit:
    """One split of CIFAR-10, ready for training code."""

    images: np.ndarray  # uint8, (N, 32, 32, 3), RGB, channels-last
    labels: np.ndarray  # int64, (N,)
    label_names: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


# --------------------------------------------------------------------------- locating


def _has_any_batch_file(folder: Path) -> bool:
    return (
        (folder / META_NAME).exists()
        or (folder / TEST_BATCH_NAME).exists()
        or any(TRAIN_BATCH_RE.fullmatch(p.name) for p in folder.glob(TRAIN_BATCH_PREFIX + "*"))
    )


def _is_batches_folder(folder: Path) -> bool:
    # A cheap name check (no unpickling): enough to tell a dataset folder from anything else.
    return all((folder / name).is_file() for name in (META_NAME, TEST_BATCH_NAME, TRAIN_BATCH_PREFIX + "1"))


def is_cifar10(path: Path) -> bool:
    """True if ``path`` is the CIFAR-10 archive, the extracted folder, or a folder containing either.

    This is a quick structural check (file names, the archive's first header); it does not
    validate contents. ``load_cifar10`` does that.
    """
    path = Path(path)
    try:
        if path.is_file():
            return is_cifar_archive(path)
        if path.is_dir():
            if _is_batches_folder(path) or _is_batches_folder(path / FOLDER_NAME):
                return True
            archive = path / ARCHIVE_NAME
            return archive.is_file() and is_cifar_archive(archive)
    except OSError:  # e.g. permission denied: not something we can load either
        return False
    return False


def _resolve_folder(path: Path) -> Path:
    """Map any accepted input (archive, folder, parent folder) to the batches folder."""
    if not path.exists():
        raise FileNotFoundError(f"no CIFAR-10 data at {path}: path does not exist")
    if path.is_file():
        return extract_once(path)
    if _has_any_batch_file(path):
        return path
    if (path / FOLDER_NAME).is_dir():
        return path / FOLDER_NAME
    if (path / ARCHIVE_NAME).is_file():
        return extract_once(path / ARCHIVE_NAME)
    raise CifarError(
        f"{path}: no CIFAR-10 data found (expected batch files, a {FOLDER_NAME}/ folder or {ARCHIVE_NAME})"
    )


def _train_batch_files(folder: Path) -> list[Path]:
    """data_batch_1..K in numeric order, K being the highest present (5 for the official set)."""
    found = {
        int(match.group(1))
        for p in folder.glob(TRAIN_BATCH_PREFIX + "*")
        if (match := TRAIN_BATCH_RE.fullmatch(p.name))
    }
    # Nothing found: name the official five in the error. A gap (e.g. 4 missing but 5
    # present) is reported by the caller's missing-file check.
    count = max(found, default=NUM_TRAIN_BATCHES)
    return [folder / f"{TRAIN_BATCH_PREFIX}{i}" for i in range(1, count + 1)]


def load_cifar10(path: Path, split: Literal["train", "test"] = "train") -> CifarSplit:
    """Load one split of CIFAR-10 (python version) safely.

    ``path`` is the archive, the extracted ``cifar-10-batches-py`` folder, or a folder
    containing either. An archive is extracted (with ``safe_extract``) next to itself into
    FOLDER_NAME the first time; later calls reuse that folder. ``"train"`` is
    data_batch_1..K concatenated in order (K = 5 for the official set; K is the highest
    batch present, so folders written by scripts/make_cifar_from_photos.py with fewer batches
    load too, and a gap in the numbering is an error), ``"test"`` is test_batch.

    Raises FileNotFoundError if ``path`` does not exist and CifarError (naming the file)
    for missing, unsafe or malformed files.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = _resolve_folder(Path(path))
    batch_files = _train_batch_files(folder) if split == "train" else [folder / TEST_BATCH_NAME]
    missing = [p.name for p in [folder / META_NAME, *batch_files] if not p.is_file()]
    if missing:
        raise CifarError(
            f"{folder}: missing CIFAR-10 file(s) {', '.join(missing)}"
            " (if this folder came from an interrupted extraction, delete it and load the archive again)"
        )

    label_names = read_label_names(folder / META_NAME)
    rows, labels = zip(*(read_batch_arrays(batch_path) for batch_path in batch_files))
    data = np.concatenate(rows) if len(rows) > 1 else rows[0]
    # Row layout is [R plane | G plane | B plane], each 32x32 row-major: (N, C, H, W) -> HWC.
    images = np.ascontiguousarray(data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1))
    return CifarSplit(images=images, labels=np.concatenate(labels), label_names=label_names)
