"""The model shipped inside the package: present, small, self-describing, and really colorizing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from labcolor.runtime import Colorizer
from labcolor.core import color
from labcolor.runtime.colorizer import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "photos"


def test_shipped_model_is_in_the_package_and_within_the_size_cap() -> None:
    assert DEFAULT_MODEL.is_file()
    assert DEFAULT_MODEL.stat().st_size <= 20 * 2**20


def test_shipped_model_describes_how_it_was_trained() -> None:
    meta = Colorizer(device="cpu").metadata
    training = meta.training
    assert meta.train_size >= 64  # a working size for photos, not CIFAR's 32 px
    # The recipe chosen on val/ (README, "The default model"): the U-Net of the GAN recipe trained with the
    # L1 loss alone, which beat the GAN at every colour strength there, with weight averaging.
    assert training["losses"]["l1_weight"] > 0 and training["config"]["ema"] > 0
    assert 0 < meta.saturation <= 4
    assert "photos/train" in training["dataset"]
    assert training["epochs"] >= 1 and training["steps"] >= 1


def test_shipped_model_colorizes_a_gray_photo_and_keeps_its_lightness() -> None:
    gray = cv2.imread(str(EXAMPLES / "photo_Autumn_gray.jpg"), cv2.IMREAD_GRAYSCALE)
    out = Colorizer(device="cpu").colorize(gray)
    assert out.shape == (*gray.shape, 3) and out.dtype == np.uint8
    lab = color.rgb_to_lab(out)
    # Full-resolution lightness is the input's (up to 8-bit rounding and gamut clipping).
    assert np.abs(lab[..., 0] - color.gray_to_l(gray)).mean() < 1.0
    # And it adds colour: a trained generator does not return gray.
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    assert chroma.mean() > 3.0


def test_main_job_on_the_example_folder_without_torch(tmp_path: Path) -> None:
    out = tmp_path / "colorized"
    code = (
        "import sys\nfrom labcolor import cli\n"
        f"sys.argv = ['colorize', '-q', {str(EXAMPLES)!r}, '-o', {str(out)!r}, '--device', 'cpu']\n"
        "try:\n    cli.main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'torch' not in sys.modules, 'the main job imported torch'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    written = sorted(p.name for p in out.rglob("*.jpg"))
    assert written == sorted(p.name for p in EXAMPLES.glob("*.jpg"))
