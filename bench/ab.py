#!/usr/bin/env python3
"""Before/after: aio's benchmarks from two builds, interleaved, in fresh processes.

    python3 bench/ab.py --before BUILD_A --after BUILD_B [--rounds 5] [--filter REGEX] [--cpu N]

For every aio benchmark (BM_aio_*) found in BUILD_A/bench, runs it alone in a fresh
process from each build in turn, A B B A A B ..., `--rounds` times each, so that both
trees see the same machine at the same moments and neither always goes first. Prints
per benchmark the median real time per iteration of each build, every counter's
median, after/before of the medians, and the median of the per-round after/before
ratios (below 1: the after build is faster or smaller); the paired ratio cancels the
machine's slow drift. `--cpu N` pins every run to one CPU. Both builds must be Release
builds of the same benchmark sources.

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path


def benchmarks(binary: Path, pattern: re.Pattern[str]) -> list[str]:
    out = subprocess.run([str(binary), "--benchmark_list_tests"], capture_output=True, text=True, check=True).stdout
    return [name for name in out.split() if name.startswith("BM_aio_") and pattern.search(name)]


def run_once(binary: Path, name: str, min_time: float | None, cpu: int | None) -> dict[str, float]:
    command = [str(binary), f"--benchmark_filter=^{re.escape(name)}$", "--benchmark_format=json"]
    if min_time is not None:
        command.append(f"--benchmark_min_time={min_time}")
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    proc = subprocess.run(command, capture_output=True, text=True, preexec_fn=pin)
    if proc.returncode != 0:
        raise SystemExit(f"{binary} {name}: exit status {proc.returncode}\n{proc.stderr}")
    run = json.loads(proc.stdout)["benchmarks"][0]
    figures = {"real_time": float(run["real_time"])}
    skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
            "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index", "aggregate_name"}
    for key, value in run.items():
        if key not in skip and isinstance(value, (int, float)):
            figures[key] = float(value)
    figures["unit"] = run.get("time_unit", "ns")  # type: ignore[assignment]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, type=Path, help="build directory of the old tree")
    parser.add_argument("--after", required=True, type=Path, help="build directory of the new tree")
    parser.add_argument("--rounds", type=int, default=5, help="runs per build and benchmark (median reported)")
    parser.add_argument("--filter", default="", help="only benchmarks whose name matches this regex")
    parser.add_argument("--min-time", type=float, default=None, help="--benchmark_min_time in seconds")
    parser.add_argument("--cpu", type=int, default=None, help="pin every run to this CPU")
    args = parser.parse_args()

    pattern = re.compile(args.filter)
    binaries = sorted((args.before / "bench").glob("bench_*"))
    if not binaries:
        print(f"no benchmark binaries in {args.before / 'bench'}", file=sys.stderr)
        return 2
    print("| benchmark | figure | before | after | after/before | paired |")
    print("|---|---|---:|---:|---:|---:|")
    for before in binaries:
        after = args.after / "bench" / before.name
        if not after.exists():
            print(f"| {before.name} | missing in the after build | | | |")
            continue
        for name in benchmarks(before, pattern):
            runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
            for round_ in range(args.rounds):
                order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
                for which in order:
                    binary = before if which == "before" else after
                    runs[which].append(run_once(binary, name, args.min_time, args.cpu))
            unit = runs["before"][0]["unit"]
            for figure in runs["before"][0]:
                if figure == "unit" or any(figure not in r for r in runs["after"]):
                    continue
                a = statistics.median(r[figure] for r in runs["before"])
                b = statistics.median(r[figure] for r in runs["after"])
                label = f"real_time ({unit}/iteration)" if figure == "real_time" else figure
                ratio = f"{b / a:.3f}" if a else "n/a"
                pairs = [y[figure] / x[figure] for x, y in zip(runs["before"], runs["after"]) if x[figure]]
                paired = f"{statistics.median(pairs):.3f}" if pairs else "n/a"
                print(f"| {name} | {label} | {a:.6g} | {b:.6g} | {ratio} | {paired} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
