"""A before/after strip of a colorized clip, as a PNG for the README: N frames across, the gray input on top,
the colorized frames below (each frame shown as players show it: rotation metadata applied).

    python scripts/video_strip.py film.mp4 -o docs/video-strip.png            # colorizes film.mp4 first
    python scripts/video_strip.py film.mp4 --colorized film_colorized.mp4 -o strip.png
    python scripts/video_strip.py -o docs/video-strip.png                     # on a generated clip

Without a clip, one is generated as scripts/bench_video.py does (a pan with moving shapes and a scene cut).
The frames shown are evenly spaced over the clip; --width sets each frame's width in the strip.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from labcolor.core import color  # after the sys.path lines: the repository's labcolor, installed or not
from labcolor.runtime import Colorizer, video


def pick(frames, indices: set[int]) -> dict[int, np.ndarray]:  # type: ignore[no-untyped-def]
    """The frames at `indices` of an iterator, keeping only those in memory."""
    return {i: f for i, f in enumerate(frames) if i in indices}


def gray(rgb: np.ndarray) -> np.ndarray:
    """What the colorizer sees: the frame's Lab lightness, shown as a gray picture."""
    l = color.luminance(rgb)
    return color.lab_to_rgb(np.dstack([l, np.zeros_like(l), np.zeros_like(l)]))


def strip(source: Path, colorized: Path, count: int, width: int, gap: int = 4) -> np.ndarray:
    total = sum(1 for _ in video.read_frames(colorized))
    indices = sorted({round(i * (total - 1) / max(1, count - 1)) for i in range(count)})
    before = pick(video.read_frames(source, rotate=True), set(indices))
    after = pick(video.read_frames(colorized, rotate=True), set(indices))
    h0, w0 = after[indices[0]].shape[:2]
    height = round(h0 * width / w0)

    def fit(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)

    canvas = np.full((2 * height + 3 * gap, len(indices) * (width + gap) + gap, 3), 255, np.uint8)
    for k, i in enumerate(indices):
        x = gap + k * (width + gap)
        canvas[gap : gap + height, x : x + width] = fit(gray(before[i]))
        canvas[2 * gap + height : 2 * gap + 2 * height, x : x + width] = fit(after[i])
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", type=Path, nargs="?", help="a video (default: a generated clip)")
    parser.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--colorized", type=Path, help="the clip's colorization (default: colorize it now)")
    parser.add_argument("--frames", type=int, default=6, help="frames in the strip")
    parser.add_argument("--width", type=int, default=320, help="width of each frame in the strip (px)")
    parser.add_argument("--model", type=Path, default=None, help="ONNX model (default: the packaged one)")
    parser.add_argument("--temporal", type=float, default=video.DEFAULT_TEMPORAL)
    parser.add_argument("--photos", type=Path, help="for a generated clip: pan across colour photos from this folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="labcolor-strip-") as name:
        tmp = Path(name)
        source = args.clip
        if source is None:
            from bench_video import make_clip

            photos = None
            if args.photos:
                photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            source = make_clip(tmp / "generated.mp4", 48, 360, 640, seed=7, photos=photos)
        colorized = args.colorized
        if colorized is None:
            colorized = tmp / "colorized.mkv"
            result = video.colorize_video(Colorizer(args.model), source, colorized, temporal=args.temporal,
                                          codec="libx264rgb", quality=0)
            print(f"colorized {result.frames} frames in {result.seconds:.1f} s"
                  + (f" ({result.note})" if result.note else ""))
        picture = strip(source, colorized, args.frames, args.width)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(args.out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise SystemExit(f"cannot write {args.out}")
        print(f"wrote {args.out} ({picture.shape[1]}x{picture.shape[0]})")


if __name__ == "__main__":
    main()
