#!/usr/bin/env bash
# Times building the whole DeepSeek-V3 671B graph from its description (read,
# validate, build, verify, print) against a peer run side by side: MLIR's own parser
# reading and verifying the same printed graph (dsflow-opt). Median of N runs each.
# Usage: bench/frontend_671b.sh [N]   (writes bench/results/frontend-671b.md)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
bin=build/bin
model=models/deepseek-v3-671b.pbtxt
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/dsflow-compile" "$model" --emit=graph -o "$tmp/graph.mlir"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_runs() {
  for _ in $(seq "$runs"); do
    start=$(date +%s.%N)
    "$@" > /dev/null
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f\n", b - a}'
  done | median
}

build=$(time_runs "$bin/dsflow-compile" "$model" --emit=graph -o /dev/null)
parse=$(time_runs "$bin/dsflow-opt" "$tmp/graph.mlir" -o /dev/null)
ratio=$(awk -v a="$build" -v b="$parse" 'BEGIN {printf "%.2f", a / b}')
{
  echo "# Building the 671B graph"
  echo
  echo "Command: \`bench/frontend_671b.sh $runs\` on $(nproc) cores, $(date -u +%Y-%m-%d)."
  echo "Graph: $(grep -c 'graph.param' "$tmp/graph.mlir") parameter tensors, $(wc -c < "$tmp/graph.mlir") bytes printed."
  echo
  echo "| what | median of $runs (s) |"
  echo "|---|---|"
  echo "| dsflow-compile: read + validate + build + verify + print | $build |"
  echo "| peer, dsflow-opt: MLIR parse + verify + print of the same graph | $parse |"
  echo "| ratio (build / parse) | $ratio |"
  echo
  echo "Goal (issue 2): building the whole 671B graph takes under 5 s here."
} | tee bench/results/frontend-671b.md
