"""Benchmark the folder pipeline (runtime.folder) on generated 1600x1200 JPEGs.

Prints images/s of
  * the full pipeline (decode -> L -> network -> upsample + Lab merge -> encode -> atomic write),
  * the same pipeline with the network skipped (zeros for ab): the I/O-only bound,
and their ratio (the target is >= 85% of the bound). Optionally a sequential baseline.

The pictures are generated in a temporary folder (textured, so JPEG decode/encode cost about
what a real photo costs). Without --model, a stand-in network of realistic cost is built
with onnx.helper: the pix2pix U-Net of trainer.networks (depth 5, base 32, batch norm
folded) with random weights; it needs the `onnx` package (labcolor[train]). With --model
(e.g. runtime/models/default.onnx) the real model is measured.

    python scripts/bench_folder.py                      # 64 gray JPEGs, default workers
    python scripts/bench_folder.py --color --images 32  # colour inputs
    python scripts/bench_folder.py --model runtime/models/default.onnx --sequential
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labcolor.runtime import Colorizer, Summary  # noqa: E402 - needs ROOT on sys.path


def make_pictures(folder: Path, count: int, height: int, width: int, colour: bool, seed: int = 0) -> int:
    """`count` JPEGs (q 90) of a textured scene; returns their total size in bytes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    total = 0
    for i in range(count):
        planes = []
        for _ in range(3):
            fx, fy, phase = rng.uniform(1, 6, 3)
            planes.append(120 + 80 * np.sin(xx / width * fx * 6.28 + phase) * np.cos(yy / height * fy * 6.28))
        img = np.stack(planes, axis=-1)
        img += rng.normal(0, 6, img.shape).astype(np.float32)  # sensor-like texture: realistic JPEG sizes
        for _ in range(12):  # a few hard edges
            x0, y0 = int(rng.integers(0, width - 200)), int(rng.integers(0, height - 200))
            img[y0 : y0 + int(rng.integers(40, 200)), x0 : x0 + int(rng.integers(40, 200))] += rng.uniform(-60, 60, 3)
        img = np.clip(img, 0, 255).astype(np.uint8)
        if not colour:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        (folder / f"img_{i:04d}.jpg").write_bytes(buf.tobytes())
        total += len(buf)
    return total


class _NoNetwork(Colorizer):
    """The same pipeline with the network skipped: ab = 0 of the right shape (the I/O-only bound)."""

    def predict(self, batch, session=None):  # type: ignore[no-untyped-def, override]
        n, _, h, w = batch.shape
        return np.zeros((n, 2, h, w), np.float32)


def run(colorizer: Colorizer, inputs: Path, output: Path, workers: int | None) -> tuple[float, float]:
    """(images/s wall clock, CPU ms per image) of one run into a fresh output folder."""
    shutil.rmtree(output, ignore_errors=True)
    summary = Summary()
    start, cpu = time.perf_counter(), time.process_time()
    for result in colorizer.colorize_folder(inputs, output, workers=workers, overwrite=True):
        summary.add(result)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if not summary.ok:
        raise SystemExit(f"failures: {summary.failed[:3]}")
    return summary.done / elapsed, cpu / summary.done * 1000


def best(colorizer: Colorizer, inputs: Path, output: Path, workers: int | None, repeat: int) -> tuple[float, float]:
    runs = [run(colorizer, inputs, output, workers) for _ in range(repeat)]
    return max(r[0] for r in runs), min(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--color", action="store_true", help="colour JPEGs (default: grayscale JPEGs)")
    parser.add_argument("--model", type=Path, help="ONNX model (default: a generated depth-5/base-32 U-Net)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each variant; the best is reported")
    parser.add_argument("--sequential", action="store_true", help="also time workers=1 with one thread")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="labcolor-bench-"))
    try:
        model = args.model
        if model is None:
            from tests.runtime_fixtures import make_unet_model

            model = make_unet_model(tmp / "unet5x32.onnx", depth=5, base=32)
        inputs = tmp / "photos"
        size = make_pictures(inputs, args.images, args.height, args.width, args.color)
        opts = {"device": args.device, "size": args.size, "threads": args.threads, "batch_size": args.batch_size}
        full, bound = Colorizer(model, **opts), _NoNetwork(model, **opts)

        probe = np.zeros((1, 1, 192, 256), np.float32) if full.size == 256 else None
        if probe is not None:
            sess = full.session_with_threads(1)
            full.predict(probe, sess)
            t = time.perf_counter()
            for _ in range(5):
                full.predict(probe, sess)
            net_ms = (time.perf_counter() - t) / 5 * 1000
        print(f"model {model.name}  device {full.device}  size {full.size}  batch {full.batch_size}  "
              f"cv2 {cv2.__version__}  cpus {os.cpu_count()}")
        print(f"{args.images} {'colour' if args.color else 'gray'} JPEGs {args.width}x{args.height}, "
              f"{size / args.images / 1024:.0f} KiB each" + (f"; network alone {net_ms:.1f} ms/img at 256x192, 1 thread"
                                                            if probe is not None else ""))
        rows = []
        if args.sequential:
            seq = Colorizer(model, device=args.device, size=args.size, threads=1, batch_size=1)
            rows.append(("sequential (1 worker, 1 thread)", best(seq, inputs, tmp / "out", 1, args.repeat)))
        full_rate = best(full, inputs, tmp / "out", args.workers, args.repeat)
        bound_rate = best(bound, inputs, tmp / "out", args.workers, args.repeat)
        rows += [("full pipeline", full_rate), ("network skipped (I/O bound)", bound_rate)]
        for name, (rate, cpu_ms) in rows:
            print(f"  {name:34s} {rate:6.1f} images/s   {cpu_ms:6.1f} CPU ms/image")
        print(f"  full / bound = {full_rate[0] / bound_rate[0]:.0%}   (load average {os.getloadavg()[0]:.1f}: "
              "other programs on the machine lower both)")
        # CPU time per picture does not depend on what else runs on the machine; with every core free
        # and perfect scaling across pictures, the rate could reach cores * 1000 / CPU-ms.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        print(f"  CPU-bound ceiling on {cores} idle cores: full {cores * 1000 / full_rate[1]:.1f} images/s, "
              f"bound {cores * 1000 / bound_rate[1]:.1f} images/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
