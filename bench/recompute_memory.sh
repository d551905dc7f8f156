#!/usr/bin/env bash
# Activation memory with and without recomputation (dsflow-recompute):
#  - small-v3 (sequence 128, micro-batch 8, FP32): the plan's arena peak, the peak
#    dsflow-run measures over one step, and the bytes kept for the backward;
#  - one pipeline stage of DeepSeek-V3 (bench/models/deepseek-v3-stage.pbtxt: 4
#    MoE layers, BF16) at DeepSeek's shape, sequence 4096, micro-batch 1: from the
#    compile-time plan only.
# Usage: bench/recompute_memory.sh   (writes bench/results/recompute-memory.md)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
field() { "$bin/dsflow-plan" "$1" | awk -v key="$2" '!found && $0 ~ key { for (i = 1; i <= NF; ++i) if ($i == "bytes") { print $(i - 1); found = 1 } }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

{
  echo "# Activation memory with recomputation"
  echo
  echo "Command: \`bench/recompute_memory.sh\` ($(date -u +%Y-%m-%d))."
  echo "\"Kept\" is the activation bytes live when the backward starts; its drop is"
  echo "the analytic count of docs/recompute.md (asserted in test/unit/RecomputeMemoryTest.cpp)."
  echo
  echo "## small-v3, sequence 128, micro-batch 8, FP32"
  echo
  echo "| --recompute | arena planned (MiB) | arena measured (MiB) | kept for backward (MiB) | kept saving (MiB) |"
  echo "|---|---|---|---|---|"
  base=""
  for r in none rmsnorm mla_up_proj swiglu all; do
    "$bin/dsflow-compile" models/small-v3.pbtxt --emit=plan --seq-len=128 --micro-batch=8 \
      --recompute=$r -o "$tmp/$r.plan"
    planned=$(field "$tmp/$r.plan" activations)
    kept=$(field "$tmp/$r.plan" "kept for the backward")
    measured=$("$bin/dsflow-run" "$tmp/$r.plan" --data models/tinyshakespeare.txt --steps 1 \
      --val-fraction 0 --print-memory | sed -n 's/.*measured peak \([0-9]*\) bytes.*/\1/p')
    base=${base:-$kept}
    echo "| $r | $(mib "$planned") | $(mib "$measured") | $(mib "$kept") | $(mib $((base - kept))) |"
  done
  echo
  echo "## DeepSeek-V3, one stage of 4 MoE layers, sequence 4096, micro-batch 1, BF16 (plan only)"
  echo
  echo "| --recompute | arena planned (GiB) | kept for backward (GiB) |"
  echo "|---|---|---|"
  for r in none all; do
    "$bin/dsflow-compile" bench/models/deepseek-v3-stage.pbtxt --emit=plan --seq-len=4096 \
      --micro-batch=1 --recompute=$r -o "$tmp/stage-$r.plan"
    planned=$(field "$tmp/stage-$r.plan" activations)
    kept=$(field "$tmp/stage-$r.plan" "kept for the backward")
    echo "| $r | $(awk -v b="$planned" 'BEGIN { printf "%.2f", b / 2^30 }') | $(awk -v b="$kept" 'BEGIN { printf "%.2f", b / 2^30 }') |"
  done
  echo
  echo "The stage plan includes the embedding, output head and loss that the graph"
  echo "builder always emits (pipeline partitioning, issue 6, will drop them from"
  echo "middle stages); its 1.06 GB of BF16 logits and their gradient are part of the peak."
} | tee bench/results/recompute-memory.md
