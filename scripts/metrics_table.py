"""Print the model table of a `colorize eval` metrics.json as Markdown (for README/docs).

    python scripts/metrics_table.py runs/cifar32/eval/metrics.json [--runs runs/cifar32] [--names a=b ...]

img/s is the eval's inference throughput; with --runs, "train img/s" is the median over epochs
of the training throughput in <runs>/<model folder>/metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

COLUMNS = [  # (key in aggregate, header, format)
    ("psnr", "PSNR ↑", "{:.2f}"),
    ("ssim", "SSIM ↑", "{:.4f}"),
    ("ciede2000", "ΔE00 ↓", "{:.2f}"),
    ("colourfulness_ratio", "colourfulness ratio", "{:.3f}"),
    ("accuracy", "acc 2% ↑", "{:.4f}"),
    ("auc", "AuC ↑", "{:.4f}"),
]


def _train_speed(runs: Path, model_path: str | None) -> str:
    if not model_path:
        return "–"
    log = runs / Path(model_path).parent.name / "metrics.jsonl"
    if not log.is_file():
        return "–"
    speeds = [json.loads(line)["images_per_s"] for line in log.read_text().splitlines() if line.strip()]
    return f"{statistics.median(speeds):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("--names", nargs="*", default=[], help="rename rows: old=new")
    parser.add_argument("--runs", type=Path, help="folder of the training runs (adds train img/s)")
    args = parser.parse_args()
    rename = dict(pair.split("=", 1) for pair in args.names)
    report = json.loads(args.metrics.read_text())
    extra = ["train img/s"] if args.runs else []
    print("| model | " + " | ".join([h for _, h, _ in COLUMNS] + ["img/s", *extra]) + " |")
    print("|---" * (len(COLUMNS) + 2 + len(extra)) + "|")
    for model in report["models"]:
        agg = model["aggregate"]
        cells = [fmt.format(agg[key]) if agg.get(key) is not None else "–" for key, _, fmt in COLUMNS]
        speed = f"{model['images_per_s']:.0f}" if model.get("images_per_s") else "–"
        cells.append(speed)
        if args.runs:
            cells.append(_train_speed(args.runs, model.get("path")))
        print(f"| {rename.get(model['name'], model['name'])} | " + " | ".join(cells) + " |")
    print(f"\n{report['images']} pictures from {report['data']}")


if __name__ == "__main__":
    main()
