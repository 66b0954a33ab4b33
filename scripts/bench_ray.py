"""Benchmark `--engine ray` against the local folder pipeline on the same generated JPEGs.

Both engines run the same per-file code (folder.process_job with Colorizer.file_steps), so this measures
what Ray adds or removes: one process and one onnxruntime session per actor instead of threads sharing
a session, plus Ray's scheduling and the records' round trips. Ray runs on a local instance with this
machine's CPUs, started once before the timed runs (its start-up is printed apart); each Ray run still
includes starting its actors (one model load each), as a `colorize --engine ray` run does.

Prints images/s of each engine (wall clock of a whole run into a fresh output folder, best of --repeat),
Ray's rate once its first picture is out (the steady state, start-up left out), and ray / local.

    python scripts/bench_ray.py --images 48
    python scripts/bench_ray.py --images 200 --color --model runtime/models/default.onnx
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_folder import make_pictures  # scripts/ is on sys.path (above)

from labcolor.runtime import Colorizer, Summary
from labcolor.runtime.colorizer import DEFAULT_MODEL, cpu_count
from labcolor.runtime.ray_engine import colorize_folder_ray


def timed(results) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(images/s over the whole run, images/s from the first finished picture on)."""
    summary, first = Summary(), None
    start = time.perf_counter()
    with results:
        for result in results:
            summary.add(result)
            if result.status == "done" and first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    if not summary.ok or summary.done == 0:
        raise SystemExit(f"failures: {summary.failed[:3]}")
    steady = (summary.done - 1) / (end - first) if first is not None and end > first else 0.0
    return summary.done / (end - start), steady


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--color", action="store_true", help="colour JPEGs (default: grayscale JPEGs)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--cpus", type=int, default=None, help="CPUs for both engines (default: this machine's)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each engine; the best is reported")
    args = parser.parse_args()

    import ray
    import ray.data

    for handler in logging.getLogger("ray.data").handlers:  # Ray Data's plan and notices, on the console
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.ERROR)

    cpus = args.cpus or cpu_count()
    tmp = Path(tempfile.mkdtemp(prefix="labcolor-bench-ray-"))
    try:
        inputs = tmp / "photos"
        size = make_pictures(inputs, args.images, args.height, args.width, args.color)
        print(f"{args.images} {'colour' if args.color else 'gray'} JPEGs {args.width}x{args.height}, "
              f"{size / args.images / 1024:.0f} KiB each; model {args.model.name}; {cpus} CPUs")

        colorizer = Colorizer(args.model, "cpu")
        local = max((timed(colorizer.colorize_folder(inputs, tmp / "local", workers=cpus, overwrite=True))
                     for _ in range(args.repeat)), key=lambda r: r[0])

        start = time.perf_counter()
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        ray_start = time.perf_counter() - start
        try:
            remote = max((timed(colorize_folder_ray(args.model, [inputs], tmp / "ray", device="cpu", overwrite=True))
                          for _ in range(args.repeat)), key=lambda r: r[0])
        finally:
            ray.shutdown()

        print(f"  local engine  {local[0]:6.2f} images/s   (steady state {local[1]:6.2f} images/s)")
        print(f"  ray engine    {remote[0]:6.2f} images/s   (steady state {remote[1]:6.2f} images/s; "
              f"Ray's own start-up {ray_start:.1f} s not counted)")
        print(f"  ray / local = {remote[0] / local[0]:.2f}   (steady state {remote[1] / local[1]:.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
