"""Data-parallel training under torchrun (trainer.distributed): CPU, gloo, 2 processes, tiny data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from labcolor.trainer.checkpoint import generator_from_checkpoint, load_checkpoint
from labcolor.trainer.data import EpochSampler
from tests.conftest import write_photos

REPO = Path(__file__).resolve().parent.parent

# A tiny GAN: instance norm in G, spectral norm in D and no dropout, so nothing but the batch split differs between
# a 2-process run at per-rank batch 4 and a 1-process run at batch 8 (BatchNorm statistics would: per-rank on CPU).
RECIPE = ["--size", "32", "--depth", "3", "--base-channels", "8", "--max-channels", "16", "--g-norm", "instance",
          "--dropout", "0", "--d-kind", "patch", "--d-norm", "spectral", "--d-base-channels", "8", "--d-layers", "2",
          "--workers", "0", "--device", "cpu", "--seed", "3", "--sample-count", "2"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    write_photos(root / "train", 34, seed=1, size=(40, 48))  # 34: an odd tail per rank must be dropped
    write_photos(root / "val", 4, seed=2, size=(40, 48))
    return root


def launch(photos: Path, out: Path, *, procs: int, batch: int, epochs: int, extra: list[str] | None = None,
           script: str | None = None) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node procs -m labcolor train ...` (procs 1: a plain process)."""
    args = ["train", "--data", str(photos / "train"), "--val", str(photos / "val"), *RECIPE,
            "--batch-size", str(batch), "--epochs", str(epochs), "--out", str(out), *(extra or [])]
    target = ["-c", script, *args] if script else ["-m", "labcolor", *args]
    if procs == 1 and script is None:
        cmd = [sys.executable, "-m", "labcolor", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}",
               *(["--no-python", sys.executable, *target] if script else target)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, timeout=300, env=env)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["generator"]["state"]


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_ranks_split_each_epoch_into_the_single_process_batches() -> None:
    single = list(EpochSampler(34, seed=5, shuffle=True))
    ranks = [list(EpochSampler(34, seed=5, shuffle=True, rank=r, world=2)) for r in range(2)]
    assert [len(r) for r in ranks] == [17, 17]
    for step in range(4):  # per-rank batch 4 == one batch of 8 in a single process
        joint = ranks[0][4 * step : 4 * step + 4] + ranks[1][4 * step : 4 * step + 4]
        assert sorted(joint) == sorted(single[8 * step : 8 * step + 8])


@pytest.fixture(scope="module")
def runs(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    made = {}
    for name, procs, batch in (("one", 1, 8), ("two", 2, 4)):
        done = launch(photos, root / name, procs=procs, batch=batch, epochs=2)
        assert done.returncode == 0, done.stderr[-3000:]
        made[name] = root / name
    return made


def test_two_processes_at_batch_b_train_like_one_at_2b(runs: dict[str, Path]) -> None:
    one, two = metrics(runs["one"]), metrics(runs["two"])
    assert [m["step"] for m in one] == [m["step"] for m in two] == [4, 8]  # 34 // 8 steps per epoch
    for a, b in zip(one, two):
        for key in ("g_l1", "d_loss", "g_adv"):
            assert b[key] == pytest.approx(a[key], rel=1e-4), key
        # Scored on 8-bit RGB: a 1e-7 difference in ab can flip a rounding, and a flip moves ΔE00 visibly.
        assert b["val_de00"] == pytest.approx(a["val_de00"], rel=1e-3)
    # Not bit-exact: gradients are averaged over ranks (two half-batch means, summed by gloo) instead of one
    # full-batch mean, so float rounding differs in the last bits. Adam turns that into visible weight
    # differences where a gradient is pure rounding noise (a conv bias before instance norm moves by up to
    # lr per step), but such weights do not change the output. So the generators are compared on what they
    # compute: the same ab within 1e-5 network units (0.001 Lab units; measured 1.5e-7 here, 2.5e-7
    # L1-only). A GAN amplifies rounding differences over many steps (at lr 1e-3 it reached 4e-3 in 8).
    ga, gb = (generator_from_checkpoint(load_checkpoint(runs[n] / "checkpoint.pt")).eval() for n in ("one", "two"))
    l_n = torch.rand(4, 1, 32, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        diff = float((ga(l_n) - gb(l_n)).abs().max())
    assert 0 <= diff <= 1e-5, diff


def test_only_rank_zero_writes_and_checkpoints_stay_plain(runs: dict[str, Path], tmp_path: Path) -> None:
    out = runs["two"]
    assert [m["epoch"] for m in metrics(out)] == [1, 2]  # one line per epoch: a second writer would double them
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "checkpoint.pt", "metrics.jsonl", "samples"]
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert not [k for k in ckpt["generator"]["state"] if k.startswith("module.")]
    assert not [k for k in ckpt["discriminator"]["state"] if k.startswith("module.")]
    assert ckpt["distributed"] == {"world": 2}
    pytest.importorskip("onnx")
    from labcolor.export.exporter import export_generator

    report = export_generator(out / "checkpoint.pt", tmp_path / "m.onnx")  # exports exactly as a 1-process run's
    assert report.path.is_file()


def test_a_resumed_distributed_run_repeats_the_uninterrupted_one(photos: Path, runs: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    first = launch(photos, tmp_path / "r", procs=2, batch=4, epochs=1)
    assert first.returncode == 0, first.stderr[-3000:]
    again = launch(photos, tmp_path / "r", procs=2, batch=4, epochs=2,
                   extra=["--resume", str(tmp_path / "r" / "checkpoint.pt")])
    assert again.returncode == 0, again.stderr[-3000:]
    wa, wb = weights(runs["two"] / "checkpoint.pt"), weights(tmp_path / "r" / "checkpoint.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert metrics(tmp_path / "r") == [
        {**m, "time": n["time"], "epoch_seconds": n["epoch_seconds"], "images_per_s": n["images_per_s"]}
        for m, n in zip(metrics(runs["two"]), metrics(tmp_path / "r"))
    ]
    # On another process count: resumes, says what is and is not exact, and trains on.
    other = launch(photos, tmp_path / "r", procs=1, batch=4, epochs=3,
                   extra=["--resume", str(tmp_path / "r" / "checkpoint.pt")])
    assert other.returncode == 0, other.stderr[-3000:]
    assert "written by 2 process(es), this run has 1" in " ".join(other.stderr.split())
    assert [m["epoch"] for m in metrics(tmp_path / "r")] == [1, 2, 3]


def test_a_failing_rank_ends_the_job_with_its_error(photos: Path, tmp_path: Path) -> None:
    # Rank 1 raises on its second step; rank 0 would wait for it in the gradient all-reduce forever.
    script = textwrap.dedent("""
        import os, sys
        import labcolor.trainer.train as train
        real = train.train_step
        def failing(state, *args):
            if os.environ["RANK"] == "1" and state.step == 1:
                raise RuntimeError("rank 1 lost its data disk")
            return real(state, *args)
        train.train_step = failing
        from labcolor.__main__ import main
        sys.argv = ["colorize", *sys.argv[1:]]
        main()
    """)
    done = launch(photos, tmp_path / "f", procs=2, batch=4, epochs=2, script=script)
    assert done.returncode != 0
    assert "rank 1 lost its data disk" in done.stderr
    assert not (tmp_path / "f" / "checkpoint.pt").exists()


def test_batch_size_help_states_it_is_per_process() -> None:
    from typer.testing import CliRunner

    from labcolor import cli

    result = CliRunner().invoke(cli.app, ["train", "--help"], env={"COLUMNS": "200"})
    assert "per process" in " ".join(result.output.split())
