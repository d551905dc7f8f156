#!/usr/bin/env bash
# bench/cuda/run_on_device.sh DIR OUT
# On a machine with an NVIDIA GPU, CUDA (nvcc, cuBLASLt) and CuPy; DIR from
# bench/cuda/prepare_device_run.sh. In one go: the generated kernels against
# the CPU backend, the cuBLASLt GEMMs against the CPU backend and FP8 vs BF16
# timed, and the generated kernels' bandwidth against the copy bandwidth.
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

echo "== cuBLASLt GEMMs"
nvcc -O2 -std=c++17 -Xcompiler -ffp-contract=off -I "$root" -I "$root/runtime" \
  "$root/bench/cuda/gemm_bench.cpp" "$root/runtime/backends/cuda/CublasLtGemm.cpp" \
  "$root/runtime/backends/cpu/Fp8.cpp" "$root/runtime/backends/cpu/Fp8Gemm.cpp" \
  "$root/runtime/io/Status.cpp" -lcublasLt -lpthread -o /tmp/gemm_bench \
  && /tmp/gemm_bench "$out/gemm-fp8-vs-bf16.md" 2>&1 | tee "$out/gemm.txt" \
  || status=1

echo "== generated kernels' bandwidth"
for launches in "$dir"/bench-*; do
  echo "-- ${launches##*/}"
  python3 "$root/tools/dsflow-cuda-check/check_on_device.py" --bench "$launches" \
    "$out/bandwidth-${launches##*/}.md" 2>&1 | tail -40 || status=1
done
exit $status
