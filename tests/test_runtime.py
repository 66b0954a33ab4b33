"""Tests of the runtime's array API, pre/post-processing, picture decoding and sessions.

Models are small ONNX graphs built in tests/runtime_fixtures.py; nothing here needs torch.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from labcolor.core import color, imageio
from labcolor.core.color import SCALING
from labcolor.runtime import (
    Colorizer,
    DeviceError,
    ImageError,
    MetadataError,
    ModelError,
    postprocess,
    preprocess,
    session,
)
from labcolor.runtime.batcher import Batcher
from tests import runtime_fixtures as fx

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="module")
def colorizer(tiny: Path) -> Colorizer:
    return Colorizer(tiny, device="cpu")


def lab_of(bgr: np.ndarray) -> np.ndarray:
    return color.rgb_to_lab(bgr[..., :3], bgr=True)


# ----------------------------------------------------------------------------- import hygiene


def test_runtime_never_imports_torch(tiny: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    fx.write(photos / "a.png", fx.photo(40, 50, channels=1))
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from labcolor import runtime
        from labcolor.runtime import Colorizer
        c = Colorizer({str(tiny)!r})
        c.colorize(np.zeros((20, 30), np.uint8))
        results = list(c.colorize_folder({str(photos)!r}))
        assert [r.status for r in results] == ["done"], results
        bad = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        assert not bad, bad
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_auto_device_prints_nothing_without_cuda(tiny: Path) -> None:
    # onnxruntime-gpu lists CUDA even where it cannot load; probing it must not spray errors on stderr, and
    # falling back to CPU is not news when the user asked for nothing ("auto"): silent unless verbose.
    code = f"from labcolor.runtime import Colorizer; c = Colorizer({str(tiny)!r}, device='auto'); print(c.device)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "", out.stderr
    assert out.stdout.strip() in ("cpu", "cuda")
    if out.stdout.strip() == "cpu":
        verbose = "import logging; logging.basicConfig(level=logging.DEBUG); " + code
        out = subprocess.run([sys.executable, "-c", verbose], cwd=REPO, capture_output=True, text=True, check=False,
                             timeout=120)
        assert "running on CPU: " in out.stderr, out.stderr  # --verbose says why not CUDA


# ----------------------------------------------------------------------------- sessions and models


def test_parse_device() -> None:
    assert session.parse_device("AUTO") == session.DeviceRequest("auto")
    assert session.parse_device("cuda:1") == session.DeviceRequest("cuda", 1)
    with pytest.raises(DeviceError, match="unknown device"):
        session.parse_device("tpu")


def test_cuda_request_fails_clearly_without_cuda(tiny: Path) -> None:
    if session.cuda_unavailable_reason() is None:
        pytest.skip("CUDA really loads here")
    with pytest.raises(DeviceError, match="cannot be used.*--device cpu"):
        Colorizer(tiny, device="cuda")
    assert Colorizer(tiny, device="auto").device == "cpu"


def test_missing_default_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from labcolor.runtime import colorizer as module

    monkeypatch.setattr(module, "DEFAULT_MODEL", tmp_path / "nope" / "default.onnx")
    with pytest.raises(ModelError, match="no default model"):
        Colorizer()
    with pytest.raises(ModelError, match="not found"):
        Colorizer(tmp_path / "missing.onnx")


def test_not_a_model_and_missing_metadata(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not protobuf")
    with pytest.raises(ModelError, match="cannot load"):
        Colorizer(junk)
    import onnx

    model = onnx.load(str(fx.make_tiny_model(tmp_path / "t.onnx")))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    with pytest.raises(MetadataError, match="no 'labcolor' metadata"):
        Colorizer(tmp_path / "bare.onnx")


def test_open_session_takes_bytes_and_explicit_providers_quietly(tiny: Path, capfd: pytest.CaptureFixture) -> None:
    # The one session factory the exporter's checks and `colorize info` use too.
    sess = session.open_session(tiny.read_bytes(), [session.CPU], threads=1)
    assert sess.get_providers() == [session.CPU]
    capfd.readouterr()
    with pytest.raises(ModelError, match="the model: onnxruntime cannot load this model") as caught:
        session.open_session(b"not a model", [session.CPU], quiet=True)
    assert caught.value.__cause__ is not None  # onnxruntime's own exception, for callers that report it
    assert capfd.readouterr() == ("", "")  # quiet: nothing on the terminal, not even from onnxruntime's C++ side


def test_settings_come_from_metadata_and_options_override(tmp_path: Path) -> None:
    path = fx.make_tiny_model(tmp_path / "m.onnx", size_multiple=16, inference_size=96)
    c = Colorizer(path)
    assert (c.size, c.metadata.size_multiple, c.batch_size) == (96, 16, 1)
    c2 = Colorizer(path, size=48, batch_size=4, threads=1)
    assert (c2.size, c2.batch_size) == (48, 4)
    item = c2.prepare(np.zeros((100, 50), np.uint8))
    assert item.net.shape == (1, 48, 32) and item.crop == (48, 24)


# ----------------------------------------------------------------------------- pre-processing


@pytest.mark.parametrize(("hw", "size", "min_size", "expected"), [
    ((1200, 1600), 256, 128, (192, 256)), ((1600, 1200), 256, 128, (256, 192)), ((100, 100), 64, 0, (64, 64)),
    ((30, 20), 60, 0, (30, 20)),  # smaller than the working size: kept, not enlarged
    ((150, 137), 256, 128, (150, 137)),  # above the training crop size: kept
    ((60, 90), 256, 128, (85, 128)),  # below it: enlarged to it
    ((60, 90), 100, 128, (67, 100)),  # ... but never beyond the working size
    ((10000, 10), 256, 128, (256, 1)),
])
def test_working_shape(hw: tuple[int, int], size: int, min_size: int, expected: tuple[int, int]) -> None:
    assert preprocess.working_shape(*hw, size, min_size) == expected


def test_network_input_is_normalised_and_reflect_padded() -> None:
    gray = fx.photo(90, 120, channels=1)
    net, crop = preprocess.network_input(gray, 64, 32, SCALING)
    assert crop == (48, 64) and net.shape == (1, 64, 64) and net.dtype == np.float32
    small_l = color.gray_to_l(cv2.resize(gray, (64, 48), interpolation=cv2.INTER_AREA))
    np.testing.assert_allclose(net[0, :48], color.normalize_l(small_l), atol=1e-5)
    np.testing.assert_allclose(net[0, 48:64], net[0, 46:30:-1])  # row 48 mirrors row 46 (reflect-101)
    assert -1.0 <= net.min() and net.max() <= 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_lookup_table_equals_colour_contract(dtype: type) -> None:
    values = np.arange(np.iinfo(dtype).max + 1, dtype=dtype).reshape(1, -1)
    np.testing.assert_array_equal(preprocess.lightness(values), color.gray_to_l(values))


def test_colour_input_counts_as_its_luminance(tmp_path: Path) -> None:
    bgr = fx.photo(60, 80, seed=3)
    l, alpha, dtype = preprocess.split_picture(bgr, bgr=True)
    np.testing.assert_allclose(l, color.luminance(bgr, bgr=True), atol=1e-4)
    assert alpha is None and dtype == np.uint8
    # A mild constant colour stays inside the sRGB gamut, so nothing but 8-bit rounding moves L.
    c = Colorizer(fx.make_constant_model(tmp_path / "c.onnx", (0.05, -0.03)))
    out = c.colorize(bgr, bgr=True)
    assert np.abs(lab_of(out)[..., 0] - l).max() < 1.0
    ab = lab_of(out)[..., 1:]  # and its colours are replaced by the predicted ones
    assert np.abs(np.median(ab.reshape(-1, 2), axis=0) - [0.05 * 110, -0.03 * 110]).max() < 1.0


# ----------------------------------------------------------------------------- colorize()


def test_output_has_predicted_colour_and_original_lightness(tmp_path: Path) -> None:
    c = Colorizer(fx.make_constant_model(tmp_path / "c.onnx", (0.2, -0.15)), size=32)
    gray = fx.photo(75, 101, channels=1)  # odd sizes: crop and upsampling must line up
    out = c.colorize(gray, bgr=True)
    assert out.shape == (75, 101, 3) and out.dtype == np.uint8
    lab = lab_of(out)
    l_in = color.gray_to_l(gray)
    mid = (l_in > 30) & (l_in < 70)  # away from black/white, where the sRGB gamut clips colours
    assert mid.mean() > 0.3
    np.testing.assert_allclose(lab[..., 0][mid], l_in[mid], atol=1.0)
    assert abs(np.median(lab[..., 1][mid]) - 0.2 * SCALING.ab_scale) < 1.0
    assert abs(np.median(lab[..., 2][mid]) + 0.15 * SCALING.ab_scale) < 1.0


def test_rgb_and_bgr_orders(colorizer: Colorizer) -> None:
    bgr = fx.photo(40, 50, seed=5)
    out_bgr = colorizer.colorize(bgr, bgr=True)
    out_rgb = colorizer.colorize(bgr[..., ::-1].copy())  # default: RGB in, RGB out
    np.testing.assert_array_equal(out_rgb, out_bgr[..., ::-1])


def test_alpha_16bit_and_float_are_kept(colorizer: Colorizer, tmp_path: Path) -> None:
    rgba = np.dstack([fx.photo(50, 40), np.arange(50 * 40, dtype=np.uint8).reshape(50, 40)])
    out = colorizer.colorize(rgba)
    assert out.shape == (50, 40, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    deep = fx.photo(50, 40, channels=1, dtype=np.uint16)
    mild = Colorizer(fx.make_constant_model(tmp_path / "c.onnx", (0.05, 0.05)))
    out16 = mild.colorize(deep)
    assert out16.dtype == np.uint16 and out16.shape == (50, 40, 3)
    # 16 bits are really used: the 8-bit result of the same picture, scaled, agrees only to 8-bit precision.
    out8 = mild.colorize(((deep.astype(np.uint32) + 128) // 257).astype(np.uint8))
    assert np.abs(out16.astype(np.int64) - out8.astype(np.int64) * 257).max() < 4 * 257
    assert np.any(out16 % 257 != 0)
    gray_alpha = np.dstack([fx.photo(30, 30, channels=1, dtype=np.uint16), np.full((30, 30), 1234, np.uint16)])
    out_ga = colorizer.colorize(gray_alpha)
    assert out_ga.shape == (30, 30, 4) and out_ga.dtype == np.uint16 and (out_ga[..., 3] == 1234).all()
    flt = colorizer.colorize(fx.photo(30, 20, channels=1).astype(np.float32) / 255)
    assert flt.dtype == np.float32 and 0.0 <= flt.min() and flt.max() <= 1.0


def test_batch_equals_one_by_one_for_mixed_sizes_and_modes(tiny: Path) -> None:
    c = Colorizer(tiny, batch_size=4)
    images = [
        fx.photo(120, 160, 1, channels=1),  # gray 4:3
        fx.photo(240, 320, 2),  # colour, same working shape as the first: batched together
        np.dstack([fx.photo(90, 120, 3), np.full((90, 120), 200, np.uint8)]),  # RGBA, same shape again
        fx.photo(160, 120, 4, channels=1, dtype=np.uint16),  # 16-bit portrait: another shape
        fx.photo(50, 50, 5),  # square: a third shape
        fx.photo(60, 80, 6, channels=1),  # 4:3 again
    ]
    batched = c.colorize_batch(images)
    groups = preprocess.group_by_shape([c.prepare(i) for i in images], c.batch_size)
    assert sorted(map(len, groups)) == [1, 1, 4]
    for image, out in zip(images, batched):
        single = c.colorize(image)
        assert out.shape == single.shape and out.dtype == single.dtype
        assert np.abs(out.astype(np.int64) - single.astype(np.int64)).max() <= (257 if out.dtype == np.uint16 else 1)


def test_large_pictures_use_strips_with_the_same_result(colorizer: Colorizer, monkeypatch: pytest.MonkeyPatch) -> None:
    gray = fx.photo(300, 410, channels=1)
    whole = colorizer.colorize(gray)
    monkeypatch.setattr(postprocess, "ONE_PIECE_PIXELS", 1000)  # force the row-by-row upsampler
    monkeypatch.setattr(postprocess, "STRIP_ROWS_PIXELS", 410 * 7)  # and many small merge strips
    monkeypatch.setattr(preprocess, "STRIP_PIXELS", 410 * 5)
    strips = colorizer.colorize(gray)
    assert np.abs(whole.astype(int) - strips.astype(int)).max() <= 1


def test_bad_arrays_are_refused(colorizer: Colorizer) -> None:
    with pytest.raises(ValueError, match="shape"):
        colorizer.colorize(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="int32"):
        colorizer.colorize(np.zeros((4, 4), np.int32))
    with pytest.raises(ValueError, match="empty"):
        colorizer.colorize(np.zeros((0, 4), np.uint8))


# ----------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("channels", [1, 3])
def test_exif_orientation_matches_opencv(orientation: int, channels: int) -> None:
    image = fx.photo(30, 50, seed=orientation, channels=channels)
    data = fx.jpeg_with_orientation(image, orientation)
    ours = imageio.decode(data)
    flag = cv2.IMREAD_COLOR if channels == 3 else cv2.IMREAD_GRAYSCALE
    reference = cv2.imdecode(np.frombuffer(data, np.uint8), flag)  # OpenCV applies EXIF in this mode
    assert ours.shape == reference.shape
    np.testing.assert_array_equal(ours, reference)
    if orientation in (5, 6, 7, 8):
        assert ours.shape[:2] == (50, 30)


def test_palette_png_is_expanded() -> None:
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [90, 90, 90]], np.uint8)  # RGB
    indices = (np.arange(12 * 10).reshape(12, 10) % 4).astype(np.uint8)
    out = imageio.decode(fx.palette_png(indices, palette))
    assert out.shape == (12, 10, 3)
    np.testing.assert_array_equal(out, palette[indices][..., ::-1])  # BGR


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty file"),
    (b"hello, I am a text file", "not a readable picture"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "not a readable picture"),
])
def test_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        imageio.decode(data, source="x.jpg")


def test_truncated_files_are_errors() -> None:
    for suffix in (".jpg", ".png", ".webp"):
        _, buf = cv2.imencode(suffix, fx.photo(64, 64))
        with pytest.raises(ImageError):
            imageio.decode(buf.tobytes()[: len(buf) * 2 // 3])


def test_output_suffix_rules() -> None:
    assert imageio.output_suffix(".JPG") == ".JPG"
    assert imageio.output_suffix(".pgm") == ".png" and imageio.output_suffix(".gif") == ".png"
    assert imageio.output_suffix(".jpg", "PNG") == ".png" and imageio.output_suffix(".png", ".tif") == ".tif"
    with pytest.raises(imageio.OutputError, match="unknown output format"):
        imageio.output_suffix(".jpg", "xyz")


def test_16bit_to_8bit_format_conversion_is_documented_rounding() -> None:
    deep = np.array([[[0, 257, 65535]]], np.uint16)
    back = imageio.decode(imageio.encode(deep, ".bmp"))
    np.testing.assert_array_equal(back, [[[0, 1, 255]]])
    assert imageio.decode(imageio.encode(deep, ".png")).dtype == np.uint16


def test_write_atomic_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "sub" / "a.png"
    imageio.write_atomic(target, b"complete")
    assert target.read_bytes() == b"complete"

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        imageio.write_atomic(target, b"new")
    assert target.read_bytes() == b"complete"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.png"]


def test_stale_temporaries_of_dead_runs_are_removed(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = tmp_path / f".a.png{imageio.TEMP_MARK}{proc.pid}-0.tmp"
    mine = tmp_path / f".b.png{imageio.TEMP_MARK}{__import__('os').getpid()}-0.tmp"
    other = tmp_path / ".c.png.tmp"
    for p in (dead, mine, other):
        p.write_bytes(b"x")
    assert imageio.remove_stale_temps(tmp_path) == 1
    assert not dead.exists() and mine.exists() and other.exists()


# ----------------------------------------------------------------------------- batcher


def test_batcher_groups_same_shapes_across_threads() -> None:
    import threading

    calls: list[tuple[int, ...]] = []

    def run(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape)
        return np.concatenate([batch, -batch], axis=1)  # (N, 2, h, w)

    batcher = Batcher(run, batch_size=4, workers=6, max_wait=5.0)
    shapes = [(8, 8)] * 4 + [(8, 16)] * 2
    outs: dict[int, np.ndarray] = {}

    def worker(i: int) -> None:
        outs[i] = batcher.infer(np.full((1, *shapes[i]), i, np.float32))
        batcher.worker_finished()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    batcher.close()
    assert sorted(calls) == [(2, 1, 8, 16), (4, 1, 8, 8)]
    for i, out in outs.items():
        assert out.shape == (2, *shapes[i]) and (out[0] == i).all() and (out[1] == -i).all()
