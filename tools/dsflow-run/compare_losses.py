#!/usr/bin/env python3
"""compare_losses.py REFERENCE.csv OTHER.csv [--tolerance T] [--steps N]

Compares two dsflow-run --loss-log files step by step (the total loss):
prints the worst relative difference and fails (exit 1) when a step differs
by more than T (default 2e-3) or the files cover different steps. Used to
check a --device cuda run against the CPU backend's.
"""
import argparse
import csv
import sys


def losses(path):
    with open(path) as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("other")
    parser.add_argument("--tolerance", type=float, default=2e-3)
    parser.add_argument("--steps", type=int, default=0,
                        help="compare only the first N steps (0: all)")
    args = parser.parse_args()
    a, b = losses(args.reference), losses(args.other)
    if args.steps:
        a, b = a[:args.steps], b[:args.steps]
    if not a or [s for s, _ in a] != [s for s, _ in b]:
        sys.exit(f"compare_losses: {args.reference} and {args.other} cover different steps")
    worst_step, worst = max(((s, abs(x - y) / max(abs(x), 1e-30))
                             for (s, x), (_, y) in zip(a, b)), key=lambda t: t[1])
    ok = worst <= args.tolerance
    print(f"{len(a)} steps: worst relative loss difference {worst:.2e} at step "
          f"{worst_step} ({'within' if ok else 'OVER'} {args.tolerance:g})")
    sys.exit(0 if ok else 1)


main()
