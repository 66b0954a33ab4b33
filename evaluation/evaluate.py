"""Score colorization models against colour ground truth (the `colorize eval` command's library).

Flow: gather colour pictures (a folder, walked recursively, or a CIFAR-10 archive/folder, whose
test batch is used), optionally shrink them (`resize`, longer side), make each grayscale input
(the truth's Lab L with a = b = 0, as 8-bit RGB, through runtime.color), colorize it with every
model through the runtime's `Colorizer`, and score the result with runtime.metrics. The
grayscale input itself is scored as the baseline row ("grayscale").

Every picture goes through exactly what `colorize PATH` and `Colorizer.colorize` do (same
working-size rule, runtime.preprocess.working_shape; same merge), so the scores are what users get;
tests/test_evaluate.py checks pixel equality with the folder pipeline. `saturations` scores several
colour strengths from one prediction per picture, one row each ("model@0.5").

Never imports torch (trainer.cifar is torch-free).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from labcolor.core import color, imageio, metrics
from labcolor.core.errors import InputError
from labcolor.runtime.jobs import walk_pictures

BASELINE = "grayscale"
THUMB_SIZE = 256  # longer side of the pictures kept for the report and grid (never enlarged)
CHUNK = 64  # pictures colorized per colorize call (timed), then scored

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class EvalError(InputError):
    """The evaluation cannot run: no usable pictures, bad options."""


@dataclass(frozen=True)
class Picture:
    name: str  # relative path in a folder, or "<index>_<label>" in CIFAR-10
    rgb: np.ndarray  # (H, W, 3) uint8 RGB ground truth


@dataclass
class Dataset:
    source: str
    kind: str  # "folder" or "cifar10"
    pictures: list[Picture]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


@dataclass
class ModelResult:
    name: str
    path: str | None  # None for the grayscale baseline
    aggregate: dict[str, float]
    per_image: list[dict[str, float]]
    device: str | None = None
    size: str | None = None  # working size, as text
    saturation: float | None = None  # colour strength the row was colorized at
    seconds: float | None = None  # time spent colorizing (pre/post-processing and inference; scoring excluded)
    thumbs: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # picture index -> prediction thumb

    @property
    def images_per_s(self) -> float | None:
        if self.seconds is None or self.seconds <= 0:
            return None
        return len(self.per_image) / self.seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "path": self.path, "device": self.device, "size": self.size,
            "saturation": self.saturation,
            "seconds": self.seconds, "images_per_s": self.images_per_s, "aggregate": _clean(self.aggregate),
        }


@dataclass
class _Row:
    """One result row while it is being scored: per-picture scores and prediction thumbnails."""

    name: str
    scores: list[dict[str, float]] = field(default_factory=list)
    thumbs: dict[int, np.ndarray] = field(default_factory=dict)

    def add(self, index: int, pred: np.ndarray, ref: metrics.Reference, keep: set[int] | None) -> None:
        self.scores.append(metrics.score(pred, ref))
        if keep is None or index in keep:  # before the first ranking every thumbnail is kept
            self.thumbs[index] = thumbnail(pred)


@dataclass
class EvalResult:
    data: Dataset
    models: list[ModelResult]  # the baseline first
    rank_model: str  # the row whose per-picture `rank_by` orders the report
    rank_by: str
    ranking: list[int]  # picture indices, best first
    truth_thumbs: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    gray_thumbs: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def model(self, name: str) -> ModelResult:
        return next(m for m in self.models if m.name == name)

    def to_dict(self) -> dict[str, Any]:
        """Everything metrics.json holds: settings, metric definitions, per-model aggregates, per-picture scores."""
        pictures = self.data.pictures
        return {
            "data": self.data.source,
            "kind": self.data.kind,
            "images": len(pictures),
            "skipped": [{"name": n, "reason": r} for n, r in self.data.skipped],
            "settings": self.settings,
            "metrics": {m.key: {"label": m.label, "better": m.better, "description": m.description}
                        for m in metrics.METRICS},
            "rank": {"model": self.rank_model, "metric": self.rank_by},
            "models": [m.to_dict() for m in self.models],
            "per_image": [
                {
                    "name": p.name,
                    "height": int(p.rgb.shape[0]),
                    "width": int(p.rgb.shape[1]),
                    "colourfulness_truth": _finite(self.models[0].per_image[i]["colourfulness_truth"]),
                    "scores": {m.name: _clean({k: v for k, v in m.per_image[i].items() if k != "colourfulness_truth"})
                               for m in self.models},
                }
                for i, p in enumerate(pictures)
            ],
        }


def _finite(value: float) -> float | None:
    """JSON has no NaN/inf: those become null."""
    return float(value) if value is not None and np.isfinite(value) else None


def _clean(scores: dict[str, float]) -> dict[str, float | None]:
    return {k: _finite(v) for k, v in scores.items()}


# --------------------------------------------------------------------------- data


def to_rgb8(image: np.ndarray) -> np.ndarray | None:
    """A decoded picture (OpenCV layout) -> uint8 RGB, alpha dropped; None if it has no colour channels."""
    bgr = imageio.color8(image)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def shrink(rgb: np.ndarray, longer_side: int | None) -> np.ndarray:
    """Resize so the longer side is at most `longer_side` (INTER_AREA); smaller pictures are kept as they are."""
    h, w = rgb.shape[:2]
    if longer_side is None or max(h, w) <= longer_side:
        return rgb
    scale = longer_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def load_dataset(data: Path, *, limit: int | None = None, resize: int | None = None) -> Dataset:
    """Colour ground-truth pictures from a folder (recursive) or CIFAR-10 (the test batch).

    `limit` keeps the first N pictures (sorted paths, or CIFAR-10 order); `resize` shrinks each
    to that longer side. Unreadable, gray and too small (< 11 px, SSIM's window) pictures are
    skipped and listed. Raises FileNotFoundError, CifarError, or EvalError when nothing is left.
    """
    from labcolor.core.errors import ImageError
    from labcolor.core.imageio import read
    from labcolor.trainer.cifar import is_cifar10, load_cifar10

    data = Path(data)
    if limit is not None and limit <= 0:
        raise EvalError(f"limit must be positive, got {limit}")
    if resize is not None and resize < 11:
        raise EvalError(f"resize must be at least 11 px (the SSIM window), got {resize}")
    if not data.exists():
        raise FileNotFoundError(f"no such file or folder: {data}")
    min_side = 2 * metrics.SSIM_RADIUS + 1
    pictures: list[Picture] = []
    skipped: list[tuple[str, str]] = []
    if is_cifar10(data):
        split = load_cifar10(data, "test")
        count = len(split) if limit is None else min(limit, len(split))
        for i in range(count):
            name = f"{i:05d}_{split.label_names[int(split.labels[i])]}"
            pictures.append(Picture(name, shrink(split.images[i], resize)))
        kind = "cifar10"
    elif data.is_dir() or data.is_file():
        files = [data] if data.is_file() else list(walk_pictures(data))
        for path in files:
            if limit is not None and len(pictures) >= limit:
                break
            name = path.name if data.is_file() else path.relative_to(data).as_posix()
            try:
                rgb = to_rgb8(read(path))
            except (ImageError, OSError) as exc:
                skipped.append((name, str(exc).removeprefix(f"{path}: ")))
                continue
            if rgb is None:
                skipped.append((name, "grayscale picture: no colour to score against"))
                continue
            rgb = shrink(rgb, resize)
            if min(rgb.shape[:2]) < min_side:
                skipped.append((name, f"smaller than {min_side} px"))
                continue
            pictures.append(Picture(name, rgb))
        kind = "folder"
    else:
        raise EvalError(f"{data}: not a folder, a picture or a CIFAR-10 archive")
    if not pictures:
        raise EvalError(f"{data}: no usable colour pictures" + (f" ({len(skipped)} skipped)" if skipped else ""))
    return Dataset(source=str(data), kind=kind, pictures=pictures, skipped=skipped)


def grayscale_input(rgb: np.ndarray) -> np.ndarray:
    """The model input made from a ground truth: its Lab L with a = b = 0, as uint8 RGB."""
    lab = color.rgb_to_lab(rgb)
    lab[..., 1:] = 0.0
    return color.lab_to_rgb(lab)


def thumbnail(rgb: np.ndarray, longer_side: int = THUMB_SIZE) -> np.ndarray:
    return np.ascontiguousarray(shrink(rgb, longer_side))


# --------------------------------------------------------------------------- colorizing


def model_names(paths: Sequence[Path]) -> list[str]:
    """Short unique row names: the file stem, or parent/stem (then the full path) where stems repeat."""
    stems = [Path(p).stem for p in paths]
    names = [s if stems.count(s) == 1 and s != BASELINE else f"{Path(p).parent.name}/{s}"
             for p, s in zip(paths, stems)]
    return [n if names.count(n) == 1 else str(p) for p, n in zip(paths, names)]


def _rank(scores: list[dict[str, float]], key: str) -> list[int]:
    """Picture indices, best first, by one metric (NaN last)."""
    better = next(m.better for m in metrics.METRICS if m.key == key)

    def badness(i: int) -> float:
        v = scores[i][key]
        if not np.isfinite(v):
            return float("inf")
        return -v if better == "higher" else v if better == "lower" else abs(v - 1.0)

    return sorted(range(len(scores)), key=lambda i: (badness(i), i))


def report_indices(ranking: list[int], count: int) -> list[int]:
    """Pictures the report shows: all when there are at most `count`, else the count/2 best and worst."""
    if len(ranking) <= count:
        return list(ranking)
    half = count // 2
    return ranking[:half] + ranking[len(ranking) - (count - half):]


def grid_indices(ranking: list[int], count: int) -> list[int]:
    """`count` pictures spread evenly over the ranking, best to worst: a representative sample."""
    if len(ranking) <= count:
        return list(ranking)
    picks = np.linspace(0, len(ranking) - 1, count).round().astype(int)
    return [ranking[i] for i in picks]


def evaluate(
    models: Sequence[Path],
    data: Path | Dataset,
    *,
    device: str = "auto",
    size: int | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    saturations: Sequence[float] | None = None,
    limit: int | None = None,
    resize: int | None = None,
    rank_by: str = "ciede2000",
    report_images: int = 24,
    grid_images: int = 8,
    progress: Progress | None = None,
) -> EvalResult:
    """Score the grayscale baseline and each model on `data`; see the module docstring.

    saturations: colour strengths to score, one row per model and strength; None: each model's own default.
    rank_by: per-picture metric ordering the report (best/worst groups), on the first model
    (on the baseline when no model is given). report_images/grid_images: how many pictures the
    report and the grid show (their thumbnails are kept; nothing else is held per model).
    Raises FileNotFoundError, EvalError, CifarError, and the runtime's ModelError/MetadataError/DeviceError.
    """
    from labcolor.runtime import Colorizer

    if rank_by not in metrics.METRIC_KEYS:
        raise EvalError(f"unknown metric {rank_by!r} (choose from {', '.join(metrics.METRIC_KEYS)})")
    if size is not None and size <= 0:
        raise EvalError(f"size must be positive, got {size}")
    paths = [Path(m) for m in models]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"model file not found: {p}")
    # Load every model before the (possibly long) data preparation, so a bad model fails fast.
    colorizers = [Colorizer(p, device, size=size, threads=threads, batch_size=batch_size) for p in paths]
    dataset = data if isinstance(data, Dataset) else load_dataset(Path(data), limit=limit, resize=resize)
    pictures = dataset.pictures
    n = len(pictures)

    def chunks() -> Iterator[tuple[int, list[metrics.Reference], list[np.ndarray]]]:
        """(start, ground truths, grayscale inputs) CHUNK pictures at a time: Lab copies are never all held at once."""
        for start in range(0, n, CHUNK):
            part = pictures[start : start + CHUNK]
            yield start, [metrics.Reference.of(p.rgb) for p in part], [grayscale_input(p.rgb) for p in part]

    baseline = ModelResult(BASELINE, None, {}, [])
    for start, refs, grays in chunks():
        baseline.per_image += [metrics.score(g, r) for g, r in zip(grays, refs)]
        if progress:
            progress(BASELINE, start + len(refs), n)
    baseline.aggregate = metrics.aggregate(baseline.per_image)

    results = [baseline]
    keep: set[int] | None = None  # picture indices whose thumbnails are kept (known after the first ranking)
    ranking: list[int] = []
    strengths: list[float | None] = list(saturations) if saturations else [None]
    for colorizer, path, name in zip(colorizers, paths, model_names(paths)):
        rows = [_Row(f"{name}@{st:g}" if saturations else name) for st in strengths]
        seconds = 0.0
        # One untimed picture first: the session's first run allocates (and on CUDA compiles) and would skew images/s.
        colorizer.colorize(grayscale_input(pictures[0].rgb))
        for start, refs, grays in chunks():
            t0 = time.perf_counter()
            items = [colorizer.prepare(g, bgr=False) for g in grays]
            outs = colorizer.colorize_prepared(items, bgr=False, saturations=strengths)  # [strength][picture]
            seconds += time.perf_counter() - t0
            for row, out in zip(rows, outs):
                for offset, (pred, ref) in enumerate(zip(out, refs)):
                    row.add(start + offset, pred, ref, keep)
            if progress:
                progress(name, start + len(refs), n)
        for row, st in zip(rows, strengths):
            result = ModelResult(
                row.name, str(path), metrics.aggregate(row.scores), row.scores, device=colorizer.device,
                size=f"longer side {colorizer.metadata.train_size}..{colorizer.size} px",
                saturation=colorizer.saturation if st is None else st, seconds=seconds,
            )
            if keep is None:
                ranking = _rank(row.scores, rank_by)
                keep = set(report_indices(ranking, report_images)) | set(grid_indices(ranking, grid_images))
            result.thumbs = {i: row.thumbs[i] for i in keep}
            results.append(result)

    if keep is None:  # no model: rank the baseline
        ranking = _rank(baseline.per_image, rank_by)
        keep = set(report_indices(ranking, report_images)) | set(grid_indices(ranking, grid_images))
    baseline.thumbs = {i: thumbnail(grayscale_input(pictures[i].rgb)) for i in keep}
    return EvalResult(
        data=dataset,
        models=results,
        rank_model=results[1].name if len(results) > 1 else BASELINE,
        rank_by=rank_by,
        ranking=ranking,
        truth_thumbs={i: thumbnail(pictures[i].rgb) for i in keep},
        gray_thumbs=baseline.thumbs,
        settings={
            "device": device, "size": size, "batch_size": batch_size, "limit": limit, "resize": resize,
            "saturations": list(saturations) if saturations else None,
            "report_images": report_images, "grid_images": grid_images,
            "ab_tolerance": metrics.ACCURACY_AB_TOL, "l_tolerance": metrics.ACCURACY_L_TOL,
            "auc_max_error": metrics.AUC_MAX_ERROR, "psnr_cap_db": metrics.PSNR_CAP_DB,
        },
    )
