"""Training curves: a run's metrics.jsonl -> one PNG of G/D losses and validation metrics per epoch.

Needs matplotlib (the optional extra: pip install labcolor[plot]); drawn with the Agg backend,
so no display is needed. Never imports torch, so `colorize curves` works without the trainer's
dependencies.

metrics.jsonl holds one JSON object per epoch (written by trainer.train): epoch, g_l1, g_adv,
d_loss, d_real, d_fake (GAN runs only), val_l1_ab, val_psnr, lr_g, lr_d, images_per_s, ...
Keys a run lacks are left out of the plot (an L1-only run has no discriminator panel data).
A resumed run may repeat epochs: the last line for an epoch wins. A half-written last line (a
run still writing) is ignored.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labcolor.core.errors import InputError
from labcolor.trainer.runfiles import METRICS_NAME

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'labcolor[plot]'"

# (panel title, y label, ((key, legend label), ...)); a panel is drawn when a run has one of its keys.
PANELS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("Generator L1 (train)", "L1, network units", (("g_l1", "G L1"),)),
    ("Adversarial losses (train)", "loss", (("g_adv", "G adv"), ("d_loss", "D loss"))),
    ("Discriminator outputs (train)", "mean D output", (("d_real", "D(real)"), ("d_fake", "D(fake)"))),
    ("Validation L1 (ab)", "mean |ab error|, Lab units", (("val_l1_ab", "val L1 ab"),)),
    ("Validation PSNR", "dB", (("val_psnr", "val PSNR"),)),
    ("Validation CIEDE2000", "mean ΔE00", (("val_de00", "val ΔE00"),)),
    ("Validation colourfulness", "prediction / truth", (("val_colourfulness", "val colourfulness"),)),
    ("Learning rate", "lr", (("lr_g", "lr G"), ("lr_d", "lr D"))),
)
# Drawn on a right-hand axis of the learning-rate panel.
THROUGHPUT = ("images_per_s", "images/s")


class CurvesError(InputError):
    """A metrics file cannot be read or plotted, or matplotlib is missing."""


@dataclass(frozen=True)
class Run:
    label: str
    records: list[dict[str, Any]]  # one per epoch, sorted by epoch

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(epochs, values) of one key, skipping epochs without a finite number for it."""
        xs, ys = [], []
        for r in self.records:
            v = r.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                xs.append(float(r["epoch"]))
                ys.append(float(v))
        return xs, ys


def metrics_path(path: Path) -> Path:
    """A run folder -> its metrics.jsonl; a file is taken as it is."""
    path = Path(path)
    return path / METRICS_NAME if path.is_dir() else path


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The per-epoch records of a metrics.jsonl (or run folder), sorted by epoch, last line per epoch kept.

    Records without "epoch" are numbered by position (1-based). Raises FileNotFoundError, or
    CurvesError naming the line for malformed JSON (except a half-written last line, skipped).
    """
    path = metrics_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no metrics file: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    by_epoch: dict[float, dict[str, Any]] = {}
    for k, (n, line) in enumerate(numbered):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if k == len(numbered) - 1 and not line.rstrip().endswith("}"):
                log.warning("%s:%d: ignoring a half-written last line", path, n)
                continue
            raise CurvesError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise CurvesError(f"{path}:{n}: expected a JSON object, got {type(record).__name__}")
        epoch = record.get("epoch", k + 1)
        if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
            raise CurvesError(f"{path}:{n}: 'epoch' must be a number, got {epoch!r}")
        by_epoch[float(epoch)] = {**record, "epoch": epoch}
    if not by_epoch:
        raise CurvesError(f"{path}: no metrics lines (has the run finished an epoch yet?)")
    return [by_epoch[e] for e in sorted(by_epoch)]


def load_runs(paths: Sequence[Path], labels: Sequence[str] | None = None) -> list[Run]:
    """Read several runs; labels default to each run folder's name (the file's parent)."""
    files = [metrics_path(Path(p)) for p in paths]
    if labels is None:
        labels = [f.parent.name or f.stem for f in files]
        if len(set(labels)) != len(labels):
            labels = [str(f.parent) for f in files]
    elif len(labels) != len(files):
        raise CurvesError(f"{len(labels)} labels for {len(files)} runs")
    return [Run(label, read_metrics(f)) for label, f in zip(labels, files)]


def select_panels(runs: Sequence[Run]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """The PANELS with data in at least one run (the learning-rate panel also for throughput alone)."""
    all_keys = [*(key for p in PANELS for key, _ in p[2]), THROUGHPUT[0]]
    present = {key for key in all_keys if any(run.series(key)[0] for run in runs)}

    def drawn(panel: tuple) -> bool:
        keys = {key for key, _ in panel[2]} | ({THROUGHPUT[0]} if panel[2][0][0] == "lr_g" else set())
        return bool(keys & present)

    panels = [p for p in PANELS if drawn(p)]
    if not panels:
        raise CurvesError("the metrics have none of the plotted keys: " + ", ".join(all_keys))
    return panels


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise CurvesError(f"plotting needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    matplotlib.use("Agg", force=True)  # files only; never a GUI backend
    import matplotlib.pyplot as plt

    return plt


def plot_runs(runs: Sequence[Run], out: Path, *, title: str | None = None, dpi: int = 110) -> Path:
    """Draw the panels that have data in at least one run into `out` (PNG, SVG or PDF by suffix)."""
    if not runs:
        raise CurvesError("no runs to plot")
    panels = select_panels(runs)
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    cols = 3 if len(panels) > 4 else 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ("-", "--", ":", "-.")
    for ax, (panel_title, ylabel, keys) in zip(axes.flat, panels):
        for r, run in enumerate(runs):
            for k, (key, label) in enumerate(keys):
                xs, ys = run.series(key)
                if not xs:
                    continue
                name = label if len(runs) == 1 else f"{run.label}: {label}"
                ax.plot(xs, ys, styles[k % len(styles)], color=colors[(r if len(runs) > 1 else k) % len(colors)],
                        marker="o" if len(xs) < 30 else None, markersize=3, linewidth=1.4, label=name)
            if keys[0][0] == "val_de00":  # mark the epoch best.pt holds (lowest validation ΔE00)
                xs, ys = run.series("val_de00")
                if xs:
                    best = min(range(len(ys)), key=ys.__getitem__)
                    ax.plot([xs[best]], [ys[best]], "*", color=colors[r % len(colors)], markersize=11,
                            label=f"best: epoch {xs[best]:g} ({ys[best]:.2f})")
        handles, names = ax.get_legend_handles_labels()
        if keys[0][0] == "lr_g" and any(run.series(THROUGHPUT[0])[0] for run in runs):
            right = ax.twinx()
            for r, run in enumerate(runs):
                xs, ys = run.series(THROUGHPUT[0])
                if xs:
                    name = THROUGHPUT[1] if len(runs) == 1 else f"{run.label}: {THROUGHPUT[1]}"
                    right.plot(xs, ys, ":", color=colors[(r if len(runs) > 1 else 2) % len(colors)], linewidth=1.2,
                               label=name)
            right.set_ylabel(THROUGHPUT[1])
            more = right.get_legend_handles_labels()
            handles, names = handles + more[0], names + more[1]
            panel_title = "Learning rate and throughput"
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(handles, names, fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(title or ", ".join(run.label for run in runs), fontsize=12)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, dpi=dpi)
    except ValueError as exc:  # e.g. an unknown file format
        raise CurvesError(f"cannot write {out}: {exc}") from None
    finally:
        plt.close(fig)
    return out


def plot_curves(paths: Sequence[Path] | Path, out: Path, *, labels: Sequence[str] | None = None,
                title: str | None = None) -> Path:
    """metrics.jsonl files or run folders -> one plot file; several runs are overlaid for comparison."""
    if isinstance(paths, (str, Path)):
        paths = [Path(paths)]
    return plot_runs(load_runs(paths, labels), out, title=title)
