"""Plot ΔE00 against colourfulness for the colour strengths scored by `colorize eval --saturation`.

    colorize eval MODEL.onnx [MODEL2.onnx] --data PHOTOS --saturation 0,0.25,0.5,0.75,1,1.25,1.5 -o OUT
    python scripts/saturation_curve.py OUT/metrics.json -o docs/saturation-curve.png [--title TEXT]

One line per model (rows named model@strength), each point labelled with its strength; the
grayscale input is the point at colourfulness 0. Lower and further right is better.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", type=Path, help="metrics.json of a `colorize eval --saturation ...` run")
    parser.add_argument("-o", "--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default=None)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(args.metrics.read_text())
    lines: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    gray = None
    for row in data["models"]:
        agg = row["aggregate"]
        if row["saturation"] is None:
            gray = (agg["colourfulness_ratio"], agg["ciede2000"])
            continue
        model = row["name"].rpartition("@")[0] or row["name"]
        lines[model].append((row["saturation"], agg["colourfulness_ratio"], agg["ciede2000"]))
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    for model, points in lines.items():
        points.sort()
        ax.plot([p[1] for p in points], [p[2] for p in points], marker="o", label=model)
        for s, x, y in points:
            ax.annotate(f"{s:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if gray is not None:
        ax.axhline(gray[1], color="grey", linestyle="--", linewidth=1, label=f"grayscale input ({gray[1]:.2f})")
    ax.set_xlabel("colourfulness ratio (prediction / truth, ratio of means)")
    ax.set_ylabel("mean CIEDE2000 ΔE00 (lower is better)")
    ax.set_title(args.title or f"{data['data']}: {data['images']} pictures")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
