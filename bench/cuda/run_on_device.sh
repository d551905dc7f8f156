#!/usr/bin/env bash
# bench/cuda/run_on_device.sh DIR OUT
# On a machine with an NVIDIA GPU, CUDA (nvcc, cuBLASLt) and CuPy; DIR from
# bench/cuda/prepare_device_run.sh. In one go: the generated kernels against
# the CPU backend, the cuBLASLt GEMMs against the CPU backend and FP8 vs BF16
# timed, the generated kernels' bandwidth against the copy bandwidth, and
# (prepared with --tools) training with dsflow-run --device cuda against the
# CPU backend (a DualPipeV pipeline and expert parallelism on two ranks too),
# then small-v3 on Tiny Shakespeare on the GPU; with FP8_SEEDS=N
# set, bench/fp8_training_seeds.sh's comparison (FP8 vs FP32, 2000 steps,
# seeds 1..N) on the GPU instead, two runs at a time; last, when DIR has peer/
# (prepared with --tools), issue 7's benchmark: dsflow-run --device cuda
# against PyTorch with torch.compile on a mid-size model
# (bench/cuda/peer_benchmark.sh, which also runs alone: it needs PyTorch 2.x).
# Results (markdown) and logs go to OUT.
set -uo pipefail
dir=${1:?usage: run_on_device.sh DIR OUT}
out=${2:?usage: run_on_device.sh DIR OUT}
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
  --format=csv | tee "$out/device.txt"
nvcc --version | tail -1 | tee -a "$out/device.txt"

# STAGES picks what runs (a device call lasts at most 10 minutes): any of
# checks, gemm, bandwidth, train, peer (default: all; FP8_SEEDS adds its own).
stages=" ${STAGES:-checks gemm bandwidth train peer} "
want() { [[ $stages == *" $1 "* ]]; }

want checks && {
echo "== generated kernels against the CPU backend"
# dsflow-cuda-check itself when prepared with --tools (through the driver),
# else the exported cases (through CuPy).
for plan in "$dir"/plans/*.plan; do
  [ -e "$plan" ] || continue
  name=${plan##*/}
  echo "-- $name (dsflow-cuda-check)"
  "$dir/tools/dsflow-cuda-check" "$plan" 2>&1 | tee "$out/check-${name%.plan}.txt" \
    || status=1
done
for cases in "$dir"/check-*; do
  [ -e "$cases" ] || continue
  echo "-- ${cases##*/}"
  python3 "$root/tools/dsflow-cuda-check/check_on_device.py" "$cases" \
    2>&1 | tee "$out/${cases##*/}.txt" || status=1
done

}

want gemm && {
echo "== cuBLASLt GEMMs"
nvcc -O2 -std=c++17 -Xcompiler -ffp-contract=off -I "$root" -I "$root/runtime" \
  "$root/bench/cuda/gemm_bench.cpp" "$root/runtime/backends/cuda/CublasLtGemm.cpp" \
  "$root/runtime/backends/cpu/Fp8.cpp" "$root/runtime/backends/cpu/Fp8Gemm.cpp" \
  "$root/runtime/io/Status.cpp" -lcublasLt -lpthread -o /tmp/gemm_bench \
  && /tmp/gemm_bench "$out/gemm-fp8-vs-bf16.md" 2>&1 | tee "$out/gemm.txt" \
  || status=1

}

want bandwidth && {
echo "== generated kernels' bandwidth"
for launches in "$dir"/bench-*; do
  echo "-- ${launches##*/}"
  python3 "$root/tools/dsflow-cuda-check/check_on_device.py" --bench "$launches" \
    "$out/bandwidth-${launches##*/}.md" 2>&1 | tail -40 || status=1
done
}

if want train && [ -x "$dir/tools/dsflow-run" ]; then
  echo "== training: --device cuda against the CPU backend (20 steps, FP32)"
  train() { # PLAN NAME STEPS [dsflow-run options]
    local plan=$1 name=$2 steps=$3
    shift 3
    timeout 300 "$dir/tools/dsflow-run" "$plan" --data "$root/models/tinyshakespeare.txt" \
      --steps "$steps" --log-interval 10 --loss-log "$out/train-$name.csv" "$@" \
      > "$out/train-$name.txt" 2>&1
    local rc=$?
    tail -n 4 "$out/train-$name.txt"
    return $rc
  }
  for plan in "$dir"/train/*.plan; do
    model=$(basename "$plan" .plan)
    train "$plan" "$model-cpu" 20 --val-fraction 0 || status=1
    # Synchronous, so that a faulting kernel is named.
    DSFLOW_CUDA_SYNC=1 train "$plan" "$model-cuda" 20 --val-fraction 0 --device cuda --profile || status=1
    python3 "$root/tools/dsflow-run/compare_losses.py" "$out/train-$model-cpu.csv" \
      "$out/train-$model-cuda.csv" --tolerance 2e-3 | tee "$out/train-$model-compare.txt" \
      || status=1
    # An FP8 plan's GEMMs ran on the FP8 tensor cores; emulated, they must
    # match too (which of the two paths is off, if one is).
    case $model in *fp8*)
      DSFLOW_CUDA_SYNC=1 train "$plan" "$model-cuda-emulated" 20 --val-fraction 0 \
        --device cuda --emulate-fp8 || status=1
      python3 "$root/tools/dsflow-run/compare_losses.py" "$out/train-$model-cpu.csv" \
        "$out/train-$model-cuda-emulated.csv" --tolerance 2e-3 \
        | tee "$out/train-$model-emulated-compare.txt" || status=1 ;;
    esac
  done
  for plan in "$dir"/train/pipeline/*.plan; do
    [ -e "$plan" ] || continue
    model=$(basename "$plan" .plan)
    echo "== $model: two ranks (TCP, sharing the GPU), --device cuda against the CPU"
    "$root/bench/cuda/pipeline_ranks.sh" "$dir/tools/dsflow-run" "$plan" \
      "$root/models/tinyshakespeare.txt" "$out/train-$model-cpu" --steps 20 || status=1
    DSFLOW_CUDA_SYNC=1 "$root/bench/cuda/pipeline_ranks.sh" "$dir/tools/dsflow-run" "$plan" \
      "$root/models/tinyshakespeare.txt" "$out/train-$model-cuda" --steps 20 --device cuda \
      || status=1
    python3 "$root/tools/dsflow-run/compare_losses.py" "$out/train-$model-cpu.csv" \
      "$out/train-$model-cuda.csv" --tolerance 2e-3 | tee "$out/train-$model-compare.txt" \
      || status=1
  done
  echo "== small-v3 on Tiny Shakespeare on the GPU (300 steps)"
  train "$dir/train/small-v3.plan" small-v3-shakespeare 300 --device cuda \
    --eval-interval 100 || status=1
fi
if [ -n "${FP8_SEEDS:-}" ]; then
  echo "== FP8 vs FP32 over seeds 1..$FP8_SEEDS on the GPU (small-v3, 2000 steps)"
  mkdir -p "$out/fp8-seeds"
  for seed in $(seq 1 "$FP8_SEEDS"); do
    for variant in fp32 fp8; do
      plan=$dir/train/small-v3.plan
      [ $variant = fp8 ] && plan=$dir/train/small-v3-fp8.plan
      "$dir/tools/dsflow-run" "$plan" --data "$root/models/tinyshakespeare.txt" \
        --steps 2000 --log-interval 500 --val-fraction 0 --device cuda --seed "$seed" \
        --loss-log "$out/fp8-seeds/$variant-s$seed.csv" > "$out/fp8-seeds/$variant-s$seed.txt" 2>&1 &
    done
    wait
    tail -n 2 "$out/fp8-seeds/fp32-s$seed.txt" "$out/fp8-seeds/fp8-s$seed.txt"
  done
  python3 "$root/bench/fp8_seeds_report.py" "$out/fp8-seeds" --model small-v3 --steps 2000 \
    --seeds "$FP8_SEEDS" --setup "sequence 64, micro-batch 8, lr 1e-3, 2000 steps, on the GPU (dsflow-run --device cuda)" \
    --command "FP8_SEEDS=$FP8_SEEDS bench/cuda/run_on_device.sh" \
    --output "$out/fp8-training-seeds-small-v3-gpu" || status=1
fi
if want peer && [ -d "$dir/peer" ]; then
  echo "== issue 7's benchmark: dsflow against PyTorch (torch.compile), $(sed -n 's/^model=//p' "$dir/peer/bench.env")"
  "$root/bench/cuda/peer_benchmark.sh" "$dir" "$out" || status=1
fi
exit $status
