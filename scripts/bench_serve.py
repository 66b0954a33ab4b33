"""Load benchmark of `colorize serve` on loopback: requests/s, p50/p95 latency and the server's memory.

Starts `python -m labcolor serve` (shipped model unless --model) on a free port, warms it up, then
runs `--clients` concurrent clients posting the same 2 MP JPEG for `--seconds` or `--requests`,
whichever comes first, and prints the figures; then the same above the in-flight limit.

    python scripts/bench_serve.py                       # 8 clients, 30 s or 500 requests
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.serve_client import load, serve  # noqa: E402 - needs ROOT on sys.path


def photo_jpeg(height: int = 1200, width: int = 1600) -> bytes:
    """A textured gray 2 MP JPEG (what an old scan looks like to the encoder)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = 120 + 80 * np.sin(xx / 97) * np.cos(yy / 131) + rng.normal(0, 6, (height, width))
    ok, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--max-in-flight", type=int, default=8)
    args = parser.parse_args()

    body = photo_jpeg()
    extra = ["-m", str(args.model)] if args.model else []
    if args.workers:
        extra += ["--workers", str(args.workers)]
    with serve(*extra, "--max-in-flight", str(args.max_in_flight)) as server:
        rss0, _ = server.memory_kb()
        warm = load(server, body, clients=args.clients, requests=2 * args.clients, seconds=60)
        _, peak_warm = server.memory_kb()
        run = load(server, body, clients=args.clients, requests=args.requests, seconds=args.seconds)
        _, peak_run = server.memory_kb()
        above = load(server, body, clients=4 * args.max_in_flight, requests=args.requests // 2, seconds=args.seconds)
        _, peak_above = server.memory_kb()
    print(f"2 MP gray JPEG ({len(body) // 1024} KiB), {args.clients} clients, max in flight {args.max_in_flight}")
    print(f"  warm-up        {dict(warm.statuses)}")
    print(f"  load           {run.ok} ok in {run.seconds:.1f} s = {run.ok / run.seconds:.2f} req/s; "
          f"p50 {run.percentile(50) * 1000:.0f} ms, p95 {run.percentile(95) * 1000:.0f} ms; "
          f"statuses {dict(run.statuses)}; connection errors {len(run.errors)}")
    print(f"  {4 * args.max_in_flight} clients   statuses {dict(above.statuses)}; connection errors {len(above.errors)}")
    print(f"  server RSS     {rss0 // 1024} MB idle; peak {peak_warm // 1024} MB after warm-up, "
          f"{peak_run // 1024} MB after the load, {peak_above // 1024} MB after the overload")


if __name__ == "__main__":
    main()
