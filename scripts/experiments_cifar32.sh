#!/usr/bin/env bash
# The classic 32x32 comparisons (issue 5), on CIFAR-10 or on the CIFAR-format stand-in made
# from the photo corpus. Usage:
#   scripts/experiments_cifar32.sh [DATA] [RUNS_DIR] [EPOCHS]
#   DATA: a CIFAR-10 archive/folder (default: data/photos-cifar, made by
#         python scripts/make_cifar_from_photos.py ../shared/data/photos data/photos-cifar --crops-per-image 16 --seed 0)
# Every run shares one recipe (U-Net depth 5, base 32; Adam 2e-4, beta1 0.5; lambda 100;
# batch 64; seed 0) and changes one thing against the GAN baseline (global D, batch norm,
# vanilla loss, real label 0.9, no noise input). Then each generator is exported and all
# are scored by `colorize eval` on the test batch.
set -euo pipefail
data=${1:-data/photos-cifar}
runs=${2:-runs/cifar32}
epochs=${3:-10}
common=(--data "$data" --size 32 --depth 5 --base-channels 32 --batch-size 64 --epochs "$epochs"
        --workers 1 --seed 0 --sample-count 8)
declare -A variant=(
  [gan-global-bn]=""
  [l1-only]="--adv-weight 0"
  [gan-global-sn]="--d-norm spectral"
  [gan-patch-bn]="--d-kind patch"
  [gan-global-bn-noise]="--noise-channels 1"
)
order=(gan-global-bn l1-only gan-global-sn gan-patch-bn gan-global-bn-noise)
for name in "${order[@]}"; do
  if [ ! -f "$runs/$name/model.onnx" ]; then
    if [ -f "$runs/$name/checkpoint.pt" ]; then  # an interrupted run continues where it stopped
      colorize -q train --resume "$runs/$name/checkpoint.pt" --epochs "$epochs"
    else
      # shellcheck disable=SC2086  # the variant's options are meant to split
      colorize -q train "${common[@]}" ${variant[$name]} --out "$runs/$name"
    fi
    colorize -q export "$runs/$name/checkpoint.pt" -o "$runs/$name/model.onnx"
  fi
done
models=()
for name in "${order[@]}"; do models+=("$runs/$name/model.onnx"); done
colorize eval "${models[@]}" --data "$data" -o "$runs/eval"
