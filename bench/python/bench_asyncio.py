#!/usr/bin/env python3
"""CPython asyncio baseline for the aio C++ benchmark suite.

Each scenario below mirrors one C++ benchmark, so the two implementations can
be compared number for number.  The script prints exactly one JSON object on
stdout, mapping scenario key -> {"value": number, "unit": str, "detail": str}
(some scenarios add extra fields, e.g. "p99").  Progress goes to stderr.

How it measures:

* Time is taken with time.perf_counter_ns(), inside the coroutine running on
  the loop, so event-loop creation and teardown are never timed.
* Every run uses a fresh event loop (asyncio.run); no uvloop.
* Micro scenarios (per-op costs) are repeated a few times and the best
  (minimum) run is reported, in the spirit of Google Benchmark.  A full
  garbage collection runs before each repetition; the collector otherwise
  stays enabled, as it would in a real program.
* Memory is the growth of VmRSS (/proc/self/status) measured in a fresh
  subprocess, which is what the C++ side measures as well.
* Latency and wall-clock scenarios (oversleep_1ms, wakeup_idle, sleep_scale*)
  run once.
* The thread scenarios (call_soon_threadsafe_*, wakeup_idle, to_thread_roundtrip)
  use threading.Thread and the loop's default executor, as bench_threads does
  with std::thread and aio's.

Usage:
    python3 bench/python/bench_asyncio.py            # full sizes, ~1-2 min
    python3 bench/python/bench_asyncio.py --quick    # CI smoke run, < 20 s
    python3 bench/python/bench_asyncio.py --only await_lazy,gather_100k

Standard library only (Python >= 3.11).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

NS_PER_MS = 1_000_000
NS_PER_US = 1_000


# --------------------------------------------------------------------------
# Coroutines shared by several scenarios
# --------------------------------------------------------------------------

async def child() -> int:
    return 1


async def trivial() -> None:
    return None


async def sleeper() -> None:
    await asyncio.sleep(3600)


# --------------------------------------------------------------------------
# Micro scenarios: each returns the total ns of ONE run over n operations
# --------------------------------------------------------------------------

def measure_await_lazy(n: int) -> int:
    """`await child()` directly (no task), n times inside one coroutine."""
    async def main() -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            await child()
        return time.perf_counter_ns() - start
    return asyncio.run(main())


def measure_create_task_await(n: int) -> int:
    """`await asyncio.create_task(child())`, n times."""
    async def main() -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            await asyncio.create_task(child())
        return time.perf_counter_ns() - start
    return asyncio.run(main())


def measure_gather(n: int) -> int:
    """`await asyncio.gather(*[trivial() for _ in range(n)])`."""
    async def main() -> int:
        start = time.perf_counter_ns()
        await asyncio.gather(*[trivial() for _ in range(n)])
        return time.perf_counter_ns() - start
    return asyncio.run(main())


def measure_sleep0_roundtrip(k: int) -> int:
    """Two gathered tasks each doing `await asyncio.sleep(0)` k times."""
    async def spin() -> None:
        for _ in range(k):
            await asyncio.sleep(0)

    async def main() -> int:
        start = time.perf_counter_ns()
        await asyncio.gather(spin(), spin())
        return time.perf_counter_ns() - start
    return asyncio.run(main())


def measure_timers(n: int) -> int:
    """Arm n call_later timers with distinct, shuffled delays of 0..n-1 ns.

    Timed from arming the first timer until the last callback fires.
    """
    async def main() -> int:
        loop = asyncio.get_running_loop()
        all_fired = loop.create_future()
        remaining = n
        finish = 0

        def on_timer() -> None:
            nonlocal remaining, finish
            remaining -= 1
            if remaining == 0:
                finish = time.perf_counter_ns()
                all_fired.set_result(None)

        start = time.perf_counter_ns()
        for i in range(n):
            # 7919 is prime and coprime to n, so the delays are a permutation.
            loop.call_later(((i * 7919) % n) * 1e-9, on_timer)
        await all_fired
        return finish - start
    return asyncio.run(main())


def measure_sleeping_tasks(n: int) -> int:
    """n tasks, task i doing `await asyncio.sleep(d_i)`, gathered.

    The delays are timers' (0..n-1 ns, shuffled), in seconds. Timed from
    creating the first task until the gather returns. (The C++ versions count
    down instead of gathering; gather's done callback per task adds some 5-10 %
    to what a task and its sleep cost here, on CPython 3.11.)
    """
    async def sleeper(seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def main() -> int:
        start = time.perf_counter_ns()
        await asyncio.gather(*[asyncio.create_task(sleeper(((i * 7919) % n) * 1e-9))
                               for i in range(n)])
        return time.perf_counter_ns() - start
    return asyncio.run(main())


def measure_wait_for(n: int) -> int:
    """`await asyncio.wait_for(asyncio.sleep(0), 10)`, n times: a time limit
    around an operation that completes in time (it yields once).

    CPython 3.11's wait_for wraps the coroutine in a task (ensure_future) and
    arms a call_later timer; 3.12+ runs it inline under asyncio.timeout(), as
    aio does. The figure is whatever the running Python does.
    """
    async def main() -> int:
        start = time.perf_counter_ns()
        for _ in range(n):
            await asyncio.wait_for(asyncio.sleep(0), 10)
        return time.perf_counter_ns() - start
    return asyncio.run(main())


def measure_cancel_sleepers(n: int) -> int:
    """n tasks `await asyncio.sleep(3600)`; once all sleep, cancel every one and
    `gather(*tasks, return_exceptions=True)`.

    Timed from creating the first task until the gather returns: the whole
    spawn + sleep + cancel + end cycle, as the C++ cancel_sleepers.
    """
    async def main() -> int:
        start = time.perf_counter_ns()
        tasks = [asyncio.create_task(sleeper()) for _ in range(n)]
        await asyncio.sleep(0)  # every task starts and arms its timer
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return time.perf_counter_ns() - start
    return asyncio.run(main())


def measure_queue(n: int, maxsize: int) -> int:
    """A producer task puts the ints 0..n-1 into an asyncio.Queue(maxsize), a
    consumer task gets them (bench_sync's queue; maxsize 0: unbounded)."""
    async def main() -> int:
        q: asyncio.Queue[int] = asyncio.Queue(maxsize)
        total = 0

        async def producer() -> None:
            for i in range(n):
                await q.put(i)

        async def consumer() -> None:
            nonlocal total
            for _ in range(n):
                total += await q.get()

        start = time.perf_counter_ns()
        p = asyncio.create_task(producer())
        c = asyncio.create_task(consumer())
        await p
        await c
        elapsed = time.perf_counter_ns() - start
        if total != n * (n - 1) // 2:
            raise RuntimeError("queue: the consumer did not get every item")
        return elapsed
    return asyncio.run(main())


def measure_queue_unbounded(n: int) -> int:
    return measure_queue(n, 0)


def measure_queue_maxsize1(n: int) -> int:
    return measure_queue(n, 1)


def measure_lock_uncontended(n: int) -> int:
    """One task does `async with lock: pass` n times (nobody else wants it)."""
    async def main() -> int:
        lock = asyncio.Lock()
        acquired = 0
        start = time.perf_counter_ns()
        for _ in range(n):
            async with lock:
                acquired += 1
        elapsed = time.perf_counter_ns() - start
        if acquired != n or lock.locked():
            raise RuntimeError("lock_uncontended: an acquisition is missing")
        return elapsed
    return asyncio.run(main())


LOCK_TASKS = 10


def measure_lock_contended(n: int) -> int:
    """LOCK_TASKS tasks each do n / LOCK_TASKS rounds of
    `async with lock: await asyncio.sleep(0)`; n acquisitions in all."""
    k = n // LOCK_TASKS

    async def main() -> int:
        lock = asyncio.Lock()
        holders = acquired = violations = 0

        async def worker() -> None:
            nonlocal holders, acquired, violations
            for _ in range(k):
                async with lock:
                    holders += 1
                    if holders != 1:
                        violations += 1
                    acquired += 1
                    await asyncio.sleep(0)
                    holders -= 1

        start = time.perf_counter_ns()
        await asyncio.gather(*[asyncio.create_task(worker()) for _ in range(LOCK_TASKS)])
        elapsed = time.perf_counter_ns() - start
        if violations or acquired != k * LOCK_TASKS:
            raise RuntimeError("lock_contended: mutual exclusion broken or an acquisition missing")
        return elapsed
    return asyncio.run(main())


def measure_event_wake(n: int) -> int:
    """n tasks `await event.wait()`; once all wait, event.set(); timed from
    creating the first task until every one has resumed (spawn included, as in
    bench_sync)."""
    async def main() -> int:
        event = asyncio.Event()
        waiting = resumed = 0

        async def waiter() -> None:
            nonlocal waiting, resumed
            waiting += 1
            await event.wait()
            resumed += 1

        start = time.perf_counter_ns()
        tasks = [asyncio.create_task(waiter()) for _ in range(n)]
        await asyncio.sleep(0)  # every waiter has run to its wait
        if waiting != n or resumed != 0:
            raise RuntimeError("event_wake: not every waiter is waiting")
        event.set()
        for _ in range(8):  # one sleep(0) suffices: set() queued every waiter first
            if resumed == n:
                break
            await asyncio.sleep(0)
        elapsed = time.perf_counter_ns() - start
        if resumed != n or not all(t.done() for t in tasks):
            raise RuntimeError("event_wake: not every waiter resumed")
        return elapsed
    return asyncio.run(main())


CALL_SOON_PRODUCERS_MANY = 4


def measure_call_soon_threadsafe(n: int, producers: int) -> int:
    """`loop.call_soon_threadsafe(f)` from `producers` threading.Thread producers,
    n calls in all, into a loop kept busy by a task doing `await asyncio.sleep(0)`
    until every callback has run (so it never blocks in select).

    Timed from releasing the producers until the loop has run the last callback,
    as bench_threads; the threads are started before and joined after.
    """
    per_thread = n // producers

    async def main() -> int:
        loop = asyncio.get_running_loop()
        remaining = per_thread * producers  # only the loop thread touches it
        go = threading.Event()

        def on_call() -> None:
            nonlocal remaining
            remaining -= 1

        def produce() -> None:
            go.wait()
            for _ in range(per_thread):
                loop.call_soon_threadsafe(on_call)

        threads = [threading.Thread(target=produce) for _ in range(producers)]
        for thread in threads:
            thread.start()
        start = time.perf_counter_ns()
        go.set()
        while remaining:
            await asyncio.sleep(0)
        elapsed = time.perf_counter_ns() - start
        for thread in threads:
            thread.join()
        return elapsed
    return asyncio.run(main())


def measure_call_soon_threadsafe_1t(n: int) -> int:
    return measure_call_soon_threadsafe(n, 1)


def measure_call_soon_threadsafe_4t(n: int) -> int:
    return measure_call_soon_threadsafe(n, CALL_SOON_PRODUCERS_MANY)


def measure_to_thread(n: int) -> int:
    """`await asyncio.to_thread(noop)`, n times: a round trip through the loop's
    default executor. One untimed round trip first starts its first worker, as
    in bench_threads."""
    def noop() -> None:
        pass

    async def main() -> int:
        await asyncio.to_thread(noop)
        start = time.perf_counter_ns()
        for _ in range(n):
            await asyncio.to_thread(noop)
        return time.perf_counter_ns() - start
    return asyncio.run(main())


# --------------------------------------------------------------------------
# Macro scenarios: each returns its complete result object
# --------------------------------------------------------------------------

def read_rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError("VmRSS not found in /proc/self/status")


def memory_child(n: int) -> None:
    """Runs in the fresh subprocess: prints RSS before/after n sleepers."""
    before = read_rss_bytes()

    async def main() -> int:
        tasks = [asyncio.create_task(sleeper()) for _ in range(n)]
        await asyncio.sleep(0)  # every task starts and arms its timer
        after = read_rss_bytes()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return after

    after = asyncio.run(main())
    print(json.dumps({"before": before, "after": after}))


def report_memory_sleeping(n: int) -> dict:
    """Peak RSS growth per concurrently sleeping task, in a fresh process."""
    output = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(n)],
        check=True, capture_output=True, text=True,
    ).stdout
    rss = json.loads(output)
    delta = rss["after"] - rss["before"]
    return {
        "value": round(delta / n, 1),
        "unit": "bytes/task",
        "detail": f"N={n}, VmRSS {rss['before'] / 2**20:.1f} MiB -> "
                  f"{rss['after'] / 2**20:.1f} MiB",
    }


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def report_oversleep(m: int) -> dict:
    """How late `await asyncio.sleep(0.001)` wakes up, over m sleeps."""
    requested_ns = NS_PER_MS

    async def main() -> list[float]:
        late_us = []
        for _ in range(m):
            start = time.perf_counter_ns()
            await asyncio.sleep(requested_ns / 1e9)
            late_us.append((time.perf_counter_ns() - start - requested_ns)
                           / NS_PER_US)
        return late_us

    late_us = sorted(asyncio.run(main()))
    return {
        "value": round(statistics.median(late_us), 1),
        "p99": round(percentile(late_us, 99), 1),
        "unit": "us (median)",
        "detail": f"M={m} sleeps of 1 ms, oversleep = actual - requested",
    }


async def concurrent_sleep_ns(n: int, seconds: float) -> int:
    start = time.perf_counter_ns()
    await asyncio.gather(*[asyncio.sleep(seconds) for _ in range(n)])
    return time.perf_counter_ns() - start


def report_sleep_scale(n: int) -> dict:
    """n tasks sleeping 10 ms concurrently vs. time.sleep(0.010) n times."""
    wall_ns = asyncio.run(concurrent_sleep_ns(n, 0.010))
    start = time.perf_counter_ns()
    for _ in range(n):
        time.sleep(0.010)
    sequential_ns = time.perf_counter_ns() - start
    return {
        "value": round(wall_ns / NS_PER_MS, 2),
        "unit": "ms",
        "sequential_ms": round(sequential_ns / NS_PER_MS, 2),
        "detail": f"N={n} tasks x sleep(0.010) gathered; "
                  f"sequential_ms = N x time.sleep(0.010)",
    }


def report_sleep_scale_10k(n: int) -> dict:
    """n tasks sleeping 100 ms concurrently: wall time."""
    wall_ns = asyncio.run(concurrent_sleep_ns(n, 0.100))
    return {
        "value": round(wall_ns / NS_PER_MS, 2),
        "unit": "ms",
        "detail": f"N={n} tasks x sleep(0.100) gathered",
    }


WAKEUP_PAUSE_S = 200e-6


def report_wakeup_idle(m: int) -> dict:
    """How long an idle loop takes to run a callback posted from another thread.

    The loop runs run_forever() in a threading.Thread, waiting in select; this
    thread takes t0, calls loop.call_soon_threadsafe(cb), cb takes t1 on the
    loop thread; once cb has run, this thread sleeps 200 us so the loop goes back
    to select, and repeats. m samples of t1 - t0, after one unrecorded round.
    """
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever)
    runner.start()
    ran = threading.Event()
    woke = 0

    def on_wake() -> None:
        nonlocal woke
        woke = time.perf_counter_ns()
        ran.set()

    samples_ns = []
    try:
        for i in range(m + 1):
            ran.clear()
            start = time.perf_counter_ns()
            loop.call_soon_threadsafe(on_wake)
            ran.wait()
            if i:
                samples_ns.append(woke - start)
            time.sleep(WAKEUP_PAUSE_S)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join()
        loop.close()
    samples_ns.sort()
    return {
        "value": round(float(statistics.median(samples_ns)), 1),
        "p99": round(float(percentile(samples_ns, 99)), 1),
        "unit": "ns (median)",
        "detail": f"M={m} wake-ups of a loop idle in select, "
                  f"{WAKEUP_PAUSE_S * 1e6:.0f} us apart",
    }


# --------------------------------------------------------------------------
# Scenario table and runner
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Micro:
    """Per-op scenario: best of `repeats` runs, reported as total / n."""
    measure: Callable[[int], int]
    unit: str
    full: int
    quick: int

    def run(self, n: int, repeats: int) -> dict:
        runs = []
        for _ in range(repeats):
            gc.collect()
            runs.append(self.measure(n))
        best = min(runs)
        return {
            "value": round(best / n, 1),
            "unit": self.unit,
            "detail": f"N={n}, best of {repeats} runs, "
                      f"total {best / NS_PER_MS:.1f} ms",
        }


@dataclass(frozen=True)
class Macro:
    """Scenario that runs once and builds its own result object."""
    report: Callable[[int], dict]
    full: int
    quick: int

    def run(self, n: int, repeats: int) -> dict:
        gc.collect()
        return self.report(n)


SCENARIOS: dict[str, Micro | Macro] = {
    "await_lazy":          Micro(measure_await_lazy, "ns/op", 1_000_000, 100_000),
    "create_task_await":   Micro(measure_create_task_await, "ns/op", 200_000, 20_000),
    "gather_100k":         Micro(measure_gather, "ns/task", 100_000, 10_000),
    "sleep0_roundtrip":    Micro(measure_sleep0_roundtrip, "ns/roundtrip", 200_000, 20_000),
    "timers_100k":         Micro(measure_timers, "ns/timer", 100_000, 10_000),
    "sleeping_tasks_100k": Micro(measure_sleeping_tasks, "ns/timer", 100_000, 10_000),
    "wait_for_in_time":    Micro(measure_wait_for, "ns/call", 200_000, 20_000),
    "cancel_sleepers_100k": Micro(measure_cancel_sleepers, "ns/task", 100_000, 10_000),
    "queue_unbounded_100k": Micro(measure_queue_unbounded, "ns/item", 100_000, 10_000),
    "queue_maxsize1_100k": Micro(measure_queue_maxsize1, "ns/item", 100_000, 10_000),
    "lock_uncontended":    Micro(measure_lock_uncontended, "ns/acquire", 100_000, 10_000),
    "lock_contended_10":   Micro(measure_lock_contended, "ns/acquire", 100_000, 10_000),
    "event_wake_10k":      Micro(measure_event_wake, "ns/waiter", 10_000, 10_000),
    "call_soon_threadsafe_1t": Micro(measure_call_soon_threadsafe_1t, "ns/call", 100_000, 10_000),
    "call_soon_threadsafe_4t": Micro(measure_call_soon_threadsafe_4t, "ns/call", 400_000, 40_000),
    "to_thread_roundtrip": Micro(measure_to_thread, "ns/roundtrip", 20_000, 2_000),
    "memory_1m_sleeping":  Macro(report_memory_sleeping, 1_000_000, 20_000),
    "oversleep_1ms":       Macro(report_oversleep, 1_000, 200),
    "wakeup_idle":         Macro(report_wakeup_idle, 2_000, 200),
    "sleep_scale":         Macro(report_sleep_scale, 100, 20),
    "sleep_scale_10k":     Macro(report_sleep_scale_10k, 10_000, 1_000),
}

REPEATS_FULL = 5
REPEATS_QUICK = 3


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="asyncio baseline for the aio C++ benchmarks; "
                    "prints one JSON object on stdout.")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes for a CI smoke run (< 20 s)")
    parser.add_argument("--only", metavar="KEY[,KEY]",
                        help="comma-separated subset of: " + ", ".join(SCENARIOS))
    # Internal: the memory scenario re-runs this script in a fresh process.
    parser.add_argument("--memory-child", type=int, metavar="N",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.only:
        args.only = [key.strip() for key in args.only.split(",") if key.strip()]
        unknown = [key for key in args.only if key not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    else:
        args.only = list(SCENARIOS)
    return args


def main() -> None:
    args = parse_args()
    if args.memory_child is not None:
        memory_child(args.memory_child)
        return

    repeats = REPEATS_QUICK if args.quick else REPEATS_FULL
    print(f"[bench_asyncio] Python {sys.version.split()[0]}, "
          f"{'quick' if args.quick else 'full'} sizes", file=sys.stderr)

    results = {}
    for key in args.only:
        scenario = SCENARIOS[key]
        n = scenario.quick if args.quick else scenario.full
        start = time.perf_counter()
        results[key] = scenario.run(n, repeats)
        print(f"[bench_asyncio] {key:<20} {results[key]['value']:>12} "
              f"{results[key]['unit']:<14} ({time.perf_counter() - start:.1f} s)",
              file=sys.stderr)

    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
