"""Training data: folders of photos and CIFAR-10, as (L_n, ab_n) tensors through the Lab contract.

Each item is a pair of float32 tensors in network units: L_n (1, S, S) and ab_n (2, S, S),
produced by `runtime.color`, the same module the runtime uses at inference.

Augmentation randomness is a pure function of (seed, epoch, index), handed to the dataset
by `EpochSampler`; so an epoch is the same whether it runs in worker processes or not,
and a resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from labcolor.core import color, imageio
from labcolor.core.errors import ImageError, InputError
from labcolor.runtime.jobs import walk_pictures
from labcolor.trainer.config import TrainConfig

log = logging.getLogger(__name__)

# Mean per-pixel channel spread (8-bit levels) below which a picture counts as grayscale.
GRAY_SPREAD = 2.0


class DataError(InputError):
    """The training data cannot be used (empty folder, too few images, wrong size)."""


def list_images(root: Path) -> list[Path]:
    """Image files below `root`, recursively, in a stable (sorted) order."""
    if not root.exists():
        raise DataError(f"{root}: no such file or folder")
    if root.is_file():
        return [root]
    return list(walk_pictures(root))


def decode_bgr(path: Path, *, reduce: int = 1) -> np.ndarray | None:
    """A colour picture as 8-bit BGR (EXIF orientation applied, see core.imageio); None if unreadable or gray."""
    try:
        return imageio.color8(imageio.read(path, reduce=reduce))
    except (ImageError, OSError):
        return None


def is_grayscale(bgr: np.ndarray) -> bool:
    """True when the colour channels (nearly) coincide: nothing to learn colour from."""
    spread = bgr.max(axis=2).astype(np.int16) - bgr.min(axis=2)
    return float(spread.mean()) < GRAY_SPREAD


@dataclass
class ScanResult:
    usable: list[Path]
    skipped: dict[str, list[Path]] = field(default_factory=dict)  # reason -> files

    def summary(self) -> str:
        parts = [f"{len(self.usable)} usable"]
        parts += [f"{len(files)} {reason}" for reason, files in sorted(self.skipped.items())]
        return ", ".join(parts)


def _check(path: Path) -> str | None:
    # A reduced decode is enough to see whether a file reads and has colour, and JPEG decodes it ~4x faster.
    img = decode_bgr(path, reduce=4)
    if img is None:
        return "unreadable"
    if is_grayscale(img):
        return "grayscale"
    return None


def scan_images(root: Path, *, threads: int = 4) -> ScanResult:
    """List the usable colour pictures below `root`, counting the skipped ones by reason."""
    files = list_images(root)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        verdicts = list(pool.map(_check, files))
    result = ScanResult(usable=[f for f, v in zip(files, verdicts) if v is None])
    for f, v in zip(files, verdicts):
        if v is not None:
            result.skipped.setdefault(v, []).append(f)
    if result.skipped:
        log.warning("%s: skipped %s", root, ", ".join(f"{len(v)} {k}" for k, v in result.skipped.items()))
    return result


def _rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


def random_resized_crop(img: np.ndarray, size: int, scale_min: float, rng: np.random.Generator) -> np.ndarray:
    """A random crop covering [scale_min, 1] of the area, aspect ratio in [3/4, 4/3], resized to size x size."""
    h, w = img.shape[:2]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(scale_min, 1.0)
        aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw = int(round(np.sqrt(target * aspect)))
        ch = int(round(np.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            y = int(rng.integers(0, h - ch + 1))
            x = int(rng.integers(0, w - cw + 1))
            break
    else:  # extreme aspect ratios: fall back to the central square
        ch = cw = min(h, w)
        y, x = (h - ch) // 2, (w - cw) // 2
    crop = img[y : y + ch, x : x + cw]
    interp = cv2.INTER_AREA if min(ch, cw) > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interp)


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to `size`, then take the central size x size square (validation)."""
    h, w = img.shape[:2]
    s = size / min(h, w)
    nh, nw = max(size, round(h * s)), max(size, round(w * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    img = cv2.resize(img, (nw, nh), interpolation=interp)
    y, x = (nh - size) // 2, (nw - size) // 2
    return img[y : y + size, x : x + size]


def to_item(bgr_or_rgb: np.ndarray, *, bgr: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, S, 3) uint8 -> (L_n (1, S, S), ab_n (2, S, S)) float32 tensors."""
    l_n, ab_n = color.rgb_to_network(bgr_or_rgb, bgr=bgr)
    return torch.from_numpy(np.ascontiguousarray(l_n.transpose(2, 0, 1))), torch.from_numpy(
        np.ascontiguousarray(ab_n.transpose(2, 0, 1))
    )


Key = tuple[int, int]  # (index, epoch), yielded by EpochSampler


class EpochSampler(Sampler[Key]):
    """Yields (index, epoch) keys: a per-epoch permutation fixed by (seed, epoch).

    Under data-parallel training (`world` > 1) rank r takes every world-th key of that same
    permutation, starting at r, after dropping the tail that would give ranks unequal counts
    (a rank with an extra batch would wait for the others forever). With per-rank batch B, the
    ranks' batches of a step together hold exactly the keys a single process with batch
    world x B takes in that step, and augmentation is a function of the key alone.
    """

    def __init__(self, n: int, *, seed: int, shuffle: bool, rank: int = 0, world: int = 1) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world}")
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[Key]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n) if self.shuffle else range(self.n)
        if self.world > 1:
            order = list(order)[: len(self) * self.world][self.rank :: self.world]
        return iter([(int(i), self.epoch) for i in order])

    def __len__(self) -> int:
        return self.n // self.world


class FolderDataset(Dataset):
    """Colour photos from disk -> (L_n, ab_n) crops of size x size.

    Pictures are first downscaled so the shorter side is at most 2 * size: a crop keeps
    at least a quarter of the area by default, so this drops no detail the final resize
    would keep, and it makes the in-memory cache small (~50 kB per picture at 64 px).
    """

    def __init__(
        self,
        files: Sequence[Path],
        size: int,
        *,
        train: bool,
        seed: int = 0,
        crop_scale: float = 0.25,
        flip: bool = True,
        cache_mb: int = 2048,
    ) -> None:
        if not files:
            raise DataError("no usable pictures")
        self.files, self.size, self.train, self.seed = list(files), size, train, seed
        self.crop_scale, self.flip = crop_scale, flip
        # Budget estimate: 4:3 pictures at short side 2*size, 3 bytes per pixel.
        estimate_mb = len(self.files) * (2 * size) ** 2 * 3 * 4 / 3 / 2**20
        self.cache: dict[int, np.ndarray] | None = {} if estimate_mb <= cache_mb else None

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int) -> np.ndarray:
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        path = self.files[index]
        img = decode_bgr(path)
        if img is None:  # passed the scan but failed now (changed on disk): a clear error beats a silent hole
            raise DataError(f"{path}: cannot be decoded any more")
        h, w = img.shape[:2]
        cap = 2 * self.size
        if min(h, w) > cap:
            s = cap / min(h, w)
            img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        if self.cache is not None:
            self.cache[index] = img
        return img

    def __getitem__(self, key: Key | int) -> tuple[torch.Tensor, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        img = self._load(index)
        if self.train:
            rng = _rng(self.seed, epoch, index)
            img = random_resized_crop(img, self.size, self.crop_scale, rng)
            if self.flip and rng.random() < 0.5:
                img = img[:, ::-1]
        else:
            img = center_crop(img, self.size)
        return to_item(img, bgr=True)


class ArrayDataset(Dataset):
    """In-memory RGB uint8 images (N, S, S, 3), e.g. CIFAR-10, with optional random flips."""

    def __init__(self, images: np.ndarray, *, train: bool, seed: int = 0, flip: bool = True) -> None:
        if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
            raise DataError(f"expected uint8 images of shape (N, S, S, 3), got {images.dtype} {images.shape}")
        self.images, self.train, self.seed, self.flip = images, train, seed, flip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: Key | int) -> tuple[torch.Tensor, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        img = self.images[index]
        if self.train and self.flip and _rng(self.seed, epoch, index).random() < 0.5:
            img = img[:, ::-1]
        return to_item(img, bgr=False)


@dataclass
class DataBundle:
    train: Dataset
    val: Dataset | None  # None only when built with with_val=False
    description: str  # e.g. "CIFAR-10 (50000 train / 10000 test)" for logs and model metadata
    kind: str  # "cifar10" or "folder"


def _is_cifar(path: Path) -> bool:
    from labcolor.trainer import cifar

    return cifar.is_cifar10(path)


def build_data(
    data: Path,
    val: Path | None,
    *,
    dataset: str,
    size: int,
    seed: int,
    crop_scale: float,
    flip: bool,
    val_fraction: float,
    cache_mb: int,
    download: bool,
    with_val: bool = True,
) -> DataBundle:
    """Resolve `--data`/`--val` into train and validation datasets.

    with_val=False skips reading a separate validation set (`val`, or CIFAR's test batch) for
    callers that only need the training split, which does not depend on it; a held-out slice of
    `data` is still held out, since that changes the split.
    """
    from labcolor.trainer import cifar

    kind = dataset
    if kind == "auto":
        kind = "cifar10" if (download and not data.exists()) or (data.exists() and _is_cifar(data)) else "folder"
    if kind == "cifar10":
        if download and not _is_cifar(data):
            data.mkdir(parents=True, exist_ok=True)
            cifar.download_cifar10(data)
        if size != 32:
            raise DataError(f"CIFAR-10 pictures are 32x32; use --size 32 (got {size})")
        train_split = cifar.load_cifar10(data, "train")
        train_set = ArrayDataset(train_split.images, train=True, seed=seed, flip=flip)
        if not with_val:
            return DataBundle(train_set, None, f"CIFAR-10 ({len(train_set)} train) from {data}", "cifar10")
        if val is None:
            test = cifar.load_cifar10(data, "test")
            val_set: Dataset = ArrayDataset(test.images, train=False)
            desc = f"CIFAR-10 ({len(train_set)} train / {len(val_set)} test) from {data}"
        else:
            val_set = _folder_val(val, size, cache_mb)
            desc = f"CIFAR-10 ({len(train_set)} train) from {data}, validation {val}"
        return DataBundle(train_set, val_set, desc, "cifar10")

    if kind != "folder":
        raise DataError(f"unknown dataset kind {dataset!r}; choose auto, cifar10 or folder")
    scan = scan_images(data)
    if not scan.usable:
        raise DataError(f"{data}: no usable colour pictures ({scan.summary()})")
    train_files = scan.usable
    if val is None:
        # A deterministic held-out slice: every k-th file, so it spans the whole folder.
        k = max(2, round(1 / val_fraction))
        val_files = train_files[::k]
        train_files = [f for i, f in enumerate(train_files) if i % k]
        val_set = FolderDataset(val_files, size, train=False, cache_mb=cache_mb)
        val_desc = f"{len(val_files)} held out"
    elif with_val:
        val_set = _folder_val(val, size, cache_mb)
        val_desc = f"{len(val_set)} from {val}"
    else:
        val_set, val_desc = None, f"{val} (not read)"
    train_set = FolderDataset(
        train_files, size, train=True, seed=seed, crop_scale=crop_scale, flip=flip, cache_mb=cache_mb
    )
    desc = f"folder {data}: {len(train_files)} train ({scan.summary()}), validation {val_desc}"
    return DataBundle(train_set, val_set, desc, "folder")


def build_data_for(
    cfg: TrainConfig, *, data: Path | None = None, download: bool | None = None, with_val: bool = True
) -> DataBundle:
    """build_data with a run's own settings; `data`/`download` override the config's (e.g. pictures that moved)."""
    return build_data(
        Path(data) if data is not None else Path(cfg.data),
        Path(cfg.val) if cfg.val else None,
        dataset=cfg.dataset,
        size=cfg.size,
        seed=cfg.seed,
        crop_scale=cfg.crop_scale,
        flip=cfg.flip,
        val_fraction=cfg.val_fraction,
        cache_mb=cfg.cache_mb,
        download=cfg.download if download is None else download,
        with_val=with_val,
    )


def _folder_val(val: Path, size: int, cache_mb: int) -> FolderDataset:
    scan = scan_images(val)
    if not scan.usable:
        raise DataError(f"{val}: no usable colour pictures for validation ({scan.summary()})")
    return FolderDataset(scan.usable, size, train=False, cache_mb=cache_mb)
