#!/usr/bin/env bash
# One-shot GPU check of the runtime, for a session lent a GPU machine (or any machine with onnxruntime-gpu):
#   scripts/bench_gpu.sh [MODEL] [OUT_DIR]
# 1. Proves the CUDA provider really runs the model (Colorizer(device="cuda") refuses to start otherwise, and the
#    session's providers are printed).
# 2. Batched inference alone: images/s at 256x192 for batch sizes 1..64.
# 3. The folder pipeline on CUDA vs its I/O bound (scripts/bench_folder.py) at the default batch (8) and 32.
# Needs numpy, OpenCV, Pillow and onnxruntime-gpu importable (e.g. PYTHONPATH of carried wheels); writes
# OUT_DIR/gpu.txt (default: $OUT if set, else runs/gpu).
set -euo pipefail
model=${1:-runtime/models/default.onnx}
out=${2:-${OUT:-runs/gpu}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# Importable as `labcolor` without installing (the machine may have no network): the repo root is the package.
mkdir -p /tmp/labcolor-path && ln -sfn "$PWD" /tmp/labcolor-path/labcolor
export PYTHONPATH=/tmp/labcolor-path${PYTHONPATH:+:$PYTHONPATH}
{
  python3 - "$model" <<'EOF'
import sys, time
import numpy as np
import onnxruntime as ort
from labcolor.runtime import Colorizer

print("onnxruntime", ort.__version__, "providers available:", ort.get_available_providers())
c = Colorizer(sys.argv[1], device="cuda")  # DeviceError when CUDA does not really load
print("session providers:", c.session.get_providers(), "-> device", c.device)
for batch in (1, 2, 4, 8, 16, 32, 64):
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 1, 192, 256)).astype(np.float32)
    for _ in range(3):
        c.predict(x)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < 2.0:
        c.predict(x)
        runs += 1
    rate = runs * batch / (time.perf_counter() - start)
    print(f"inference only, batch {batch:2d}: {rate:8.1f} images/s at 256x192")
EOF
  for batch in 8 32; do
    python3 scripts/bench_folder.py --model "$model" --device cuda --batch-size "$batch" --images 256 --repeat 2
  done
} 2>&1 | tee "$out/gpu.txt"
