#!/usr/bin/env bash
# The hyperparameter search behind the default model (README, "What was tried").
# Each try is the recipe of scripts/train_default.sh with a few options changed (ema is the
# recipe itself, l1 its L1-only baseline). A try is trained, exported (fp32) and scored on val/
# with `colorize eval` at several colour strengths (eval/); then its BatchNorm statistics are recalibrated
# (`colorize recalibrate`), exported and scored again (eval-recal/); and when the epoch with the
# lowest validation ΔE00 (best.pt) is not the last one, that checkpoint is scored too (eval-best/).
# Finished steps are skipped and an interrupted training resumes, so the script can be re-run
# until everything is done.
#   scripts/search_default.sh [PHOTOS_DIR] [RUNS_DIR] [TRY...]    (default: all tries, in order)
set -euo pipefail
photos=${1:-../shared/data/photos}
runs=${2:-runs/search}
shift $(( $# < 2 ? $# : 2 ))

# Tries on the 1314-picture corpus (2026-12). The recipe (scripts/train_default.sh) is "ema";
# the earlier search on the 412-picture corpus is in git history and the README.
# The recipe runs 80 epochs since the l1-e80 try; the first three tries ran 40 (decay from 20).
e40="--epochs 40 --decay-start 20"
declare -A tries=(
  [ema]="$e40"                                      # GAN, EMA 0.999, 40 epochs
  [l1]="--adv-weight 0 $e40"                        # its L1-only baseline
  [l40]="--l1-weight 40 --epochs 24 --decay-start 12"  # a weaker L1 term for more colour, shorter
  [l1-e80]="--adv-weight 0"                         # the recipe (80 epochs, decay from 40), L1 only: shipped
)
order=(ema l1 l40 l1-e80)
[ $# -gt 0 ] && order=("$@")

score() {  # score MODEL OUT_DIR: on val/ only, at several colour strengths (the default is chosen there)
  colorize eval "$1" --data "$photos/val" -o "$2" --saturation 0.75,1,1.25,1.5,1.75,2
}

mkdir -p "$runs"
for name in "${order[@]}"; do
  run="$runs/$name"
  if [ ! -f "$run/eval/metrics.json" ]; then
    echo "== $name: ${tries[$name]}"
    resume=()
    [ -f "$run/checkpoint.pt" ] && resume=(--resume "$run/checkpoint.pt")
    # shellcheck disable=SC2086  # the option strings are meant to split into words
    TRAIN_ONLY=1 scripts/train_default.sh "$photos" "$run" ${tries[$name]} "${resume[@]}"
    colorize export "$run/checkpoint.pt" -o "$run/model.onnx"
    score "$run/model.onnx" "$run/eval"
  fi
  if [ ! -f "$run/eval-recal/metrics.json" ]; then
    echo "== $name: recalibrated BatchNorm statistics"
    colorize recalibrate "$run/checkpoint.pt" -o "$run/recal.pt"
    colorize export "$run/recal.pt" -o "$run/model-recal.onnx"
    score "$run/model-recal.onnx" "$run/eval-recal"
  fi
  if [ -f "$run/best.pt" ] && [ ! -f "$run/eval-best/metrics.json" ] && ! cmp -s "$run/best.pt" "$run/checkpoint.pt"; then
    echo "== $name: best.pt (epoch $(python -c "import torch,sys; print(torch.load(sys.argv[1], weights_only=True)['epoch'])" "$run/best.pt"))"
    colorize export "$run/best.pt" -o "$run/model-best.onnx"
    score "$run/model-best.onnx" "$run/eval-best"
  fi
done
