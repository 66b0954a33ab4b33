"""The training loop end to end: learning, checkpoints, exact resume, outputs, and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from labcolor.cli import app
from tests.cifar_fixture import write_fixture_folder
from tests.conftest import write_photos
from labcolor.trainer.checkpoint import CheckpointError, load_checkpoint, load_generator, save_atomic
from labcolor.trainer.config import ConfigError, TrainConfig
from labcolor.trainer.train import TrainState, lr_lambda, merge_resume_config, train, train_step

TINY = dict(depth=4, base_channels=8, max_channels=32, d_base_channels=8, batch_size=4, workers=0, device="cpu")


def tiny_config(data: Path, out: Path, **overrides) -> TrainConfig:
    return TrainConfig(**{**TINY, "data": str(data), "out": str(out), "size": 32, "val_fraction": 0.25,
                          "sample_count": 3, **overrides})


def test_training_on_a_fixed_tiny_batch_lowers_l1(photo_dir: Path) -> None:
    torch.manual_seed(0)
    from labcolor.trainer.data import FolderDataset, scan_images

    ds = FolderDataset(scan_images(photo_dir).usable[:4], 32, train=False)
    l_n = torch.stack([ds[i][0] for i in range(4)])
    ab_n = torch.stack([ds[i][1] for i in range(4)])
    state = TrainState.create(TrainConfig(data="unused", **{**TINY, "dropout": 0.0}), torch.device("cpu"))
    first = train_step(state, l_n, ab_n)["g_l1"]
    for _ in range(40):
        last = train_step(state, l_n, ab_n)["g_l1"]
    assert last < 0.7 * first, (first, last)  # measured: 0.261 -> 0.156 in 40 steps


def test_epoch_outputs_and_generator_rebuild(photo_dir: Path, tmp_path: Path) -> None:
    result = train(tiny_config(photo_dir, tmp_path / "run", epochs=2))
    lines = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    for key in ("g_l1", "g_adv", "d_loss", "val_l1_ab", "val_psnr", "val_de00", "val_colourfulness", "images_per_s",
                "lr_g"):
        assert key in lines[-1]
    # best.pt is the checkpoint of the epoch with the lowest validation CIEDE2000.
    best_epoch = min(lines, key=lambda m: m["val_de00"])["epoch"]
    assert result.best == tmp_path / "run" / "best.pt" and result.best_epoch == best_epoch
    best = load_checkpoint(result.best)
    assert best["epoch"] == best_epoch and best["metrics"]["val_de00"] == min(m["val_de00"] for m in lines)
    assert load_checkpoint(result.checkpoint)["best"] == {"epoch": best_epoch, "val_de00": best["metrics"]["val_de00"]}
    assert lines[-1]["step"] == 2 * (9 // 4)  # 9 training pictures, batches of 4, last partial one dropped
    grid = cv2.imread(str(tmp_path / "run" / "samples" / "epoch_0002.png"))
    assert grid.shape == (3 * 128, 3 * 128, 3)  # 3 samples x (gray | truth | colorized), 32 px shown 4x
    assert not list((tmp_path / "run").glob(".*tmp"))  # atomic writes left no temporaries
    # Atomic writes keep the umask's permissions (mkstemp would make them owner-only).
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "run" / "checkpoint.pt").stat().st_mode & 0o777 == 0o666 & ~umask

    # The checkpoint alone rebuilds the generator: same outputs as a fresh rebuild of the saved weights.
    g, ckpt = load_generator(result.checkpoint)
    assert not g.training
    assert ckpt["epoch"] == 2 and ckpt["config"]["base_channels"] == 8
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    state = TrainState.create(TrainConfig.from_dict(ckpt["config"]), torch.device("cpu"))
    state.g.load_state_dict(ckpt["generator"]["state"])
    assert torch.equal(g(x), state.g.eval()(x))


class _InterruptAfterFirstEpoch:
    """A progress hook that stops the run like Ctrl-C right after epoch 1's checkpoint."""

    def epoch_start(self, epoch: int, epochs: int, batches: int) -> None: ...
    def step(self, images: int, losses: dict) -> None: ...
    def epoch_end(self, metrics: dict) -> None:
        if metrics["epoch"] == 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_reproduces_an_uninterrupted_run(photo_dir: Path, tmp_path: Path, ema: float) -> None:
    settings = dict(epochs=3, lr_decay="linear", decay_start=1, ema=ema)
    full = train(tiny_config(photo_dir, tmp_path / "full", **settings))
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(photo_dir, tmp_path / "half", **settings), progress=_InterruptAfterFirstEpoch())
    saved = TrainConfig.from_dict(load_checkpoint(tmp_path / "half" / "checkpoint.pt")["config"])
    with pytest.raises(ConfigError, match="lr_decay"):
        merge_resume_config(saved, {"lr_decay": "step"})
    # Resume in a worker process this time: batch order and augmentation must not depend on it.
    resumed_cfg = merge_resume_config(saved, {"workers": 1})
    assert resumed_cfg.workers == 1 and resumed_cfg.epochs == 3
    resumed = train(resumed_cfg, resume=tmp_path / "half" / "checkpoint.pt")

    full_lines = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    res_lines = [json.loads(x) for x in (tmp_path / "half" / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in res_lines] == [1, 2, 3]
    for a, b in zip(full_lines[1:], res_lines[1:]):
        for key in ("step", "g_l1", "g_adv", "d_loss", "d_real", "d_fake", "val_l1_ab", "val_de00", "lr_g"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), key
    # The best epoch survives the interruption: the resumed run's best.pt is the uninterrupted run's.
    assert resumed.best_epoch == full.best_epoch
    assert load_checkpoint(resumed.best)["epoch"] == load_checkpoint(full.best)["epoch"]
    a = load_checkpoint(full.checkpoint)["generator"]["state"]
    b = load_checkpoint(resumed.checkpoint)["generator"]["state"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_ema_averages_weights_and_statistics_and_is_what_gets_checkpointed(photo_dir: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(data="unused", **{**TINY, "ema": 0.5})
    state = TrainState.create(cfg, torch.device("cpu"))
    assert state.g_eval is state.g_ema and not state.g_ema.training
    before = {k: v.clone() for k, v in state.g_ema.state_dict().items()}
    l_n, ab_n = torch.rand(4, 1, 32, 32) * 2 - 1, torch.rand(4, 2, 32, 32) * 2 - 1
    state.step = 100  # past the warm-up: the decay is cfg.ema itself
    train_step(state, l_n, ab_n)  # step becomes 101; update_ema runs with decay min(0.5, 102/111) = 0.5
    live = state.g.state_dict()
    for k, avg in state.g_ema.state_dict().items():
        if avg.dtype.is_floating_point:
            torch.testing.assert_close(avg, 0.5 * before[k] + 0.5 * live[k])
        else:
            assert torch.equal(avg, live[k])
    assert any(not torch.equal(before[k], live[k]) for k in live)  # the step did move the weights
    # The checkpoint deploys the average and keeps the live weights for resuming.
    ckpt = state.checkpoint(data="d", metrics={})
    for k in live:
        assert torch.equal(ckpt["generator"]["state"][k], state.g_ema.state_dict()[k])
        assert torch.equal(ckpt["generator_train"][k], live[k])
    with pytest.raises(ConfigError, match="--ema"):
        TrainConfig(data="unused", ema=1.0)


class _Constant(torch.nn.Module):
    """A stand-in generator that answers every batch with the same ab tensor (N, 2, S, S)."""

    def __init__(self, ab: torch.Tensor) -> None:
        super().__init__()
        self.ab = ab

    def forward(self, l_n: torch.Tensor) -> torch.Tensor:
        return self.ab[: len(l_n)]


def test_validation_scores_match_colorize_eval_definitions(photo_dir: Path) -> None:
    from labcolor.core import color, metrics
    from labcolor.trainer.data import FolderDataset, scan_images
    from labcolor.trainer.validation import evaluate

    ds = FolderDataset(scan_images(photo_dir).usable[:5], 32, train=False)
    l_n = torch.stack([ds[i][0] for i in range(5)])
    ab_n = torch.stack([ds[i][1] for i in range(5)])
    loader = [(l_n, ab_n)]
    cpu = torch.device("cpu")

    # Gray predictions: the same numbers runtime.metrics gives for gray pictures against their truths.
    gray = evaluate(_Constant(torch.zeros_like(ab_n)), loader, cpu, max_images=100)
    l_hwc = l_n.numpy().transpose(0, 2, 3, 1)
    truths = color.network_to_rgb(l_hwc, ab_n.numpy().transpose(0, 2, 3, 1))
    grays = color.network_to_rgb(l_hwc, np.zeros((5, 32, 32, 2), np.float32))
    scores = metrics.aggregate([metrics.score(p, t) for p, t in zip(grays, truths)])
    assert gray["val_images"] == 5
    assert gray["val_de00"] == pytest.approx(scores["ciede2000"], rel=1e-6)
    assert gray["val_colourfulness"] == pytest.approx(scores["colourfulness_ratio"], rel=1e-6)
    assert gray["val_de00"] > 1.0 and gray["val_colourfulness"] < 0.5  # the fixture photos are colourful

    # Perfect predictions: no colour error and the truth's colourfulness.
    perfect = evaluate(_Constant(ab_n), loader, cpu, max_images=100)
    assert perfect["val_de00"] < 1e-3 and perfect["val_l1_ab"] < 1e-4
    assert perfect["val_colourfulness"] == pytest.approx(1.0)
    assert evaluate(_Constant(ab_n), loader, cpu, max_images=2)["val_images"] == 2


def test_lr_schedules() -> None:
    linear = lr_lambda(TrainConfig(data="x", epochs=10, lr_decay="linear", decay_start=5))
    assert [round(linear(e), 3) for e in (0, 5, 6, 9)] == [1.0, 1.0, 0.833, 0.333]
    step = lr_lambda(TrainConfig(data="x", epochs=10, lr_decay="step", decay_every=3, decay_gamma=0.1))
    assert [step(e) for e in (0, 2, 3, 6)] == pytest.approx([1.0, 1.0, 0.1, 0.01])


def test_checkpoint_loading_is_safe_and_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    save_atomic({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a labcolor checkpoint"):
        load_checkpoint(foreign)

    class Evil:
        def __reduce__(self):
            return (exec, ("open('%s', 'w').close()" % (tmp_path / "pwned"),))

    evil = tmp_path / "evil.pt"
    torch.save({"format": "labcolor-checkpoint", "x": Evil()}, evil)
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def _tiny_cli_args() -> list[str]:
    return ["--depth", "4", "--base-channels", "8", "--max-channels", "32", "--d-base-channels", "8",
            "--batch-size", "4", "--workers", "0", "--device", "cpu", "--sample-count", "2"]


def test_cli_trains_on_a_photo_folder(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_photos(photos, 10)
    write_photos(tmp_path / "val", 3, seed=5)
    out = tmp_path / "run"
    args = ["train", "--data", str(photos), "--val", str(tmp_path / "val"), "--size", "64", "--epochs", "1",
            "--d-kind", "patch", "-o", str(out), *_tiny_cli_args()]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint.pt").is_file() and (out / "samples" / "epoch_0001.png").is_file()
    metrics = json.loads((out / "metrics.jsonl").read_text())
    assert metrics["val_images"] == 3 and metrics["epoch"] == 1

    # Resuming with a different model option is refused, naming the option.
    refused = CliRunner().invoke(app, ["train", "--resume", str(out / "checkpoint.pt"), "--lr-g", "0.1"])
    assert refused.exit_code == 2 and "lr_g" in refused.output
    # Resuming with more epochs continues the same run.
    more = CliRunner().invoke(app, ["train", "--resume", str(out / "checkpoint.pt"), "--epochs", "2"])
    assert more.exit_code == 0, more.output
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_cli_trains_on_a_cifar_format_folder_at_32px(tmp_path: Path) -> None:
    folder = write_fixture_folder(tmp_path)
    out = tmp_path / "cifar-run"
    args = ["train", "--data", str(folder), "--epochs", "1", "--d-kind", "global", "--d-norm", "spectral",
            "-o", str(out), *_tiny_cli_args()]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["config"]["size"] == 32 and "CIFAR-10" in ckpt["data"]
    assert json.loads((out / "metrics.jsonl").read_text())["val_images"] == 3  # the fixture's test batch


def test_cli_reports_bad_data_cleanly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "missing"), *_tiny_cli_args()])
    assert result.exit_code == 2
    assert "missing" in result.output and "Traceback" not in result.output
