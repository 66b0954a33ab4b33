"""The RGB model outside Python: Node.js (onnxruntime-node) and a browser page (onnxruntime-web in headless
Chromium: WASM, and WebGPU on Chromium's software adapter where it has one).

Both colorize generated pictures with the RGB model that `export_rgb` writes for the tiny test model;
their results must match `Colorizer.colorize` (the Python runtime on the source model) within the agreed
bound: mean |difference| <= 1 level and >= 99.9% of pixel values within 3 levels; they are also compared
with Python's onnxruntime on the same RGB model, which tells a runtime difference from a graph difference.

A session fixture runs scripts/setup_js.sh first (npm ci from the lock files, Chromium from apt when it
is missing and we are root, onnxruntime-web copied into runtime/web/vendor/). Without Node.js the module
skips; without Chromium the browser test skips.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import shutil
import subprocess
import threading
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from tests.runtime_fixtures import make_tiny_model, photo

ROOT = Path(__file__).resolve().parents[1]
NODE_EXAMPLE = ROOT / "examples" / "node" / "colorize.mjs"
WEB = ROOT / "runtime" / "web"  # the page (shipped in the package; `colorize serve` serves it too)
JS = ROOT / "examples" / "web"  # its npm set-up and the Chromium driver
DRIVER = JS / "test" / "drive.mjs"
CHROMIUM = Path(os.environ.get("LABCOLOR_CHROMIUM", "/usr/bin/chromium"))

BOUND_MEAN = 1.0      # levels of 8-bit RGB
BOUND_WITHIN = 3      # levels ...
BOUND_FRACTION = 0.999  # ... for at least this fraction of the values


# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def js_setup() -> str:
    """Run scripts/setup_js.sh once per session (idempotent: a second run only checks)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are needed for the JavaScript runtimes (scripts/setup_js.sh)")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "setup_js.sh")], capture_output=True, text=True, check=False,
                          timeout=1200)
    print(proc.stdout)
    if proc.returncode != 0:
        pytest.fail(f"scripts/setup_js.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny labcolor model and its RGB model, written (and verified within the bound) by export_rgb.

    gain 0.4, as tests/test_rgb_export.py: at full gain the random net swings ~10 ab units per L unit, which
    turns OpenCV's approximate float Lab (the Python runtime's) into differences no trained model shows."""
    from labcolor.export.rgb import export_rgb

    folder = tmp_path_factory.mktemp("js-models")
    tiny = make_tiny_model(folder / "tiny.onnx", gain=0.4)
    rgb = folder / "tiny-rgb.onnx"
    report = export_rgb(tiny, rgb)
    print("\n".join(report.lines()))
    return {"tiny": tiny, "rgb": rgb}


@pytest.fixture(scope="session")
def rgb_session(models: dict[str, Path]):
    """The RGB model in Python's onnxruntime: what the JavaScript runtimes run, run by the reference runtime."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(models["rgb"]), providers=["CPUExecutionProvider"])

    def run(rgb: np.ndarray, saturation: float) -> np.ndarray:
        feeds = {"image": np.ascontiguousarray(rgb, dtype=np.uint8)}
        if "saturation" in {i.name for i in session.get_inputs()}:
            feeds["saturation"] = np.array([saturation], np.float32)
        return session.run(["colorized"], feeds)[0]

    return run


@pytest.fixture(scope="session")
def colorizer(models: dict[str, Path]):
    from labcolor.runtime import Colorizer

    return Colorizer(models["tiny"], device="cpu")


def picture(h: int, w: int, *, gray: bool, seed: int) -> np.ndarray:
    """RGB uint8 (h, w, 3): a structured colour picture, or a gray one given as three equal channels."""
    rgb = photo(h, w, seed=seed)
    if gray:
        rgb = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    return rgb


def write_png(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def read_png(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert bgr is not None, path
    assert bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] in (3, 4), f"{path}: {bgr.dtype} {bgr.shape}"
    if bgr.shape[2] == 4:  # canvas.toBlob writes RGBA: the picture was opaque, so must the result be
        assert (bgr[..., 3] == 255).all(), f"{path}: transparent pixels in the result of an opaque picture"
    return cv2.cvtColor(bgr[..., :3], cv2.COLOR_BGR2RGB)


def assert_within_bound(label: str, got: np.ndarray, want: np.ndarray) -> dict[str, float]:
    assert got.shape == want.shape, f"{label}: shape {got.shape}, Python gives {want.shape}"
    assert got.dtype == np.uint8
    d = np.abs(got.astype(np.int16) - want.astype(np.int16))
    stats = {"mean": float(d.mean()), "within": float((d <= BOUND_WITHIN).mean()), "max": int(d.max())}
    print(f"{label}: mean |d| {stats['mean']:.3f} levels, {100 * stats['within']:.3f}% within {BOUND_WITHIN}, "
          f"max {stats['max']}")
    assert stats["mean"] <= BOUND_MEAN, f"{label}: mean |d| {stats['mean']:.3f} > {BOUND_MEAN}"
    assert stats["within"] >= BOUND_FRACTION, (
        f"{label}: only {100 * stats['within']:.3f}% of values within {BOUND_WITHIN} levels "
        f"(need {100 * BOUND_FRACTION}%)")
    return stats


def check(label: str, got: np.ndarray, rgb: np.ndarray, saturation: float, rgb_session, colorizer) -> None:
    """The JavaScript result vs Python: first onnxruntime on the same RGB model (is the JS runtime faithful?),
    then the Python runtime on the source model (the end-to-end bound)."""
    assert_within_bound(f"{label} vs Python onnxruntime, same RGB model", got, rgb_session(rgb, saturation))
    assert_within_bound(f"{label} vs Colorizer.colorize", got, colorizer.colorize(rgb, saturation=saturation))


# ----------------------------------------------------------------------------------------- Node.js

# (height, width, gray): landscape and portrait, shrunk to the tiny model's working size (64), used at
# their own size, and enlarged to its training crop (32); colour pictures count as their luminance.
NODE_CASES = [(50, 70, False), (123, 64, True), (40, 24, False), (17, 29, True)]


@pytest.mark.parametrize(("h", "w", "gray"), NODE_CASES, ids=[f"{w}x{h}-{'gray' if g else 'colour'}"
                                                              for h, w, g in NODE_CASES])
def test_node_matches_python(js_setup, models, rgb_session, colorizer, tmp_path: Path,
                             h: int, w: int, gray: bool) -> None:
    rgb = picture(h, w, gray=gray, seed=h * 1000 + w)
    src = write_png(tmp_path / "in.png", rgb)
    out = tmp_path / "out.png"
    proc = subprocess.run(["node", str(NODE_EXAMPLE), str(src), str(out), str(models["rgb"])],
                          capture_output=True, text=True, check=False, timeout=120)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    check(f"node {w}x{h}", read_png(out), rgb, 1.0, rgb_session, colorizer)


def test_node_saturation_and_jpeg(js_setup, models, rgb_session, colorizer, tmp_path: Path) -> None:
    """--saturation reaches the model's saturation input; a gray JPEG decodes (jpeg-js) as in Python.

    Gray, as the photos this is for: jpeg-js upsamples the chroma of 4:2:0 colour JPEGs more simply than
    libjpeg (up to ~15 levels apart on colour edges), while gray ones decode within 1 level."""
    rgb = picture(48, 80, gray=True, seed=3)
    src = tmp_path / "in.jpg"
    assert cv2.imwrite(str(src), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = cv2.cvtColor(cv2.imread(str(src)), cv2.COLOR_BGR2RGB)  # what Python sees of the JPEG
    for saturation in (0.0, 0.5):
        out = tmp_path / f"out-{saturation}.png"
        proc = subprocess.run(["node", str(NODE_EXAMPLE), str(src), str(out), str(models["rgb"]),
                               "--saturation", str(saturation)],
                              capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        got = read_png(out)
        check(f"node jpeg saturation {saturation}", got, decoded, saturation, rgb_session, colorizer)
        if saturation == 0.0:  # no colour at all: the three channels agree
            spread = int(np.ptp(got.astype(np.int16), axis=2).max())
            assert spread <= 2, f"saturation 0 should give gray, channels differ by up to {spread}"


def test_node_usage_errors(js_setup, tmp_path: Path) -> None:
    proc = subprocess.run(["node", str(NODE_EXAMPLE)], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 2 and "usage" in proc.stderr
    bogus = tmp_path / "not-a-picture.png"
    bogus.write_bytes(b"hello")
    proc = subprocess.run(["node", str(NODE_EXAMPLE), str(bogus), str(tmp_path / "o.png"), "missing.onnx"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 1 and "not a PNG or JPEG" in proc.stderr


# ----------------------------------------------------------------------------------------- browser


class _Handler(SimpleHTTPRequestHandler):
    """Static files of runtime/web at /, the test's models at /models/NAME. Nothing else."""

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript", ".js": "text/javascript",
        ".wasm": "application/wasm", ".onnx": "application/octet-stream"}
    models_dir: Path

    def translate_path(self, path: str) -> str:
        route = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        if route.startswith("/models/"):
            return str(self.models_dir / posixpath.basename(route))
        return super().translate_path(path)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="session")
def web_server(js_setup, models: dict[str, Path]):
    """http.server on a free loopback port, in a thread: yields the base URL."""
    handler = type("Handler", (_Handler,), {"models_dir": models["rgb"].parent})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(WEB)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def drive(url: str, image: Path, out: Path, *extra: str, timeout: int = 180) -> dict:
    """Run examples/web/test/drive.mjs (headless Chromium via playwright-core); its JSON report."""
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (scripts/setup_js.sh installs it as root with apt-get)")
    assert (WEB / "vendor" / "ort.wasm.min.mjs").is_file(), "scripts/setup_js.sh did not copy onnxruntime-web"
    proc = subprocess.run(["node", str(DRIVER), "--url", url, "--image", str(image), "--out", str(out),
                           "--timeout", str(timeout // 2), *extra],
                          cwd=JS, capture_output=True, text=True, check=False, timeout=timeout)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_browser_matches_python(js_setup, web_server: str, models, rgb_session, colorizer, tmp_path: Path) -> None:
    """The page in headless Chromium without a GPU: WASM. Pick a photo, download the result, change the strength."""
    rgb = picture(64, 123, gray=False, seed=7)
    src = write_png(tmp_path / "photo.png", rgb)
    out, out2, shot = tmp_path / "result.png", tmp_path / "result-0.5.png", tmp_path / "page.png"
    report = drive(f"{web_server}/index.html?model=/models/{models['rgb'].name}", src, out,
                   "--saturation", "0.5", "--out2", str(out2), "--screenshot", str(shot))
    print(f"screenshot: {shot}")
    assert shot.is_file() and shot.stat().st_size > 0

    # The page says which execution provider ran (headless Chromium without a GPU: WASM) and how long it took.
    assert report["ep"] == "wasm"
    assert "execution provider: wasm" in report["model_info"]
    first, second = report["runs"]
    for run in (first, second):
        assert run["ep"] == "wasm"
        assert float(run["ms"]) > 0 and " ms (wasm" in run["text"], run
    print(f"browser: {first['text']} then {second['text']} (page and model load {report['load_ms']} ms)")
    assert first["file"] == "photo_colorized.png"

    check("browser wasm 123x64 saturation 1", read_png(out), rgb, 1.0, rgb_session, colorizer)
    check("browser wasm 123x64 saturation 0.5", read_png(out2), rgb, 0.5, rgb_session, colorizer)


def test_browser_webgpu_path(js_setup, web_server: str, models, rgb_session, colorizer, tmp_path: Path) -> None:
    """?ep=webgpu on Chromium's software WebGPU adapter (SwiftShader): the page's WebGPU path gives the same
    pixels. Skips where this Chromium offers no such adapter (the page then falls back to WASM)."""
    rgb = picture(40, 56, gray=True, seed=11)
    src = write_png(tmp_path / "photo.png", rgb)
    out = tmp_path / "result.png"
    report = drive(f"{web_server}/index.html?ep=webgpu&model=/models/{models['rgb'].name}", src, out,
                   "--webgpu", "swiftshader")
    if report["ep"] != "webgpu":
        assert "fell back to WASM" in report["model_info"]
        pytest.skip(f"no WebGPU adapter in this Chromium: {report['model_info']}")
    run = report["runs"][0]
    assert run["ep"] == "webgpu" and " ms (webgpu)" in run["text"], run
    print(f"browser: {run['text']} (SwiftShader: software, not a speed measurement)")
    check("browser webgpu 56x40", read_png(out), rgb, 1.0, rgb_session, colorizer)


def test_the_serve_page_colorizes_through_the_server(js_setup, models, colorizer, tmp_path: Path) -> None:
    """`colorize serve` serves the same page; there it posts the photo to /v1/colorize (backend "server"):
    upload a picture, wait for the result, check its pixels, change the strength, screenshot the page."""
    pytest.importorskip("fastapi")
    from tests.serve_client import serve

    rgb = picture(64, 123, gray=False, seed=3)
    src = write_png(tmp_path / "photo.png", rgb)
    out, out2, shot = tmp_path / "result.png", tmp_path / "result-0.5.png", tmp_path / "serve-page.png"
    with serve("-m", str(models["tiny"])) as server:
        report = drive(f"http://127.0.0.1:{server.port}/", src, out, "--saturation", "0.5", "--out2", str(out2),
                       "--screenshot", str(shot))
    print(f"screenshot: {shot}")
    assert shot.is_file() and shot.stat().st_size > 0
    assert "Server model tiny.onnx" in report["model_info"]
    assert [run["ep"] for run in report["runs"]] == ["server", "server"]
    for path, strength in ((out, 1.0), (out2, 0.5)):
        got = read_png(path)[:, :, :3]  # RGB
        want = colorizer.colorize(rgb, saturation=strength)
        # What the server answered (pixel for pixel Colorizer.colorize, tests/test_serve.py), drawn and saved
        # by the browser as PNG: at most one level of colour management or rounding on the way.
        assert np.abs(got.astype(np.int16) - want).max() <= 1, strength
