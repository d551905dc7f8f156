#!/usr/bin/env python3
"""Runs one multi-process dsflow test on this machine and checks how it ended.

  launch_local.py --np 4 -- dsflow-dist-tests             # TCP: RANK, WORLD_SIZE,
                                                          # MASTER_ADDR, MASTER_PORT
  launch_local.py --mpirun mpirun --np 4 -- dsflow-dist-tests

Without --mpirun it starts the ranks itself, torchrun-style, on a free port of
127.0.0.1 (the launcher variables of MPI and Slurm removed, so detection picks
TCP). Passes when every rank exits 0 (or, with --expect-fail, when the job
ends non-zero) within --timeout seconds, and every --expect pattern occurs in
the output. A rank still running at the timeout is killed and the test fails:
that is the hang these tests exist to catch.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

LAUNCHER_PREFIXES = ("OMPI_", "PMI_", "PMIX_", "SLURM_")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_all(procs, deadline):
    """Waits for every process until the deadline; kills the rest. Returns the
    exit codes (None for a killed one)."""
    codes = [None] * len(procs)
    while time.monotonic() < deadline and any(c is None for c in codes):
        for i, p in enumerate(procs):
            if codes[i] is None:
                codes[i] = p.poll()
        time.sleep(0.05)
    for i, p in enumerate(procs):
        if codes[i] is None:
            p.kill()
            p.wait()
    return codes


def run_tcp(args, extra_env):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCHER_PREFIXES)}
    env.update(extra_env)
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
               WORLD_SIZE=str(args.np), LOCAL_WORLD_SIZE=str(args.np))
    procs, logs = [], []
    for rank in range(args.np):
        log = tempfile.TemporaryFile()
        env_r = dict(env, RANK=str(rank), LOCAL_RANK=str(rank))
        procs.append(subprocess.Popen(args.command, env=env_r, stdout=log,
                                      stderr=subprocess.STDOUT))
        logs.append(log)
    codes = wait_all(procs, time.monotonic() + args.timeout)
    output = ""
    for rank, log in enumerate(logs):
        log.seek(0)
        for line in log.read().decode(errors="replace").splitlines():
            output += f"[{rank}] {line}\n"
    return codes, output


def run_mpi(args, extra_env):
    env = dict(os.environ, **extra_env)
    command = [args.mpirun, "--allow-run-as-root", "--oversubscribe",
               "-np", str(args.np)] + args.command
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        codes = wait_all([proc], time.monotonic() + args.timeout)
        log.seek(0)
        return codes, log.read().decode(errors="replace")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--np", type=int, required=True)
    parser.add_argument("--mpirun", help="run under this mpirun instead of TCP")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--expect-fail", action="store_true",
                        help="the job must end non-zero (but end)")
    parser.add_argument("--expect", action="append", default=[],
                        help="a regular expression the output must contain")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    extra_env = dict(kv.split("=", 1) for kv in args.env)

    started = time.monotonic()
    for attempt in range(3):
        codes, output = (run_mpi if args.mpirun else run_tcp)(args, extra_env)
        # Another process may have taken the free port in between: retry.
        if args.mpirun or "Address already in use" not in output:
            break
    elapsed = time.monotonic() - started
    sys.stdout.write(output)
    print(f"launch_local: exit codes {codes} after {elapsed:.1f} s")

    problems = []
    if any(c is None for c in codes):
        problems.append(f"still running after {args.timeout:g} s (killed): a hang")
    elif args.expect_fail and all(c == 0 for c in codes):
        problems.append("expected the job to fail, but every rank exited 0")
    elif not args.expect_fail and any(c != 0 for c in codes):
        problems.append("a rank exited non-zero")
    for pattern in args.expect:
        if not re.search(pattern, output):
            problems.append(f"no output matches {pattern!r}")
    for p in problems:
        print(f"launch_local: FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
