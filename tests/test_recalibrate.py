"""trainer.recalibrate and `colorize recalibrate`: precise BatchNorm statistics after training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from labcolor.cli import app
from labcolor.runtime.info import inspect_model
from labcolor.export.exporter import export_generator
from labcolor.trainer.checkpoint import load_checkpoint
from labcolor.trainer.data import FolderDataset, scan_images
from labcolor.trainer.networks import build_generator
from labcolor.trainer.recalibrate import RecalibrationError, batchnorm_layers, recalibrate_batchnorm
from labcolor.trainer.specs import GeneratorSpec
from labcolor.trainer.train import train

from tests.test_train import tiny_config

SPEC = GeneratorSpec(depth=4, base_channels=8, max_channels=32, norm="batch", dropout=0.5, noise_channels=0)


def _train_set(photo_dir: Path) -> FolderDataset:
    return FolderDataset(scan_images(photo_dir).usable, 32, train=True, seed=0)


def test_statistics_become_the_average_over_the_passes_with_dropout_off(photo_dir: Path) -> None:
    torch.manual_seed(0)
    g = build_generator(SPEC)
    first = batchnorm_layers(g)[0]
    with torch.no_grad():  # stale statistics, as a run would leave them
        first.running_mean.fill_(5.0)
        first.running_var.fill_(9.0)
    weights = {k: v.clone() for k, v in g.state_dict().items() if "running" not in k and "num_batches" not in k}

    batch_means: list[torch.Tensor] = []
    batch_vars: list[torch.Tensor] = []
    dropout_modes: list[bool] = []

    def record_input(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0]
        batch_means.append(x.mean(dim=(0, 2, 3)))
        batch_vars.append(x.var(dim=(0, 2, 3), unbiased=True))  # BatchNorm keeps the unbiased variance

    first.register_forward_pre_hook(record_input)
    for m in g.modules():
        if isinstance(m, nn.Dropout):
            m.register_forward_pre_hook(lambda module, args: dropout_modes.append(module.training))

    ds = _train_set(photo_dir)  # 12 usable photos
    seen = recalibrate_batchnorm(g, ds, passes=3, batch_size=4, seed=1)

    assert seen == 3 * 12 and len(batch_means) == 9
    # momentum None during the passes: a plain average of the per-batch statistics.
    torch.testing.assert_close(first.running_mean, torch.stack(batch_means).mean(0), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(first.running_var, torch.stack(batch_vars).mean(0), rtol=1e-4, atol=1e-6)
    assert dropout_modes and not any(dropout_modes)  # dropout stayed off, as at inference
    assert not g.training and all(m.momentum == 0.1 for m in batchnorm_layers(g))
    for k, v in g.state_dict().items():  # the learnt weights are untouched
        if k in weights:
            assert torch.equal(v, weights[k]), k

    # The same seed draws the same crops: the result is reproducible.
    again = build_generator(SPEC)
    again.load_state_dict(g.state_dict())
    recalibrate_batchnorm(again, ds, passes=3, batch_size=4, seed=1)
    torch.testing.assert_close(batchnorm_layers(again)[0].running_mean, first.running_mean)


def test_refuses_generators_without_batchnorm_and_tiny_sets(photo_dir: Path) -> None:
    ds = _train_set(photo_dir)
    with pytest.raises(RecalibrationError, match="no BatchNorm"):
        recalibrate_batchnorm(build_generator(GeneratorSpec(**{**SPEC.to_dict(), "norm": "instance"})), ds)
    with pytest.raises(RecalibrationError, match="fewer than one batch"):
        recalibrate_batchnorm(build_generator(SPEC), ds, batch_size=64)


def test_cli_writes_a_recorded_checkpoint_that_exports(photo_dir: Path, tmp_path: Path) -> None:
    result = train(tiny_config(photo_dir, tmp_path / "run", epochs=1))
    out = tmp_path / "run" / "recal.pt"
    runner = CliRunner()
    res = runner.invoke(app, ["recalibrate", str(result.checkpoint), "-o", str(out), "--passes", "2", "--batch-size", "3"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and out.is_file()

    before, after = load_checkpoint(result.checkpoint), load_checkpoint(out)
    record = after["bn_recalibration"]
    assert record["passes"] == 2 and record["batch_size"] == 3 and record["images"] == 2 * 3 * (9 // 3)
    assert "bn_recalibration" not in before  # the input checkpoint is left as it was
    changed = {k for k, v in after["generator"]["state"].items() if not torch.equal(v, before["generator"]["state"][k])}
    assert changed and all("running_" in k or "num_batches" in k for k in changed)

    # The exported model says what was done to it.
    model = tmp_path / "recal.onnx"
    export_generator(out, model)
    info = inspect_model(model, providers=False)
    assert info.metadata.training["bn_recalibration"]["passes"] == 2
    assert any(line.startswith("batchnorm   statistics recalibrated") for line in info.lines())

    # Refusals name the problem: overwriting the input, and training pictures that moved away.
    res = runner.invoke(app, ["recalibrate", str(result.checkpoint), "-o", str(result.checkpoint)])
    assert res.exit_code != 0 and "overwrite the input" in res.output
    res = runner.invoke(app, ["recalibrate", str(result.checkpoint), "--data", str(tmp_path / "moved")])
    assert res.exit_code != 0 and "moved" in res.output


def test_needs_only_the_training_pictures(photo_dir: Path, tmp_path: Path) -> None:
    import shutil

    from tests.conftest import write_photos
    from labcolor.trainer.recalibrate import recalibrate_checkpoint

    val = tmp_path / "val"
    write_photos(val, 4, seed=3)
    result = train(tiny_config(photo_dir, tmp_path / "run", epochs=1, val=str(val)))
    shutil.rmtree(val)  # the validation folder is gone; the training split does not depend on it
    record = recalibrate_checkpoint(result.checkpoint, tmp_path / "recal.pt", passes=1, batch_size=4)
    assert record["images"] == 4 * (12 // 4)  # every usable training photo is in the split: no hold-out
