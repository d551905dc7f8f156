#!/usr/bin/env python3
"""fp8_seeds_report.py DIR --model M --steps N --seeds S --setup TEXT --command CMD --output PREFIX

The report of FP8 vs FP32 training over several seeds (bench/fp8_training_seeds.sh
on the CPU, bench/cuda/run_on_device.sh with FP8_SEEDS on a GPU): DIR holds
fp32-sK.csv and fp8-sK.csv (dsflow-run --loss-log) per seed K; a seed counts
once both logs reach N steps. Per seed, the relative difference of the
smoothed final losses (mean of the last 200 steps); then their mean,
standard deviation, standard error and 95% Student interval. DeepSeek's 0.25%
bound is shown only when the whole interval lies inside +-0.25%. Writes
PREFIX.md and (with matplotlib) PREFIX.png; exits 1 with fewer than 2 seeds.
"""
import argparse
import csv
import math
import os
import sys

WINDOW = 200
# Two-sided 95% Student t quantiles by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365,
       8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160,
       14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
       20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060,
       26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}


def t95(df):
    """The two-sided 95% t quantile: the table, past it the Cornish-Fisher
    expansion around the normal's 1.96 (within 1e-4 from 30 degrees on)."""
    if df in T95:
        return T95[df]
    z = 1.959964
    return (z + (z ** 3 + z) / (4 * df)
            + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2))


def losses(path):
    """The loss of each step in order; a step logged twice (a run resumed
    from a checkpoint before it) counts once, as logged last. A malformed
    row (a run killed mid-line) stops the report, unless it is the last
    one (a running job's); a missing step ends the list before it, so the
    run does not count as finished."""
    by_step = {}
    with open(path) as f:
        reader = csv.DictReader(f)
        rows = [(reader.line_num, r) for r in reader]
    for i, (line, r) in enumerate(rows):
        if None in r or None in r.values():
            if i == len(rows) - 1:
                break  # the line a running job is writing
            sys.exit(f"fp8_seeds_report: {path}:{line}: a malformed row")
        by_step[int(r["step"])] = float(r["loss"])
    steps = sorted(by_step)
    contiguous = [k for i, k in enumerate(steps) if k == i + 1]
    return [by_step[k] for k in contiguous]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--model", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seeds", type=int, required=True)
    parser.add_argument("--setup", required=True)
    parser.add_argument("--command", required=True)
    parser.add_argument("--output", required=True)
    a = parser.parse_args()

    def log(variant, seed):
        return os.path.join(a.dir, f"{variant}-s{seed}.csv")

    def finished(seed):
        return all(os.path.exists(log(v, seed)) and len(losses(log(v, seed))) >= a.steps
                   for v in ("fp32", "fp8"))

    done = [s for s in range(1, a.seeds + 1) if finished(s)]
    if len(done) < 2:
        sys.exit(f"fp8_seeds_report: {len(done)} seed(s) finished; the interval needs 2")
    rows = []
    for s in done:
        x = sum(losses(log("fp32", s))[a.steps - WINDOW:a.steps]) / WINDOW
        y = sum(losses(log("fp8", s))[a.steps - WINDOW:a.steps]) / WINDOW
        rows.append((s, x, y, (y - x) / x))
    diffs = [r[3] for r in rows]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    se = sd / math.sqrt(n)
    t = t95(n - 1)
    low, high = mean - t * se, mean + t * se
    inside = -0.0025 < low and high < 0.0025
    picture = os.path.basename(a.output) + ".png"
    with open(a.output + ".md", "w") as f:
        f.write(f"# FP8 vs FP32 training over {n} seeds: {a.model}\n\n")
        f.write(f"Command: `{a.command}` ({n} of {a.seeds} seeds finished). {a.model}, "
                f"{a.setup}, Tiny Shakespeare; the seed sets the initial weights and the "
                "data order; total training loss (LM + 0.3 MTP + balance), smoothed as the "
                "mean of the last 200 steps.\n\n")
        f.write("| seed | FP32 | FP8 (--fp8) | FP8 vs FP32 |\n|---|---|---|---|\n")
        for s, x, y, d in rows:
            f.write(f"| {s} | {x:.5f} | {y:.5f} | {100 * d:+.3f}% |\n")
        f.write(f"| mean | {sum(r[1] for r in rows) / n:.5f} | "
                f"{sum(r[2] for r in rows) / n:.5f} | {100 * mean:+.3f}% |\n\n")
        f.write(f"Paired relative difference: mean {100 * mean:+.3f}%, standard deviation "
                f"{100 * sd:.3f}%, standard error {100 * se:.3f}%, 95% interval "
                f"[{100 * low:+.3f}%, {100 * high:+.3f}%].\n\n")
        f.write("DeepSeek-V3's reported bound: 0.25%. " + (
            "The whole 95% interval lies inside +-0.25%: FP8 training stays within the bound."
            if inside else
            "The 95% interval is not inside +-0.25%: these runs do not show the bound" +
            (" (the mean is inside it; more seeds narrow the interval)."
             if abs(mean) < 0.0025 else ".")) + "\n\n")
        f.write(f"![mean loss curves]({picture})\n")
    print(f"{n} seeds: FP8 vs FP32 {100 * mean:+.3f}% +- {100 * se:.3f}% "
          f"(95% [{100 * low:+.3f}%, {100 * high:+.3f}%])")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("python3-matplotlib is not installed: no plot")
        return

    def smooth(xs, w=50):
        return [sum(xs[max(0, i - w + 1):i + 1]) / len(xs[max(0, i - w + 1):i + 1])
                for i in range(len(xs))]

    def mean_curve(variant):
        curves = [losses(log(variant, s))[:a.steps] for s in done]
        return [sum(c[i] for c in curves) / len(curves) for i in range(a.steps)]

    fp32, fp8 = mean_curve("fp32"), mean_curve("fp8")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    steps = range(1, a.steps + 1)
    top.plot(steps, smooth(fp32), label=f"FP32 (mean of {n} seeds)")
    top.plot(steps, smooth(fp8), label=f"FP8 (mean of {n} seeds)")
    top.set_ylabel("training loss (50-step mean)")
    top.set_title(f"{a.model} on Tiny Shakespeare: FP8 vs FP32 over {n} seeds")
    top.legend()
    top.grid(alpha=0.3)
    base, curve = smooth(fp32, WINDOW), smooth(fp8, WINDOW)
    bottom.plot(steps, [100 * (y - x) / x for x, y in zip(base, curve)],
                label="FP8 vs FP32, seed means", color="C1")
    bottom.axhspan(-0.25, 0.25, color="grey", alpha=0.2, label="DeepSeek's 0.25%")
    bottom.set_xlabel("step")
    bottom.set_ylabel("vs FP32, 200-step means (%)")
    bottom.legend()
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    plt.savefig(a.output + ".png", dpi=100)


main()
