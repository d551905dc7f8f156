"""Checks dsflow-run's per-rank offload lines against its kernel trace.

Usage: offload_runs.py OUTPUT TRACE
A line of OUTPUT is "rank R: DEVICE: D of T kernel runs on the device; ...";
TRACE is the run's --trace (every kernel run of the traced steps, pid =
rank). Prints, per rank, whether T is the rank's number of traced kernel
runs (so the line counts every micro-batch's device); exits 1 otherwise.
"""
import collections
import json
import re
import sys

LINE = re.compile(r"^rank (\d+): [^:]+: (\d+) of (\d+) kernel runs on the device")

counted = {}
for line in open(sys.argv[1]):
    m = LINE.match(line)
    if m:
        counted[int(m.group(1))] = int(m.group(3))
trace = json.load(open(sys.argv[2]))
events = trace["traceEvents"] if isinstance(trace, dict) else trace
traced = collections.Counter(e["pid"] for e in events if e.get("ph") == "X")
ok = bool(counted) and counted.keys() == traced.keys()
for rank in sorted(counted):
    same = counted[rank] == traced.get(rank)
    ok = ok and same
    print(f"rank {rank}: " + ("counts every traced kernel run" if same else
                              f"counts {counted[rank]}, traced {traced.get(rank)}"))
sys.exit(0 if ok else 1)
