#!/usr/bin/env bash
# Trains a model for 2000 steps with and without the FP8 recipe (--fp8: every
# linear-layer GEMM, forward and backward, from E4M3 operands scaled per 1x128
# tile / 128x128 block; FP8 dispatch, BF16 combine), same seed and data, and
# compares the smoothed final training losses (mean of the last 200 steps).
# A third run, FP32 again with every initial weight scaled by 1 + 1e-6
# (--init-std), measures the noise floor: how far two FP32 runs that differ only
# by rounding-level noise drift apart, which bounds what the FP8 comparison can
# resolve at this scale.
# The runs go side by side, one thread each (the losses do not depend on
# the thread count), and can be interrupted and resumed (bench/lib/train_run.sh).
# Writes bench/results/fp8-training-MODEL.md and .png (the
# plot needs python3-matplotlib; Debian: apt-get install python3-matplotlib).
# Usage: bench/fp8_training.sh [MODEL [STEPS [LR]]]   (default: small-v3 2000 2e-3)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-small-v3}
steps=${2:-2000}
lr=${3:-2e-3}
bin=build/bin
# Runs and results of another learning rate than the default carry it in
# their names.
tag=$model
[ "$lr" = 2e-3 ] || tag=$model-lr$lr
out=build/fp8-training/$tag
mkdir -p "$out" bench/results
source bench/lib/train_run.sh
train_run fp32 7 0.02 &
train_run fp8 7 0.02 --fp8 &
train_run fp32-perturbed 7 0.02000002 &
wait
tail -n 1 "$out/fp32.log" "$out/fp8.log" "$out/fp32-perturbed.log"
/usr/bin/python3 - "$out" "$steps" "$model" "$lr" "$tag" <<'PY'
import csv, sys
out, steps, model, lr, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def losses(name):
    with open(f"{out}/{name}.csv") as f:
        return [float(r["loss"]) for r in csv.DictReader(f)]
fp32, fp8, noise = losses("fp32"), losses("fp8"), losses("fp32-perturbed")
window = 200
def final(xs):
    return sum(xs[-window:]) / window
a, b, c = final(fp32), final(fp8), final(noise)
rel, floor = abs(b - a) / a, abs(c - a) / a
with open(f"bench/results/fp8-training-{tag}.md", "w") as f:
    f.write(f"# FP8 vs FP32 training: {model}\n\n")
    f.write(f"Command: `bench/fp8_training.sh {model} {steps} {lr}`. {model}, sequence 64, micro-batch 8, "
            f"lr {lr}, {steps} steps, seed 7, Tiny Shakespeare; total training loss (LM + 0.3 MTP + balance).\n\n")
    f.write("| run | smoothed final loss (mean of the last 200 steps) | relative difference from FP32 |\n|---|---|---|\n")
    f.write(f"| FP32 | {a:.5f} | |\n| FP8 (--fp8) | {b:.5f} | {100 * rel:.3f}% |\n")
    f.write(f"| FP32, initial weights x (1 + 1e-6) (noise floor) | {c:.5f} | {100 * floor:.3f}% |\n\n")
    f.write(f"DeepSeek-V3's reported bound: 0.25%. FP8 vs FP32: {'within' if rel < 0.0025 else 'OUTSIDE'} it. "
            f"Two FP32 runs that differ only by rounding-level noise in the initial weights end "
            f"{100 * floor:.3f}% apart: a single run of this size resolves differences down to about that.\n\n")
    f.write(f"![loss curves](fp8-training-{tag}.png)\n")
print(f"smoothed final loss: fp32 {a:.5f}, fp8 {b:.5f} ({100 * rel:.3f}%), "
      f"perturbed fp32 {c:.5f} ({100 * floor:.3f}%)")
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    def smooth(xs, w=50):
        return [sum(xs[max(0, i - w + 1):i + 1]) / len(xs[max(0, i - w + 1):i + 1]) for i in range(len(xs))]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    steps_axis = range(1, len(fp32) + 1)
    top.plot(steps_axis, smooth(fp32), label="FP32")
    top.plot(range(1, len(fp8) + 1), smooth(fp8), label="FP8 (1x128 / 128x128)")
    top.plot(range(1, len(noise) + 1), smooth(noise), label="FP32, init x (1 + 1e-6)",
             linestyle=":")
    top.set_ylabel("training loss (50-step mean)")
    top.set_title(f"{model} on Tiny Shakespeare: FP8 vs FP32")
    top.legend(); top.grid(alpha=0.3)
    # Relative difference of the 200-step means from FP32's.
    base = smooth(fp32, window)
    for run, name, style, colour in ((fp8, "FP8", "-", "C1"),
                                     (noise, "FP32, init x (1 + 1e-6)", ":", "C2")):
        curve = smooth(run, window)
        bottom.plot(steps_axis, [100 * (y - x) / x for x, y in zip(base, curve)],
                    label=name, linestyle=style, color=colour)
    bottom.axhspan(-0.25, 0.25, color="grey", alpha=0.2, label="DeepSeek's 0.25%")
    bottom.set_xlabel("step"); bottom.set_ylabel("vs FP32, 200-step means (%)")
    bottom.legend(); bottom.grid(alpha=0.3)
    fig.tight_layout()
    plt.savefig(f"bench/results/fp8-training-{tag}.png", dpi=100)
except ImportError:
    print("python3-matplotlib is not installed: no plot")
PY
