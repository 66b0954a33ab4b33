"""Tests for export.exporter / deploy / describe / verify / quantize: checkpoint -> checked, self-describing ONNX.

Every exported model is run here again, independently of the exporter's own checks: in
onnxruntime at sizes and batch sizes the exporter never tried, in OpenCV DNN and in the ONNX
reference evaluator, against the PyTorch generator rebuilt from the checkpoint.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from labcolor import __version__ as labcolor_version
from labcolor.core import color
from labcolor.core.metadata import METADATA_KEY, ModelMetadata
from labcolor.export import ExportError, verify
from labcolor.export import exporter as exporter
from labcolor.export.deploy import PhaseConvTranspose
from labcolor.export.exporter import FP16_TOLERANCE, FP32_TOLERANCE, export_generator
from labcolor.trainer.checkpoint import load_checkpoint, load_generator
from tests import export_fixtures as fx

# Small parity shapes keep each export at a few seconds: two batch sizes, three sizes (m = 16).
SHAPES = [(2, 32, 32), (1, 16, 48), (1, 48, 32)]

VARIANTS = {
    "batchnorm-dropout": dict(g_norm="batch", dropout=0.5),
    "instancenorm-noise": dict(g_norm="instance", dropout=0.0, noise_channels=2),
    "no-norm-l1-only": dict(g_norm="none", dropout=0.0, adv_weight=0.0),
    "spectral-discriminator": dict(g_norm="batch", d_kind="patch", d_norm="spectral"),
}


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def torch_ab(generator: torch.nn.Module, l_n: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return generator(torch.from_numpy(l_n)).numpy()


def photos_l(n: int, h: int, w: int, seed: int) -> np.ndarray:
    return verify.photo_l(verify.synthetic_photos(n, h, w, seed=seed))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, exporter.ExportReport]]:
    """Each generator variant exported once: name -> (checkpoint, model, report)."""
    root = tmp_path_factory.mktemp("variants")
    out = {}
    for i, (name, overrides) in enumerate(VARIANTS.items()):
        ckpt = fx.make_checkpoint(root / f"{name}.pt", seed=i, **overrides)
        model = root / f"{name}.onnx"
        out[name] = (ckpt, model, export_generator(ckpt, model, parity_shapes=SHAPES))
    return out


# ----------------------------------------------------------------------- fp32 export


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_matches_pytorch_at_new_sizes_and_batches(exported, variant: str) -> None:
    ckpt, model, report = exported[variant]
    generator, _ = load_generator(ckpt)
    sess = session(model)
    # Sizes and batch sizes the exporter's own check never used, non-square, random and photo-like.
    for n, h, w in [(3, 64, 16), (1, 80, 112), (4, 16, 16)]:
        for l_n in (verify.random_l(n, h, w, seed=h), photos_l(n, h, w, seed=w)):
            got = sess.run(None, {"L": l_n})[0]
            want = torch_ab(generator, l_n)
            assert got.shape == (n, 2, h, w)
            assert np.abs(got - want).max() <= FP32_TOLERANCE
    # A real check, not a model whose outputs are all near zero.
    assert np.abs(want).max() > 0.05
    assert report.parity.max_abs <= FP32_TOLERANCE


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_graph_is_clean_and_deterministic(exported, variant: str) -> None:
    _, model, _ = exported[variant]
    proto = onnx.load(str(model))
    onnx.checker.check_model(proto, full_check=True)
    ops = {n.op_type for n in proto.graph.node}
    # BatchNorm folded, dropout gone, no random or zero-noise construction left in the graph.
    assert not ops & {"BatchNormalization", "Dropout", "RandomNormal", "RandomNormalLike", "ConstantOfShape"}
    # Already as simple as the network: nothing left for a graph simplifier to remove (no Shape/Reshape/Identity...).
    assert ops <= {"Conv", "ConvTranspose", "LeakyRelu", "Relu", "Concat", "Tanh", "InstanceNormalization"}
    assert [i.name for i in proto.graph.input] == ["L"]
    assert [o.name for o in proto.graph.output] == ["ab"]
    dims = [[d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in (proto.graph.input[0], proto.graph.output[0])]
    assert dims == [["N", 1, "H", "W"], ["N", 2, "H", "W"]]
    sess = session(model)
    l_n = photos_l(2, 32, 48, seed=5)
    assert np.array_equal(sess.run(None, {"L": l_n})[0], sess.run(None, {"L": l_n})[0])


def test_instance_norm_variant_keeps_instance_normalization(exported) -> None:
    ops = {n.op_type for n in onnx.load(str(exported["instancenorm-noise"][1])).graph.node}
    assert "InstanceNormalization" in ops


def test_noise_channel_export_equals_forward_with_zero_noise(exported) -> None:
    """The exported graph drops z's kernel channels; that must equal forward(L, z=0) exactly (up to fp32)."""
    ckpt, model, _ = exported["instancenorm-noise"]
    generator, _ = load_generator(ckpt)
    assert generator.spec.noise_channels == 2
    l_n = photos_l(2, 48, 32, seed=9)
    with torch.no_grad():
        z = torch.zeros(2, 2, 48, 32)
        want = generator(torch.from_numpy(l_n), z).numpy()
        noisy = generator(torch.from_numpy(l_n), torch.randn(2, 2, 48, 32)).numpy()
    got = session(model).run(None, {"L": l_n})[0]
    assert np.abs(got - want).max() <= FP32_TOLERANCE
    assert np.abs(noisy - want).max() > 1e-3  # z really matters to this generator, so dropping it is tested


def test_spectral_norm_checkpoint_has_parametrized_discriminator(exported) -> None:
    ckpt, _, report = exported["spectral-discriminator"]
    state = load_checkpoint(ckpt)["discriminator"]["state"]
    assert any("parametrizations.weight.original" in k for k in state)
    assert report.metadata.training["discriminator"]["norm"] == "spectral"


def test_report_parity_covers_sizes_batches_and_input_kinds(exported) -> None:
    report = exported["batchnorm-dropout"][2]
    cases = report.parity.cases
    assert len({(c.height, c.width) for c in cases}) >= 3
    assert {c.batch for c in cases} >= {1, 2}
    assert {c.inputs for c in cases} == {"random", "photo-like"}
    assert all(0 <= c.max_abs <= FP32_TOLERANCE for c in cases)
    assert report.parity.tolerance == FP32_TOLERANCE
    text = "\n".join(report.lines())
    assert "onnxruntime fp32 vs PyTorch" in text and "OpenCV DNN" in text


def test_default_parity_shapes_include_the_recommended_size() -> None:
    shapes = verify.parity_shapes(16, 256)
    assert (1, 256, 256) in shapes and (1, 16, 48) in shapes
    assert len({(h, w) for _, h, w in shapes}) >= 3 and {n for n, _, _ in shapes} == {1, 2}
    assert all(h % 16 == 0 and w % 16 == 0 for _, h, w in verify.parity_shapes(16, 250))
    # When the recommended size coincides with another, a third size is still there.
    assert len({(h, w) for _, h, w in verify.parity_shapes(256, 512)}) >= 3


# ---------------------------------------------------------------------------- metadata


def test_metadata_round_trip(exported) -> None:
    ckpt_path, model, report = exported["batchnorm-dropout"]
    ckpt = load_checkpoint(ckpt_path)
    proto = onnx.load(str(model))
    props = {p.key: p.value for p in proto.metadata_props}
    assert list(props) == [METADATA_KEY]  # exactly one entry
    from_onnx = ModelMetadata.from_props(props, source=str(model))
    from_ort = ModelMetadata.from_props(session(model).get_modelmeta().custom_metadata_map, source=str(model))
    assert from_onnx == from_ort == report.metadata

    meta = from_ort
    assert (meta.size_multiple, meta.train_size, meta.inference_size) == (16, 32, 256)
    assert meta.precision == "fp32" and meta.schema_version == 1
    assert (meta.input.name, meta.output.name) == ("L", "ab")
    assert meta.color_space == color.COLOR_SPACE and meta.scaling == color.SCALING
    t = meta.training
    assert t["dataset"] == "synthetic test pictures"
    assert (t["epochs"], t["steps"], t["epochs_planned"]) == (3, 42, 5)
    assert t["losses"] == {"gan_loss": "vanilla", "adv_weight": 1.0, "l1_weight": 100.0, "real_label": 0.9,
                           "adversarial": True}
    assert t["config"] == ckpt["config"]
    assert t["generator"] == ckpt["generator"]["spec"]
    assert t["metrics"]["val_l1_ab"] == 9.5 and t["metrics"]["images_per_s"] is None  # NaN -> null
    assert t["labcolor_version"] == labcolor_version
    assert t["trained_at"] == fx.METRICS["time"]
    assert datetime.fromisoformat(t["exported_at"]).tzinfo is not None
    assert t["exporter"]["opset"] == report.opset == 18
    checked = t["exporter"]["verification"]["model"]
    assert checked["candidate"] == "onnxruntime fp32"
    assert math.isclose(checked["max_abs_ab"], report.parity.max_abs * color.AB_SCALE)
    assert checked["max_abs_ab"] <= FP32_TOLERANCE * color.AB_SCALE
    assert [16, 48] in [shape[1:] for shape in checked["shapes"]]

    # Strict JSON (no NaN/Infinity tokens) so any language's parser reads it.
    def no_constants(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    json.loads(props[METADATA_KEY], parse_constant=no_constants)


def test_metadata_of_l1_only_run(exported) -> None:
    meta = exported["no-norm-l1-only"][2].metadata
    assert meta.training["losses"]["adversarial"] is False
    assert meta.training["discriminator"] is None


def test_metadata_is_set_once_on_the_written_model(exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # fp16 makes two graphs (fp32, then its conversion); only the one written is described, once.
    calls: list[str] = []
    real = exporter.describe

    def counting(model: onnx.ModelProto, metadata: ModelMetadata) -> bytes:
        calls.append(metadata.precision)
        return real(model, metadata)

    monkeypatch.setattr(exporter, "describe", counting)
    report = export_generator(exported["batchnorm-dropout"][0], tmp_path / "m16.onnx", precision="fp16",
                              parity_shapes=SHAPES[:1], check_opencv=False)
    assert calls == ["fp16"]
    assert report.metadata.training["exporter"]["verification"]["fp32_graph"]["candidate"] == "onnxruntime fp32"
    # Describing a model twice is a bug the exporter refuses rather than silently overwriting.
    with pytest.raises(ExportError, match="already has 'labcolor' metadata"):
        real(onnx.load(str(report.path)), report.metadata)


def test_inference_size_option_and_size_multiple_of_deeper_generator(tmp_path: Path) -> None:
    ckpt = fx.make_checkpoint(tmp_path / "c.pt", size=64, depth=5)
    report = export_generator(ckpt, tmp_path / "m.onnx", inference_size=320, parity_shapes=[(2, 64, 64), (1, 32, 96), (1, 96, 64)],
                              opset=17, check_opencv=False)
    meta = ModelMetadata.from_props(session(report.path).get_modelmeta().custom_metadata_map)
    assert (meta.size_multiple, meta.train_size, meta.inference_size) == (32, 64, 320)
    proto = onnx.load(str(report.path))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert report.opset == 17


def test_default_inference_size() -> None:
    assert exporter.default_inference_size(32, 16) == 256
    assert exporter.default_inference_size(512, 256) == 512
    assert exporter.default_inference_size(128, 128) == 256
    assert exporter.default_inference_size(32, 96) == 288  # rounded up to the size multiple


# -------------------------------------------------------------------- independent consumers


def test_opencv_dnn_runs_the_export_like_onnxruntime(exported) -> None:
    for variant in ("batchnorm-dropout", "instancenorm-noise"):
        ckpt, model, report = exported[variant]
        generator, _ = load_generator(ckpt)
        net = cv2.dnn.readNetFromONNX(str(model))
        sess = session(model)
        for n, h, w in [(1, 32, 64), (2, 48, 48)]:
            l_n = photos_l(n, h, w, seed=n + h)
            net.setInput(l_n)
            got = net.forward()
            assert got.shape == (n, 2, h, w)
            assert np.abs(got - sess.run(None, {"L": l_n})[0]).max() <= 1e-4
            assert np.abs(got - torch_ab(generator, l_n)).max() <= 1e-4
        assert report.opencv is not None and report.opencv.max_abs <= 1e-4


def test_onnx_reference_evaluator_matches(exported) -> None:
    from onnx.reference import ReferenceEvaluator

    ckpt, model, _ = exported["batchnorm-dropout"]
    generator, _ = load_generator(ckpt)
    l_n = photos_l(2, 32, 16, seed=3)
    got = ReferenceEvaluator(str(model)).run(None, {"L": l_n})[0]
    assert np.abs(got - torch_ab(generator, l_n)).max() <= 1e-4


# ------------------------------------------------------------------ ConvTranspose rewrite


def test_phase_conv_transpose_is_exactly_conv_transpose() -> None:
    torch.manual_seed(0)
    for bias in (True, False):
        convt = torch.nn.ConvTranspose2d(5, 3, 4, 2, 1, bias=bias)
        phase = PhaseConvTranspose(convt)
        x = torch.randn(2, 5, 7, 9)  # odd sizes: every border case of the four phases
        with torch.no_grad():
            want, got = convt(x), phase(x)
        assert got.shape == want.shape == (2, 3, 14, 18)
        assert (got - want).abs().max() < 1e-5


def test_phase_conv_transpose_refuses_other_geometries() -> None:
    with pytest.raises(ExportError, match="only ConvTranspose2d"):
        PhaseConvTranspose(torch.nn.ConvTranspose2d(2, 2, 3, 2, 1))


# ------------------------------------------------------------------------ fp16 / int8


def test_fp16_export(exported, tmp_path: Path) -> None:
    ckpt, fp32_model, _ = exported["batchnorm-dropout"]
    report = export_generator(ckpt, tmp_path / "m16.onnx", precision="fp16", parity_shapes=SHAPES)
    proto = onnx.load(str(report.path))
    onnx.checker.check_model(proto, full_check=True)
    weights = [i for i in proto.graph.initializer if len(i.dims) == 4]
    assert weights and all(i.data_type == onnx.TensorProto.FLOAT16 for i in weights)
    io_types = {v.type.tensor_type.elem_type for v in (*proto.graph.input, *proto.graph.output)}
    assert io_types == {onnx.TensorProto.FLOAT}  # callers still feed and read float32
    assert report.file_bytes < 0.6 * fp32_model.stat().st_size
    assert report.metadata.precision == "fp16"
    assert report.fp32_parity is not None and report.fp32_parity.max_abs <= FP32_TOLERANCE
    # Independent parity at a new size: within the stated tolerance, and really not fp32 any more.
    generator, _ = load_generator(ckpt)
    l_n = photos_l(2, 64, 48, seed=1)
    got = session(report.path).run(None, {"L": l_n})[0]
    assert got.dtype == np.float32
    diff = np.abs(got - torch_ab(generator, l_n)).max()
    assert 1e-6 < diff <= FP16_TOLERANCE
    assert 0 < report.parity.max_abs <= FP16_TOLERANCE


def test_fp16_weights_export_stores_half_and_computes_in_float32(exported, tmp_path: Path) -> None:
    ckpt, fp32_model, _ = exported["batchnorm-dropout"]
    report = export_generator(ckpt, tmp_path / "m.onnx", precision="fp16-weights", parity_shapes=SHAPES)
    proto = onnx.load(str(report.path))
    onnx.checker.check_model(proto, full_check=True)
    stored = {i.name: i.data_type for i in proto.graph.initializer if len(i.dims) == 4}
    assert stored and set(stored.values()) == {onnx.TensorProto.FLOAT16}
    casts = {n.input[0]: n.attribute[0].i for n in proto.graph.node if n.op_type == "Cast"}
    assert set(stored) <= set(casts) and set(casts.values()) == {onnx.TensorProto.FLOAT}  # each read as float32
    convs = [n for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    assert convs and not any(name in stored for n in convs for name in n.input)  # no conv reads float16 directly
    assert report.file_bytes < 0.6 * fp32_model.stat().st_size
    assert report.metadata.precision == "fp16-weights"
    generator, _ = load_generator(ckpt)
    l_n = photos_l(2, 64, 48, seed=1)
    fp32 = session(fp32_model).run(None, {"L": l_n})[0]
    got = session(report.path).run(None, {"L": l_n})[0]
    assert 0 < np.abs(got - fp32).max() <= FP16_TOLERANCE  # rounded weights, nothing else
    assert np.abs(got - torch_ab(generator, l_n)).max() <= FP16_TOLERANCE


@pytest.fixture(scope="module")
def int8_export(exported, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, exporter.ExportReport]:
    ckpt = exported["batchnorm-dropout"][0]
    out = tmp_path_factory.mktemp("int8") / "m8.onnx"
    return ckpt, export_generator(ckpt, out, precision="int8", parity_shapes=SHAPES, calibration_count=8,
                                  calibration_size=64)


def test_int8_export_is_quantized_and_its_error_is_measured(int8_export) -> None:
    ckpt, report = int8_export
    proto = onnx.load(str(report.path))
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert "ConvTranspose" not in ops and "DepthToSpace" in ops  # the decoder was made quantizable
    assert any(i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4 for i in proto.graph.initializer)
    assert report.metadata.precision == "int8" and not report.forced
    assert report.float_levels == 0 and [k for k, _ in report.attempts] == [0]  # the first try met the bound
    # 7-bit weights: u8s8 kernels without VNNI sum pairs of u8 x s8 products in int16, 2 x 255 x 64 fits.
    weights = [onnx.numpy_helper.to_array(i) for i in proto.graph.initializer
               if i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 4]
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
    assert report.fp32_parity is not None and report.fp32_parity.max_abs <= FP32_TOLERANCE
    assert {c.inputs for c in report.parity.cases} == {"photo-like"}  # judged on photo-like inputs only

    # Our own measurement on pictures neither calibration nor the exporter's check used.
    generator, _ = load_generator(ckpt)
    l_n = photos_l(3, 64, 64, seed=777)
    got = session(report.path).run(None, {"L": l_n})[0]
    err_ab = np.abs(got - torch_ab(generator, l_n)) * color.AB_SCALE
    assert 0.001 < err_ab.mean() < report.error_bound
    assert 0.001 < report.mean_ab_error < report.error_bound
    # onnxruntime's fused int8 kernels compute what the Q/DQ graph means (unfused: float Conv), on this CPU too.
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    unfused = ort.InferenceSession(str(report.path), plain, providers=["CPUExecutionProvider"]).run(None, {"L": l_n})[0]
    assert np.abs(got - unfused).mean() * color.AB_SCALE < 0.05
    # Same order of magnitude as what the exporter reported.
    assert report.mean_ab_error / 5 < err_ab.mean() < report.mean_ab_error * 5
    assert "int8 cost: mean |d ab|" in "\n".join(report.lines())


def test_int8_refused_over_the_bound_unless_forced(int8_export, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt, good = int8_export
    # A folder of real-looking pictures for calibration (the --calibration path).
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i, rgb in enumerate(verify.synthetic_photos(10, 90, 120, seed=50)):
        cv2.imwrite(str(pictures / f"p{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    (pictures / "notes.txt").write_text("not a picture")
    out = tmp_path / "m8.onnx"
    bound = good.mean_ab_error / 10
    kwargs = dict(precision="int8", parity_shapes=SHAPES, calibration=pictures, calibration_count=6,
                  calibration_size=64, int8_max_error=bound, check_opencv=False)
    with pytest.raises(ExportError, match=r"int8 quantization costs a mean ab error of .* over the bound .*"
                                          r"\(1 float level\(s\): [0-9.]+\); nothing written"):
        export_generator(ckpt, out, int8_float_levels=1, **kwargs)
    assert list(tmp_path.glob("m8*")) == [] and list(tmp_path.glob(".m8*")) == []  # nothing written

    # Forced, with a search over two float-level counts: the more accurate one is written.
    monkeypatch.setattr(exporter, "float_level_plan", lambda depth, requested: [1, depth])
    report = export_generator(ckpt, out, force=True, **kwargs)
    assert report.forced and out.is_file()
    assert [k for k, _ in report.attempts] == [1, 4]
    best_levels, best_error = min(report.attempts, key=lambda a: a[1])
    assert report.float_levels == best_levels and math.isclose(report.mean_ab_error, best_error)
    assert report.mean_ab_error > bound
    assert {c.inputs for c in report.parity.cases} == {"photos"}
    assert "OVER THE BOUND" in "\n".join(report.lines())
    # The levels kept in float are still ConvTranspose; the others became Conv + DepthToSpace.
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops.count("ConvTranspose") == report.float_levels
    assert ops.count("DepthToSpace") == 4 - report.float_levels
    meta = ModelMetadata.from_props(session(out).get_modelmeta().custom_metadata_map)
    assert meta.training["exporter"]["int8_float_decoder_levels"] == report.float_levels


def test_float_level_plan() -> None:
    assert exporter.float_level_plan(8) == [0, 1, 2, 3, 8]
    assert exporter.float_level_plan(2) == [0, 1, 2]
    assert exporter.float_level_plan(8, 2) == [2]
    with pytest.raises(ExportError, match="must be in 0..4"):
        exporter.float_level_plan(4, 5)


# ------------------------------------------------------------------------------ failures


def test_nothing_is_written_when_parity_fails(exported, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporter, "FP32_TOLERANCE", -1.0)  # any difference, even 0, fails
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous model")
    with pytest.raises(ExportError, match="parity check failed: onnxruntime fp32 differs from PyTorch"):
        export_generator(exported["batchnorm-dropout"][0], out, parity_shapes=SHAPES)
    assert out.read_bytes() == b"previous model"  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left behind


def test_bad_inputs_give_clear_errors(exported, tmp_path: Path) -> None:
    ckpt = exported["batchnorm-dropout"][0]
    with pytest.raises(ExportError, match="no such checkpoint"):
        export_generator(tmp_path / "missing.pt", tmp_path / "m.onnx")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(ExportError, match="junk.pt: not a readable PyTorch checkpoint"):
        export_generator(junk, tmp_path / "m.onnx")
    with pytest.raises(ExportError, match="--opset 12 is outside"):
        export_generator(ckpt, tmp_path / "m.onnx", opset=12)
    with pytest.raises(ExportError, match="precision must be one of"):
        export_generator(ckpt, tmp_path / "m.onnx", precision="bf16")
    with pytest.raises(ExportError, match="below the model's size multiple"):
        export_generator(ckpt, tmp_path / "m.onnx", inference_size=8)
    with pytest.raises(ExportError, match="is a folder"):
        export_generator(ckpt, tmp_path)
    with pytest.raises(ExportError, match="--calibration must be a folder"):
        export_generator(ckpt, tmp_path / "m.onnx", precision="int8", calibration=junk)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ExportError, match="no pictures"):
        verify.load_photos(empty, 2, 16, 16)
    assert not (tmp_path / "m.onnx").exists()


def test_synthetic_photos_are_photo_like() -> None:
    rgb = verify.synthetic_photos(4, 64, 96, seed=1)
    assert rgb.shape == (4, 64, 96, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb, verify.synthetic_photos(4, 64, 96, seed=1))  # deterministic
    l_n = verify.photo_l(rgb)
    assert l_n.shape == (4, 1, 64, 96) and l_n.min() >= -1 and l_n.max() <= 1
    assert l_n.std() > 0.1  # not flat
    # Smooth: neighbouring pixels are much closer than random pixel pairs.
    assert np.abs(np.diff(l_n, axis=-1)).mean() < 0.2 * np.abs(l_n - l_n[:, :, ::-1, ::-1]).mean()


def test_load_photos_crops_to_size(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((30, 80, 3), (255, 0, 0), np.uint8))  # BGR blue
    rgb = verify.load_photos(tmp_path, 3, 16, 32)
    assert rgb.shape == (3, 16, 32, 3)
    assert (rgb[..., 2] > 250).all() and (rgb[..., 0] < 5).all()  # converted to RGB order


# ----------------------------------------------------------------------------------- CLI


def test_cli_export(exported, tmp_path: Path) -> None:
    from labcolor import cli

    ckpt = exported["instancenorm-noise"][0]
    runner = CliRunner()
    out = tmp_path / "cli.onnx"
    result = runner.invoke(cli.app, ["export", str(ckpt), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    assert "onnxruntime fp32 vs PyTorch" in result.output and "multiples of 16" in result.output
    meta = ModelMetadata.from_props(session(out).get_modelmeta().custom_metadata_map)
    assert meta.training["config"]["noise_channels"] == 2

    for pair in (["--fp16", "--int8"], ["--fp16-weights", "--fp16"]):
        result = runner.invoke(cli.app, ["export", str(ckpt), *pair])
        assert result.exit_code == 2 and "exclude each other" in result.output
    junk = tmp_path / "junk.pt"
    junk.write_text("nope")
    result = runner.invoke(cli.app, ["export", str(junk), "-o", str(tmp_path / "x.onnx")])
    assert result.exit_code == 2 and "junk.pt" in result.output
    assert not (tmp_path / "x.onnx").exists()


def test_export_records_the_colour_strength(exported, tmp_path: Path) -> None:
    ckpt = exported["batchnorm-dropout"][0]
    report = export_generator(ckpt, tmp_path / "s.onnx", parity_shapes=SHAPES, check_opencv=False, saturation=1.3)
    meta = ModelMetadata.from_props(session(report.path).get_modelmeta().custom_metadata_map)
    assert meta.saturation == pytest.approx(1.3) and report.metadata.saturation == pytest.approx(1.3)
    with pytest.raises(ExportError, match="saturation"):
        export_generator(ckpt, tmp_path / "bad.onnx", parity_shapes=SHAPES, saturation=-1)
    assert not (tmp_path / "bad.onnx").exists()
