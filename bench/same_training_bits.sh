#!/usr/bin/env bash
# Whether two dsflow-run binaries train bit for bit alike: before a long
# benchmark (bench/fp8_training_seeds.sh) moves to a faster build mid-way,
# this shows that the change did not move a single bit of its results.
# Each binary trains the same plan for STEPS steps from scratch (checkpoint
# every STEPS/2 steps), then resumes a copy of the half-way checkpoint to the
# end. The two binaries' loss logs and checkpoints must be byte-identical, and
# each binary's resumed run must end on its own fresh run's checkpoint.
# Usage: bench/same_training_bits.sh OLD_BIN_DIR NEW_BIN_DIR [STEPS [FLAGS..]]
#        (default 30 steps; FLAGS go to dsflow-compile, e.g. --fp8)
# Prints one line per run and "same bits" or what differs; exit 1 if any.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,11p "$0" >&2; exit 2; }
old=$1 new=$2 steps=${3:-30}
shift $(($# < 3 ? $# : 3))
half=$((steps / 2))
[ "$half" -ge 1 ] || { echo "error: STEPS must be at least 2" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$old/dsflow-compile" models/small-v3.pbtxt --emit=plan --seq-len=64 --micro-batch=8 \
  --lr=1e-3 --warmup-steps=100 --total-steps=2000 --seed=1 "$@" -o "$work/plan"
train() { # BIN DIR STEPS [--resume]
  OPENBLAS_NUM_THREADS=1 DSFLOW_NUM_THREADS=1 "$1/dsflow-run" "$work/plan" \
    --data models/tinyshakespeare.txt --steps "$3" --log-interval "$half" \
    --val-fraction 0 --loss-log "$2.csv" --checkpoint-dir "$2" \
    --checkpoint-interval "$half" --init-std 0.02 "${@:4}" > "$2.log" 2>&1
  echo "$(basename "$1"): $(basename "$2"): $(tail -n 1 "$2.log")"
}
for side in old new; do
  bin=${!side}
  train "$bin" "$work/$side-fresh" "$steps"
  mkdir -p "$work/$side-resumed"
  cp -r "$work/$side-fresh/step-$half" "$work/$side-resumed/"
  echo "step-$half" > "$work/$side-resumed/latest"
  head -n $((half + 1)) "$work/$side-fresh.csv" > "$work/$side-resumed.csv"
  train "$bin" "$work/$side-resumed" "$steps" --resume
done
differ=0
for pair in "old-fresh.csv new-fresh.csv" "old-resumed.csv new-resumed.csv" \
            "old-fresh/step-$steps new-fresh/step-$steps" \
            "old-resumed/step-$steps new-resumed/step-$steps" \
            "new-fresh.csv new-resumed.csv" \
            "new-fresh/step-$steps new-resumed/step-$steps"; do
  set -- $pair
  if ! diff -rq "$work/$1" "$work/$2" > /dev/null; then
    echo "differ: $1 and $2"
    differ=1
  fi
done
[ "$differ" = 0 ] && echo "same bits: $steps steps fresh and $half resumed, losses and checkpoints"
exit "$differ"
