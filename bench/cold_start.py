#!/usr/bin/env python3
"""Fresh-process benchmarks: every scenario as the first and only run of a new process.

    python3 bench/cold_start.py --build-dir BUILD [--rounds 3] [--quick] [--json FILE]

Google Benchmark (bench/compare.py's table) repeats a scenario inside one process, so
after its first iteration every coroutine frame comes from memory the process has
already touched, and the allocators' caches are warm. A program runs once. Here each
(scenario, N, implementation) is a process of its own that does the work exactly
once and prints one JSON line (bench/cold_support.hpp says what it measures):

    aio        BUILD/bench/cold_aio
    asio       BUILD/bench/cold_asio        standalone asio, C++20 coroutines
    asyncio    python3 bench/python/cold_asyncio.py
    uvloop     the same with --loop uvloop, only if uvloop can be imported
    reference  BUILD/bench/cold_reference   the bare loop of bench/reference_loop.hpp

Scenarios: gather N (N = 100,000 and 1,000,000), sleep_gather and sleep_create_task
(1,000,000 tasks asleep at once), distinct_sleeps (100,000 tasks, each its own delay,
up to 0.1 s). --quick (CI) runs each at N = 20,000, one round.

The peers are interleaved: each round runs every implementation once per scenario,
in an order rotated by one place per round, so none always runs first or last on a
machine whose speed drifts. Printed, as the median over the rounds, per scenario:

    ns/task         the program's measured phase / N, timed inside it: from before the
                    first task is created to after the last result is collected (to
                    the moment all are asleep, for the sleeping scenarios); for
                    distinct_sleeps, less its longest sleep: the overhead per task
    bytes/task      sleeping scenarios: VmRSS growth while all are asleep / N
    peak RSS MiB, asleep
                    sleeping scenarios: the program's VmHWM once all are asleep
    peak RSS MiB    the program's VmHWM at its end, teardown included (aio closes its
                    loop, asio destroys its io_context, the reference its loop; asyncio
                    exits at once, see cold_asyncio.py)
    minor faults    ru_minflt of the whole process, from os.wait4 (startup included:
                    an interpreter's start costs thousands)
    faults in phase minor faults during the measured phase alone (getrusage inside)

Ratios are peer / aio: above 1, aio is faster or smaller.

Peak RSS is VmHWM, not os.wait4's ru_maxrss (which --json keeps, as ru_maxrss_mib):
on Linux a child's ru_maxrss never reads below the resident size of the process that
spawned it — exec carries the old memory's high-water mark into it, and subprocess's
vfork child shares this script's memory — so every program would show at least this
script's own size (some 18 MiB: more than a C++ program at N = 20,000 needs).

Exit status: 1 if a program fails or fails a check (its checksum, a phase shorter
than its longest sleep), 2 if BUILD/bench lacks the programs.

Standard library only.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from compare import build_info, fmt, fmt_ratio, ratio

HERE = Path(__file__).resolve().parent
ASYNCIO_PROGRAM = HERE / "python" / "cold_asyncio.py"

FULL = [("gather", 100_000), ("gather", 1_000_000), ("sleep_gather", 1_000_000),
        ("sleep_create_task", 1_000_000), ("distinct_sleeps", 100_000)]
QUICK = [("gather", 20_000), ("sleep_gather", 20_000), ("sleep_create_task", 20_000),
         ("distinct_sleeps", 20_000)]
SLEEPING = ("sleep_gather", "sleep_create_task")

# (key in a run's figures, label in the table); bytes/task only where tasks sleep.
FIGURES = [("ns_per_task", "ns/task"), ("bytes_per_task", "bytes/task"),
           ("peak_rss_asleep_mib", "peak RSS MiB, asleep"), ("peak_rss_mib", "peak RSS MiB"),
           ("minflt", "minor faults"), ("minflt_phase", "faults in phase")]
SLEEPING_ONLY = ("bytes_per_task", "peak_rss_asleep_mib")


@dataclass(frozen=True)
class Impl:
    name: str
    command: list[str]  # the scenario and N are appended


class RunFailure(Exception):
    pass


def expected_checksum(scenario: str, n: int) -> int:
    return n if scenario in SLEEPING else n * (n - 1) // 2


def run_once(impl: Impl, scenario: str, n: int, timeout: float) -> dict:
    """Runs one program in a fresh process; returns its figures."""
    command = impl.command + [scenario, str(n)]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)  # stderr: ours
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        proc.kill()

    killer = threading.Timer(timeout, kill)
    killer.start()
    try:
        out = proc.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(proc.pid, 0)  # the rusage that Popen.wait() would throw away
    finally:
        killer.cancel()
        proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    what = f"{impl.name} {scenario} {n}"
    if proc.returncode != 0:
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        raise RunFailure(f"{what}: ended with {how}" + (f" (killed after {timeout:g} s)" if timed_out.is_set() else ""))
    lines = [line for line in out.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as e:
        raise RunFailure(f"{what}: printed no JSON line ({e})") from None
    expected = expected_checksum(scenario, n)
    if not result.get("ok") or result.get("checksum") != expected or result.get("n") != n:
        raise RunFailure(f"{what}: check failed (checksum {result.get('checksum')}, expected {expected}; "
                         f"ok={result.get('ok')})")
    figures = {
        "ns_per_task": float(result["ns_per_task"]),
        "peak_rss_mib": result["peak_rss_bytes"] / 2**20,
        "minflt": float(usage.ru_minflt),
        "minflt_phase": float(result["minflt_phase"]),
        "ru_maxrss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "elapsed_ms": result["elapsed_ns"] / 1e6,
    }
    if scenario in SLEEPING:
        figures["bytes_per_task"] = float(result["bytes_per_task"])
        figures["peak_rss_asleep_mib"] = result["peak_rss_asleep_bytes"] / 2**20
    return figures


def implementations(build_dir: Path, with_python: bool) -> tuple[list[Impl], list[str]]:
    bench = build_dir / "bench"
    impls, missing = [], []
    for name in ("aio", "asio", "reference"):
        binary = bench / f"cold_{name}"
        if binary.is_file() and os.access(binary, os.X_OK):
            impls.append(Impl(name, [str(binary)]))
        else:
            missing.append(str(binary))
    if with_python:
        impls.append(Impl("asyncio", [sys.executable, str(ASYNCIO_PROGRAM)]))
        if importlib.util.find_spec("uvloop") is not None:
            impls.append(Impl("uvloop", [sys.executable, str(ASYNCIO_PROGRAM), "--loop", "uvloop"]))
    return impls, missing


def print_table(scenarios: list[tuple[str, int]], impl_names: list[str], medians: dict) -> None:
    columns = [c for c in ("aio", "asio", "asyncio", "uvloop", "reference") if c in impl_names]
    header = ["scenario", "N", "figure"] + columns + ["asio/aio", "reference/aio"]
    rows = []
    for scenario, n in scenarios:
        for key, label in FIGURES:
            if key in SLEEPING_ONLY and scenario not in SLEEPING:
                continue
            value = {c: (medians.get((scenario, n, c)) or {}).get(key) for c in columns}
            rows.append([scenario, f"{n:,}", label] + [fmt(value[c]) for c in columns]
                        + [fmt_ratio(ratio(value.get("asio"), value.get("aio"))),
                           fmt_ratio(ratio(value.get("reference"), value.get("aio")))])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    left = 3  # scenario, N and figure read left-aligned; the figures right-aligned

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 1) + (":" if i >= left else "-") for i, w in enumerate(widths)) + "|")
    for r in rows:
        print(line(r))


def main() -> int:
    parser = argparse.ArgumentParser(description="Fresh-process benchmarks of aio, asio, asyncio and a bare "
                                                 "reference loop (see the module docstring).")
    parser.add_argument("--build-dir", required=True, type=Path,
                        help="CMake build directory (the programs are in BUILD/bench)")
    parser.add_argument("--rounds", type=int, default=None, help="runs of each program (default 3, 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: N = 20,000, one round")
    parser.add_argument("--json", type=Path, help="also write the medians and every run's figures here")
    parser.add_argument("--only", metavar="SCENARIO[,SCENARIO]", help="a subset of the scenarios")
    parser.add_argument("--no-asyncio", action="store_true", help="skip the Python programs")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run is killed (default 600)")
    args = parser.parse_args()

    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    scenarios = QUICK if args.quick else FULL
    if args.only:
        wanted = {s.strip() for s in args.only.split(",") if s.strip()}
        unknown = wanted - {s for s, _ in scenarios}
        if unknown:
            parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
        scenarios = [(s, n) for s, n in scenarios if s in wanted]

    impls, missing = implementations(args.build_dir, not args.no_asyncio)
    if missing:
        print(f"cold_start.py: missing {', '.join(missing)} (configure with -DAIO_BUILD_BENCH=ON and build first)",
              file=sys.stderr)
        return 2

    started = datetime.datetime.now().astimezone()
    runs: dict[tuple[str, int, str], list[dict]] = {(s, n, i.name): [] for s, n in scenarios for i in impls}
    failures: list[str] = []
    for round_ in range(rounds):
        shift = round_ % len(impls)
        order = impls[shift:] + impls[:shift]
        for scenario, n in scenarios:
            for impl in order:
                try:
                    figures = run_once(impl, scenario, n, args.timeout)
                except RunFailure as e:
                    failures.append(str(e))
                    print(f"[cold] round {round_ + 1}/{rounds} {scenario} {n} {impl.name}: FAILED", file=sys.stderr)
                    continue
                runs[(scenario, n, impl.name)].append(figures)
                print(f"[cold] round {round_ + 1}/{rounds} {scenario} {n} {impl.name}: "
                      f"{figures['ns_per_task']:.1f} ns/task, peak {figures['peak_rss_mib']:.1f} MiB",
                      file=sys.stderr, flush=True)

    medians = {key: {f: statistics.median(r[f] for r in rs) for f in rs[0]} for key, rs in runs.items() if rs}

    print(f"fresh-process benchmarks — {'QUICK smoke run, figures indicative only' if args.quick else 'full run'}; "
          f"median of {rounds} round{'s' if rounds > 1 else ''}, peers interleaved")
    print(f"{started:%Y-%m-%d %H:%M %Z}, {platform.node()}, {os.cpu_count()} CPUs; {build_info(args.build_dir)}; "
          f"Python {platform.python_version()}")
    print()
    print_table(scenarios, [i.name for i in impls], medians)

    if args.json:
        args.json.write_text(json.dumps({
            "started": started.isoformat(timespec="seconds"),
            "rounds": rounds,
            "quick": args.quick,
            "build": build_info(args.build_dir),
            "python": platform.python_version(),
            "results": [{"scenario": s, "n": n, "impl": impl, "median": medians.get((s, n, impl)), "runs": rs}
                        for (s, n, impl), rs in runs.items()],
        }, indent=2) + "\n")

    if failures:
        print()
        print("failures:")
        for f in failures:
            print(f"  {f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
