"""Tests of the command-line edge: the error edge, --version, and train's options generated from TrainConfig."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import labcolor
from labcolor import cli
from labcolor.core.errors import ModelError
from labcolor.trainer.config import RESUMABLE_FIELDS, TrainConfig


def invoke(*args: str):  # type: ignore[no-untyped-def]
    """Run the CLI as `colorize ARGS` (routing included), capturing stdout and stderr apart."""
    return CliRunner().invoke(cli.app, cli._route(list(args)), prog_name="colorize")


# ---- --version


@pytest.mark.parametrize("argv", [["--version"], ["-v", "--version"]])
def test_version_prints_the_package_version(argv: list[str]) -> None:
    result = invoke(*argv)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"labcolor {labcolor.__version__}\n"


def test_version_is_not_routed_to_the_default_command() -> None:
    assert cli._route(["--version"]) == ["--version"]
    assert cli._route(["-q", "--version"]) == ["-q", "--version"]


# ---- the error edge


@pytest.fixture
def failing_info(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """`colorize info` raises whatever the test puts in the returned list."""
    from labcolor.runtime import info

    raised: list[BaseException] = []

    def inspect_model(*args: Any, **kwargs: Any) -> None:
        raise raised[0]

    monkeypatch.setattr(info, "inspect_model", inspect_model)
    return raised


def test_a_labcolor_error_is_one_line_on_stderr_and_exit_2(failing_info: list[BaseException]) -> None:
    failing_info.append(ModelError("m.onnx: not a [b]model[/b] labcolor can use"))
    result = invoke("info", "m.onnx")
    assert result.exit_code == 2
    # One line, the message as it is (no rich markup applied), nothing on stdout.
    assert result.stderr == "error: m.onnx: not a [b]model[/b] labcolor can use\n"
    assert result.stdout == ""


def test_verbose_shows_the_traceback_above_the_message(failing_info: list[BaseException]) -> None:
    failing_info.append(ModelError("m.onnx: broken"))
    result = invoke("-v", "info", "m.onnx")
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr and "inspect_model" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == "error: m.onnx: broken"


def test_file_system_errors_are_reported_like_library_errors(failing_info: list[BaseException]) -> None:
    failing_info.append(PermissionError(13, "Permission denied", "m.onnx"))
    result = invoke("info", "m.onnx")
    assert result.exit_code == 2
    assert result.stderr == "error: [Errno 13] Permission denied: 'm.onnx'\n"


def test_a_bug_is_not_turned_into_a_message(failing_info: list[BaseException]) -> None:
    failing_info.append(ZeroDivisionError("a bug"))
    result = invoke("info", "m.onnx")
    assert isinstance(result.exception, ZeroDivisionError)  # left to Python: a traceback, exit 1
    assert "error:" not in result.stderr


def test_ctrl_c_exits_130(failing_info: list[BaseException]) -> None:
    failing_info.append(KeyboardInterrupt())
    result = invoke("info", "m.onnx")
    assert result.exit_code == 130 and result.stderr == "interrupted\n"


# ---- train's options, generated from TrainConfig


def _train_params() -> dict[str, Any]:
    command = typer.main.get_command(cli.app).commands["train"]  # type: ignore[attr-defined]
    return {p.name: p for p in command.params}


def test_every_config_field_is_a_train_option_with_its_help_and_panel() -> None:
    params = _train_params()
    config_fields = dataclasses.fields(TrainConfig)
    types = typing.get_type_hints(TrainConfig)
    assert set(params) == {f.name for f in config_fields} | {"resume"}
    for f in config_fields:
        param = params[f.name]
        assert f"--{f.name.replace('_', '-')}" in param.opts, f.name
        assert param.help.startswith(f.metadata["help"]) and f.metadata["help"], f.name
        assert param.rich_help_panel == f.metadata["panel"], f.name
        if types[f.name] is bool:
            assert param.secondary_opts == [f"--no-{f.name.replace('_', '-')}"], f.name
    assert params["ema"].opts == ["--ema"] and params["ema"].default == 0.0
    assert params["out"].opts == ["--out", "-o"] and params["out"].default is None
    assert "runs/<name of --data>-<size>" in params["out"].help
    # --resume names the options a resumed run may change, from the same list merge_resume_config checks.
    assert all(f"--{name.replace('_', '-')}" in params["resume"].help for name in RESUMABLE_FIELDS)


def test_train_help_shows_panels_and_choices() -> None:
    result = CliRunner().invoke(cli.app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("Data", "Generator (U-Net)", "Discriminator", "Losses", "Optimisation", "Output",
                 "batch|instance|spectral|none", "--no-flip", "--ema", "--resume", "--init-std"):
        assert text in result.output, text


def test_a_value_outside_a_literal_field_is_refused_with_exit_2() -> None:
    result = CliRunner().invoke(cli.app, ["train", "--gan-loss", "wasserstein"])
    assert result.exit_code == 2
    assert "--gan-loss" in result.output and "hinge" in result.output


@pytest.fixture
def fake_training(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Stands in for the training loop and the checkpoint reader: records the config the command builds."""
    from labcolor.trainer import checkpoint, train

    seen: dict[str, Any] = {}
    saved = TrainConfig(data="old-photos", size=64, depth=4, lr_g=1e-3, flip=False, out=str(tmp_path / "run"))

    def fake_train(cfg: TrainConfig, *, resume: Path | None = None, progress: Any = None) -> SimpleNamespace:
        seen["cfg"], seen["resume"] = cfg, resume
        return SimpleNamespace(checkpoint=tmp_path / "checkpoint.pt", out=tmp_path, best=None, best_epoch=None)

    monkeypatch.setattr(train, "train", fake_train)
    monkeypatch.setattr(checkpoint, "load_checkpoint", lambda path: {"config": saved.to_dict()})
    return seen


def test_options_become_the_config(fake_training: dict[str, Any]) -> None:
    result = CliRunner().invoke(cli.app, ["train", "--data", "some/photos", "--size", "64", "--depth", "4",
                                          "--no-flip", "--init-std", "0.05", "--d-kind", "patch"])
    assert result.exit_code == 0, result.output
    cfg = fake_training["cfg"]
    assert cfg == TrainConfig(data="some/photos", size=64, depth=4, flip=False, init_std=0.05, d_kind="patch",
                              out=str(Path("runs") / "photos-64"))
    assert fake_training["resume"] is None


def test_resume_keeps_the_checkpoint_config_except_options_given(fake_training: dict[str, Any], tmp_path: Path) -> None:
    ckpt = tmp_path / "run" / "checkpoint.pt"
    result = CliRunner().invoke(cli.app, ["train", "--resume", str(ckpt), "--epochs", "300", "--workers", "0"])
    assert result.exit_code == 0, result.output
    cfg = fake_training["cfg"]
    # Options left at their default do not reset the run's own values (lr_g, flip, size, data, out).
    assert (cfg.epochs, cfg.workers) == (300, 0)
    assert (cfg.lr_g, cfg.flip, cfg.size, cfg.data, cfg.out) == (1e-3, False, 64, "old-photos", str(tmp_path / "run"))
    assert fake_training["resume"] == ckpt
    refused = CliRunner().invoke(cli.app, ["train", "--resume", str(ckpt), "--lr-g", "2e-4"])
    assert refused.exit_code == 2 and "lr_g" in refused.stderr
