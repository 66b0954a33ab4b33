"""Print the model table of `colorize eval` metrics.json files as Markdown (for README/docs).

    python scripts/metrics_table.py runs/cifar32/eval/metrics.json [--runs runs/cifar32] [--names a=b ...]
    python scripts/metrics_table.py runs/search/*/eval*/metrics.json    (one table of several evals)

With several files (they must score the same pictures), each model row is named
<run folder>/<model name>, e.g. lambda50/model, and the grayscale row is printed once.

img/s is the eval's inference throughput; with --runs, "train img/s" is the median over epochs
of the training throughput in <runs>/<model folder>/metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from labcolor.trainer.runfiles import METRICS_NAME

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
    log = runs / Path(model_path).parent.name / METRICS_NAME
    if not log.is_file():
        return "–"
    speeds = [json.loads(line)["images_per_s"] for line in log.read_text().splitlines() if line.strip()]
    return f"{statistics.median(speeds):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path, nargs="+")
    parser.add_argument("--names", nargs="*", default=[], help="rename rows: old=new")
    parser.add_argument("--runs", type=Path, help="folder of the training runs (adds train img/s)")
    args = parser.parse_args()
    rename = dict(pair.split("=", 1) for pair in args.names)
    reports = [(path, json.loads(path.read_text())) for path in args.metrics]
    sets = {(r["data"], r["images"]) for _, r in reports}
    if len(sets) > 1:
        parser.error(f"the files score different picture sets: {sorted(sets)}")
    extra = ["train img/s"] if args.runs else []
    print("| model | " + " | ".join([h for _, h, _ in COLUMNS] + ["img/s", *extra]) + " |")
    print("|---" * (len(COLUMNS) + 2 + len(extra)) + "|")
    seen_gray = False
    for path, report in reports:
        for model in report["models"]:
            name = model["name"]
            if not model.get("path"):  # the grayscale baseline: the same in every file
                if seen_gray:
                    continue
                seen_gray = True
            elif len(reports) > 1:
                name = f"{path.parent.parent.name}/{name}"
            agg = model["aggregate"]
            cells = [fmt.format(agg[key]) if agg.get(key) is not None else "–" for key, _, fmt in COLUMNS]
            cells.append(f"{model['images_per_s']:.0f}" if model.get("images_per_s") else "–")
            if args.runs:
                cells.append(_train_speed(args.runs, model.get("path")))
            print(f"| {rename.get(name, name)} | " + " | ".join(cells) + " |")
    data, images = sets.pop()
    print(f"\n{images} pictures from {data}")

if __name__ == "__main__":
    main()
