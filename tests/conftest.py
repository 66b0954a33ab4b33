"""Shared fixtures: small synthetic photo folders generated on the fly (no external data)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


def synthetic_photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A colourful BGR uint8 picture: a smooth two-colour gradient with a few filled shapes.

    Colour depends on position and shape, so a network can learn some of it from L.
    """
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = ((x / max(w - 1, 1)) * 0.7 + (y / max(h - 1, 1)) * 0.3)[..., None]
    img = (c0 * (1 - t) + c1 * t).astype(np.uint8)
    for _ in range(3):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        radius = int(rng.integers(max(2, min(h, w) // 8), max(3, min(h, w) // 3)))
        cv2.circle(img, centre, radius, tuple(int(v) for v in rng.uniform(0, 255, 3)), -1)
    return img


def write_photos(folder: Path, n: int, *, seed: int = 0, size: tuple[int, int] = (96, 128)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        ext = (".png", ".jpg", ".webp", ".bmp")[i % 4]
        # Nested folders prove the scan is recursive.
        path = folder / (f"sub{i % 2}" if i % 3 == 0 else "") / f"photo_{i:03d}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), synthetic_photo(rng, *size))
        paths.append(path)
    return paths


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """12 colour photos plus one grayscale and two unreadable files."""
    root = tmp_path / "photos"
    write_photos(root, 12)
    gray = cv2.cvtColor(synthetic_photo(np.random.default_rng(9), 64, 64), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(root / "gray.png"), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image, and not even listed")
    return root
