"""The subprocess benchmark's asyncio side (bench/subprocess_compare.py): starts and
reaps N children of PROGRAM, at most K in flight (a semaphore), each created with
asyncio.create_subprocess_exec and waited for with wait().

    python3 subprocess_asyncio.py [--children N] [--in-flight K] [--program PATH]

Prints one line: {"children": N, "seconds": S, "per_child_us": U}.
"""
import argparse
import asyncio
import json
import sys
import time


async def one(slots, program):
    async with slots:
        p = await asyncio.create_subprocess_exec(program)
        return await p.wait()


async def run_all(children, in_flight, program):
    slots = asyncio.Semaphore(in_flight)
    codes = await asyncio.gather(*(one(slots, program) for _ in range(children)))
    return sum(1 for c in codes if c != 0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--program", default="/bin/true")
    args = parser.parse_args()
    start = time.perf_counter()
    failed = asyncio.run(run_all(args.children, args.in_flight, args.program))
    seconds = time.perf_counter() - start
    print(json.dumps({"children": args.children, "seconds": round(seconds, 6),
                      "per_child_us": round(seconds * 1e6 / args.children, 2)}))
    if failed:
        print(f"subprocess_asyncio: {failed} children did not exit 0", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
