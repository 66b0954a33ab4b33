"""`colorize eval` end to end (labcolor.evaluation and the CLI) and the CIFAR-from-photos script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.color import deltaE_ciede2000
from typer.testing import CliRunner

from labcolor import cli
from labcolor.core import color, metrics
from labcolor.evaluation.evaluate import BASELINE, EvalError, evaluate, grayscale_input, load_dataset, model_names
from labcolor.evaluation.report import write_outputs
from labcolor.runtime import Colorizer
from labcolor.trainer.cifar import load_cifar10, read_batch
from tests import cifar_fixture
from tests import runtime_fixtures as fx
from tests.conftest import synthetic_photo, write_photos

REPO = Path(__file__).resolve().parent.parent
CONST_AB_N = (-0.1, 0.2)  # the constant model's output: ab = (-11, 22) Lab units


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "tiny": fx.make_tiny_model(folder / "tiny.onnx"),
        "const": fx.make_constant_model(folder / "const.onnx", CONST_AB_N),
    }


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six colour photos (nested, four formats), one grayscale file and one broken file."""
    root = tmp_path_factory.mktemp("data") / "photos"
    write_photos(root, 6, size=(48, 64))
    gray = cv2.cvtColor(synthetic_photo(np.random.default_rng(5), 40, 40), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(root / "gray.png"), gray)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return root


def test_eval_folder_end_to_end(models: dict[str, Path], photos: Path, tmp_path: Path) -> None:
    result = evaluate([models["tiny"], models["const"]], photos, device="cpu", report_images=4, grid_images=3)
    assert [m.name for m in result.models] == [BASELINE, "tiny", "const"]
    assert len(result.data.pictures) == 6
    assert {name for name, _ in result.data.skipped} == {"gray.png", "broken.jpg"}
    assert result.data.pictures[0].name == "photo_001.jpg"  # sorted walk; sub0/ comes after the files
    assert any(p.name.startswith("sub0/") for p in result.data.pictures)
    for m in result.models:
        assert len(m.per_image) == 6 and set(metrics.METRIC_KEYS) <= set(m.aggregate)
    baseline = result.models[0]
    assert baseline.aggregate["colourfulness_ratio"] == pytest.approx(0.0, abs=0.01)  # gray input: no colour
    assert baseline.images_per_s is None and result.models[1].images_per_s > 0
    assert sorted(result.ranking) == list(range(6))
    ranked = [result.models[1].per_image[i]["ciede2000"] for i in result.ranking]
    assert ranked == sorted(ranked)  # best (lowest dE00) first

    # A stored per-picture score is what the public runtime API + metrics give for that picture.
    truth = result.data.pictures[2].rgb
    gray = grayscale_input(truth)
    colorized = Colorizer(models["tiny"], "cpu").colorize(gray)
    assert result.models[1].per_image[2] == pytest.approx(metrics.score(colorized, truth), nan_ok=True)
    assert result.models[0].per_image[2] == pytest.approx(metrics.score(gray, truth), nan_ok=True)

    paths = write_outputs(result, tmp_path / "eval")
    data = json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert data["kind"] == "folder" and data["images"] == 6 and len(data["skipped"]) == 2
    assert [m["name"] for m in data["models"]] == [BASELINE, "tiny", "const"]
    assert data["models"][1]["aggregate"]["ciede2000"] == pytest.approx(result.models[1].aggregate["ciede2000"])
    assert len(data["per_image"]) == 6 and set(data["per_image"][0]["scores"]) == {BASELINE, "tiny", "const"}

    page = paths["html"].read_text()
    summary = page[page.index("<h2>Scores"):page.index("<h2>Pictures")]
    assert all(f">{name}</td>" in summary for name in (BASELINE, "tiny", "const"))
    pictures = page[page.index("<h2>Pictures"):]
    rows = re.findall(r'<tr><td data-sort="(\d+)">', pictures)
    assert sorted(int(r) for r in rows) == [1, 2, 5, 6]  # 6 pictures, 4 shown: the 2 best and 2 worst
    assert "best 2 by dE00 of tiny" in pictures and "worst 2 (of 6)" in pictures
    assert pictures.count("<img src=\"data:image/") == 4 * 4  # gray, truth, tiny, const per row
    assert "<script>" in page and "sortable" in page

    grid = cv2.imread(str(paths["grid"]))
    assert grid is not None
    # 4 columns of 128 px; a 20 px header, then 3 rows of (96 px picture + 16 px caption), 4 px gaps.
    assert grid.shape == (20 + 3 * (96 + 16) + 3 * 4, 4 * 128, 3)


def test_eval_scores_exactly_what_the_folder_pipeline_writes(models: dict[str, Path], photos: Path,
                                                              tmp_path: Path) -> None:
    """`colorize eval` and `colorize PATH` are one path: the files written score exactly as eval says."""
    data = load_dataset(photos, resize=40)  # 40 px: below the tiny model's 64, above its train_size 32
    grays = tmp_path / "grays"
    grays.mkdir()
    for i, picture in enumerate(data.pictures):
        cv2.imwrite(str(grays / f"{i:02d}.png"), cv2.cvtColor(grayscale_input(picture.rgb), cv2.COLOR_RGB2BGR))
    result = evaluate([models["tiny"]], data, device="cpu", saturations=[1.0, 0.0])
    assert [m.name for m in result.models] == [BASELINE, "tiny@1", "tiny@0"]
    colorizer = Colorizer(models["tiny"], "cpu")
    done = [r for r in colorizer.colorize_folder(grays, tmp_path / "out") if r.status == "done"]
    assert len(done) == len(data.pictures)
    for i, picture in enumerate(data.pictures):
        written = cv2.cvtColor(cv2.imread(str(tmp_path / "out" / f"{i:02d}.png")), cv2.COLOR_BGR2RGB)
        assert metrics.score(written, picture.rgb) == result.models[1].per_image[i]
        # Strength 0 gives the gray input back (within Lab round-trip rounding).
        assert result.models[2].per_image[i]["ciede2000"] == pytest.approx(
            result.models[0].per_image[i]["ciede2000"], abs=0.05)
    assert result.models[1].saturation == 1.0 and result.models[2].saturation == 0.0


def test_constant_model_known_values(models: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "uniform"
    folder.mkdir()
    truth_rgb = (180, 120, 90)
    cv2.imwrite(str(folder / "flat.png"), np.full((40, 40, 3), truth_rgb[::-1], np.uint8))
    result = evaluate([models["const"]], folder, device="cpu")
    s = result.models[1].per_image[0]

    truth_lab = color.rgb_to_lab(np.array([[truth_rgb]], np.uint8)).astype(np.float64)[0, 0]
    pred_lab = np.array([truth_lab[0], CONST_AB_N[0] * 110, CONST_AB_N[1] * 110])  # L kept, ab = the constant
    # 8-bit RGB rounding moves Lab by well under 1 unit, so the ideal values hold to a small tolerance.
    assert s["ciede2000"] == pytest.approx(deltaE_ciede2000(truth_lab, pred_lab), abs=0.5)
    error = np.hypot(*(pred_lab[1:] - truth_lab[1:]))
    assert 20 < error < 140
    assert s["auc"] == pytest.approx((150 - error) / 150, abs=0.01)
    assert s["accuracy"] == 0.0  # a is off by far more than 5.1
    pred_rgb = color.lab_to_rgb(pred_lab[None, None].astype(np.float32))
    r, g, b = (float(v) for v in pred_rgb[0, 0])
    expected_m = 0.3 * np.hypot(r - g, 0.5 * (r + g) - b)  # a flat picture: only the mean term
    truth_m = 0.3 * np.hypot(180 - 120, 0.5 * (180 + 120) - 90)
    assert s["colourfulness_ratio"] == pytest.approx(expected_m / truth_m, rel=0.02)
    mse = np.mean((pred_rgb[0, 0].astype(float) - truth_rgb) ** 2)
    assert s["psnr"] == pytest.approx(10 * np.log10(255**2 / mse), abs=0.5)
    assert s["ssim"] < 1


def test_cifar_fixture_as_data(models: dict[str, Path], tmp_path: Path) -> None:
    cifar_fixture.write_fixture_folder(tmp_path)
    result = evaluate([models["tiny"]], tmp_path, device="cpu")
    assert result.data.kind == "cifar10" and len(result.data.pictures) == cifar_fixture.NUM_TEST
    expected, labels = cifar_fixture.expected_test()
    for i, picture in enumerate(result.data.pictures):
        assert picture.name == f"{i:05d}_{cifar_fixture.LABEL_NAMES[labels[i]]}"
        assert np.array_equal(picture.rgb, expected[i])
    assert result.models[1].size == "longer side 32..64 px"  # train_size .. inference_size
    # 32x32 pictures are colorized at 32x32: between the two, so neither enlarged nor shrunk.
    assert Colorizer(models["tiny"], "cpu").prepare(expected[0], bgr=False).crop == (32, 32)
    limited = evaluate([models["tiny"]], tmp_path / cifar_fixture.FOLDER, device="cpu", limit=2)
    assert len(limited.data.pictures) == 2


def test_limit_and_resize(photos: Path) -> None:
    data = load_dataset(photos, limit=2, resize=32)
    assert len(data.pictures) == 2
    assert all(max(p.rgb.shape[:2]) == 32 and p.rgb.dtype == np.uint8 for p in data.pictures)
    with pytest.raises(EvalError, match="no usable colour pictures"):
        load_dataset(photos / "gray.png")
    with pytest.raises(FileNotFoundError):
        load_dataset(photos / "missing")


def test_model_names_are_unique() -> None:
    assert model_names([Path("a/model.onnx"), Path("b/model.onnx"), Path("c/x.onnx")]) == ["a/model", "b/model", "x"]
    assert model_names([Path("runs/grayscale.onnx")]) == ["runs/grayscale"]  # never the baseline's name


def test_cli_eval(models: dict[str, Path], photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = CliRunner()
    result = runner.invoke(cli.app, ["eval", str(models["tiny"]), str(models["const"]), "--data", str(photos),
                                     "-o", str(out), "--device", "cpu", "--grid-images", "2"])
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in (BASELINE, "tiny", "const", "dE00"))
    assert {p.name for p in out.iterdir()} == {"metrics.json", "report.html", "grid.png"}
    missing = runner.invoke(cli.app, ["eval", str(tmp_path / "nope.onnx"), "--data", str(photos)])
    assert missing.exit_code == 2 and "model file not found" in missing.output
    bad = runner.invoke(cli.app, ["eval", str(models["tiny"]), "--data", str(photos), "--rank-by", "speed"])
    assert bad.exit_code == 2 and "unknown metric" in bad.output
    strengths = runner.invoke(cli.app, ["eval", str(models["tiny"]), "--data", str(photos), "-o", str(out),
                                        "--device", "cpu", "--saturation", "0,1.5"])
    assert strengths.exit_code == 0, strengths.output
    saved = json.loads((out / "metrics.json").read_text())
    assert [m["name"] for m in saved["models"]] == [BASELINE, "tiny@0", "tiny@1.5"]
    assert [m["saturation"] for m in saved["models"]] == [None, 0.0, 1.5]
    typo = runner.invoke(cli.app, ["eval", str(models["tiny"]), "--data", str(photos), "--saturation", "1;2"])
    assert typo.exit_code == 2 and "--saturation" in typo.output


def test_evaluation_code_never_imports_torch() -> None:
    code = ("import sys, labcolor.evaluation.evaluate, labcolor.evaluation.report, labcolor.core.metrics, labcolor.trainer.curves; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --------------------------------------------------------------------------- scripts/make_cifar_from_photos.py


def test_make_cifar_from_photos_round_trips(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    colours = {"train/cat_a.png": (200, 30, 40), "train/dog_b.jpg": (20, 180, 60), "train/sub/cat_c.png": (10, 20, 230),
               "val/dog_d.png": (240, 240, 10), "val/cat_e.png": (120, 0, 160)}
    for rel, rgb in colours.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # Flat colours (JPEG keeps a flat 8x8-aligned picture exactly): every crop of a photo is that colour.
        cv2.imwrite(str(path), np.full((64, 96, 3), rgb[::-1], np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])
    script = cifar_fixture.load_photo_script()
    assert script.main([str(src), str(tmp_path / "out"), "--crops-per-image", "3", "--seed", "1"]) == 0

    train, test = load_cifar10(tmp_path / "out", "train"), load_cifar10(tmp_path / "out", "test")
    assert len(train) == 9 and len(test) == 6 and train.images.shape[1:] == (32, 32, 3)
    assert test.label_names[:2] == ["cat", "dog"] and test.label_names[2] == "unused_2"
    names = read_batch(tmp_path / "out" / "cifar-10-batches-py" / "test_batch")["filenames"]
    for image, label, name in zip(test.images, test.labels, names):
        rel = name.decode().split("#")[0]
        expected = np.array(colours[rel], np.int16)
        assert np.abs(image.astype(np.int16) - expected).max() <= 2, rel  # the crop came from that photo
        assert test.label_names[label] == Path(rel).stem.split("_")[0]
    assert set(train.labels.tolist()) == {0, 1}

    # Same seed, same files; another seed, other crops (here: another order).
    script.main([str(src), str(tmp_path / "again"), "--crops-per-image", "3", "--seed", "1"])
    assert np.array_equal(load_cifar10(tmp_path / "again", "train").images, train.images)
    script.main([str(src), str(tmp_path / "other"), "--crops-per-image", "3", "--seed", "2", "--labels", "zero"])
    other = load_cifar10(tmp_path / "other", "train")
    assert not np.array_equal(other.images, train.images) and set(other.labels.tolist()) == {0}


def test_make_cifar_script_runs_from_the_command_line(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("val", 1)):
        (src / split).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(src / split / f"stamp_{i}.png"), synthetic_photo(rng, 50, 70))
    run = subprocess.run([sys.executable, "scripts/make_cifar_from_photos.py", str(src), str(tmp_path / "out"),
                          "--crops-per-image", "2"], cwd=REPO, capture_output=True, text=True, check=True)
    assert run.stdout.count("\n") == 1 and "4 train + 2 test 32x32 crops from 3 photos" in run.stdout
    again = subprocess.run([sys.executable, "scripts/make_cifar_from_photos.py", str(src), str(tmp_path / "out")],
                           check=False, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr
