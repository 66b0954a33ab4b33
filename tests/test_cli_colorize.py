"""Tests of the `colorize PATH...` default command (labcolor.commands.colorize and the routing in cli._route)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labcolor import cli
from tests import runtime_fixtures as fx

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


def invoke(*args: str):  # type: ignore[no-untyped-def]
    """Run the CLI as `colorize ARGS` (routing included), capturing output."""
    return CliRunner().invoke(cli.app, cli._route(list(args)), prog_name="colorize")


@pytest.mark.parametrize(("args", "expected"), [
    ([], []),
    (["--help"], ["--help"]),
    (["photos"], ["run", "photos"]),
    (["photos", "-o", "out", "-q"], ["-q", "run", "photos", "-o", "out"]),
    (["-v", "photos"], ["-v", "run", "photos"]),
    (["-o", "out", "photos"], ["run", "-o", "out", "photos"]),
    (["train", "--epochs", "1"], ["train", "--epochs", "1"]),
    (["./train"], ["run", "./train"]),
    (["info", "m.onnx"], ["info", "m.onnx"]),
    (["run", "photos"], ["run", "photos"]),
    (["a.jpg", "--", "-q"], ["run", "a.jpg", "--", "-q"]),
])
def test_routing(args: list[str], expected: list[str]) -> None:
    assert cli._route(args) == expected


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["photos", "--help"]])
def test_help_imports_neither_torch_nor_the_runtime(argv: list[str]) -> None:
    code = textwrap.dedent(f"""
        import sys
        sys.argv = ["colorize", *{argv!r}]
        from labcolor import cli
        try:
            cli.main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        heavy = sorted(m for m in ("torch", "onnxruntime", "cv2") if m in sys.modules)
        assert not heavy, heavy
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "PATH" in out.stdout


def test_root_help_documents_the_default_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    assert "colorize PATH..." in result.output and "./train" in result.output


def test_colorize_folder(tiny: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    fx.write(photos / "a.jpg", fx.photo(40, 60, channels=1))
    fx.write(photos / "sub" / "b.png", fx.photo(30, 30, 2))
    result = invoke(str(photos), "-m", str(tiny))
    assert result.exit_code == 0, result.output
    assert "2 done, 0 skipped" in result.output and "0 failed" in result.output
    assert (tmp_path / "photos_colorized" / "a.jpg").is_file()
    assert (tmp_path / "photos_colorized" / "sub" / "b.png").is_file()
    again = invoke(str(photos), "-m", str(tiny))
    assert again.exit_code == 0 and "0 done, 2 skipped" in again.output
    redo = invoke(str(photos), "-m", str(tiny), "--overwrite", "--format", "png", "-o", str(tmp_path / "png"))
    assert redo.exit_code == 0, redo.output
    assert sorted(p.name for p in (tmp_path / "png").rglob("*.png")) == ["a.png", "b.png"]


def test_failures_are_listed_and_exit_code_is_1(tiny: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    fx.write(photos / "good.png", fx.photo(20, 20))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (photos / "empty.png").write_bytes(b"")
    result = invoke(str(photos), "-m", str(tiny))
    assert result.exit_code == 1
    assert "1 done" in result.output and "2 failed" in result.output
    assert "broken.jpg: not a readable picture" in result.output
    assert "empty.png: empty file" in result.output


def test_a_folder_named_like_a_command_is_reachable(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fx.write(tmp_path / "train" / "a.png", fx.photo(20, 20))
    result = invoke("./train", "-m", str(tiny))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "train_colorized" / "a.png").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["missing-folder"], "no such file or folder"),
    (["{photos}", "--size", "0"], "--size must be a positive"),
    (["{photos}", "--format", "xyz"], "unknown output format"),
    (["{photos}", "-o", "{photos}/out"], "inside the input folder"),
    (["{photos}", "--device", "tpu"], "unknown device"),
    (["{photos}", "-m", "{photos}/nothing.onnx"], "model file not found"),
])
def test_usage_errors_exit_2(tiny: Path, tmp_path: Path, args: list[str], message: str) -> None:
    photos = tmp_path / "photos"
    fx.write(photos / "a.png", fx.photo(20, 20))
    args = [a.replace("{photos}", str(photos)) for a in args]
    if "-m" not in args:
        args += ["-m", str(tiny)]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_cuda_request_without_cuda_exits_2(tiny: Path, tmp_path: Path) -> None:
    from labcolor.runtime.session import cuda_unavailable_reason

    if cuda_unavailable_reason() is None:
        pytest.skip("CUDA really loads here")
    fx.write(tmp_path / "p" / "a.png", fx.photo(20, 20))
    result = invoke(str(tmp_path / "p"), "-m", str(tiny), "--device", "cuda")
    assert result.exit_code == 2
    assert "cannot be used" in result.output and "--device cpu" in " ".join(result.output.split())


def test_shipped_model_is_the_default(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labcolor.runtime import colorizer

    monkeypatch.setattr(colorizer, "DEFAULT_MODEL", tiny)  # stands in for runtime/models/default.onnx
    fx.write(tmp_path / "p" / "a.png", fx.photo(20, 20))
    result = invoke(str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(colorizer, "DEFAULT_MODEL", tmp_path / "absent.onnx")
    result = invoke(str(tmp_path / "p"), "--overwrite")
    assert result.exit_code == 2 and "no default model" in result.output


def test_saturation_zero_gives_gray_pictures(tiny: Path, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    photos = tmp_path / "p"
    fx.write(photos / "a.png", fx.photo(40, 60, channels=3))
    result = invoke(str(photos), "-m", str(tiny), "--saturation", "0", "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    out = cv2.imread(str(tmp_path / "out" / "a.png"))
    assert np.abs(out.astype(int) - out[..., :1]).max() <= 1  # every channel equal: gray
    assert invoke(str(photos), "-m", str(tiny), "--saturation", "-1").exit_code == 2
