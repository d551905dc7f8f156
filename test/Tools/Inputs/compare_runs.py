#!/usr/bin/env python3
"""Compares two dsflow-run results: the per-step losses of their --loss-log CSVs
(relative difference) and the tensors of their --save-params safetensors files
(relative Frobenius error per tensor). Exits non-zero, naming the worst
difference, when either exceeds --rtol.

Usage: compare_runs.py A B --rtol 1e-6   (reads A.csv, A.safetensors, B.csv, ...)
"""
import argparse, csv, json, struct, sys


def losses(path):
    with open(path) as f:
        return [(int(r["step"]), float(r["loss"]), float(r["lm_loss"])) for r in csv.DictReader(f)]


def tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + size])
    base = 8 + size
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{path}: {name} is {info['dtype']}"
        begin, end = info["data_offsets"]
        out[name] = struct.unpack(f"<{(end - begin) // 4}f", data[base + begin:base + end])
    return out


def relative(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rtol", type=float, required=True)
    args = parser.parse_args()
    la, lb = losses(args.a + ".csv"), losses(args.b + ".csv")
    if len(la) != len(lb) or not la:
        sys.exit(f"loss logs differ in length: {len(la)} vs {len(lb)}")
    worst_loss = max(max(relative(x[1], y[1]), relative(x[2], y[2])) for x, y in zip(la, lb))
    ta, tb = tensors(args.a + ".safetensors"), tensors(args.b + ".safetensors")
    if ta.keys() != tb.keys():
        sys.exit(f"parameter names differ: {sorted(ta.keys() ^ tb.keys())[:5]}")
    # Per tensor, the relative Frobenius error ||a - b|| / ||a||: a different
    # summation order perturbs gradient entries that nearly cancel, and Adam's
    # normalization turns those into visible (but tiny) update differences, so
    # an elementwise maximum measures noise rather than agreement.
    worst_param, worst_name = 0.0, ""
    for name in ta:
        diff = sum((x - y) ** 2 for x, y in zip(ta[name], tb[name])) ** 0.5
        norm = max(sum(x * x for x in ta[name]) ** 0.5, 1e-30)
        if diff / norm > worst_param:
            worst_param, worst_name = diff / norm, name
    print(f"{len(la)} steps: worst loss difference {worst_loss:.3g}; worst parameter "
          f"difference {worst_param:.3g} ({worst_name or 'all equal'}) over {len(ta)} tensors")
    if worst_loss > args.rtol or worst_param > args.rtol:
        sys.exit(f"difference above {args.rtol}")


if __name__ == "__main__":
    main()
