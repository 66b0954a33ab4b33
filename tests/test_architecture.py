"""The layers of docs/ARCHITECTURE.md hold: no wrong-way import, no cycle, a light runtime, no stray top-level names."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.import_layers import LAYERS, module_cycles, source_files, violations

REPO = Path(__file__).resolve().parents[1]


def test_no_import_crosses_a_layer_the_wrong_way() -> None:
    assert len(source_files(REPO)) > 30  # the walk really sees the package
    assert violations(REPO) == []


def test_no_import_cycles() -> None:
    assert module_cycles(REPO) == []


def _copy_tree(dest: Path) -> Path:
    for name in ("__init__.py", "__main__.py", "cli.py"):
        shutil.copy(REPO / name, dest / name)
    for folder in ("core", "runtime", "evaluation", "trainer", "export"):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("*.onnx", "__pycache__"))
    return dest


def test_the_checker_catches_wrong_way_imports_and_cycles(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    # A lazy import of the trainer inside the runtime, and torch inside the base layer.
    with open(root / "runtime" / "jobs.py", "a") as f:
        f.write("\n\ndef _sneaky():\n    from labcolor.trainer.train import train\n    return train\n")
    with open(root / "core" / "color.py", "a") as f:
        f.write("\nimport torch\n")
    found = violations(root)
    assert any("runtime/jobs.py" in v and "labcolor.trainer.train" in v and "(development)" in v for v in found), found
    assert any("core/color.py" in v and "imports torch" in v for v in found), found
    # A module-level cycle inside one layer (allowed by the layer rule, refused as a cycle).
    assert module_cycles(root) == []
    (root / "core" / "metrics.py").write_text("from labcolor.core import imageio\n")
    (root / "core" / "imageio.py").write_text("from labcolor.core import metrics\n")
    assert ["labcolor.core.imageio", "labcolor.core.metrics", "labcolor.core.imageio"] in module_cycles(root)


def test_layers_cover_every_source_folder() -> None:
    prefixes = {p for _, group in LAYERS for p in group}
    for folder in ("core", "runtime", "evaluation", "trainer", "export"):
        assert f"labcolor.{folder}" in prefixes


def test_importing_the_runtime_pulls_neither_torch_nor_the_cli() -> None:
    code = textwrap.dedent("""
        import sys
        import labcolor.runtime
        from labcolor.runtime import Colorizer, LabcolorError
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnx', 'typer', 'rich', 'matplotlib')
                       or m.startswith('labcolor.cli') or m.startswith('labcolor.commands')
                       or m.startswith('labcolor.trainer') or m.startswith('labcolor.export'))
        print(heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_the_distribution_installs_only_the_labcolor_package() -> None:
    from importlib.metadata import distribution

    dist = distribution("labcolor")
    top = (dist.read_text("top_level.txt") or "").split()
    # An editable install lists its finder; a wheel install lists the package itself. Never runtime/trainer/...
    assert not {"runtime", "trainer", "export", "cli", "core", "evaluation"} & set(top), top
    entry = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert entry == {"colorize": "labcolor.__main__:main"}
