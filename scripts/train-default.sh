#!/usr/bin/env bash
# The main job on the bundled default: compile models/small-v3.pbtxt to a plan and
# train it on Tiny Shakespeare on the CPU. Extra arguments go to dsflow-run
# (e.g. --steps 50). Output: build/default/ (plan, checkpoints, loss log).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/default
rm -rf "$out/checkpoints"  # a fresh run each time
mkdir -p "$out"
steps=300
set -x
build/bin/dsflow-compile models/small-v3.pbtxt --emit=summary
build/bin/dsflow-compile models/small-v3.pbtxt --emit=plan --seq-len=128 \
  --micro-batch=8 --micro-batches=1 --lr=2e-3 --warmup-steps=30 \
  --total-steps=$steps --bias-update-speed=0.01 -o "$out/step.plan"
build/bin/dsflow-run "$out/step.plan" --data models/tinyshakespeare.txt \
  --steps $steps --log-interval 10 --eval-interval 100 \
  --checkpoint-dir "$out/checkpoints" --checkpoint-interval 100 \
  --loss-log "$out/loss.csv" --print-memory "$@"
