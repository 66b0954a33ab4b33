"""The folder pipeline against hostile and broken inputs (issue 13): decompression bombs, unreadable
folders, a bad -o, stale temporaries, progress without a terminal, animations, broken models,
Ctrl+C accounting."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image
from typer.testing import CliRunner

from labcolor import cli
from labcolor.commands.colorize import ProgressLog
from labcolor.core import header, imageio
from labcolor.core.errors import ImageError, ModelError, ModelOutputError
from labcolor.core.metadata import METADATA_KEY, ModelMetadata
from labcolor.runtime import Colorizer, Summary
from labcolor.runtime.folder import BAD_OUTPUT_STOP
from labcolor.runtime.jobs import WalkError, iter_jobs, walk
from labcolor.runtime.results import FileResult
from tests import runtime_fixtures as fx

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli.app, cli._route(list(args)), prog_name="colorize")


def gray_pngs(folder: Path, n: int, size: tuple[int, int] = (40, 56), value: int | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        pixels = np.full(size, value, np.uint8) if value is not None else rng.integers(0, 255, size, dtype=np.uint8)
        paths.append(folder / f"p{i:03d}.png")
        assert cv2.imwrite(str(paths[-1]), pixels)
    return paths


# ----------------------------------------------------------------------------- 1. decompression bombs


def png_bomb(width: int, height: int) -> bytes:
    """A valid 8-bit gray PNG of width x height zeros: under 1 MB on disk, width * height bytes decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    z = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + pixels
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    path.write_bytes(png_bomb(16000, 16000))  # 256 MP: over the 200 MP default, ~250 KB on disk
    return path


def test_a_bomb_is_refused_from_its_header_without_memory(bomb: Path) -> None:
    assert bomb.stat().st_size < 1_000_000
    code = textwrap.dedent(f"""
        import resource
        from labcolor.core import imageio
        from labcolor.core.errors import ImageError
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            imageio.read({str(bomb)!r})
        except ImageError as exc:
            print(exc)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before  # KiB
        print(grown)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=60)
    message, grown = out.stdout.strip().splitlines()
    assert "16000x16000" in message and "over the limit of 200" in message, message
    assert int(grown) < 50 * 1024, f"peak memory grew by {int(grown) // 1024} MB"  # decoding would take 256 MB


def test_the_pixel_limit_is_configurable(tmp_path: Path) -> None:
    (path,) = gray_pngs(tmp_path, 1, size=(100, 100))
    with pytest.raises(ImageError, match="over the limit"):
        imageio.read(path, max_pixels=9_999)
    assert imageio.read(path, max_pixels=10_000).shape == (100, 100)
    assert imageio.read(path, max_pixels=None).shape == (100, 100)


def test_a_bomb_in_a_folder_fails_alone(tiny: Path, tmp_path: Path, bomb: Path) -> None:
    gray_pngs(tmp_path / "in", 2)
    shutil.copy(bomb, tmp_path / "in" / "zz_bomb.png")
    result = invoke("-q", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(tiny))
    assert result.exit_code == 1
    assert "zz_bomb.png: 16000x16000 is 256 megapixels, over the limit" in " ".join(result.output.split())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p000.png", "p001.png"]
    # --max-megapixels: the same limit from the command line
    result = invoke("-q", str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "-m", str(tiny),
                    "--max-megapixels", "0.001")
    assert result.exit_code == 1 and result.output.count("over the limit of 0.001") == 3


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tiff", ".bmp", ".ppm", ".pgm", ".ras", ".jp2",
                                    ".hdr", ".pfm", ".avif"])
def test_headers_give_the_size_of_every_writable_format(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)
    if suffix in (".hdr", ".pfm"):
        picture = picture.astype(np.float32) / 255
    if suffix == ".pgm":
        picture = picture[:, :, 0]
    try:
        ok, buf = cv2.imencode(suffix, picture)
    except cv2.error:
        ok = False
    if not ok:
        pytest.skip(f"this OpenCV cannot write {suffix}")
    found = header.read_header(buf.tobytes())
    assert found is not None and (found.width, found.height, found.frames) == (53, 37, 1), found


def test_an_unknown_format_has_no_header() -> None:
    assert header.read_header(b"certainly not a picture at all") is None


# ----------------------------------------------------------------------------- 2. unreadable folders


def test_a_folder_that_cannot_be_listed_is_a_failed_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gray_pngs(tmp_path / "in" / "a", 1)
    gray_pngs(tmp_path / "in" / "locked", 1)
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    entries = list(walk(tmp_path / "in"))
    assert [e.name for e in entries if isinstance(e, Path)] == ["p000.png"]
    (error,) = [e for e in entries if isinstance(e, WalkError)]
    assert error.folder == tmp_path / "in" / "locked" and "Permission denied" in error.reason
    jobs = list(iter_jobs([tmp_path / "in"], tmp_path / "out"))
    assert [(j.source.name, j.problem is not None) for j in jobs] == [("p000.png", False), ("locked", True)]


def _without_root_powers() -> list[str] | None:
    """A command prefix that runs a program without the capabilities that let root read any folder."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    probe = subprocess.run([setpriv, "--bounding-set", "-dac_override,-dac_read_search", "true"],
                           capture_output=True, check=False)
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search"] if probe.returncode == 0 else None


def test_an_unreadable_folder_is_reported_and_fails_the_run(tiny: Path, tmp_path: Path) -> None:
    prefix = _without_root_powers()
    if prefix is None:
        pytest.skip("cannot drop root's power to read any folder here (no setpriv)")
    gray_pngs(tmp_path / "in" / "open", 1)
    gray_pngs(tmp_path / "in" / "locked", 1)
    (tmp_path / "in" / "locked").chmod(0)
    try:
        out = subprocess.run([*prefix, sys.executable, "-m", "labcolor", "-q", str(tmp_path / "in"), "-o",
                              str(tmp_path / "out"), "-m", str(tiny)], cwd=REPO, capture_output=True, text=True,
                             check=False, timeout=120)
    finally:
        (tmp_path / "in" / "locked").chmod(0o755)
    text = " ".join(out.stderr.split())
    assert out.returncode == 1, out.stderr
    assert f"failed {tmp_path / 'in' / 'locked'}: cannot list this folder: Permission denied" in text, text
    assert "1 done" in text and "1 failed" in text
    assert (tmp_path / "out" / "open" / "p000.png").is_file()


# ----------------------------------------------------------------------------- 3. -o and 4. stale temporaries


def test_output_naming_a_file_is_refused_before_any_work(tiny: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    gray_pngs(tmp_path / "in", 2)
    (tmp_path / "taken.txt").write_text("x")
    decoded = []
    monkeypatch.setattr(imageio, "decode_file", lambda *a, **k: decoded.append(1))
    for out in ("taken.txt", "taken.txt/sub"):
        result = invoke(str(tmp_path / "in"), "-o", str(tmp_path / out), "-m", str(tiny))
        assert result.exit_code == 2, result.output
        assert "is an existing file" in result.output or "is a file" in result.output
    assert decoded == []
    assert (tmp_path / "taken.txt").read_text() == "x"


def test_stale_temporaries_are_removed_even_when_every_output_exists(tiny: Path, tmp_path: Path) -> None:
    gray_pngs(tmp_path / "in" / "sub", 2)
    out = tmp_path / "out"
    assert invoke("-q", str(tmp_path / "in"), "-o", str(out), "-m", str(tiny)).exit_code == 0
    stale = out / "sub" / f".p000.png{imageio.TEMP_MARK}{_dead_pid()}-0.tmp"
    stale.write_bytes(b"half a picture")
    live = out / "sub" / f".p001.png{imageio.TEMP_MARK}{os.getpid()}-99.tmp"  # a running writer's: kept
    live.write_bytes(b"being written")
    result = invoke(str(tmp_path / "in"), "-o", str(out), "-m", str(tiny))
    assert result.exit_code == 0 and "0 done, 2 skipped" in result.output
    assert not stale.exists() and live.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# ----------------------------------------------------------------------------- 5. progress without a terminal


def test_progress_lines_without_a_terminal(tiny: Path, tmp_path: Path) -> None:
    gray_pngs(tmp_path / "in", 3)
    run = [sys.executable, "-m", "labcolor", str(tmp_path / "in"), "-m", str(tiny), "--log-every", "0", "--overwrite"]
    out = subprocess.run(run, cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if "colorizing: " in ln]
    assert [ln.split("colorizing: ")[1].split(",")[0] for ln in lines] == ["1/3", "2/3", "3/3"], out.stderr
    assert "img/s" in lines[-1] and "left" in lines[-1]
    quiet = subprocess.run([*run[:3], "-q", *run[3:]], cwd=REPO, capture_output=True, text=True, check=False,
                           timeout=120)
    assert quiet.returncode == 0 and "colorizing:" not in quiet.stderr, quiet.stderr


def test_progress_log_paces_itself(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    log = ProgressLog(total=10, every=10.0, clock=lambda: now[0])
    summary = Summary()
    caplog.set_level("INFO", logger="labcolor")
    for _ in range(9):
        now[0] += 3.0
        summary.add(FileResult(Path("a"), Path("b"), "done", seconds=3.0))
        log.update(summary, 3.0)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages  # every 10 s over 27 s, not once per picture
    assert messages[0].startswith("colorizing: 4/10, 0.3 img/s, about 18 s left"), messages
    now[0] += 10.0
    summary.add(FileResult(Path("a"), Path("b"), "failed", "bad"))
    log.update(summary)
    assert caplog.records[-1].getMessage() == "colorizing: 10/10, 0.2 img/s, about 0 s left, 1 failed"


# ----------------------------------------------------------------------------- 7. animations


def test_an_animated_gif_says_what_was_done(tiny: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [Image.fromarray(rng.integers(0, 255, (30, 40), dtype=np.uint8)).convert("P") for _ in range(3)]
    (tmp_path / "in").mkdir()
    frames[0].save(tmp_path / "in" / "anim.gif", save_all=True, append_images=frames[1:])
    result = invoke(str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(tiny))
    assert result.exit_code == 0, result.output
    assert "GIF with 3 frames: only the first was colorized" in " ".join(result.output.split())
    written = cv2.imread(str(tmp_path / "out" / "anim.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == (30, 40, 3)  # no opaque alpha channel for nothing


def test_a_transparent_gif_keeps_its_alpha(tmp_path: Path) -> None:
    picture = Image.fromarray(np.arange(30 * 40, dtype=np.uint8).reshape(30, 40) % 200).convert("P")
    picture.info["transparency"] = 0
    picture.save(tmp_path / "t.gif", transparency=0)
    decoded = imageio.decode_file((tmp_path / "t.gif").read_bytes())
    assert decoded.header is not None and decoded.header.frames == 1
    assert decoded.image.shape == (30, 40, 4) and decoded.image[:, :, 3].min() == 0


# ----------------------------------------------------------------------------- 8. broken models


def broken_model(path: Path, kind: str) -> Path:
    """A labcolor-described model that is wrong in one way."""
    in_shape: list = ["N", 1, "H", "W"]
    out_shape: list = ["N", 2, "H", "W"]
    consts = {"two": np.zeros((1, 2, 1, 1), np.float32)}
    nodes = [helper.make_node("Mul", ["L", "two"], ["ab"])]
    if kind == "nan":  # NaN everywhere: 0 * inf
        consts["inf"] = np.full((1, 2, 1, 1), np.inf, np.float32)
        nodes = [helper.make_node("Mul", ["L", "two"], ["z"]), helper.make_node("Add", ["z", "inf"], ["i"]),
                 helper.make_node("Mul", ["i", "two"], ["ab"])]
    elif kind == "nan-when-dark":  # sqrt of L_n: NaN where L < 50 (the load probe is mid-gray: finite there)
        nodes = [helper.make_node("Sqrt", ["L"], ["s"]), helper.make_node("Mul", ["s", "two"], ["z"]),
                 helper.make_node("Add", ["z", "two"], ["ab"])]
    elif kind == "three-channels":
        consts["two"] = np.zeros((1, 3, 1, 1), np.float32)
        out_shape = ["N", 3, "H", "W"]
    elif kind == "one-pixel":
        nodes = [helper.make_node("Mul", ["L", "two"], ["z"]),
                 helper.make_node("ReduceMean", ["z"], ["ab"], axes=[2, 3], keepdims=1)]
        out_shape = ["N", 2, 1, 1]
    elif kind == "rank-3-input":
        in_shape = ["N", "H", "W"]
        nodes = [helper.make_node("Unsqueeze", ["L", "axis"], ["l4"]), helper.make_node("Mul", ["l4", "two"], ["ab"])]
        consts["axis"] = np.array([1], np.int64)
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in consts.items()]
    graph = helper.make_graph(nodes, kind, [helper.make_tensor_value_info("L", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("ab", TensorProto.FLOAT, out_shape)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: ModelMetadata(size_multiple=8, train_size=32,
                                                                inference_size=64).to_json()})
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("kind", "message"), [
    ("nan", "not finite"),
    ("three-channels", "float32 (N, 2, H, W)"),
    ("one-pixel", "expected float32 (1, 2, 8, 16)"),
    ("rank-3-input", "float32 (N, 1, H, W)"),
])
def test_a_broken_model_is_refused_at_load(tmp_path: Path, kind: str, message: str) -> None:
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Colorizer(broken_model(tmp_path / f"{kind}.onnx", kind))


def test_non_finite_output_fails_the_picture_and_then_the_run(tmp_path: Path) -> None:
    model = broken_model(tmp_path / "m.onnx", "nan-when-dark")
    c = Colorizer(model)  # passes the load check: finite on mid-gray
    with pytest.raises(ModelOutputError, match="NaN"):
        c.colorize(np.full((20, 30), 10, np.uint8))
    assert c.colorize(np.full((20, 30), 200, np.uint8)).shape == (20, 30, 3)
    # Bright and dark pictures mixed: the dark ones fail with the reason, the run goes on.
    gray_pngs(tmp_path / "mixed", 2, value=220)
    for p in gray_pngs(tmp_path / "dark", 2, value=20):
        shutil.copy(p, tmp_path / "mixed" / f"dark_{p.name}")
    results = list(c.colorize_folder(tmp_path / "mixed", tmp_path / "out", workers=1))
    assert sorted(r.status for r in results) == ["done", "done", "failed", "failed"]
    assert all("NaN" in r.reason for r in results if r.status == "failed")
    # Only dark pictures: stopped after BAD_OUTPUT_STOP failures, never a white picture "done".
    gray_pngs(tmp_path / "all-dark", BAD_OUTPUT_STOP + 5, value=20)
    result = invoke(str(tmp_path / "all-dark"), "-o", str(tmp_path / "out2"), "-m", str(model), "--workers", "1")
    assert result.exit_code == 2, result.output
    assert f"for each of the first {BAD_OUTPUT_STOP} pictures" in " ".join(result.output.split())
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())


# ----------------------------------------------------------------------------- 9. Ctrl+C, checkpoints, .gitignore


def test_stop_counts_every_picture_written(tiny: Path, tmp_path: Path) -> None:
    gray_pngs(tmp_path / "in", 40, size=(200, 300))
    run = Colorizer(tiny).colorize_folder(tmp_path / "in", tmp_path / "out", workers=4)
    first = next(run)
    run.stop()  # as on Ctrl+C: no new picture, the ones in flight still finish
    rest = list(run)
    done = [r for r in [first, *rest] if r.status == "done"]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sorted(r.target.name for r in done) == written
    assert 1 <= len(done) < 40
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporaries left


def test_ctrl_c_summary_counts_the_files_written(tmp_path: Path) -> None:
    # A network of real cost (a depth-5 U-Net, ~20-40 ms a picture): the run lasts seconds, so the interrupt
    # lands in the middle of it even on a loaded machine (with the tiny model it could finish first).
    model = fx.make_unet_model(tmp_path / "unet.onnx", depth=5, base=32)
    gray_pngs(tmp_path / "in", 300, size=(300, 400))
    out = tmp_path / "out"
    # SIGINT back to its default in the child: a test run started in the background (`cmd &`, nohup) inherits
    # SIGINT ignored, and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen([sys.executable, "-m", "labcolor", str(tmp_path / "in"), "-o", str(out), "-m", str(model),
                             "--workers", "4"], cwd=REPO, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.is_dir() and len(list(out.glob("*.png"))) >= 5):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    written = len(list(out.glob("*.png")))
    assert f"interrupted: {written} done" in stderr, (written, stderr)
    assert written < 300


def test_a_checkpoint_with_code_is_refused_without_suggesting_to_trust_it(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from labcolor.trainer.checkpoint import CheckpointError, load_checkpoint

    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "payload": Path("anything")}, path)  # a pickled class: not weights-only
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "weights_only" not in str(info.value) and "could run code" in str(info.value)


def test_the_readme_output_folder_is_ignored_by_git() -> None:
    out = subprocess.run(["git", "check-ignore", "-q", "colorized/x.jpg"], cwd=REPO, check=False)
    if out.returncode == 128:
        pytest.skip("not a git checkout")
    assert out.returncode == 0
