"""The self-contained RGB graph (export/rgb.py): same pictures as the Python runtime, within the stated bound."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from labcolor import cli
from labcolor.export import ExportError, rgb
from labcolor.runtime import Colorizer
from labcolor.runtime.session import CPU, open_session
from tests import runtime_fixtures as fx

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # gain 0.4: a random net at full gain swings ~10 ab units per L unit, and the graph computes L with the
    # exact CIE formulas where OpenCV's float path (the Python runtime's) is up to 0.18 L units off in dark
    # tones; a trained model is smooth enough for that to stay far inside the bound (README: 0.21 levels).
    return fx.make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx", gain=0.4)


@pytest.fixture(scope="module")
def exported(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rgb.RgbReport]:
    out = tmp_path_factory.mktemp("rgb") / "tiny-rgb.onnx"
    return out, rgb.export_rgb(tiny, out)


def run(model: Path, picture: np.ndarray, saturation: float = 1.0) -> np.ndarray:
    session = open_session(model, [CPU])
    return session.run([rgb.OUTPUT], {rgb.IMAGE: picture, rgb.SATURATION: np.array([saturation], np.float32)})[0]


def within_bound(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    d = np.abs(got.astype(np.int16) - want.astype(np.int16))
    mean, p999 = float(d.mean()), float(np.percentile(d, 99.9))
    assert mean <= rgb.RGB_BOUND_MEAN and p999 <= rgb.RGB_BOUND_P999, (mean, p999, int(d.max()))
    return mean, p999


def test_the_graph_is_checked_and_describes_itself(exported: tuple[Path, rgb.RgbReport]) -> None:
    path, report = exported
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["image", "saturation"]
    assert [o.name for o in model.graph.output] == ["colorized"]
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    props = {p.key: p.value for p in model.metadata_props}
    assert "labcolor" not in props and '"kind": "rgb"' in props["labcolor-rgb"]
    assert report.mean_abs <= rgb.RGB_BOUND_MEAN and report.p999 <= rgb.RGB_BOUND_P999
    assert report.pictures >= 6


@pytest.mark.parametrize(("h", "w"), [(40, 56), (20, 20), (130, 70), (9, 300), (301, 5)])
def test_same_picture_as_the_python_runtime(exported: tuple[Path, rgb.RgbReport], tiny: Path, h: int, w: int) -> None:
    # Sizes below, at and above the working size, and extreme aspect ratios whose padding is longer than
    # the picture itself (reflection by index, not by ONNX Pad).
    picture = fx.photo(h, w, seed=h + w)[:, :, ::-1].copy()  # RGB
    colorizer = Colorizer(tiny)
    for s in (1.0, 0.0, 2.0):
        got = run(exported[0], picture, s)
        assert got.shape == (h, w, 3) and got.dtype == np.uint8
        within_bound(got, colorizer.colorize(picture, saturation=s))


def test_strength_zero_is_gray_and_gray_input_stays_lightness(exported: tuple[Path, rgb.RgbReport]) -> None:
    gray = np.repeat(fx.photo(50, 64, channels=1)[:, :, None], 3, axis=2)
    out = run(exported[0], gray, 0.0).astype(np.int16)
    assert np.abs(out - gray).max() <= 1  # no colour at strength 0, and the lightness is the input's
    coloured = run(exported[0], gray, 1.0).astype(np.int16)
    assert np.abs(coloured - coloured.mean(axis=2, keepdims=True)).max() > 3  # and colour at strength 1


def test_a_graph_over_the_bound_is_refused(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rgb, "RGB_BOUND_MEAN", -1.0)
    with pytest.raises(ExportError, match="beyond the bound"):
        rgb.export_rgb(tiny, tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())


def test_a_model_that_is_not_labcolor_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ExportError, match="not an ONNX model"):
        rgb.export_rgb(junk, tmp_path / "x.onnx")


def test_cli_exports_an_onnx_model_without_torch_and_info_describes_it(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "m-rgb.onnx"
    code = textwrap.dedent(f"""
        import sys
        sys.argv = ["colorize", "export", {str(tiny)!r}, "--rgb", "-o", {str(out)!r}]
        from labcolor import cli
        try:
            cli.main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        assert "torch" not in sys.modules
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "verified against the Python runtime" in done.stderr and out.is_file()
    info = CliRunner().invoke(cli.app, ["info", str(out), "--no-providers"], env={"COLUMNS": "200"})
    assert info.exit_code == 0, info.output
    assert "RGB colorizer" in info.output and "colorized  uint8 [H, W, 3]" in info.output
    refused = CliRunner().invoke(cli.app, ["export", str(tiny), "-o", str(tmp_path / "y.onnx")])
    assert refused.exit_code == 2 and "already an ONNX model" in refused.output
