#!/usr/bin/env python3
"""The subprocess benchmark: aio against Python's asyncio, starting and reaping
short-lived children.

    python3 bench/subprocess_compare.py --build-dir BUILD [--quick] [--rounds R]
                                        [--children N] [--in-flight K] [--json FILE]

Each peer starts --children (default 1,000) children of /bin/true, at most
--in-flight (default 64) at a time behind a semaphore, each made with
create_subprocess_exec and waited for with wait():

  aio        BUILD/bench/subprocess_aio        bench/subprocess_aio.cpp
  reference  BUILD/bench/subprocess_reference  bench/subprocess_reference.cpp: no
             loop, posix_spawn and a blocking waitpid(-1) (the floor)
  asyncio    PYTHON bench/python/subprocess_asyncio.py  (/usr/bin/python3 when it
             exists, else this interpreter; --python to choose)

Every run is a fresh process; the peers are interleaved (each round runs every peer, the
order rotating from round to round) and the figures are medians over --rounds
rounds (default 7). The time is the wall time the program itself measures around
its loop (the interpreter's start-up is not counted). "x aio" is asyncio's time over
aio's. --quick (CI): 2 rounds of 200 children.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--program", default="/bin/true")
    parser.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.children = 2, 200

    common = ["--children", str(args.children), "--in-flight", str(args.in_flight), "--program", args.program]
    aio_bin = os.path.join(args.build_dir, "bench", "subprocess_aio")
    if not os.path.exists(aio_bin):
        sys.exit(f"subprocess_compare: {aio_bin} not built (cmake --build {args.build_dir} --target subprocess_aio)")
    peers = {
        "aio": [aio_bin] + common,
        "reference": [os.path.join(args.build_dir, "bench", "subprocess_reference")] + common,
        "asyncio": [args.python, os.path.join(HERE, "python", "subprocess_asyncio.py")] + common,
    }
    times = {name: [] for name in peers}
    for r in range(args.rounds):
        names = list(peers)
        order = names[r % len(names):] + names[:r % len(names)]  # rotates from round to round
        for name in order:
            times[name].append(run(peers[name])["seconds"])

    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"subprocess: {args.children} children of {args.program}, {args.in_flight} in flight, "
          f"median of {args.rounds} interleaved rounds (fresh processes)")
    print(f"{'peer':<10} {'seconds':>9} {'us/child':>9} {'children/s':>11} {'x aio':>7}")
    for name in peers:
        s = med[name]
        print(f"{name:<10} {s:>9.3f} {s * 1e6 / args.children:>9.1f} {args.children / s:>11.0f} {s / med['aio']:>7.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"children": args.children, "in_flight": args.in_flight, "rounds": args.rounds,
                       "seconds": times, "median": med, "ratio_asyncio_over_aio": med["asyncio"] / med["aio"]}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
