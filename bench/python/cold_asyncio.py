#!/usr/bin/env python3
"""asyncio's side of the fresh-process benchmarks: one scenario, once.

    python3 bench/python/cold_asyncio.py SCENARIO N [--loop asyncio|uvloop]

bench/cold_start.py runs it in a process of its own, next to bench/cold_aio.cpp,
cold_asio.cpp and cold_reference.cpp, and reads the one JSON line it prints (the
same fields as theirs; bench/cold_support.hpp describes them):

  gather N             await asyncio.gather(*[child(i) for i in range(N)])
  sleep_gather N       a task gathers N coroutines sleeping 1 h; the main coroutine
                       sleeps 0 until every one is asleep
  sleep_create_task N  N asyncio.create_task()s of that sleeper, then the same
  distinct_sleeps N    a gather of N coroutines, the i-th sleeping (i * 7919 % N) us

The measured phase runs inside the main coroutine, timed with
time.perf_counter_ns() (CLOCK_MONOTONIC, as steady_clock), from before the first
coroutine is created to after the gather returns, or to the moment every sleeper is
asleep. The garbage collector stays enabled, as in a real program.

The sleeping scenarios end with os._exit once the line is printed: asyncio cannot
drop a pending task without cancelling it, and cancelling a million sleepers costs
it half a minute that nothing here measures.

--loop uvloop runs the same on uvloop's loop (if it is installed). Standard library
only otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time

SCENARIOS = ("gather", "sleep_gather", "sleep_create_task", "distinct_sleeps")
SLEEPING = ("sleep_gather", "sleep_create_task")


def proc_status_bytes(field: str) -> int:
    """A field of /proc/self/status ("VmRSS:", say) in bytes; -1 if absent."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024  # given in kB
    except OSError:
        pass
    return -1


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class Measurement:
    """The measured phase: wall time, minor faults, and for the sleeping scenarios
    VmRSS before it and at its end (outside the timing)."""

    def __init__(self, scenario: str, n: int) -> None:
        self.scenario, self.n = scenario, n
        self.sleeping = scenario in SLEEPING
        self.checksum = 0
        self.rss_before = self.rss_asleep = self.peak_asleep = -1

    def start(self) -> None:
        if self.sleeping:
            self.rss_before = proc_status_bytes("VmRSS:")
        self.faults = minor_faults()
        self.started = time.perf_counter_ns()

    def stop(self) -> None:
        self.elapsed_ns = time.perf_counter_ns() - self.started
        self.faults = minor_faults() - self.faults
        if self.sleeping:
            self.rss_asleep = proc_status_bytes("VmRSS:")
            self.peak_asleep = proc_status_bytes("VmHWM:")

    def report(self, impl: str) -> bool:
        n = self.n
        expected = n if self.sleeping else n * (n - 1) // 2
        longest_ns = (n - 1) * 1000 if self.scenario == "distinct_sleeps" else 0
        ok = self.checksum == expected and self.elapsed_ns >= longest_ns
        line = {"impl": impl, "scenario": self.scenario, "n": n,
                "ns_per_task": round((self.elapsed_ns - longest_ns) / n, 2), "elapsed_ns": self.elapsed_ns}
        if longest_ns:
            line["longest_delay_ns"] = longest_ns
        if self.sleeping:
            ok = ok and self.rss_before >= 0 and self.rss_asleep >= 0
            line.update(bytes_per_task=round((self.rss_asleep - self.rss_before) / n, 1),
                        rss_before_bytes=self.rss_before, rss_asleep_bytes=self.rss_asleep,
                        peak_rss_asleep_bytes=self.peak_asleep)
        line.update(minflt_phase=self.faults, peak_rss_bytes=proc_status_bytes("VmHWM:"),
                    checksum=self.checksum, expected_checksum=expected, ok=ok)
        print(json.dumps(line), flush=True)
        return ok


async def child(i: int) -> int:
    return i


async def distinct_sleeper(i: int, n: int) -> int:
    await asyncio.sleep((i * 7919 % n) * 1e-6)
    return i


class Sleepers:
    """The sleeping scenarios' tasks, and how many of them are asleep."""

    def __init__(self) -> None:
        self.asleep = 0

    async def sleeper(self, i: int) -> int:
        self.asleep += 1
        await asyncio.sleep(3600)
        return i

    async def gather(self, n: int) -> list[int]:
        return await asyncio.gather(*[self.sleeper(i) for i in range(n)])


async def gather_main(m: Measurement, n: int, sleep: bool) -> None:
    m.start()
    if sleep:
        results = await asyncio.gather(*[distinct_sleeper(i, n) for i in range(n)])
    else:
        results = await asyncio.gather(*[child(i) for i in range(n)])
    m.stop()
    m.checksum = sum(results)


async def sleep_main(m: Measurement, n: int, through_gather: bool) -> list[asyncio.Task]:
    sleepers = Sleepers()
    m.start()
    # The tasks are kept, as asyncio's documentation asks (the loop holds weak
    # references only).
    if through_gather:
        tasks = [asyncio.create_task(sleepers.gather(n))]
    else:
        tasks = [asyncio.create_task(sleepers.sleeper(i)) for i in range(n)]
    while sleepers.asleep < n:
        await asyncio.sleep(0)
    m.stop()
    m.checksum = sleepers.asleep
    return tasks


def main() -> int:
    parser = argparse.ArgumentParser(description="asyncio's side of bench/cold_start.py")
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("n", type=int)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    if args.n <= 0 or (args.scenario == "distinct_sleeps" and args.n % 7919 == 0):
        parser.error("N must be positive (and, for distinct_sleeps, not a multiple of 7919)")

    if args.loop == "uvloop":
        import uvloop  # optional: only this impl needs it
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    m = Measurement(args.scenario, args.n)
    if m.sleeping:
        tasks = loop.run_until_complete(sleep_main(m, args.n, args.scenario == "sleep_gather"))
        ok = m.report(args.loop)
        sys.stderr.flush()
        os._exit(0 if ok and tasks else 1)  # see the docstring: no cancellation of N sleepers
    loop.run_until_complete(gather_main(m, args.n, args.scenario == "distinct_sleeps"))
    loop.close()
    return 0 if m.report(args.loop) else 1


if __name__ == "__main__":
    sys.exit(main())
