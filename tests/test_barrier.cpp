// aio::barrier: arrival indices, cycles, abort and reset, misuse, and the scheduling
// order against CPython.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it. aio follows 3.12's locks.py; these programs do not
// reach what 3.12 changed (the semaphore's wake-up bookkeeping), so both print the
// same lines.

#include <aio/barrier.hpp>
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/destroyed_primitive.hpp"
#include "support/steps.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::trace;
using aio_test::yes_no;
using lines = std::vector<std::string>;

// import asyncio
// log = []
// async def party(b, name, yields):
//     for _ in range(yields):
//         await asyncio.sleep(0)
//     log.append(f"{name} arrives, n_waiting {b.n_waiting}")
//     i = await b.wait()
//     log.append(f"{name} passes with index {i}")
// async def main():
//     b = asyncio.Barrier(3)
//     ts = [asyncio.create_task(party(b, n, k)) for n, k in (("a", 2), ("b", 0), ("c", 1))]
//     await asyncio.gather(*ts)
//     ts = [asyncio.create_task(party(b, n, 0)) for n in ("d", "e", "f")]
//     await asyncio.gather(*ts)
//     log.append(f"n_waiting {b.n_waiting}, broken {b.broken}")
// asyncio.run(main())
// print(log)
TEST_CASE("wait returns the arrival index once all parties have arrived, cycle after cycle, as in asyncio") {
    trace log;
    auto party = [&](aio::barrier& b, std::string name, int yields) -> aio::task<> {
        for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
        log(name + " arrives, n_waiting " + std::to_string(b.n_waiting()));
        std::size_t i = co_await b.wait();
        log(name + " passes with index " + std::to_string(i));
    };
    auto program = [&]() -> aio::task<> {
        aio::barrier b(3);
        std::vector<aio::task_handle<>> ts;
        ts.push_back(aio::create_task(party(b, "a", 2)));
        ts.push_back(aio::create_task(party(b, "b", 0)));
        ts.push_back(aio::create_task(party(b, "c", 1)));
        for (auto& h : ts) co_await h;
        ts.clear();
        for (const char* n : {"d", "e", "f"}) ts.push_back(aio::create_task(party(b, n, 0)));
        for (auto& h : ts) co_await h;
        log("n_waiting " + std::to_string(b.n_waiting()) + ", broken " + yes_no(b.broken()));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"b arrives, n_waiting 0", "c arrives, n_waiting 1", "a arrives, n_waiting 2",
                                "a passes with index 2", "b passes with index 0", "c passes with index 1",
                                "d arrives, n_waiting 0", "e arrives, n_waiting 1", "f arrives, n_waiting 2",
                                "f passes with index 2", "d passes with index 0", "e passes with index 1",
                                "n_waiting 0, broken False"});
}

// import asyncio
// log = []
// async def party(b, name):
//     try:
//         await b.wait()
//     except asyncio.BrokenBarrierError:
//         log.append(f"{name} broken")
// async def main():
//     b = asyncio.Barrier(3)
//     ts = [asyncio.create_task(party(b, n)) for n in ("a", "b")]
//     await asyncio.sleep(0)
//     log.append(f"n_waiting {b.n_waiting}")
//     await b.abort()
//     log.append(f"aborted, broken {b.broken}")
//     await asyncio.gather(*ts)
//     await party(b, "late")
//     await b.reset()
//     log.append(f"reset, broken {b.broken}")
//     ts = [asyncio.create_task(party(b, n)) for n in ("c", "d")]
//     await asyncio.sleep(0)
//     await b.reset()
//     await asyncio.gather(*ts)
//     log.append(f"n_waiting {b.n_waiting}, broken {b.broken}")
// asyncio.run(main())
// print(log)
TEST_CASE("abort and reset break the waiting parties with broken_barrier_error, as in asyncio") {
    trace log;
    auto party = [&](aio::barrier& b, std::string name) -> aio::task<> {
        try {
            co_await b.wait();
        } catch (const aio::broken_barrier_error&) {
            log(name + " broken");
        }
    };
    auto program = [&]() -> aio::task<> {
        aio::barrier b(3);
        std::vector<aio::task_handle<>> ts;
        for (const char* n : {"a", "b"}) ts.push_back(aio::create_task(party(b, n)));
        co_await aio::sleep(0s);
        log("n_waiting " + std::to_string(b.n_waiting()));
        co_await b.abort();
        log("aborted, broken " + yes_no(b.broken()));
        for (auto& h : ts) co_await h;
        co_await party(b, "late");
        co_await b.reset();
        log("reset, broken " + yes_no(b.broken()));
        ts.clear();
        for (const char* n : {"c", "d"}) ts.push_back(aio::create_task(party(b, n)));
        co_await aio::sleep(0s);
        co_await b.reset();
        for (auto& h : ts) co_await h;
        log("n_waiting " + std::to_string(b.n_waiting()) + ", broken " + yes_no(b.broken()));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"n_waiting 2", "aborted, broken True", "a broken", "b broken", "late broken",
                                "reset, broken False", "c broken", "d broken", "n_waiting 0, broken False"});
}

// import asyncio
// async def main():
//     b = asyncio.Barrier(2)
//     t = asyncio.create_task(b.wait())
//     await asyncio.sleep(0)
//     waiting = b.n_waiting
//     t.cancel()
//     try:
//         await t
//     except asyncio.CancelledError:
//         pass
//     after = b.n_waiting
//     u = asyncio.create_task(b.wait())
//     mine = await b.wait()
//     theirs = await u
//     print(waiting, after, mine, theirs)   # 1 0 0 1
// asyncio.run(main())
TEST_CASE("a party cancelled in wait leaves the barrier and no longer counts as arrived, as in asyncio") {
    auto program = []() -> aio::task<int> {
        aio::barrier b(2);
        auto t = aio::create_task([](aio::barrier& br) -> aio::task<> { (void)co_await br.wait(); }(b));
        co_await aio::sleep(0s);
        const auto waiting = b.n_waiting();
        t.cancel();
        try {
            co_await t;
        } catch (const aio::cancelled_error&) {
        }
        const auto after = b.n_waiting();
        // The next two parties make a full cycle; this task arrives first.
        auto u = aio::create_task([](aio::barrier& br) -> aio::task<std::size_t> { co_return co_await br.wait(); }(b));
        std::size_t mine = co_await b.wait();
        std::size_t theirs = co_await u;
        co_return static_cast<int>(waiting * 1000 + after * 100 + mine * 10 + theirs);
    };
    REQUIRE(aio::run(program()) == 1001);
}

TEST_CASE("a barrier of 0 parties throws std::invalid_argument") {
    REQUIRE_THROWS_AS(aio::barrier(0), std::invalid_argument);
    aio::barrier b(4);
    REQUIRE(b.parties() == 4);
    REQUIRE(!b.broken());
}

TEST_CASE("broken_barrier_error is an aio::runtime_error, as BrokenBarrierError is a RuntimeError") {
    aio::broken_barrier_error e("Barrier aborted");
    const aio::runtime_error& base = e;
    REQUIRE(std::string(base.what()) == "Barrier aborted");
}

// See support/destroyed_primitive.hpp.
TEST_CASE("a task left waiting on a destroyed barrier can be cancelled, and run() then returns main's value") {
    aio_test::check_waiters_of_destroyed_primitive(
        [] { return std::make_unique<aio::barrier>(2); }, [](aio::barrier&) -> aio::task<> { co_return; },
        [](aio::barrier& p) -> aio::task<> { (void)co_await p.wait(); });
}
