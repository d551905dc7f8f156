#!/usr/bin/env bash
# Compiles DeepSeek-V3 671B for 256 nodes x 8 GPUs (PP 16, EP 64, DP 2,
# DualPipe, FP8, recompute of RMSNorm, MLA up-projections and SwiGLU: DeepSeek's
# recipe; 32 micro-batches of one 4096-token sequence),
# times the compile, and writes dsflow-plan's pipeline analysis (stages, bubble,
# bytes sent between stages, memory per GPU) to
# bench/results/deepseek-v3-2048gpu.md.
# Usage: bench/plan_2048gpu.sh   (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/plan-2048gpu
mkdir -p "$out" bench/results
flags=(--emit=plan --seq-len=4096 --micro-batch=1 --micro-batches=32 --fp8
       --recompute=all --bf16-moments --nodes 256 --ranks-per-node 8 --pp 16
       --ep 64 --dp 2)
start=$(date +%s.%N)
build/bin/dsflow-compile models/deepseek-v3-671b.pbtxt "${flags[@]}" -o "$out/v3.plan"
end=$(date +%s.%N)
build/bin/dsflow-plan "$out/v3.plan" --timeline "$out/v3-dualpipe.svg" > "$out/summary.txt"
{
  echo "# DeepSeek-V3 671B on 2048 GPUs: the compiled plan"
  echo
  echo "Command: \`bench/plan_2048gpu.sh\` (commit $(git rev-parse --short HEAD)), i.e."
  echo "\`dsflow-compile models/deepseek-v3-671b.pbtxt ${flags[*]}\`"
  echo "then \`dsflow-plan\`. Compile time $(printf '%.1f' "$(echo "$end - $start" | bc)") s on the 2-core"
  echo "development machine; plan file $(stat -c %s "$out/v3.plan") bytes (one program for every"
  echo "rank: its size does not depend on the world size)."
  echo
  echo "Memory per GPU is an estimate (compiler/Stages/RankMemory.h; docs/pipeline.md"
  echo "says what it counts)."
  echo
  echo '```'
  sed -n '/^cluster:/,/^memory plan:/p' "$out/summary.txt" | sed '$d'
  sed -n '/^schedule /,/^largest:/p' "$out/summary.txt"
  echo '```'
} > bench/results/deepseek-v3-2048gpu.md
cat bench/results/deepseek-v3-2048gpu.md
