"""Tests of `colorize --engine ray` (labcolor.runtime.ray_engine): the same files as the local engine, the same
resume, failures, summary and exit codes, the graceful stop, and the message when Ray is missing.

One local Ray instance serves the whole module (starting one takes seconds); the engine uses a Ray that is
already initialized as it is. Pictures are tiny and the model is the tiny one of tests/runtime_fixtures.py.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from labcolor import cli
from labcolor.core import imageio
from labcolor.core.errors import ConfigError, ModelOutputError
from labcolor.runtime import Colorizer, Summary
from labcolor.runtime.folder import BAD_OUTPUT_STOP
from labcolor.runtime.ray_engine import RAY_MISSING, RayRun, colorize_folder_ray
from tests import runtime_fixtures as fx

ray = pytest.importorskip("ray")  # a guard only: the dev extra installs it
# Ray Data's own DataContext warns about its deprecated fields as it copies itself: not ours to act on.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


@pytest.fixture(scope="module")
def ray_instance():  # type: ignore[no-untyped-def]
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=150 * 2**20, log_to_driver=False,
             logging_level=logging.ERROR)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli.app, cli._route(list(args)), prog_name="colorize")


def hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def make_folder(root: Path) -> None:
    """Nested sub-folders; gray, colour, 16-bit, RGBA, palette and EXIF-rotated pictures; one corrupt file."""
    fx.write(root / "gray.jpg", fx.photo(40, 56, 1, channels=1))
    fx.write(root / "rgb.png", fx.photo(36, 50, 2))
    fx.write(root / "sub" / "rgba.png",
             np.dstack([fx.photo(32, 24, 3), np.linspace(0, 255, 32 * 24).reshape(32, 24).astype(np.uint8)]))
    fx.write(root / "sub" / "deep" / "deep16.png", fx.photo(30, 20, 4, dtype=np.uint16))
    fx.write(root / "sub" / "gray16.tif", fx.photo(20, 30, 5, channels=1, dtype=np.uint16))
    (root / "palette.png").write_bytes(fx.palette_png((np.arange(20 * 16).reshape(20, 16) % 3).astype(np.uint8),
                                                      np.array([[200, 30, 30], [30, 200, 30], [40, 40, 40]], np.uint8)))
    (root / "sub" / "exif6.jpg").write_bytes(fx.jpeg_with_orientation(fx.photo(24, 40, 7), 6))
    (root / "sub" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))


def collect(results) -> Summary:  # type: ignore[no-untyped-def]
    summary = Summary()
    with results:
        for result in results:
            summary.add(result)
    return summary


def failures(summary: Summary, root: Path) -> dict[str, str]:
    return {str(Path(source).relative_to(root)): reason for source, reason in summary.failed}


def test_outputs_are_byte_identical_to_the_local_engine(ray_instance, tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "photos"
    make_folder(root)
    local = collect(Colorizer(tiny).colorize_folder(root, tmp_path / "local"))
    remote = collect(colorize_folder_ray(tiny, [root], tmp_path / "ray"))

    assert (remote.done, remote.skipped) == (local.done, local.skipped) == (7, 0)
    assert failures(remote, root) == failures(local, root)
    assert set(failures(remote, root)) == {"sub/corrupt.png"}
    assert hashes(tmp_path / "ray") == hashes(tmp_path / "local")  # every file, byte for byte, same names
    assert len(hashes(tmp_path / "ray")) == 7
    assert imageio.read(tmp_path / "ray" / "sub" / "deep" / "deep16.png").dtype == np.uint16
    assert imageio.read(tmp_path / "ray" / "sub" / "rgba.png").shape[2] == 4


def test_a_rerun_skips_and_overwrite_redoes(ray_instance, tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    for i in range(3):
        fx.write(root / f"p{i}.png", fx.photo(20, 30, i))
    out = tmp_path / "out"
    assert collect(Colorizer(tiny).colorize_folder(root, out)).done == 3  # either engine resumes the other's run
    before = hashes(out)
    stamp = (out / "p0.png").stat().st_mtime_ns
    again = collect(colorize_folder_ray(tiny, [root], out))
    assert (again.done, again.skipped) == (0, 3)
    assert (out / "p0.png").stat().st_mtime_ns == stamp
    redo = collect(colorize_folder_ray(tiny, [root], out, overwrite=True))
    assert (redo.done, redo.skipped) == (3, 0)
    assert (out / "p0.png").stat().st_mtime_ns != stamp
    assert hashes(out) == before


def test_the_command_reports_like_the_local_engine(ray_instance, tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    for i in range(3):
        fx.write(root / f"p{i}.png", fx.photo(20, 30, i))
    (root / "bad.jpg").write_bytes(b"not a picture")
    local = invoke(str(root), "-o", str(tmp_path / "local"), "-m", str(tiny))
    result = invoke(str(root), "-o", str(tmp_path / "ray"), "-m", str(tiny), "--engine", "ray")
    assert result.exit_code == local.exit_code == 1, result.output
    text, expected = " ".join(result.output.split()), " ".join(local.output.split())
    assert f"failed {root / 'bad.jpg'}: not a readable picture" in text
    assert f"3 done, 0 skipped (output exists), 1 failed -> {tmp_path / 'ray'}" in text
    assert f"3 done, 0 skipped (output exists), 1 failed -> {tmp_path / 'local'}" in expected
    assert hashes(tmp_path / "ray") == hashes(tmp_path / "local")

    (root / "bad.jpg").unlink()
    again = invoke(str(root), "-o", str(tmp_path / "ray"), "-m", str(tiny), "--engine", "ray", "--workers", "1")
    assert again.exit_code == 0, again.output
    assert "0 done, 3 skipped (output exists), 0 failed" in " ".join(again.output.split())


def test_stop_finishes_the_pictures_in_flight_and_starts_no_more(ray_instance, tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    for i in range(40):
        fx.write(root / f"p{i:02d}.png", fx.photo(120, 160, i % 5))
    run = colorize_folder_ray(tiny, [root], tmp_path / "out")
    with run:
        first = next(run)
        run.stop()  # as on Ctrl+C
        rest = list(run)
    done = [r for r in [first, *rest] if r.status == "done"]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sorted(r.target.name for r in done) == written  # every file written is counted, no temporaries
    assert 1 <= len(done) < 40


def _record(status: str, *, bad: bool = False) -> dict:
    return {"source": "/in/a.png", "target": "/out/a.png", "status": status, "reason": "NaN" if bad else "",
            "seconds": 0.1, "bad_model_output": bad}


def test_records_become_results_and_a_broken_model_stops_the_run() -> None:
    run = RayRun([_record("done"), _record("stopped"), _record("failed", bad=True)])
    assert [(r.status, r.target) for r in run] == [("done", Path("/out/a.png")), ("failed", Path("/out/a.png"))]
    broken = RayRun([_record("failed", bad=True)] * (BAD_OUTPUT_STOP + 2))
    with pytest.raises(ModelOutputError, match=f"each of the first {BAD_OUTPUT_STOP} pictures"):
        list(broken)


def test_without_ray_the_message_says_what_to_install(tiny: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fx.write(tmp_path / "in" / "a.png", fx.photo(20, 20))
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    with pytest.raises(ConfigError, match="pip install 'labcolor\\[ray\\]'"):
        colorize_folder_ray(tiny, [tmp_path / "in"], tmp_path / "out")
    result = invoke(str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", str(tiny), "--engine", "ray")
    assert result.exit_code == 2
    assert f"error: {RAY_MISSING}" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_address_needs_the_ray_engine(tiny: Path, tmp_path: Path) -> None:
    fx.write(tmp_path / "in" / "a.png", fx.photo(20, 20))
    result = invoke(str(tmp_path / "in"), "-m", str(tiny), "--address", "auto")
    assert result.exit_code == 2 and "--address is for --engine ray" in result.output
