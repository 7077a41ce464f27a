#!/usr/bin/env python3
"""The UDP benchmark: datagrams per second, 64-byte datagrams, one sender and one
receiver over loopback, aio against standalone asio, asyncio and uvloop.

    python3 bench/udp_compare.py --build-dir BUILD [--quick] [--rounds N] [--json FILE]

Every peer plays the same flow (bench/udp_support.hpp): the sender keeps at most
WINDOW datagrams unacknowledged, the receiver acknowledges every ACK_EVERY-th with
its count. Nothing can be lost to a full receive buffer (the window is far smaller
than it); the receiver must count every datagram, and a lost one stalls the flow and
fails the run. Two workloads:

  stream     WINDOW 128, ACK_EVERY 32, --count datagrams (default 300,000): throughput
             (128 datagrams of 64 bytes fit the default receive buffer of 208 KiB,
             which the kernel charges about 1 KiB a datagram on loopback; 256 do not)
  ping-pong  WINDOW 1, ACK_EVERY 1, --count / 10 round trips: one datagram in flight

Each run starts a fresh receiver pinned to CPU 0 (taskset -c 0) and a fresh sender of
the same peer pinned to CPU 1. Figures:

  dgram/s         the datagrams over the receiver's time from first to last
  CPU ns/dgram    both processes' user + system time (wait4's rusage) over the datagrams

Peers are interleaved: each round runs every peer once, in an order that rotates from
round to round; figures are medians over --rounds rounds (default 5). "x aio" is the
peer's rate over aio's (0.5: half aio's throughput). --quick is the CI smoke run: one
round of a tenth of the count.

Peers (each skipped with a message when missing):
  aio      BUILD/bench/udp_aio    bench/udp_aio.cpp
  asio     BUILD/bench/udp_asio   bench/udp_asio.cpp
  asyncio  PYTHON bench/python/udp_asyncio.py
  uvloop   the same with --loop uvloop (python3-uvloop, for Debian's python3)

Exit status: 0 whatever the figures, 1 if a run failed, 2 if BUILD/bench lacks the
programs. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def peers(build: Path, python: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in ("aio", "asio"):
        program = build / "bench" / f"udp_{name}"
        if program.exists():
            found[name] = [str(program)]
        else:
            print(f"udp_compare: {name} skipped: {program} not built", file=sys.stderr)
    script = str(HERE / "python" / "udp_asyncio.py")
    found["asyncio"] = [python, script, "--loop", "asyncio"]
    probe = subprocess.run([python, "-c", "import uvloop"], capture_output=True)
    if probe.returncode == 0:
        found["uvloop"] = [python, script, "--loop", "uvloop"]
    else:
        print("udp_compare: uvloop skipped: `import uvloop` fails (apt-get install python3-uvloop)", file=sys.stderr)
    return found


def pinned(cpu: int, command: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu)] + command
    return command


def cpu_seconds(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def run_once(command: list[str], count: int, window: int, ack_every: int, timeout: float) -> dict:
    receiver = subprocess.Popen(pinned(0, command + ["receive", str(count), str(ack_every)]),
                                stdout=subprocess.PIPE, text=True)
    try:
        line = receiver.stdout.readline().split()
        if len(line) != 2 or line[0] != "PORT":
            raise RuntimeError(f"receiver said {line!r} instead of its port")
        sender = subprocess.Popen(pinned(1, command + ["send", line[1], str(count), str(window), str(ack_every)]),
                                  stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        results = {}
        for name, process in (("sender", sender), ("receiver", receiver)):
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    sender.kill()
                    receiver.kill()
                    raise RuntimeError(f"the {name} ran past {timeout} s")
                time.sleep(0.005)
            process.returncode = os.waitstatus_to_exitcode(status)
            results[name] = (process.returncode, process.stdout.read(), cpu_seconds(usage))
            if name == "sender" and process.returncode != 0:
                receiver.kill()  # the flow stalled: the receiver waits for a datagram that was lost
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
    for name, (code, _, _) in results.items():
        if code != 0:
            raise RuntimeError(f"the {name} exited with status {code}")
    words = results["receiver"][1].split()
    if len(words) != 3 or words[0] != "RESULT":
        raise RuntimeError(f"receiver printed {results['receiver'][1]!r}")
    received, seconds = int(words[1]), float(words[2])
    if received != count:
        raise RuntimeError(f"the receiver counted {received} of {count} datagrams")
    cpu = results["receiver"][2] + results["sender"][2]
    return {"rate": count / seconds if seconds > 0 else float("inf"), "cpu_ns": cpu / count * 1e9}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, type=Path)
    parser.add_argument("--quick", action="store_true", help="one round of a tenth of the count (CI smoke run)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=300_000)
    parser.add_argument("--python", default="/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable)
    parser.add_argument("--only", action="append", help="run only these peers (repeatable)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rounds, count = (1, max(args.count // 10, 1000)) if args.quick else (args.rounds, args.count)

    found = peers(args.build_dir, args.python)
    if "aio" not in found:
        print("udp_compare: BUILD/bench/udp_aio is missing (build the udp_aio and udp_asio targets)", file=sys.stderr)
        return 2
    if args.only:
        found = {k: v for k, v in found.items() if k in args.only}
    workloads = [("stream", count, 128, 32), ("ping-pong", max(count // 10, 100), 1, 1)]
    figures: dict[str, dict[str, list[dict]]] = {w[0]: {p: [] for p in found} for w in workloads}
    failed = False
    names = list(found)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for workload, n, window, ack_every in workloads:
            for peer in order:
                try:
                    figures[workload][peer].append(run_once(found[peer], n, window, ack_every, timeout=120))
                except RuntimeError as e:
                    print(f"udp_compare: {peer} {workload} round {r + 1}: {e}", file=sys.stderr)
                    failed = True
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)

    print(f"\nUDP over loopback, 64-byte datagrams, medians of {rounds} round(s); "
          f"stream: {count} datagrams, window 128, ack every 32; ping-pong: {max(count // 10, 100)} round trips")
    print(f"{'workload':<10} {'peer':<8} {'dgram/s':>12} {'x aio':>7} {'CPU ns/dgram':>13} {'CPU x aio':>10}")
    report = {}
    for workload, *_ in workloads:
        base = figures[workload].get("aio", [])
        base_rate = statistics.median(f["rate"] for f in base) if base else None
        base_cpu = statistics.median(f["cpu_ns"] for f in base) if base else None
        for peer in found:
            runs = figures[workload][peer]
            if not runs:
                continue
            rate = statistics.median(f["rate"] for f in runs)
            cpu = statistics.median(f["cpu_ns"] for f in runs)
            x = f"{rate / base_rate:.2f}" if base_rate else "-"
            cx = f"{cpu / base_cpu:.2f}" if base_cpu else "-"
            print(f"{workload:<10} {peer:<8} {rate:>12,.0f} {x:>7} {cpu:>13,.0f} {cx:>10}")
            report.setdefault(workload, {})[peer] = {"rate": rate, "cpu_ns": cpu, "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
