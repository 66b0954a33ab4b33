#!/usr/bin/env python3
"""Make a CIFAR-10-format data set (32x32 RGB crops) from a folder of colour photos.

    python scripts/make_cifar_from_photos.py ../shared/data/photos data/photos-cifar
    colorize train --data data/photos-cifar            # then exactly as with the real CIFAR-10
    colorize eval model.onnx --data data/photos-cifar  # the test batch

A stand-in for CIFAR-10 on machines without internet. SRC_DIR/train/ becomes the training
batches (data_batch_1..5) and SRC_DIR/val/ the test batch. When SRC_DIR has no train/ and
val/ folders, every 10th photo (sorted by path) goes to the test batch.

Each photo gives --crops-per-image random square crops (side: a uniform fraction between
--min-scale and 1 of the photo's shorter side, at a uniform position), each resized to 32x32
with INTER_AREA; each set is then shuffled (like CIFAR-10's batches). Everything is drawn from
numpy's default_rng(--seed) over the sorted file list, so the same arguments give the same files.

Labels (--labels): "prefix" (default) numbers the file-name prefixes (the text before the
first "_": stamp, gcompris, photo, opencv in ../shared/data/photos) in sorted order; label
names beyond them are "unused_K". At most 10 prefixes; more is an error (use --labels zero).
"zero" gives every crop label 0 ("photo"). Colorization ignores labels; they only keep the
format valid and let per-class results be told apart. Each crop's file name in the batch is
"<photo path>#<k>", so every crop can be traced to its photo.

Writes OUT_DIR/cifar-10-batches-py with `write_cifar10` below, in the official python format
that labcolor.trainer.cifar loads (refuses to replace an existing one unless --overwrite). The
writer lives here, not in the package, because this script is its only user; the file layout
(names, sizes) comes from labcolor.trainer.cifar_batches, the one definition the loader uses.
Needs labcolor installed (`pip install -e .`).
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from labcolor.trainer.cifar_batches import (
    FOLDER_NAME,
    IMAGE_SIZE,
    META_NAME,
    NUM_CLASSES,
    NUM_TRAIN_BATCHES,
    NUM_VIS,
    TEST_BATCH_NAME,
    TRAIN_BATCH_PREFIX,
)

SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def list_photos(folder: Path) -> list[Path]:
    """Picture files below `folder`, recursive, sorted, hidden entries skipped."""
    found = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(current, n) for n in sorted(files)
                  if not n.startswith(".") and Path(n).suffix.lower() in SUFFIXES]
    return found


def read_rgb(path: Path) -> np.ndarray | None:
    """8-bit RGB (EXIF orientation applied by OpenCV), or None when unreadable."""
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def random_crops(rgb: np.ndarray, count: int, rng: np.random.Generator, min_scale: float) -> np.ndarray:
    """`count` random square crops of `rgb`, each resized to 32x32 (INTER_AREA): (count, 32, 32, 3) uint8."""
    h, w = rgb.shape[:2]
    short = min(h, w)
    out = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    for k in range(count):
        side = max(1, round(short * rng.uniform(min_scale, 1.0)))
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        crop = np.ascontiguousarray(rgb[y : y + side, x : x + side])
        interp = cv2.INTER_AREA if side >= IMAGE_SIZE else cv2.INTER_CUBIC
        out[k] = cv2.resize(crop, (IMAGE_SIZE, IMAGE_SIZE), interpolation=interp)
    return out


def prefix(path: Path) -> str:
    return path.stem.split("_", 1)[0]


def split_sources(src: Path) -> tuple[list[Path], list[Path]]:
    """(train photos, test photos): SRC/train and SRC/val, or every 10th photo held out."""
    if (src / "train").is_dir() and (src / "val").is_dir():
        return list_photos(src / "train"), list_photos(src / "val")
    photos = list_photos(src)
    return [p for i, p in enumerate(photos) if i % 10 != 9], [p for i, p in enumerate(photos) if i % 10 == 9]


def build(photos: list[Path], src: Path, crops: int, rng: np.random.Generator, min_scale: float,
          label_of: dict[str, int] | None) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Crops of every readable photo: (images, labels, file names, skipped photos)."""
    images, labels, names, skipped = [], [], [], []
    for path in photos:
        rgb = read_rgb(path)
        if rgb is None:
            skipped.append(str(path))
            continue
        images.append(random_crops(rgb, crops, rng, min_scale))
        label = 0 if label_of is None else label_of[prefix(path)]
        labels += [label] * crops
        rel = path.relative_to(src).as_posix()
        names += [f"{rel}#{k}" for k in range(crops)]
    if not images:
        return np.empty((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8), np.empty(0, np.int64), names, skipped
    # Shuffled, as CIFAR-10's batches are: the first N crops (eval --limit N) then come from many photos.
    order = rng.permutation(len(names))
    return np.concatenate(images)[order], np.array(labels, np.int64)[order], [names[i] for i in order], skipped


# --------------------------------------------------------------------------- the CIFAR-10 writer


def _check_images(name: str, images: object) -> np.ndarray:
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(images).__name__}")
    shape = (IMAGE_SIZE, IMAGE_SIZE, 3)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != shape:
        raise ValueError(f"{name} must be uint8 with shape (N, 32, 32, 3), got {images.dtype} {images.shape}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return images


def _check_labels(name: str, labels: object, count: int) -> list[int]:
    array = np.asarray(labels)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D integer array, got dtype {array.dtype} shape {array.shape}")
    if array.shape[0] != count:
        raise ValueError(f"{name} has {array.shape[0]} labels for {count} images")
    if array.size and (array.min() < 0 or array.max() >= NUM_CLASSES):
        raise ValueError(f"{name} must be in 0..{NUM_CLASSES - 1}, got range {array.min()}..{array.max()}")
    # Plain Python ints, as in the official files (numpy ints would pickle as numpy scalars).
    return [int(v) for v in array]


def _check_filenames(name: str, filenames: Sequence[str] | None, count: int, default_prefix: str) -> list[bytes]:
    if filenames is None:
        return [f"{default_prefix}_{i:06d}.png".encode("ascii") for i in range(count)]
    if len(filenames) != count:
        raise ValueError(f"{name} has {len(filenames)} names for {count} images")
    if not all(isinstance(n, str) and n for n in filenames):
        raise ValueError(f"{name} must be non-empty strings")
    return [n.encode("utf-8") for n in filenames]


def _planar_rows(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) RGB -> (N, 3072) rows of [R plane | G plane | B plane], C-contiguous."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(images.shape[0], NUM_VIS))


def _dump(obj: dict[bytes, Any], path: Path) -> None:
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=2)  # protocol 2, like the official files


def write_cifar10(
    dest: Path,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    label_names: list[str],
    *,
    num_train_batches: int = NUM_TRAIN_BATCHES,
    train_filenames: Sequence[str] | None = None,
    test_filenames: Sequence[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``dest/cifar-10-batches-py`` in the official CIFAR-10 python format.

    Images are uint8 (N, 32, 32, 3) RGB; labels integers in 0..9; ``label_names`` has 10
    entries. The training set is split into ``num_train_batches`` files
    data_batch_1..K of (nearly) equal size, in order; ``batches.meta`` records the largest
    batch size as ``num_cases_per_batch``. Filenames default to ``train_000000.png`` etc.

    The folder is written under a temporary name and renamed into place when complete. An
    existing folder raises FileExistsError unless ``overwrite`` is true. Returns the folder.
    """
    train_images = _check_images("train_images", train_images)
    test_images = _check_images("test_images", test_images)
    train_label_list = _check_labels("train_labels", train_labels, train_images.shape[0])
    test_label_list = _check_labels("test_labels", test_labels, test_images.shape[0])
    if len(label_names) != NUM_CLASSES or not all(isinstance(n, str) and n for n in label_names):
        raise ValueError(f"label_names must be {NUM_CLASSES} non-empty strings, got {label_names!r}")
    if isinstance(num_train_batches, bool) or not isinstance(num_train_batches, int) or num_train_batches < 1:
        raise ValueError(f"num_train_batches must be a positive int, got {num_train_batches!r}")
    if num_train_batches > train_images.shape[0]:
        # Every batch gets at least one image: empty batches would be legal pickles but
        # useless files, and would make the batch count disagree with the data.
        raise ValueError(f"num_train_batches={num_train_batches} exceeds the {train_images.shape[0]} training images")
    train_names = _check_filenames("train_filenames", train_filenames, train_images.shape[0], "train")
    test_names = _check_filenames("test_filenames", test_filenames, test_images.shape[0], "test")

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    folder = dest / FOLDER_NAME
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} already exists (pass overwrite=True to replace it)")

    staging = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}-", suffix=".writing", dir=dest))
    try:
        bounds = np.linspace(0, train_images.shape[0], num_train_batches + 1).round().astype(int)
        train_rows = _planar_rows(train_images)
        for i in range(num_train_batches):
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            _dump(
                {
                    b"batch_label": f"training batch {i + 1} of {num_train_batches}".encode("ascii"),
                    b"labels": train_label_list[lo:hi],
                    b"data": np.ascontiguousarray(train_rows[lo:hi]),
                    b"filenames": train_names[lo:hi],
                },
                staging / f"{TRAIN_BATCH_PREFIX}{i + 1}",
            )
        _dump(
            {
                b"batch_label": b"testing batch 1 of 1",
                b"labels": test_label_list,
                b"data": _planar_rows(test_images),
                b"filenames": test_names,
            },
            staging / TEST_BATCH_NAME,
        )
        _dump(
            {
                b"num_cases_per_batch": int(np.diff(bounds).max()),
                b"label_names": [n.encode("utf-8") for n in label_names],
                b"num_vis": NUM_VIS,
            },
            staging / META_NAME,
        )
        if folder.exists():  # overwrite: move the old folder aside first, drop it after the swap
            old = Path(tempfile.mkdtemp(prefix=f".{FOLDER_NAME}-", suffix=".old", dir=dest))
            os.replace(folder, old / FOLDER_NAME)
            os.replace(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="See the module docstring.")
    parser.add_argument("src", type=Path, help="folder of colour photos (with train/ and val/ sub-folders)")
    parser.add_argument("out", type=Path, help="output folder; cifar-10-batches-py is written inside it")
    parser.add_argument("--crops-per-image", type=int, default=8, help="random crops per photo (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--min-scale", type=float, default=0.4,
                        help="smallest crop side as a fraction of the photo's shorter side (default 0.4)")
    parser.add_argument("--labels", choices=("prefix", "zero"), default="prefix",
                        help="labels from file-name prefixes (default) or all 0")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing cifar-10-batches-py")
    args = parser.parse_args(argv)

    if args.crops_per_image <= 0:
        parser.error("--crops-per-image must be positive")
    if not 0 < args.min_scale <= 1:
        parser.error("--min-scale must be in (0, 1]")
    if not args.src.is_dir():
        parser.error(f"{args.src} is not a folder")
    train, test = split_sources(args.src)
    if not train or not test:
        parser.error(f"{args.src}: need photos for both the training and the test set "
                     f"(found {len(train)} and {len(test)})")

    label_of: dict[str, int] | None = None
    label_names = ["photo"] + [f"unused_{k}" for k in range(1, NUM_CLASSES)]
    if args.labels == "prefix":
        prefixes = sorted({prefix(p) for p in train + test})
        if len(prefixes) > NUM_CLASSES:
            parser.error(f"{len(prefixes)} file-name prefixes, CIFAR-10 has {NUM_CLASSES} classes: use --labels zero")
        label_of = {name: k for k, name in enumerate(prefixes)}
        label_names = prefixes + [f"unused_{k}" for k in range(len(prefixes), NUM_CLASSES)]

    rng = np.random.default_rng(args.seed)
    train_x, train_y, train_names, skipped = build(train, args.src, args.crops_per_image, rng, args.min_scale, label_of)
    test_x, test_y, test_names, skipped_test = build(test, args.src, args.crops_per_image, rng, args.min_scale,
                                                     label_of)
    skipped += skipped_test
    for path in skipped:
        print(f"skipped unreadable {path}", file=sys.stderr)
    if not len(train_x) or not len(test_x):
        print("error: no readable photos in the training or the test set", file=sys.stderr)
        return 2
    try:
        folder = write_cifar10(
            args.out, train_x, train_y, test_x, test_y, label_names,
            num_train_batches=min(NUM_TRAIN_BATCHES, len(train_x)), train_filenames=train_names, test_filenames=test_names,
            overwrite=args.overwrite,
        )
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    used = ", ".join(n for n in label_names if not n.startswith("unused_"))
    print(f"wrote {folder}: {len(train_x)} train + {len(test_x)} test 32x32 crops from "
          f"{len(train) + len(test) - len(skipped)} photos ({args.crops_per_image} per photo, seed {args.seed}; "
          f"labels: {used})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
