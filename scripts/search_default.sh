#!/usr/bin/env bash
# The hyperparameter search behind the default model (README, "What was tried").
# Each try is the recipe of scripts/train_default.sh with a few options changed (seed0 is the
# recipe itself, l1 its L1-only baseline). A try is trained, exported (fp32) and scored on val/
# with `colorize eval` (eval/); then its BatchNorm statistics are recalibrated
# (`colorize recalibrate`), exported and scored again (eval-recal/); and when the epoch with the
# lowest validation ΔE00 (best.pt) is not the last one, that checkpoint is scored too (eval-best/).
# Finished steps are skipped and an interrupted training resumes, so the script can be re-run
# until everything is done.
#   scripts/search_default.sh [PHOTOS_DIR] [RUNS_DIR] [TRY...]    (default: all tries, in order)
set -euo pipefail
photos=${1:-../shared/data/photos}
runs=${2:-runs/search}
shift $(( $# < 2 ? $# : 2 ))

declare -A tries=(
  [seed0]=""
  [l1]="--adv-weight 0"
  [lambda50]="--l1-weight 50"
  [seed1]="--seed 1"
  [max192]="--max-channels 192"  # 4.6 M parameters: fp32 is 18.5 MB, under the cap
  [size192]="--size 192 --epochs 40 --decay-start 20"
  [lrd1e-4]="--lr-d 1e-4"
  [seed2]="--seed 2"
  [base48]="--base-channels 48"
  # More seeds of the baseline: the GAN's ΔE00 margin over L1 is smaller than the seed spread.
  [l1-seed1]="--adv-weight 0 --seed 1"
  [l1-seed2]="--adv-weight 0 --seed 2"
  # Convergence: twice the epochs, the same share of them at a constant learning rate.
  [e120]="--seed 1 --epochs 120 --decay-start 60"
  [l1-e120]="--adv-weight 0 --seed 1 --epochs 120 --decay-start 60"
  # 192 px crops kept ΔE00 but lost colour at λ 100; a lower λ, with its own L1 baseline.
  [size192-l50]="--size 192 --epochs 40 --decay-start 20 --l1-weight 50"
  [l1-size192]="--adv-weight 0 --size 192 --epochs 40 --decay-start 20"
)
order=(seed0 l1 lambda50 seed1 max192 size192 lrd1e-4 seed2 base48
       l1-seed1 l1-seed2 e120 l1-e120 size192-l50 l1-size192)
[ $# -gt 0 ] && order=("$@")

score() {  # score MODEL OUT_DIR
  colorize eval "$1" --data "$photos/val" -o "$2"
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
