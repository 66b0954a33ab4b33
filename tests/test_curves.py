"""trainer.curves and `colorize curves`: metrics.jsonl -> a plot of losses and validation metrics per epoch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from labcolor import cli
from labcolor.trainer import curves


def _record(epoch: int, *, gan: bool = True) -> dict:
    r = {"epoch": epoch, "step": 25 * epoch, "g_l1": 0.13 - 0.005 * epoch,
         "val_l1_ab": 12.0 - 0.3 * epoch + (epoch % 3),
         "val_psnr": 21.5 + 0.1 * epoch, "val_de00": 11.0 - 0.2 * epoch + (epoch % 2), "val_colourfulness": 0.5 + 0.05 * epoch,
         "val_images": 35, "lr_g": 2e-4, "lr_d": 2e-4, "images_per_s": 10.0 + epoch,
         "epoch_seconds": 30.0, "time": "2026-11-21T17:47:57+00:00"}
    if gan:
        r.update(g_adv=0.9 + 0.1 * epoch, d_loss=0.7 - 0.02 * epoch, d_real=0.1 * epoch, d_fake=-0.1 * epoch)
    return r


def write_run(folder: Path, epochs: int = 6, *, gan: bool = True, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.jsonl"
    path.write_text("".join(json.dumps(_record(e, gan=gan)) + "\n" for e in range(1, epochs + 1)) + extra)
    return path


def _png_shape(path: Path) -> tuple[int, ...]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image is not None
    return image.shape


def test_plot_gan_run(tmp_path: Path) -> None:
    metrics_file = write_run(tmp_path / "gan")
    runs = curves.load_runs([tmp_path / "gan"])
    assert runs[0].label == "gan" and len(runs[0].records) == 6
    assert [p[0] for p in curves.select_panels(runs)] == [p[0] for p in curves.PANELS]  # every panel has data
    out = curves.plot_curves(metrics_file, tmp_path / "plots" / "curves.png")
    h, w, _ = _png_shape(out)
    assert w > h > 300  # 3 columns x 2 rows of panels


def test_plot_l1_only_run_leaves_out_gan_panels(tmp_path: Path) -> None:
    write_run(tmp_path / "l1", gan=False)
    titles = [p[0] for p in curves.select_panels(curves.load_runs([tmp_path / "l1"]))]
    assert "Adversarial losses (train)" not in titles and "Discriminator outputs (train)" not in titles
    assert "Validation L1 (ab)" in titles and "Generator L1 (train)" in titles
    _png_shape(curves.plot_curves([tmp_path / "l1"], tmp_path / "l1.png"))


def test_several_runs_are_overlaid(tmp_path: Path) -> None:
    write_run(tmp_path / "a" / "run", 4)
    write_run(tmp_path / "b" / "run", 7, gan=False)
    runs = curves.load_runs([tmp_path / "a" / "run", tmp_path / "b" / "run"])
    assert [r.label for r in runs] == [str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run")]  # names clash
    assert len(curves.select_panels(runs)) == len(curves.PANELS)  # the union of what the runs have
    _png_shape(curves.plot_runs(runs, tmp_path / "both.png", title="GAN vs L1"))
    svg = curves.plot_curves([tmp_path / "a" / "run"], tmp_path / "curves.svg")
    assert svg.read_text().lstrip().startswith("<?xml")


def test_read_metrics_resume_blank_and_truncated_lines(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    lines = [_record(1), _record(2), _record(3), {**_record(2), "val_psnr": 99.0}, _record(3)]
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n\n" + '{"epoch": 4, "g_l1": 0.1')
    records = curves.read_metrics(path)
    assert [r["epoch"] for r in records] == [1, 2, 3]  # sorted, one per epoch, half-written line ignored
    assert records[1]["val_psnr"] == 99.0  # a resumed run's later line wins


@pytest.mark.parametrize(("content", "message"), [
    ('{"epoch": 1}\nnot json\n{"epoch": 3}\n', r"metrics.jsonl:2: not valid JSON"),
    ('{"epoch": 1}\n[1, 2]\n', r"metrics.jsonl:2: expected a JSON object"),
    ('{"epoch": "one"}\n', r"'epoch' must be a number"),
    ("\n\n", r"no metrics lines"),
])
def test_read_metrics_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(content)
    with pytest.raises(curves.CurvesError, match=message):
        curves.read_metrics(path)


def test_no_plottable_keys(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "something": 2}\n')
    with pytest.raises(curves.CurvesError, match="none of the plotted keys"):
        curves.plot_curves(path, tmp_path / "x.png")


def test_missing_matplotlib_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_run(tmp_path / "run")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    with pytest.raises(curves.CurvesError, match=r"labcolor\[plot\]"):
        curves.plot_curves(tmp_path / "run", tmp_path / "x.png")


def test_cli_curves(tmp_path: Path) -> None:
    write_run(tmp_path / "run")
    runner = CliRunner()
    result = runner.invoke(cli.app, ["curves", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    _png_shape(tmp_path / "run" / "curves.png")  # default: beside metrics.jsonl
    out = tmp_path / "elsewhere" / "c.png"
    result = runner.invoke(cli.app, ["curves", str(tmp_path / "run" / "metrics.jsonl"), "-o", str(out)])
    assert result.exit_code == 0 and out.is_file()
    missing = runner.invoke(cli.app, ["curves", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no metrics file" in missing.output
