#!/usr/bin/env python3
"""Runs the cases `dsflow-cuda-check PLAN --export DIR` wrote, on a GPU.

For a machine with a GPU, CuPy and no dsflow build: loads DIR/module.cubin,
launches each case's function on its inputs and starting outputs, and compares
the outputs with the CPU backend's (max |gpu - cpu| / max |cpu| per output,
against the tolerance in DIR/cases.json). Prints the worst error per op and
"N of M CUDA kernels match the CPU backend"; exits 1 when one does not.

Usage: check_on_device.py DIR
"""
import json
import os
import sys

import numpy as np


def main(directory):
    import cupy  # only where there is a GPU

    with open(os.path.join(directory, "cases.json")) as f:
        manifest = json.load(f)
    module = cupy.RawModule(path=os.path.join(directory, "module.cubin"))
    tolerance = manifest["tolerance"]
    worst_by_op = {}
    matched = 0
    for case in manifest["cases"]:
        function = module.get_function(case["function"])
        arrays, outputs = [], []
        for param in case["params"]:
            dtype = np.int32 if param["dtype"] == "i32" else np.float32
            host = np.fromfile(os.path.join(directory, param["file"]), dtype=dtype)
            device = cupy.asarray(host)
            arrays.append(device)
            if param["role"] == "out":
                expected = np.fromfile(
                    os.path.join(directory, param["file"].replace(".start", ".out")),
                    dtype=dtype)
                outputs.append((device, expected))
        function((case["grid"],), (case["block"],), tuple(arrays),
                 shared_mem=case["shared"])
        cupy.cuda.runtime.deviceSynchronize()
        worst = 0.0
        for device, expected in outputs:
            got = cupy.asnumpy(device).astype(np.float64)
            want = expected.astype(np.float64)
            scale = np.max(np.abs(want)) if want.size else 0.0
            diff = np.max(np.abs(got - want)) if want.size else 0.0
            worst = max(worst, diff / scale if scale > 0 else diff)
        count, op_worst = worst_by_op.get(case["op"], (0, 0.0))
        worst_by_op[case["op"]] = (count + 1, max(op_worst, worst))
        matched += worst <= tolerance
    print(f"{'op':22} {'kernels':>8} {'worst error':>14}")
    for op in sorted(worst_by_op):
        count, worst = worst_by_op[op]
        print(f"{op:22} {count:8d} {worst:14.3g}{'' if worst <= tolerance else '  FAILED'}")
    total = len(manifest["cases"])
    print(f"{matched} of {total} CUDA kernels match the CPU backend "
          f"(tolerance {tolerance:g})")
    return 0 if matched == total else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
