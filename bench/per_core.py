#!/usr/bin/env python3
"""One loop per core: the two listener strategies of examples/http_per_core.cpp under
wrk's HTTP keep-alive load, with the share of the requests each loop served.

    python3 bench/per_core.py --build-dir BUILD [--loops 2] [--rounds 5] [--duration 5] [--quick]

BUILD/bench/per_core_server (the example, built optimised) serves with

  reuse_port  a listener per loop on one port (SO_REUSEPORT): the kernel hashes each
              connection to a loop, whatever the loops' load;
  hand_off    loop 0 accepts every connection and deals them out in turn;
  one loop    the same server with a single loop (reuse_port, LOOPS=1), the baseline.

Each round runs the three in a rotating order: a fresh server process (not pinned:
its loops may use every core), wrk -t1 -c<connections> against it for --duration
seconds, then SIGINT, on which the server prints each loop's connections and
requests. Reported, as medians over the rounds: req/s, the server's CPU time per
request (/proc/PID/stat over the run, every thread), each loop's share of the
requests, and the busiest loop's share (50% is an even split over two loops). The
connection readiness check and wrk's connections are what the loops served.
--quick is CI's smoke run: one round of 2 s.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from net_compare import RunFailure, cpu_ticks, free_port, process_tree, run_wrk  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
LOOP_LINE = re.compile(r"^(\w+): loop (\d+) served (\d+) connections, (\d+) requests")


def wait_listening(proc: subprocess.Popen) -> str:
    """The server's first line, which it prints once it listens (or EOF if it died)."""
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        raise RunFailure(f"per_core_server printed nothing (exit {proc.poll()})")
    return line.strip()


def one_run(server: Path, strategy: str, loops: int, seconds: int, connections: int) -> dict:
    port = free_port()
    proc = subprocess.Popen([str(server), "serve", strategy, str(port), str(loops)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_listening(proc)
        pids = process_tree(proc.pid)
        before = cpu_ticks(pids)
        result = run_wrk(port, seconds, connections, None)
        used = (cpu_ticks(pids) - before) / TICK
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0 or err.strip():
        raise RunFailure(f"per_core_server {strategy} ended with {proc.returncode}: {err.strip()}")
    per_loop = [(int(m.group(3)), int(m.group(4))) for m in map(LOOP_LINE.match, out.splitlines()) if m]
    if len(per_loop) != loops:
        raise RunFailure(f"per_core_server {strategy}: expected {loops} loop lines, got:\n{out}")
    served = sum(r for _, r in per_loop)
    return {
        "rate": result["rate"],
        "cpu_us": used * 1e6 / max(1, result["count"]),
        "shares": [100.0 * r / max(1, served) for _, r in per_loop],
        "connections": [c for c, _ in per_loop],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", type=Path, required=True)
    p.add_argument("--loops", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 2
    server = args.build_dir / "bench" / "per_core_server"
    if not server.exists():
        print(f"per_core.py: {server} not built (cmake --build --preset bench)", file=sys.stderr)
        return 1
    if not shutil.which("wrk"):
        print("per_core.py: skipped: wrk not found (apt-get install wrk)")
        return 0

    setups = [("reuse_port", "reuse_port", args.loops), ("hand_off", "hand_off", args.loops), ("one loop", "reuse_port", 1)]
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in setups}
    for r in range(args.rounds):
        order = setups[r % len(setups):] + setups[:r % len(setups)]
        for name, strategy, loops in order:
            runs[name].append(one_run(server, strategy, loops, args.duration, args.connections))
            time.sleep(0.2)

    print(f"One loop per core: HTTP keep-alive, wrk -t1 -c{args.connections} -d{args.duration}s, "
          f"{args.loops} loops, median of {args.rounds} round(s), {os.cpu_count()} CPUs")
    print(f"  {'setup':<11} {'req/s':>9} {'CPU us/req':>11} {'busiest loop':>13}  requests per loop (connections)")
    for name, _, loops in setups:
        rs = runs[name]
        rate = statistics.median(x["rate"] for x in rs)
        cpu = statistics.median(x["cpu_us"] for x in rs)
        busiest = statistics.median(max(x["shares"]) for x in rs)
        split = " / ".join(f"{statistics.median(x['shares'][i] for x in rs):.1f}% ({statistics.median(x['connections'][i] for x in rs):g})"
                           for i in range(loops))
        print(f"  {name:<11} {rate:>9.0f} {cpu:>11.2f} {busiest:>12.1f}%  {split}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RunFailure as e:
        print(f"per_core.py: {e}", file=sys.stderr)
        sys.exit(1)
