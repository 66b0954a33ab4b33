#!/usr/bin/env bash
# The hyperparameter search behind the default model (README, "What was tried").
# Each try is the recipe of scripts/train_default.sh with a few options changed; it is trained,
# exported (fp32) and scored on val/ with `colorize eval`. Finished tries are skipped and an
# interrupted one resumes, so the script can be re-run until everything is done.
#   scripts/search_default.sh [PHOTOS_DIR] [RUNS_DIR] [TRY...]    (default: all tries, in order)
set -euo pipefail
photos=${1:-../shared/data/photos}
runs=${2:-runs/search}
shift $(( $# < 2 ? $# : 2 ))

declare -A tries=(
  [lambda50]="--l1-weight 50"
  [seed1]="--seed 1"
  [lrd1e-4]="--lr-d 1e-4"
  [size192]="--size 192 --epochs 40 --decay-start 20"
  [base48]="--base-channels 48"
)
order=(lambda50 seed1 lrd1e-4 size192 base48)
[ $# -gt 0 ] && order=("$@")

mkdir -p "$runs"
for name in "${order[@]}"; do
  run="$runs/$name"
  if [ -f "$run/eval/metrics.json" ]; then
    echo "== $name: done"; continue
  fi
  echo "== $name: ${tries[$name]}"
  resume=()
  [ -f "$run/checkpoint.pt" ] && resume=(--resume "$run/checkpoint.pt")
  # shellcheck disable=SC2086  # the option strings are meant to split into words
  TRAIN_ONLY=1 scripts/train_default.sh "$photos" "$run" ${tries[$name]} "${resume[@]}"
  colorize export "$run/checkpoint.pt" -o "$run/model.onnx"
  colorize eval "$run/model.onnx" --data "$photos/val" -o "$run/eval"
done
