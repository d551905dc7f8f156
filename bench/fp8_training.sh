#!/usr/bin/env bash
# Trains tiny-v3 for 2000 steps with and without the FP8 recipe (--fp8: every
# linear-layer GEMM, forward and backward, from E4M3 operands scaled per 1x128
# tile / 128x128 block; FP8 dispatch, BF16 combine), same seed and data, and
# compares the smoothed final training losses (mean of the last 200 steps).
# Writes bench/results/fp8-training.md and bench/results/fp8-training.png
# (the plot needs python3-matplotlib; Debian: apt-get install python3-matplotlib).
# Usage: bench/fp8_training.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-2000}
bin=build/bin
out=build/fp8-training
mkdir -p "$out" bench/results
for variant in fp32 fp8; do
  flag=""
  [ "$variant" = fp8 ] && flag="--fp8"
  "$bin/dsflow-compile" models/tiny-v3.pbtxt --emit=plan --seq-len=64 --micro-batch=8 \
    --lr=3e-3 --warmup-steps=100 --total-steps="$steps" --seed=7 $flag \
    -o "$out/$variant.plan"
  "$bin/dsflow-run" "$out/$variant.plan" --data models/tinyshakespeare.txt \
    --steps "$steps" --log-interval 500 --val-fraction 0 --loss-log "$out/$variant.csv"
done
/usr/bin/python3 - "$out" "$steps" <<'PY'
import csv, sys
out, steps = sys.argv[1], int(sys.argv[2])
def losses(name):
    with open(f"{out}/{name}.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]
fp32, fp8 = losses("fp32"), losses("fp8")
window = 200
a, b = sum(fp32[-window:]) / window, sum(fp8[-window:]) / window
rel = abs(b - a) / a
with open("bench/results/fp8-training.md", "w") as f:
    f.write("# FP8 vs FP32 training\n\n")
    f.write(f"Command: `bench/fp8_training.sh {steps}`. tiny-v3, sequence 64, micro-batch 8, "
            f"{steps} steps, seed 7, Tiny Shakespeare; total training loss (LM + 0.3 MTP + balance).\n\n")
    f.write("| | smoothed final loss (mean of the last 200 steps) |\n|---|---|\n")
    f.write(f"| FP32 | {a:.5f} |\n| FP8 (--fp8) | {b:.5f} |\n")
    f.write(f"| relative difference | {100 * rel:.3f}% |\n\n")
    f.write(f"DeepSeek-V3's reported bound: 0.25%. This run: {'within' if rel < 0.0025 else 'OUTSIDE'} it.\n\n")
    f.write("![loss curves](fp8-training.png)\n")
print(f"smoothed final loss: fp32 {a:.5f}, fp8 {b:.5f}, relative difference {100 * rel:.3f}%")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    def smooth(xs, w=50):
        return [sum(xs[max(0, i - w + 1):i + 1]) / len(xs[max(0, i - w + 1):i + 1]) for i in range(len(xs))]
    plt.figure(figsize=(8, 4.5))
    plt.plot(range(1, len(fp32) + 1), smooth(fp32), label="FP32")
    plt.plot(range(1, len(fp8) + 1), smooth(fp8), label="FP8 (1x128 / 128x128)")
    plt.xlabel("step"); plt.ylabel("training loss (50-step mean)")
    plt.title("tiny-v3 on Tiny Shakespeare: FP8 vs FP32")
    plt.legend(); plt.grid(alpha=0.3); plt.tight_layout()
    plt.savefig("bench/results/fp8-training.png", dpi=100)
except ImportError:
    print("python3-matplotlib is not installed: no plot")
PY
