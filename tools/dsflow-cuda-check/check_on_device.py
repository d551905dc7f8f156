#!/usr/bin/env python3
"""Runs the cases `dsflow-cuda-check PLAN --export DIR` wrote, on a GPU.

For a machine with a GPU, CuPy and no dsflow build: loads DIR/module.cubin,
launches each case's function on its inputs and starting outputs, and compares
the outputs with the CPU backend's (max |gpu - cpu| / max |cpu| per output,
against the tolerance in DIR/cases.json; int32 ids must be equal). Prints the worst error per op and
"N of M CUDA kernels match the CPU backend"; exits 1 when one does not.

With --bench, DIR is what `dsflow-cuda-check PLAN --export-bench DIR` wrote:
times each generated function on fresh random data (10 launches captured in
a CUDA graph, median of 10 timed replays after warm-ups, buffers rotated
over copies that exceed the L2 cache), turns the fewest bytes it must move
into GB/s, and divides by the device's copy bandwidth measured in the same
run (the faster of a 1 GiB device-to-device cudaMemcpyAsync and a 16-byte
copy kernel, bytes read plus written). The last rows weigh each function by
the number of the plan's kernels that run it (the step's memory-bound
kernels together), with and without the pure data movement (reshape, split,
concat, token_window), which a runtime could often avoid by aliasing. Prints the table (and writes it to RESULTS.md when
given).

Usage: check_on_device.py DIR
       check_on_device.py --bench DIR [RESULTS.md]
"""
import json
import os
import sys

import numpy as np


def output_error(got, want):
    """max |got - want| / max |want| for values; ids (int32: expert indices,
    row sources) must be equal, or the error is 1."""
    if want.dtype == np.int32:
        return 0.0 if np.array_equal(got, want) else 1.0
    got, want = got.astype(np.float64), want.astype(np.float64)
    scale = np.max(np.abs(want)) if want.size else 0.0
    diff = np.max(np.abs(got - want)) if want.size else 0.0
    return diff / scale if scale > 0 else diff


def main(directory):
    import cupy  # only where there is a GPU

    with open(os.path.join(directory, "cases.json")) as f:
        manifest = json.load(f)
    module = cupy.RawModule(path=os.path.join(directory, "module.cubin"))
    tolerance = manifest["tolerance"]
    worst_by_op = {}
    matched = 0
    for case in manifest["cases"]:
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
        for launch in case["launches"]:  # in order
            module.get_function(launch["function"])(
                (launch["grid"],), (launch["block"],), tuple(arrays),
                shared_mem=launch["shared"])
        cupy.cuda.runtime.deviceSynchronize()
        worst = 0.0
        for device, expected in outputs:
            worst = max(worst, output_error(cupy.asnumpy(device), expected))
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


def median_ms(run, repeats=10, back_to_back=10, warmups=3, graph=True):
    """Median GPU time of one run(i, stream): `back_to_back` runs captured
    in a CUDA graph (so that host launch overhead stays out, as it would for
    a C++ runtime), or issued back to back, timed between two events."""
    import cupy
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        for i in range(warmups):
            run(i, stream)
        if graph:
            stream.begin_capture()
            for i in range(back_to_back):
                run(i, stream)
            captured = stream.end_capture()
            captured.launch(stream)

        def runs():
            if graph:
                captured.launch(stream)
            else:
                for i in range(back_to_back):
                    run(i, stream)
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        times = []
        for _ in range(repeats):
            start.record(stream)
            runs()
            stop.record(stream)
            stop.synchronize()
            times.append(cupy.cuda.get_elapsed_time(start, stop) / back_to_back)
    return float(np.median(times))


def copy_bandwidth():
    """Bytes read plus written per second by the faster of two copies of
    1 GiB: cudaMemcpyAsync device to device, and a 16-byte-per-thread copy
    kernel replayed from a graph (a graph's memcpy node can be slower)."""
    import cupy
    size = 1 << 30
    src, dst = cupy.empty(size, cupy.uint8), cupy.empty(size, cupy.uint8)
    src[:] = 1
    memcpy_ms = median_ms(lambda i, stream: cupy.cuda.runtime.memcpyAsync(
        dst.data.ptr, src.data.ptr, size,
        cupy.cuda.runtime.memcpyDeviceToDevice, stream.ptr), graph=False)
    copy = cupy.RawKernel(r"""
extern "C" __global__ void copy16(const uint4 *from, uint4 *to, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x)
    to[i] = from[i];
}""", "copy16")
    n = size // 16
    kernel_ms = median_ms(lambda i, stream: copy(
        (132 * 16,), (256,), (src, dst, cupy.int64(n)), stream=stream))
    return 2 * size / (min(memcpy_ms, kernel_ms) * 1e-3)


def random_param(param, earlier):
    """Fresh random non-zero data of the parameter's type and size; ids
    below its bound, or, for row sources, the slots sorted stably by the
    indices of parameter `sorted_by` (in `earlier`), as dispatch orders
    them."""
    import cupy
    if param["dtype"] == "i32":
        n = param["bytes"] // 4
        if param["sorted_by"] >= 0:
            indices = cupy.asnumpy(earlier[param["sorted_by"]])
            return cupy.asarray(np.argsort(indices, kind="stable")
                                .astype(np.int32))
        return cupy.random.randint(0, param["bound"], n, dtype=cupy.int32)
    if param["dtype"] == "f32":
        n = param["bytes"] // 4
        return cupy.random.uniform(0.1, 1.0, n, dtype=cupy.float32) * \
            cupy.where(cupy.random.rand(n) < 0.5, -1, 1).astype(cupy.float32)
    n = param["bytes"] // 2  # bf16: the top half of random floats
    values = cupy.random.uniform(0.1, 1.0, n, dtype=cupy.float32)
    return (values.view(cupy.uint32) >> 16).astype(cupy.uint16)


def random_params(params):
    arrays = []
    for param in params:
        arrays.append(random_param(param, arrays))
    return tuple(arrays)


def bench(directory, results_path=None):
    import cupy

    with open(os.path.join(directory, "bench.json")) as f:
        launches = json.load(f)["launches"]
    module = cupy.RawModule(path=os.path.join(directory, "module.cubin"))
    device = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    copy = copy_bandwidth()
    rows, moved_total, ms_total = [], 0, 0.0
    step_moved, step_ms = 0, 0.0
    # Copies a runtime could often avoid by aliasing, counted apart too.
    movement = {"reshape", "split", "concat", "token_window"}
    # Bound by arithmetic, not memory: timed, kept out of the bandwidth.
    arithmetic = {"mla_attention", "mla_attention_grad", "moe_gate"}
    compute_moved, compute_ms = 0, 0.0
    for launch in launches:
        functions = [(module.get_function(l["function"]), l)
                     for l in launch["launches"]]
        footprint = sum(p["bytes"] for p in launch["params"])
        copies = max(1, min(4, -(-200_000_000 // max(footprint, 1))))
        sets = [random_params(launch["params"]) for _ in range(copies)]
        def run(i, stream):
            for function, l in functions:
                function((l["grid"],), (l["block"],), sets[i % copies],
                         shared_mem=l["shared"], stream=stream)
        # Arithmetic-bound kernels take milliseconds: fewer runs.
        slow = launch["op"] in arithmetic
        ms = median_ms(run, repeats=3 if slow else 10,
                       back_to_back=1 if slow else 10,
                       warmups=1 if slow else 3)
        cupy.cuda.runtime.deviceSynchronize()
        moved = launch["bytes_moved"]
        if launch["op"] in arithmetic:
            rows.append((launch["op"] + " (arithmetic-bound, not in the "
                         "totals)", launch["function"], launch["kernels"],
                         moved / 1e6, ms * 1e3, moved / (ms * 1e-3) / 1e9,
                         moved / (ms * 1e-3) / copy))
            del sets
            continue
        moved_total += moved
        ms_total += ms
        step_moved += moved * launch["kernels"]
        step_ms += ms * launch["kernels"]
        if launch["op"] not in movement:
            compute_moved += moved * launch["kernels"]
            compute_ms += ms * launch["kernels"]
        rows.append((launch["op"], launch["function"], launch["kernels"],
                     moved / 1e6, ms * 1e3, moved / (ms * 1e-3) / 1e9,
                     moved / (ms * 1e-3) / copy))
        del sets
        cupy.get_default_memory_pool().free_all_blocks()
    lines = [f"device: {device}; copy bandwidth {copy / 1e9:.0f} GB/s "
             "(1 GiB, read + written)", "",
             "| op | function | kernels in plan | MB moved | us | GB/s "
             "| of copy |",
             "|---|---|---|---|---|---|---|"]
    for op, name, kernels, mb, us, gbs, ratio in rows:
        lines.append(f"| {op} | {name} | {kernels} | {mb:.1f} | {us:.1f} | "
                     f"{gbs:.0f} | {ratio:.2f} |")
    for label, moved, ms in (("each function once", moved_total, ms_total),
                             ("the plan's kernels", step_moved, step_ms),
                             ("the plan's kernels but reshape, split, concat "
                              "and token_window", compute_moved, compute_ms)):
        lines.append(f"| all: {label} | | | {moved / 1e6:.1f} | "
                     f"{ms * 1e3:.1f} | {moved / (ms * 1e-3) / 1e9:.0f} | "
                     f"{moved / (ms * 1e-3) / copy:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if results_path:
        with open(results_path, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "--bench":
        sys.exit(bench(*sys.argv[2:]))
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
