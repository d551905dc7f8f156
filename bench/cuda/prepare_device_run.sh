#!/usr/bin/env bash
# bench/cuda/prepare_device_run.sh [--tools] DIR [BUILD]
# Writes into DIR what bench/cuda/run_on_device.sh needs on a GPU machine that
# has CUDA but no dsflow build (no LLVM, Protobuf): the generated kernels'
# check cases with the CPU backend's outputs (FP32: tiny-v3, small-v3,
# tiny-variant's other code paths, tiny-odd's odd sizes), and
# the launches to time (DeepSeek-V3's sizes: one pipeline stage of 4 MoE
# layers, and DeepSeek-V2-Lite for the dense SwiGLU; BF16, 2 x 4096 tokens).
# With --tools: instead of the exported cases, dsflow-cuda-check and dsflow-run
# themselves (bench/cuda/bundle_tools.sh) with the FP32 plans, which
# dsflow-cuda-check checks there through the CUDA driver, and training plans
# (tiny-v3, small-v3, small-v3 --fp8: sequence 64, micro-batch 8; tiny-v3
# under DualPipeV on two ranks) for dsflow-run --device cuda, and DIR/peer for issue 7's benchmark against
# PyTorch (bench/cuda/peer_benchmark.sh --prepare: bench/models/medium-v3.pbtxt's
# spec and FP32 plan, sequence 512, micro-batch 16; 2.6 MB).
set -euo pipefail
tools=0
if [ "${1:-}" = --tools ]; then tools=1; shift; fi
dir=${1:?usage: prepare_device_run.sh [--tools] DIR [BUILD]}
bin=${2:-build}/bin
root=$(cd "$(dirname "$0")/../.." && pwd)
rm -rf "$dir" && mkdir -p "$dir"
plans=$(mktemp -d)
trap 'rm -rf "$plans"' EXIT
compile() { "$bin/dsflow-compile" "$@" --emit=plan --cuda; }
compile "$root/models/tiny-v3.pbtxt" --precision=fp32 --seq-len=16 -o "$plans/tiny.plan"
compile "$root/models/small-v3.pbtxt" --precision=fp32 --seq-len=32 --micro-batch=1 -o "$plans/small.plan"
# The softmax router without normalization, YaRN, MTP 2; and odd sizes.
compile "$root/test/reference/tiny-variant.pbtxt" --precision=fp32 --seq-len=16 -o "$plans/variant.plan"
compile "$root/bench/models/tiny-odd.pbtxt" --precision=fp32 --seq-len=15 -o "$plans/odd.plan"
# The FP8 recipe, emulated as on the CPU (checked through the runtime only).
compile "$root/models/tiny-v3.pbtxt" --precision=fp32 --seq-len=16 --fp8 -o "$plans/fp8.plan"
if [ $tools = 1 ]; then
  "$root/bench/cuda/bundle_tools.sh" "$dir/tools" "${2:-build}"
  mkdir -p "$dir/plans" && cp "$plans"/{tiny,small,variant,odd,fp8}.plan "$dir/plans/"
  mkdir -p "$dir/train"
  for model in tiny-v3 small-v3; do
    compile "$root/models/$model.pbtxt" --precision=fp32 --seq-len=64 --micro-batch=8 \
      --lr=1e-3 --warmup-steps=100 --total-steps=2000 -o "$dir/train/$model.plan"
  done
  # small-v3 with the FP8 recipe: checked against the CPU like the others,
  # and (FP8_SEEDS) the seeds of bench/fp8_training_seeds.sh on the GPU.
  compile "$root/models/small-v3.pbtxt" --precision=fp32 --seq-len=64 --micro-batch=8 \
    --lr=1e-3 --warmup-steps=100 --total-steps=2000 --fp8 -o "$dir/train/small-v3-fp8.plan"
  # Pipeline stages on the GPU: DualPipeV over two ranks (its forward-backward
  # pairs overlapped), which share the machine's GPU.
  mkdir -p "$dir/train/pipeline"
  compile "$root/models/tiny-v3.pbtxt" --precision=fp32 --seq-len=64 --micro-batch=2 \
    --micro-batches=8 --lr=1e-3 --warmup-steps=100 --ranks-per-node 2 --pp 2 \
    --pipeline-schedule=dualpipev -o "$dir/train/pipeline/tiny-v3-dualpipev.plan"
  # Expert parallelism beside the GPU: two EP ranks (the routed experts and
  # their all-to-all on the host, the rest on the shared GPU).
  compile "$root/models/tiny-v3.pbtxt" --precision=fp32 --seq-len=64 --micro-batch=2 \
    --lr=1e-3 --warmup-steps=100 --ranks-per-node 2 --ep 2 \
    -o "$dir/train/pipeline/tiny-v3-ep2.plan"
  # Issue 7's benchmark: dsflow-run --device cuda against the PyTorch peer.
  "$root/bench/cuda/peer_benchmark.sh" --prepare "$dir" "${2:-build}"
else
  "$bin/dsflow-cuda-check" "$plans/tiny.plan" --export "$dir/check-tiny-v3"
  "$bin/dsflow-cuda-check" "$plans/small.plan" --seed 2 --export "$dir/check-small-v3"
  "$bin/dsflow-cuda-check" "$plans/variant.plan" --seed 3 --export "$dir/check-tiny-variant"
  "$bin/dsflow-cuda-check" "$plans/odd.plan" --seed 4 --export "$dir/check-tiny-odd"
fi
compile "$root/bench/models/deepseek-v3-stage.pbtxt" --seq-len=4096 --micro-batch=2 -o "$plans/v3stage.plan"
compile "$root/models/deepseek-v2-lite-16b.pbtxt" --precision=bf16 --seq-len=4096 --micro-batch=2 -o "$plans/lite.plan"
"$bin/dsflow-cuda-check" "$plans/v3stage.plan" --export-bench "$dir/bench-v3-stage"
"$bin/dsflow-cuda-check" "$plans/lite.plan" --export-bench "$dir/bench-v2-lite"
du -sh "$dir"
