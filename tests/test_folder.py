"""Tests of folder colorization: jobs and output paths, the streaming pipeline, bad files, resuming.

Everything is generated in tmp_path with the small models of tests/runtime_fixtures.py.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from labcolor.runtime import Colorizer, OutputError, Summary
from labcolor.core import imageio
from labcolor.runtime.jobs import count_jobs, default_output_root, iter_jobs
from tests import runtime_fixtures as fx

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def make_mixed_folder(root: Path) -> dict[str, np.ndarray]:
    """Good pictures of every kind (name -> the pixels a reader should see), plus bad files."""
    good: dict[str, np.ndarray] = {}

    def put(name: str, image: np.ndarray, params: list[int] | None = None) -> None:
        fx.write(root / name, image, params)
        good[name] = imageio.read(root / name)

    put("gray.jpg", fx.photo(120, 160, 1, channels=1))
    put("rgb.png", fx.photo(90, 130, 2))
    put("sub/rgba.png", np.dstack([fx.photo(64, 48, 3), np.linspace(0, 255, 64 * 48).reshape(64, 48).astype(np.uint8)]))
    put("sub/deep/deep16.png", fx.photo(70, 50, 4, dtype=np.uint16))
    put("gray16.tif", fx.photo(40, 60, 5, channels=1, dtype=np.uint16))
    put("photo.webp", fx.photo(50, 70, 6))
    (root / "palette.png").write_bytes(
        fx.palette_png((np.arange(30 * 20).reshape(30, 20) % 3).astype(np.uint8),
                       np.array([[200, 30, 30], [30, 200, 30], [40, 40, 40]], np.uint8)))
    good["palette.png"] = imageio.read(root / "palette.png")
    rotated = fx.photo(40, 80, 7)
    (root / "exif6.jpg").write_bytes(fx.jpeg_with_orientation(rotated, 6))
    good["exif6.jpg"] = imageio.read(root / "exif6.jpg")
    put("folder.jpg/inside.png", fx.photo(30, 30, 8))  # a folder named like a picture is just a folder
    put("UPPER.JPG", fx.photo(33, 44, 9))

    _, full = cv2.imencode(".jpg", fx.photo(200, 200, 10))
    (root / "bad" / "truncated.jpg").parent.mkdir(parents=True)
    (root / "bad" / "truncated.jpg").write_bytes(full.tobytes()[: len(full) // 2])
    (root / "bad" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    (root / "bad" / "zero.jpg").write_bytes(b"")
    (root / "bad" / "text.png").write_text("this is not a picture")
    (root / "bad" / "dangling.jpg").symlink_to(root / "bad" / "missing-target.jpg")
    (root / "notes.txt").write_text("ignored: not a picture extension")
    (root / ".hidden.jpg").write_bytes(b"ignored: hidden")
    return good


BAD = {"bad/truncated.jpg", "bad/corrupt.png", "bad/zero.jpg", "bad/text.png", "bad/dangling.jpg"}


def run(colorizer: Colorizer, *args, **kwargs) -> tuple[Summary, list]:  # type: ignore[no-untyped-def]
    summary, results = Summary(), []
    for result in colorizer.colorize_folder(*args, **kwargs):
        summary.add(result)
        results.append(result)
    return summary, results


@pytest.mark.parametrize(("batch_size", "workers"), [(1, 2), (3, 4)])
def test_mixed_folder(tiny: Path, tmp_path: Path, batch_size: int, workers: int) -> None:
    root = tmp_path / "photos"
    good = make_mixed_folder(root)
    before = hashes(root)
    c = Colorizer(tiny, batch_size=batch_size)
    summary, results = run(c, root, workers=workers)
    out = tmp_path / "photos_colorized"

    failed = {str(Path(s).relative_to(root)): reason for s, reason in summary.failed}
    assert set(failed) == BAD
    assert all(reason and "\n" not in reason for reason in failed.values())
    assert "empty file" in failed["bad/zero.jpg"]
    assert "cannot read" in failed["bad/dangling.jpg"]
    assert "not a readable picture" in failed["bad/truncated.jpg"]
    assert summary.done == len(good) and summary.skipped == 0
    assert hashes(root) == before  # inputs untouched

    for name, pixels in good.items():
        target = out / name
        assert target.is_file(), name
        written = imageio.read(target)
        assert written.shape[:2] == pixels.shape[:2], name  # full resolution, EXIF rotation applied
        expected = c.colorize(pixels, bgr=True)
        assert written.dtype == expected.dtype, name
        assert written.shape == expected.shape, name
        if target.suffix.lower() in (".png", ".tif"):  # lossless: the file holds exactly colorize()'s result
            np.testing.assert_array_equal(written, expected, err_msg=name)
    assert imageio.read(out / "sub/deep/deep16.png").dtype == np.uint16
    assert imageio.read(out / "gray16.tif").dtype == np.uint16
    assert imageio.read(out / "sub/rgba.png").shape[2] == 4
    np.testing.assert_array_equal(imageio.read(out / "sub/rgba.png")[..., 3], good["sub/rgba.png"][..., 3])
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not (out / "notes.txt").exists() and not (out / ".hidden.jpg").exists()
    assert {r.status for r in results} == {"done", "failed"}


def test_unreadable_permission(tiny: Path, tmp_path: Path) -> None:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root reads any file; the dangling-symlink case in test_mixed_folder covers unreadable files")
    root = tmp_path / "photos"
    fx.write(root / "ok.png", fx.photo(20, 20))
    locked = fx.write(root / "locked.png", fx.photo(20, 20))
    locked.chmod(0)
    try:
        summary, _ = run(Colorizer(tiny), root)
    finally:
        locked.chmod(0o644)
    assert summary.done == 1 and len(summary.failed) == 1 and "cannot read" in summary.failed[0][1]


def test_rerun_skips_and_overwrite_redoes(tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    for i in range(4):
        fx.write(root / f"p{i}.png", fx.photo(30, 40, i))
    c = Colorizer(tiny)
    assert run(c, root)[0].done == 4
    target = tmp_path / "in_colorized" / "p0.png"
    stamp = target.stat().st_mtime_ns
    again, _ = run(c, root)
    assert (again.done, again.skipped) == (0, 4)
    assert target.stat().st_mtime_ns == stamp
    redo, _ = run(c, root, overwrite=True)
    assert (redo.done, redo.skipped) == (4, 0)


def test_output_option_format_and_collisions(tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    fx.write(root / "a.jpg", fx.photo(30, 40, 1))
    fx.write(root / "a.png", fx.photo(30, 40, 2))
    fx.write(root / "b.pgm", fx.photo(30, 40, 3, channels=1))
    summary, _ = run(Colorizer(tiny), [root], tmp_path / "out", format="png")
    assert summary.done == 2 and len(summary.failed) == 1
    assert "same output file" in summary.failed[0][1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    # Without --format, a format OpenCV cannot write in colour falls back to PNG.
    assert [j.target.name for j in iter_jobs([root / "b.pgm"])] == ["b.png"]


def test_output_never_inside_an_input(tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    fx.write(root / "a.png", fx.photo(20, 20))
    c = Colorizer(tiny)
    for bad in (root, root / "out", root / "sub" / "deeper"):
        with pytest.raises(OutputError, match="inside the input folder"):
            c.colorize_folder(root, bad)
    with pytest.raises(FileNotFoundError, match="no such file"):
        c.colorize_folder(tmp_path / "missing")
    # A file given on its own writes beside its folder; giving it twice does it once.
    jobs = list(iter_jobs([root / "a.png", root, root / "a.png"]))
    assert [(j.source.name, j.target) for j in jobs] == [("a.png", tmp_path / "in_colorized" / "a.png")]
    # Two arguments whose outputs would land inside the other one's input folder are refused per file.
    (tmp_path / "in_colorized").mkdir()
    jobs = list(iter_jobs([root, tmp_path / "in_colorized"]))
    assert jobs[0].problem and "inside an input folder" in jobs[0].problem


def test_default_output_root_and_count(tmp_path: Path) -> None:
    fx.write(tmp_path / "photos" / "x" / "a.png", fx.photo(10, 10))
    assert default_output_root(tmp_path / "photos") == tmp_path / "photos_colorized"
    fx.write(tmp_path / "photos" / "b.jpg", fx.photo(10, 10))
    (tmp_path / "photos" / "c.txt").write_text("no")
    assert default_output_root(tmp_path / "photos" / "b.jpg") == tmp_path / "photos_colorized"
    assert count_jobs([tmp_path / "photos"]) == 2


def test_stopping_early_finishes_in_flight_pictures(tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    for i in range(12):
        fx.write(root / f"p{i:02d}.png", fx.photo(60, 80, i))
    results = Colorizer(tiny).colorize_folder(root, workers=2)
    first = next(results)
    results.close()  # what a KeyboardInterrupt in the consumer does
    assert first.status == "done"
    out = tmp_path / "in_colorized"
    written = sorted(out.iterdir())
    assert 1 <= len(written) < 12
    assert all(imageio.read(p).shape == (60, 80, 3) for p in written)


def test_killed_run_resumes_with_complete_outputs(tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    count = 30
    base = fx.photo(360, 480, 0)
    for i in range(count):  # shifted copies: distinct pictures without generating each one
        fx.write(root / f"img_{i:03d}.png", np.roll(base, 7 * i, axis=1))
    before = hashes(root)
    reference = tmp_path / "reference"
    assert run(Colorizer(tiny), root, reference)[0].done == count
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from labcolor import cli; cli.main()", "-q", str(root), "-o", str(out), "-m", str(tiny),
           "--workers", "2"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and sum(1 for p in out.iterdir() if not p.name.startswith(".")) >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    finished = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert 3 <= len(finished) < count
    for p in finished:  # whatever exists after the kill is a complete picture
        np.testing.assert_array_equal(imageio.read(p), imageio.read(reference / p.name))

    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False, timeout=120)
    assert again.returncode == 0, again.stderr
    assert f"{count - len(finished)} done, {len(finished)} skipped" in again.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())  # no temporaries
    for p in reference.iterdir():
        np.testing.assert_array_equal(imageio.read(out / p.name), imageio.read(p))
    assert hashes(root) == before
