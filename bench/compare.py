#!/usr/bin/env python3
"""aio vs asio vs asyncio: one table, one command.

    python3 bench/compare.py --build-dir BUILD [--quick] [--cold]

Runs the Google Benchmark binaries found in BUILD/bench, each benchmark alone in
its own process (the memory figures need a fresh process per implementation; the
others lose nothing by it), every figure but memory as the median of
--repetitions runs; runs bench/python/bench_asyncio.py for the asyncio column;
and prints

    scenario | unit | aio | asio | asyncio | asio/aio | asyncio/aio

followed by the project's performance targets, each with its measured figure and
PASS or FAIL. A ratio above 1 means aio is faster (or smaller). Without the Python
baseline the asyncio column reads n/a.

These are warm figures: Google Benchmark repeats each scenario inside one process.
--cold then also prints bench/cold_start.py's table: the same kind of scenarios as
the first and only run of a fresh process (its --rounds follow --repetitions).

The exit status is 0 whatever the figures (this is a report, not a gate); it is 1
if a benchmark binary crashes or reports an error (or, with --cold, a fresh-process
program fails), 2 if BUILD/bench holds none.

--quick is the CI smoke run (well under a minute): a tiny --benchmark_min_time,
20,000 sleeping tasks instead of 1,000,000, 100 one-millisecond sleeps instead of
1000, 200 idle wake-ups instead of 2000, 1000 executor round trips instead of
10,000, a tenth of the two-loop work, and the Python script's --quick sizes. Its
figures are only indicative.

Some rows have no asio peer (asio column n/a), and three figures are baselines
rather than columns: the sequential sleeps of sleep_scale, the bare two-thread
epoll + eventfd ping-pong that the to_thread round trip is held against, and the
two-thread speed-up of plain integer work next to the two-loop speed-ups.

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

HERE = Path(__file__).resolve().parent
ASYNCIO_SCRIPT = HERE / "python" / "bench_asyncio.py"
COLD_SCRIPT = HERE / "cold_start.py"

Result = dict  # {"value": float, optional "p99": float, ...}


# --------------------------------------------------------------------------
# Reading Google Benchmark results
# --------------------------------------------------------------------------

def per_item_ns(counter: str) -> Callable[[dict], Result]:
    """A report_items() counter: seconds per item in the JSON, shown in ns."""
    return lambda run: {"value": run[counter] * 1e9}


def counter(name: str, **extra: str) -> Callable[[dict], Result]:
    """A plain counter; `extra` maps result fields to further counters."""
    def read(run: dict) -> Result:
        result = {"value": run[name]}
        for field, other in extra.items():
            result[field] = run[other]
        return result
    return read


REPEAT, INTERLEAVE, ONCE = "repeat", "interleave", "once"


@dataclass(frozen=True)
class Scenario:
    key: str          # the key bench_asyncio.py reports under
    unit: str
    binary: str       # in BUILD/bench
    aio: str          # benchmark name without Google Benchmark's suffixes
    asio: Optional[str]  # None: no asio peer
    read: Callable[[dict], Result]
    quick_aio: Optional[str] = None   # smaller instance for --quick
    quick_asio: Optional[str] = None
    # How a scenario is repeated (--repetitions times):
    #   REPEAT:     inside one process (Google Benchmark repetitions; the median);
    #   INTERLEAVE: one process per run, alternating aio and asio, the median of
    #               each figure — wall-clock figures drift on a shared machine, and
    #               alternating exposes both sides to the same drift;
    #   ONCE:       a single run (memory: deterministic, and must be alone).
    repeat: str = REPEAT
    # The result also has a "p99" field, shown as a row of its own in this unit.
    p99_unit: Optional[str] = None

    def benchmark(self, impl: str, quick: bool) -> Optional[str]:
        full = self.aio if impl == "aio" else self.asio
        small = self.quick_aio if impl == "aio" else self.quick_asio
        return (small or full) if quick else full


SCENARIOS = [
    Scenario("await_lazy", "ns/await", "bench_await",
             "BM_aio_await/100000", "BM_asio_await/100000", per_item_ns("per_await")),
    Scenario("create_task_await", "ns/task", "bench_create_task",
             "BM_aio_create_task/100000", "BM_asio_create_task/100000", per_item_ns("per_task")),
    Scenario("gather_100k", "ns/task", "bench_gather",
             "BM_aio_gather/100000", "BM_asio_gather/100000", per_item_ns("per_task")),
    Scenario("sleep0_roundtrip", "ns/roundtrip", "bench_sleep0",
             "BM_aio_sleep0/100000", "BM_asio_sleep0/100000", per_item_ns("per_roundtrip")),
    Scenario("timers_100k", "ns/timer", "bench_timers",
             "BM_aio_timers/100000", "BM_asio_timers/100000", per_item_ns("per_timer")),
    Scenario("sleeping_tasks_100k", "ns/timer", "bench_timers",
             "BM_aio_sleeping_tasks/100000", "BM_asio_sleeping_tasks/100000", per_item_ns("per_timer")),
    Scenario("memory_1m_sleeping", "bytes/task", "bench_memory",
             "BM_aio_memory/1000000", "BM_asio_memory/1000000", counter("bytes_per_task"),
             quick_aio="BM_aio_memory/20000", quick_asio="BM_asio_memory/20000", repeat=ONCE),
    Scenario("oversleep_1ms", "us (median)", "bench_oversleep",
             "BM_aio_oversleep/1000", "BM_asio_oversleep/1000", counter("median_us", p99="p99_us"),
             quick_aio="BM_aio_oversleep/100", quick_asio="BM_asio_oversleep/100", repeat=INTERLEAVE,
             p99_unit="us (p99)"),
    Scenario("sleep_scale", "ms", "bench_sleep_scale",
             "BM_aio_sleep_scale/100/10", "BM_asio_sleep_scale/100/10", counter("wall_ms"),
             repeat=INTERLEAVE),
    Scenario("sleep_scale_10k", "ms", "bench_sleep_scale",
             "BM_aio_sleep_scale/10000/100", "BM_asio_sleep_scale/10000/100", counter("wall_ms"),
             repeat=INTERLEAVE),
    Scenario("wait_for_in_time", "ns/call", "bench_wait_for",
             "BM_aio_wait_for/100000", "BM_asio_wait_for/100000", per_item_ns("per_call")),
    Scenario("cancel_sleepers_100k", "ns/task", "bench_cancel",
             "BM_aio_cancel_sleepers/100000", "BM_asio_cancel_sleepers/100000", per_item_ns("per_task")),
    # The cancel_sleepers cycle without the cancellation (the loop's teardown destroys
    # the sleeping frames instead): the difference is what cancelling costs. No
    # asyncio figure: asyncio cannot drop pending tasks without cancelling them.
    Scenario("spawn_sleepers_100k", "ns/task", "bench_cancel",
             "BM_aio_spawn_sleepers/100000", "BM_asio_spawn_sleepers/100000", per_item_ns("per_task")),
    # bench_sync: asyncio.Queue / Lock / Event against asio's idioms (channels, a
    # never-expiring timer); see the header comment of bench/bench_sync.cpp.
    Scenario("queue_unbounded_100k", "ns/item", "bench_sync",
             "BM_aio_queue/100000/0", "BM_asio_queue/100000/0", per_item_ns("per_item")),
    Scenario("queue_maxsize1_100k", "ns/item", "bench_sync",
             "BM_aio_queue/100000/1", "BM_asio_queue/100000/1", per_item_ns("per_item")),
    Scenario("lock_uncontended", "ns/acquire", "bench_sync",
             "BM_aio_lock_uncontended/100000", "BM_asio_lock_uncontended/100000", per_item_ns("per_acquire")),
    Scenario("lock_contended_10", "ns/acquire", "bench_sync",
             "BM_aio_lock_contended/10000", "BM_asio_lock_contended/10000", per_item_ns("per_acquire")),
    Scenario("event_wake_10k", "ns/waiter", "bench_sync",
             "BM_aio_event/10000", "BM_asio_event/10000", per_item_ns("per_waiter")),
    # bench_threads: see the header comment of bench/bench_threads.cpp. The busy-loop
    # posts: P producer threads x 100,000 calls each, into a loop that never sleeps.
    Scenario("call_soon_threadsafe_1t", "ns/call", "bench_threads",
             "BM_aio_call_soon_threadsafe/1/100000", "BM_asio_call_soon_threadsafe/1/100000",
             per_item_ns("per_call")),
    Scenario("call_soon_threadsafe_4t", "ns/call", "bench_threads",
             "BM_aio_call_soon_threadsafe/4/100000", "BM_asio_call_soon_threadsafe/4/100000",
             per_item_ns("per_call")),
    # Waking a loop idle in epoll from another thread: a latency, like oversleep_1ms.
    Scenario("wakeup_idle", "ns (median)", "bench_threads",
             "BM_aio_wakeup_idle/2000", "BM_asio_wakeup_idle/2000", counter("median_ns", p99="p99_ns"),
             quick_aio="BM_aio_wakeup_idle/200", quick_asio="BM_asio_wakeup_idle/200", repeat=INTERLEAVE,
             p99_unit="ns (p99)"),
    Scenario("to_thread_roundtrip", "ns/roundtrip", "bench_threads",
             "BM_aio_to_thread/10000", "BM_asio_to_thread/10000", per_item_ns("per_roundtrip"),
             quick_aio="BM_aio_to_thread/1000", quick_asio="BM_asio_to_thread/1000"),
    # Two loops on two threads against one: the figure is the speed-up (two loops'
    # items/s over one loop's), higher is better; aio only.
    Scenario("two_loops_sleep0", "x (speed-up)", "bench_threads",
             "BM_aio_two_loops_sleep0/1000000", None,
             counter("speedup", one_loop="one_loop_items_per_s", two_loops="two_loops_items_per_s"),
             quick_aio="BM_aio_two_loops_sleep0/100000"),
    Scenario("two_loops_gather", "x (speed-up)", "bench_threads",
             "BM_aio_two_loops_gather/100000", None,
             counter("speedup", one_loop="one_loop_items_per_s", two_loops="two_loops_items_per_s"),
             quick_aio="BM_aio_two_loops_gather/10000"),
]

# Not a column of its own: the sequential baseline of the sleep_scale demo.
BLOCKING = ("bench_sleep_scale", "BM_blocking_sleep_scale/100/10")
# Neither: what a hop between two threads costs at least, the to_thread round trip's
# baseline (full size, --quick size).
PINGPONG = ("bench_threads", "BM_baseline_eventfd_pingpong/10000", "BM_baseline_eventfd_pingpong/1000")
# And the machine's own two-thread scaling (plain integer work), for reading the
# two_loops speed-ups: a shared or virtual machine may not give two threads two cores.
MACHINE_SCALING = ("bench_threads", "BM_baseline_two_threads_cpu/10000000", "BM_baseline_two_threads_cpu/1000000")


def median_result(runs: list[Result]) -> Result:
    """Field by field median of several runs of one benchmark."""
    return {field: statistics.median(r[field] for r in runs) for field in runs[0]}


class BenchmarkFailure(Exception):
    """A binary crashed, exited non-zero or reported an error."""


def run_benchmark(binary: Path, name: str, min_time: Optional[float], repetitions: int = 1) -> dict:
    """Runs one benchmark alone in a fresh process; returns its JSON run (the
    median aggregate when repeated)."""
    # Google Benchmark appends /iterations:1, /real_time, ... to the name.
    pattern = "^" + re.escape(name) + "(/|$)"
    command = [str(binary), f"--benchmark_filter={pattern}", "--benchmark_format=json"]
    if min_time is not None:
        command.append(f"--benchmark_min_time={min_time}")  # seconds (benchmark 1.7 syntax)
    if repetitions > 1:
        command += [f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true"]
    print(f"[compare] {binary.name} {name}", file=sys.stderr, flush=True)
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        raise BenchmarkFailure(f"{binary.name} --benchmark_filter='{pattern}' ended with {how}")
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    try:
        runs = json.loads(proc.stdout)["benchmarks"]
    except (json.JSONDecodeError, KeyError) as e:
        raise BenchmarkFailure(f"{binary.name}: unreadable JSON output ({e})") from None
    name_re = re.compile(pattern)
    wanted = ("aggregate", "median") if repetitions > 1 else ("iteration", None)
    runs = [r for r in runs
            if (r.get("run_type", "iteration"), r.get("aggregate_name")) == wanted and name_re.match(r["name"])]
    if not runs:
        raise BenchmarkFailure(f"{binary.name}: no benchmark matches '{pattern}'")
    run = runs[0]
    if run.get("error_occurred"):
        raise BenchmarkFailure(f"{binary.name} {name}: {run.get('error_message', 'error')}")
    return run


# --------------------------------------------------------------------------
# The asyncio baseline
# --------------------------------------------------------------------------

def run_asyncio(quick: bool) -> tuple[dict, str]:
    """bench_asyncio.py's results, or ({}, reason) when they cannot be had."""
    if not ASYNCIO_SCRIPT.is_file():
        return {}, f"{ASYNCIO_SCRIPT.relative_to(HERE.parent)} not found"
    command = [sys.executable, str(ASYNCIO_SCRIPT)] + (["--quick"] if quick else [])
    print(f"[compare] {' '.join(command)}", file=sys.stderr, flush=True)
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True)  # progress on stderr
    if proc.returncode != 0:
        return {}, f"bench_asyncio.py exited with status {proc.returncode}"
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        return {}, f"bench_asyncio.py printed no JSON object ({e})"
    if not isinstance(results, dict):
        return {}, "bench_asyncio.py printed JSON that is not an object"
    return results, ""


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def value_of(result: Optional[Result], field: str = "value") -> Optional[float]:
    if not result or result.get(field) is None:
        return None
    try:
        v = float(result[field])
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt(v: Optional[float]) -> str:
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def fmt_ratio(r: Optional[float]) -> str:
    if r is None:
        return "n/a"
    return f"{r:.0f}x" if r >= 100 else f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def print_table(rows: list[list[str]]) -> None:
    header = ["scenario", "unit", "aio", "asio", "asyncio", "asio/aio", "asyncio/aio"]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    align = ["<", "<", ">", ">", ">", ">", ">"]

    def line(cells: list[str]) -> str:
        return " | ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths))

    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


@dataclass(frozen=True)
class Target:
    text: str
    check: Callable[[dict], tuple[Optional[float], bool, str]]  # (figure, passed, shown)


def speedup(key: str, peer: str, at_least: float) -> Callable[[dict], tuple]:
    def check(results: dict) -> tuple:
        r = ratio(value_of(results[peer].get(key)), value_of(results["aio"].get(key)))
        return r, r is not None and r >= at_least, f"{fmt_ratio(r)} (need >= {at_least:g}x)"
    return check


def at_most(key: str, limit: float, unit: str, field: str = "value") -> Callable[[dict], tuple]:
    def check(results: dict) -> tuple:
        v = value_of(results["aio"].get(key), field)
        return v, v is not None and v <= limit, f"{fmt(v)} {unit} (need <= {limit:g})"
    return check


def at_least(key: str, limit: float) -> Callable[[dict], tuple]:
    """aio's own figure (a speed-up) must reach `limit`."""
    def check(results: dict) -> tuple:
        v = value_of(results["aio"].get(key))
        return v, v is not None and v >= limit, f"{fmt_ratio(v)} (need >= {limit:g}x)"
    return check


def within_baseline(key: str, factor: float) -> Callable[[dict], tuple]:
    """aio's figure must be at most `factor` times the baseline's."""
    def check(results: dict) -> tuple:
        r = ratio(value_of(results["aio"].get(key)), value_of(results["baseline"].get(key)))
        return r, r is not None and r <= factor, f"{fmt_ratio(r)} the baseline (need <= {factor:g}x)"
    return check


def not_above_peer(key: str, peer: str, unit: str) -> Callable[[dict], tuple]:
    def check(results: dict) -> tuple:
        mine, theirs = value_of(results["aio"].get(key)), value_of(results[peer].get(key))
        ok = mine is not None and theirs is not None and mine <= theirs
        return (mine if theirs is not None else None), ok, f"aio {fmt(mine)} vs {peer} {fmt(theirs)} {unit}"
    return check


TARGETS = [
    Target("gather of 100,000 trivial tasks: aio >= 100x faster than asyncio",
           speedup("gather_100k", "asyncio", 100)),
    Target("gather of 100,000 trivial tasks: aio >= 3x faster than asio",
           speedup("gather_100k", "asio", 3)),
    Target("sleep(0) round trip: aio >= 100x faster than asyncio",
           speedup("sleep0_roundtrip", "asyncio", 100)),
    Target("sleep(0) round trip: aio >= 5x faster than asio",
           speedup("sleep0_roundtrip", "asio", 5)),
    Target("arming + firing 100,000 timers: aio >= 4x less per timer than asio",
           speedup("timers_100k", "asio", 4)),
    Target("1M sleeping tasks: aio <= 160 bytes/task",
           at_most("memory_1m_sleeping", 160, "bytes/task")),
    Target("1 ms sleeps: aio median oversleep <= 30 us",
           at_most("oversleep_1ms", 30, "us")),
    Target("1 ms sleeps: aio median oversleep <= asio's in the same run",
           not_above_peer("oversleep_1ms", "asio", "us")),
    Target("1 ms sleeps: aio p99 oversleep <= 150 us",
           at_most("oversleep_1ms", 150, "us", field="p99")),
    Target("call_soon_threadsafe into a busy loop, 1 thread: aio <= 150 ns/call",
           at_most("call_soon_threadsafe_1t", 150, "ns/call")),
    Target("call_soon_threadsafe into a busy loop, 4 threads: aio <= 150 ns/call",
           at_most("call_soon_threadsafe_4t", 150, "ns/call")),
    Target("call_soon_threadsafe into a busy loop, 1 thread: aio >= 2x faster than asio",
           speedup("call_soon_threadsafe_1t", "asio", 2)),
    Target("call_soon_threadsafe into a busy loop, 4 threads: aio >= 2x faster than asio",
           speedup("call_soon_threadsafe_4t", "asio", 2)),
    Target("call_soon_threadsafe into a busy loop, 1 thread: aio >= 50x faster than asyncio",
           speedup("call_soon_threadsafe_1t", "asyncio", 50)),
    Target("call_soon_threadsafe into a busy loop, 4 threads: aio >= 50x faster than asyncio",
           speedup("call_soon_threadsafe_4t", "asyncio", 50)),
    Target("waking an idle loop from another thread: aio median <= asio's in the same run",
           not_above_peer("wakeup_idle", "asio", "ns")),
    Target("to_thread round trip: aio <= 1.5x the epoll + eventfd ping-pong baseline",
           within_baseline("to_thread_roundtrip", 1.5)),
    Target("to_thread round trip: aio >= 2x faster than asio's pool hop",
           speedup("to_thread_roundtrip", "asio", 2)),
    Target("sleep(0) on two loops, two threads: >= 1.8x the items/s of one loop",
           at_least("two_loops_sleep0", 1.8)),
    Target("gather of 100,000 tasks on two loops, two threads: >= 1.8x the items/s of one loop",
           at_least("two_loops_gather", 1.8)),
]


def build_info(build_dir: Path) -> str:
    cache = build_dir / "CMakeCache.txt"
    found = {}
    if cache.is_file():
        for line in cache.read_text(errors="replace").splitlines():
            for var in ("CMAKE_BUILD_TYPE", "CMAKE_CXX_COMPILER"):
                if line.startswith(var + ":"):
                    found[var] = line.split("=", 1)[1]
    build_type = found.get("CMAKE_BUILD_TYPE") or "(none)"
    info = f"C++: {found.get('CMAKE_CXX_COMPILER', '?')}, build type {build_type}"
    if build_type not in ("Release", "RelWithDebInfo", "MinSizeRel"):
        info += " (benchmarks get -O2, but assertions stay on: prefer -DCMAKE_BUILD_TYPE=Release)"
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description="Compare aio with asio and asyncio.")
    parser.add_argument("--build-dir", required=True, type=Path,
                        help="CMake build directory (the binaries are in BUILD/bench)")
    parser.add_argument("--quick", action="store_true", help="CI smoke run: small sizes, short runs")
    parser.add_argument("--min-time", type=float, default=None,
                        help="--benchmark_min_time in seconds (default: Google Benchmark's, or 0.05 with --quick)")
    parser.add_argument("--repetitions", type=int, default=None,
                        help="runs per benchmark, median reported (default 3, 1 with --quick; "
                             "the memory benchmark always runs once)")
    parser.add_argument("--no-asyncio", action="store_true", help="skip the Python baseline")
    parser.add_argument("--cold", action="store_true",
                        help="then the fresh-process table too (bench/cold_start.py)")
    args = parser.parse_args()

    bench_dir = args.build_dir / "bench"
    # 0.05 s rather than less: Google Benchmark reports its last batch only, and a
    # batch must outlast the first, cold iteration (~20 ms for 100,000 tasks).
    min_time = args.min_time if args.min_time is not None else (0.05 if args.quick else None)
    repetitions = args.repetitions if args.repetitions is not None else (1 if args.quick else 3)
    failures: list[str] = []

    # Every bench_* binary there; the scenarios say which benchmarks to read.
    binaries = {p.name: p for p in sorted(bench_dir.glob("bench_*")) if p.is_file() and p.stat().st_mode & 0o111}
    if not binaries:
        print(f"compare.py: no benchmark binaries in {bench_dir} "
              "(configure with -DAIO_BUILD_BENCH=ON and build first)", file=sys.stderr)
        return 2

    results: dict[str, dict[str, Result]] = {"aio": {}, "asio": {}, "asyncio": {}, "baseline": {}}
    missing: set[str] = set()

    def measure(binary_name: str, name: str, read: Callable[[dict], Result], repeat: str = ONCE) -> Optional[Result]:
        binary = binaries.get(binary_name)
        if binary is None:
            missing.add(binary_name)
            return None
        try:
            return read(run_benchmark(binary, name, min_time, repetitions if repeat == REPEAT else 1))
        except BenchmarkFailure as e:
            failures.append(str(e))
        except KeyError as e:
            failures.append(f"{binary_name} {name}: counter {e} missing from the output")
        return None

    for s in SCENARIOS:
        runs: dict[str, list[Result]] = {"aio": [], "asio": []}
        for _ in range(repetitions if s.repeat == INTERLEAVE else 1):
            for impl in runs:
                name = s.benchmark(impl, args.quick)
                if name is None:
                    continue
                result = measure(s.binary, name, s.read, s.repeat)
                if result is not None:
                    runs[impl].append(result)
        for impl, impl_runs in runs.items():
            if impl_runs:
                results[impl][s.key] = median_result(impl_runs)
    blocking = measure(*BLOCKING, counter("wall_ms"))
    pingpong_binary, pingpong_full, pingpong_quick = PINGPONG
    pingpong = measure(pingpong_binary, pingpong_quick if args.quick else pingpong_full,
                       per_item_ns("per_roundtrip"), REPEAT)
    if pingpong is not None:
        results["baseline"]["to_thread_roundtrip"] = pingpong
    scaling_binary, scaling_full, scaling_quick = MACHINE_SCALING
    machine_scaling = measure(scaling_binary, scaling_quick if args.quick else scaling_full,
                              counter("speedup"), REPEAT)

    # Binaries no scenario reads still run once, so that a crash is caught.
    known = {s.binary for s in SCENARIOS}
    for name, binary in binaries.items():
        if name in known:
            continue
        print(f"[compare] {name} (not in the table)", file=sys.stderr, flush=True)
        extra = [str(binary)] + ([f"--benchmark_min_time={min_time}"] if min_time is not None else [])
        if subprocess.run(extra, stdout=subprocess.DEVNULL).returncode != 0:
            failures.append(f"{name} failed")

    asyncio_note = "skipped (--no-asyncio)"
    if not args.no_asyncio:
        results["asyncio"], asyncio_note = run_asyncio(args.quick)

    # ---- the table
    print()
    print(f"aio benchmarks — {'QUICK smoke run, figures indicative only' if args.quick else 'full run'}")
    print(build_info(args.build_dir))
    print(f"asyncio: {'Python ' + sys.version.split()[0] if results['asyncio'] else 'n/a: ' + asyncio_note}")
    print()
    print("warm (in-process, repeated):")
    rows = []
    for s in SCENARIOS:
        fields = [("value", s.key, s.unit)]
        if s.p99_unit:
            fields.append(("p99", s.key + " p99", s.p99_unit))
        for field, label, unit in fields:
            aio_v, asio_v, py_v = (value_of(results[impl].get(s.key), field) for impl in ("aio", "asio", "asyncio"))
            rows.append([label, unit, fmt(aio_v), fmt(asio_v), fmt(py_v),
                         fmt_ratio(ratio(asio_v, aio_v)), fmt_ratio(ratio(py_v, aio_v))])
    print_table(rows)

    py_scale = results["asyncio"].get("sleep_scale") or {}
    py_n = re.search(r"N=(\d+)", str(py_scale.get("detail", "")))
    print()
    print("sleep_scale, sequential baseline (N sleeps of 10 ms one after the other): "
          f"C++ std::this_thread::sleep_for {fmt(value_of(blocking))} ms (N=100), "
          f"Python time.sleep {fmt(value_of(py_scale, 'sequential_ms'))} ms"
          + (f" (N={py_n.group(1)})" if py_n else ""))
    print("to_thread_roundtrip baseline (two threads ping-ponging through epoll_wait + eventfd): "
          f"{fmt(value_of(pingpong))} ns/roundtrip")
    for key, what in (("two_loops_sleep0", "sleep(0)s"), ("two_loops_gather", "gathered tasks")):
        r = results["aio"].get(key)
        one, two = value_of(r, "one_loop"), value_of(r, "two_loops")
        print(f"{key}: one loop {fmt(None if one is None else one / 1e6)} M {what}/s, "
              f"two loops {fmt(None if two is None else two / 1e6)} M {what}/s")
    print("two_loops baseline (the same two threads doing plain integer work): "
          f"{fmt_ratio(value_of(machine_scaling))} speed-up")

    print()
    print("Targets:" + (" (quick run: small sizes, short runs — indicative only)" if args.quick else ""))
    for t in TARGETS:
        figure, passed, shown = t.check(results)
        status = "n/a " if figure is None else "PASS" if passed else "FAIL"
        print(f"  [{status}] {t.text}: {shown}")

    if args.cold:
        print()
        print("fresh process (first and only run):", flush=True)
        command = [sys.executable, str(COLD_SCRIPT), "--build-dir", str(args.build_dir), "--rounds", str(repetitions)]
        command += (["--quick"] if args.quick else []) + (["--no-asyncio"] if args.no_asyncio else [])
        print(f"[compare] {' '.join(command)}", file=sys.stderr, flush=True)
        if subprocess.run(command).returncode != 0:
            failures.append("bench/cold_start.py failed (see its output above)")

    if missing:
        print()
        print(f"missing binaries in {bench_dir}: {', '.join(sorted(missing))}")
    if failures:
        print()
        print("benchmark failures:")
        for f in failures:
            print(f"  {f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
