#!/usr/bin/env bash
# Recipe of the default model shipped in runtime/models/default.onnx.
# Trained on the CPU of a 2-core machine on the project's photo corpus (train/ only,
# validated on val/; see the README's table of what was tried).
#   SHIP=1 [SATURATION=S] scripts/train_default.sh PHOTOS_DIR RUN_DIR
#       the recipe below (try ema of scripts/search_default.sh); with SHIP=1 its fp16-weights export, with the colour
#       strength S chosen on val/ recorded in its metadata, becomes runtime/models/default.onnx
#   BASELINE=l1 scripts/train_default.sh [PHOTOS_DIR] [RUN_DIR] [OPTIONS]  the L1-only U-Net, same recipe;
#       SHIP=1 BASELINE=l1 ... is the shipped default
#   scripts/train_default.sh PHOTOS_DIR RUN_DIR --d-norm batch   a variant: extra options override the recipe's
#   TRAIN_ONLY=1 scripts/train_default.sh ...                    train, no exports (scripts/search_default.sh)
set -euo pipefail
# FROM picks the checkpoint to export: checkpoint.pt (the last epoch, default) or best.pt.
from_name=${FROM:-checkpoint.pt}
photos=${1:-../shared/data/photos}
run=${2:-runs/default}
shift $(( $# < 2 ? $# : 2 ))
options=(
  --data "$photos/train" --val "$photos/val"
  --size 128 --crop-scale 0.25
  --depth 6 --base-channels 32 --max-channels 256 --g-norm batch --dropout 0.5
  --d-kind patch --d-norm spectral --d-base-channels 32 --d-layers 3
  --gan-loss vanilla --adv-weight 1 --l1-weight 100 --real-label 0.9
  --batch-size 16 --epochs 80 --lr-g 2e-4 --lr-d 2e-4 --lr-decay linear --decay-start 40 --ema 0.999
  --workers 1 --seed 1 --sample-count 8
  --out "$run"
  "$@"  # later options win
)
# BASELINE=l1: the same recipe without the discriminator (the later --adv-weight wins). It is what ships
# since 2026-12: on val/ it beat the GAN at every colour strength (README).
[ "${BASELINE:-}" = "l1" ] && options+=(--adv-weight 0)
colorize train "${options[@]}"
[ "${TRAIN_ONLY:-}" = "1" ] && exit 0  # scripts/search_default.sh exports and scores its tries itself
# fp32 (29 MB) is over the 20 MB cap; fp16-weights (14.6 MB: float16 storage, float32 compute) keeps the
# validation scores, runs at fp32 speed on CPU, and ships. The true fp16 graph is made for comparison (GPUs).
# int8 is made last, for comparison (it may be refused when over its error bound).
# SATURATION: the colour strength chosen on val/ (README), recorded in the model as its default.
from=$run/$from_name
strength=()
[ -n "${SATURATION:-}" ] && strength=(--saturation "$SATURATION")
colorize export "$from" -o "$run/model.onnx" "${strength[@]}"
colorize export "$from" --fp16-weights -o "$run/model-fp16-weights.onnx" "${strength[@]}"
colorize export "$from" --fp16 -o "$run/model-fp16.onnx" "${strength[@]}"
if [ "${SHIP:-}" = "1" ]; then
  cp "$run/model-fp16-weights.onnx" runtime/models/default.onnx
fi
colorize export "$from" --int8 --calibration "$photos/train" -o "$run/model-int8.onnx" "${strength[@]}" ||
  echo "int8 export refused (over its error bound); fp16-weights is the one that ships" >&2
