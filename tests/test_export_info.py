"""Tests for runtime.info and `colorize info`: what a model file is, and clear errors for what it is not."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from labcolor import cli
from labcolor.runtime.info import NO_ONNX_NOTE, ModelFileError, inspect_model
from labcolor.export.exporter import export_generator
from labcolor.core.metadata import METADATA_KEY

from tests import export_fixtures as fx

REPO = Path(__file__).resolve().parents[1]


def squash(text: str) -> str:
    """Without any whitespace: rich wraps (and may fold long paths in) error messages at the terminal width."""
    return "".join(text.split())


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("info")
    ckpt = fx.make_checkpoint(root / "c.pt", noise_channels=1)
    out = root / "model.onnx"
    export_generator(ckpt, out, parity_shapes=[(2, 32, 32), (1, 16, 48), (1, 48, 32)], check_opencv=False)
    return out


def unrelated_model(path: Path, *, props: dict[str, str] | None = None) -> Path:
    """A valid ONNX model (one Relu) that onnxruntime loads, but not a labcolor one."""
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8  # loadable by any onnxruntime of the last years
    if props:
        helper.set_model_props(m, props)
    onnx.save(m, str(path))
    return path


def test_inspect_model(model: Path) -> None:
    info = inspect_model(model)
    assert info.file_bytes == model.stat().st_size
    assert info.metadata.size_multiple == 16 and info.metadata.precision == "fp32"
    assert [(t.name, t.shape) for t in info.inputs] == [("L", ["N", 1, "H", "W"])]
    assert [(t.name, t.shape) for t in info.outputs] == [("ab", ["N", 2, "H", "W"])]
    assert info.opset == 18
    proto = onnx.load(str(model))
    assert info.parameters == sum(int(onnx.numpy_helper.to_array(i).size) for i in proto.graph.initializer) > 1000
    names = [p.name for p in info.providers]
    assert names == ort.get_available_providers()
    cpu = next(p for p in info.providers if p.name == "CPUExecutionProvider")
    assert cpu.usable and "ran a test inference" in cpu.detail
    # CUDA/TensorRT are listed by onnxruntime-gpu, but this machine cannot use them: they must not say yes.
    for p in info.providers:
        if p.name != "CPUExecutionProvider":
            assert p.usable == _really_usable(model, p.name)


def _really_usable(model: Path, provider: str) -> bool:
    ort.set_default_logger_severity(4)
    try:
        sess = ort.InferenceSession(str(model), providers=[provider])
        return provider in sess.get_providers()
    except Exception:
        return False
    finally:
        ort.set_default_logger_severity(2)


def test_cli_info_text(model: Path) -> None:
    result = CliRunner().invoke(cli.app, ["info", str(model)])
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in (
        str(model),
        "labcolor fp32 generator",
        "opset 18",
        "L  float32 [N, 1, H, W]",
        "ab  float32 [N, 2, H, W]",
        "CIELAB-D65-sRGB-opencv-float32",
        "H, W multiples of 16; trained at 32 px; recommended 256 px",
        "synthetic test pictures",
        "3 of 5 epochs, 42 steps",
        "val_l1_ab 9.5",
        "verified    onnxruntime fp32 vs PyTorch: mean |d ab|",
        "CPUExecutionProvider: yes",
    ):
        assert expected in out, (expected, out)
    assert "parameters" in out and "(0.26 MB)" in out.replace("0.27", "0.26")


def test_cli_info_tells_a_model_picked_on_validation_from_the_last_epoch(tmp_path: Path, model: Path) -> None:
    # The module's model: a checkpoint of epoch 3 of 5 that never had validation pictures (no best epoch).
    plain = CliRunner().invoke(cli.app, ["info", str(model), "--no-providers"])
    assert plain.exit_code == 0, plain.output
    assert "selected" not in plain.output
    assert inspect_model(model).metadata.training["best"] == {"epoch": 0, "val_de00": None}  # inf -> null

    picked = fx.make_checkpoint(tmp_path / "best.pt", best_de00=9.25)  # epoch 3 of 5, the best so far
    out = tmp_path / "best.onnx"
    export_generator(picked, out, parity_shapes=[(1, 32, 32)], check_opencv=False)
    assert inspect_model(out).metadata.training["best"] == {"epoch": 3, "val_de00": 9.25}
    result = CliRunner().invoke(cli.app, ["info", str(out), "--no-providers"])
    assert result.exit_code == 0, result.output
    assert "selected    epoch 3: the lowest validation ΔE00 (9.25) of epochs 1-3" in result.output


def test_cli_info_json(model: Path) -> None:
    result = CliRunner().invoke(cli.app, ["info", str(model), "--json", "--no-providers"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metadata"]["size_multiple"] == 16
    assert data["metadata"]["training"]["config"]["noise_channels"] == 1
    assert data["opset"] == 18 and data["providers"] == []
    assert data["inputs"][0]["name"] == "L"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x08\x01garbage that is not protobuf \xff\xfe" * 20, "not a loadable ONNX model"),
        (b"", "not a loadable ONNX model"),
    ],
    ids=["garbage", "empty"],
)
def test_corrupt_file_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(content)
    with pytest.raises(ModelFileError, match=message):
        inspect_model(bad)
    result = CliRunner().invoke(cli.app, ["info", str(bad)])
    assert result.exit_code == 2
    assert squash(f"{bad}: {message}") in squash(result.output)
    assert "Traceback" not in result.output


def test_truncated_model_is_a_clear_error(model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    result = CliRunner().invoke(cli.app, ["info", str(bad)])
    assert result.exit_code == 2 and squash(f"{bad}: not a loadable ONNX model") in squash(result.output)


def test_unrelated_onnx_is_a_clear_error(tmp_path: Path) -> None:
    other = unrelated_model(tmp_path / "relu.onnx")
    with pytest.raises(ModelFileError, match="no 'labcolor' metadata; this ONNX file was not written by `colorize export`"):
        inspect_model(other)
    result = CliRunner().invoke(cli.app, ["info", str(other)])
    assert result.exit_code == 2
    text = squash(result.output)
    assert squash(f"{other}: no 'labcolor' metadata") in text and squash("inputs: x float32 [1, 3, 8, 8]") in text


def test_metadata_that_does_not_describe_the_graph(model: Path, tmp_path: Path) -> None:
    labcolor_json = dict(ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
                         .get_modelmeta().custom_metadata_map)[METADATA_KEY]
    other = unrelated_model(tmp_path / "relabelled.onnx", props={METADATA_KEY: labcolor_json})
    with pytest.raises(ModelFileError, match="describes input 'L' and output 'ab', but the graph has inputs"):
        inspect_model(other)
    broken = unrelated_model(tmp_path / "badjson.onnx", props={METADATA_KEY: "{not json"})
    with pytest.raises(ModelFileError, match="not valid JSON"):
        inspect_model(broken)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    for path, message in ((tmp_path / "nope.onnx", "no such file"), (tmp_path, "is a folder")):
        result = CliRunner().invoke(cli.app, ["info", str(path)])
        assert result.exit_code == 2 and squash(f"{path}: {message}") in squash(result.output)


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, capture_output=True, text=True, check=False,
                          timeout=120)


def test_info_never_imports_torch(model: Path) -> None:
    proc = _run_python(f"""
        import sys
        from typer.testing import CliRunner
        from labcolor import cli
        result = CliRunner().invoke(cli.app, ["info", {str(model)!r}])
        assert result.exit_code == 0, result.output
        assert "torch" not in sys.modules, "colorize info imported torch"
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr


def test_info_without_the_onnx_package(model: Path) -> None:
    proc = _run_python(f"""
        import sys
        sys.modules["onnx"] = None  # as if only the core install (onnxruntime) were present
        from typer.testing import CliRunner
        from labcolor import cli
        result = CliRunner().invoke(cli.app, ["info", {str(model)!r}, "--no-providers"])
        assert result.exit_code == 0, result.output
        print(result.output)
    """)
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert NO_ONNX_NOTE in out and "opset" not in out.split("note")[0]
    assert "H, W multiples of 16" in out and "L float32 [N, 1, H, W]" in out
