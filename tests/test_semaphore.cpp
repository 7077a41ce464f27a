// aio::semaphore and aio::bounded_semaphore: FIFO units, locked(), guards, misuse,
// the cancellation races, and the scheduling order against CPython 3.12.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it. aio follows 3.12's locks.py; these programs do not
// reach what 3.12 changed (the semaphore's wake-up bookkeeping), so both print the
// same lines.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/run.hpp>
#include <aio/semaphore.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/destroyed_primitive.hpp"
#include "support/handlers.hpp"
#include "support/steps.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::ticker;
using aio_test::settle;
using aio_test::trace;
using aio_test::yes_no;
using aio_test::log_cancel;
using lines = std::vector<std::string>;

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def user(s, name, steps):
//     async with s:
//         log.append(f"{name} in")
//         for _ in range(steps):
//             await asyncio.sleep(0)
//         log.append(f"{name} out")
// async def main():
//     s = asyncio.Semaphore(2)
//     ts = [asyncio.create_task(user(s, n, k)) for n, k in (("a", 2), ("b", 1), ("c", 1), ("d", 1))]
//     t = asyncio.create_task(ticker(6))
//     await asyncio.gather(*ts, t)
//     log.append(f"locked {s.locked()}")
// asyncio.run(main())
// print(log)
TEST_CASE("a semaphore lets its value's worth of tasks in at once and serves the others in order, as in asyncio") {
    trace log;
    auto user = [&](aio::semaphore& s, std::string name, int steps) -> aio::task<> {
        auto guard = co_await s.scoped();
        log(name + " in");
        for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
        log(name + " out");
    };
    auto program = [&]() -> aio::task<> {
        aio::semaphore s(2);
        std::vector<aio::task_handle<>> ts;
        ts.push_back(aio::create_task(user(s, "a", 2)));
        ts.push_back(aio::create_task(user(s, "b", 1)));
        ts.push_back(aio::create_task(user(s, "c", 1)));
        ts.push_back(aio::create_task(user(s, "d", 1)));
        auto t = aio::create_task(ticker(log, 6));
        for (auto& h : ts) co_await h;
        co_await t;
        log("locked " + yes_no(s.locked()));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"a in", "b in", "tick0", "b out", "tick1", "a out", "c in", "tick2", "d in",
                                "c out", "tick3", "d out", "tick4", "tick5", "locked False"});
}

// import asyncio
// log = []
// async def main():
//     s = asyncio.Semaphore(1)
//     await s.acquire()
//     async def w(name):
//         try:
//             await s.acquire()
//         except asyncio.CancelledError:
//             log.append(f"{name} cancelled")
//             raise
//         log.append(f"{name} holds")
//         await asyncio.sleep(0)
//         s.release()
//     ta = asyncio.create_task(w("a"))
//     tb = asyncio.create_task(w("b"))
//     await asyncio.sleep(0)
//     s.release()
//     log.append(f"released, locked {s.locked()}")
//     ta.cancel()
//     await asyncio.gather(ta, tb, return_exceptions=True)
//     log.append(f"locked {s.locked()}")
// asyncio.run(main())
// print(log)
TEST_CASE("a waiter given a unit and cancelled before it runs gives the unit to the next waiter, as in asyncio") {
    trace log;
    auto w = [&](aio::semaphore& s, std::string name) -> aio::task<> {
        co_await log_cancel(log, name + " cancelled", s.acquire());
        log(name + " holds");
        co_await aio::sleep(0s);
        s.release();
    };
    auto program = [&]() -> aio::task<> {
        aio::semaphore s(1);
        co_await s.acquire();
        auto ta = aio::create_task(w(s, "a"));
        auto tb = aio::create_task(w(s, "b"));
        co_await aio::sleep(0s);
        s.release();
        log("released, locked " + yes_no(s.locked()));
        ta.cancel();
        co_await settle(ta);
        co_await settle(tb);
        log("locked " + yes_no(s.locked()));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"released, locked True", "a cancelled", "b holds", "locked False"});
}

TEST_CASE("a semaphore is locked while tasks are queued even with a unit free, so a newcomer queues") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::semaphore s(1);
        co_await s.acquire();
        auto ta = aio::create_task([](aio::semaphore& sem, trace& lg) -> aio::task<> {
            co_await sem.acquire();
            lg("a holds");
            sem.release();
        }(s, log));
        co_await aio::sleep(0s);
        s.release();  // the unit goes to a, whose wake-up is pending
        log("locked " + yes_no(s.locked()));
        co_await s.acquire();
        log("main holds");
        s.release();
        co_await ta;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"locked True", "a holds", "main holds"});
}

TEST_CASE("cancellations at every point of the hand-over never let more tasks in than the value") {
    auto program = []() -> aio::task<int> {
        aio::semaphore s(3);
        int holders = 0;
        int max_holders = 0;
        std::uint32_t seed = 777;
        auto next = [&seed] {
            seed = seed * 1103515245u + 12345u;
            return (seed >> 16) & 0x7fff;
        };
        auto worker = [&](int hold) -> aio::task<> {
            auto guard = co_await s.scoped();
            max_holders = std::max(max_holders, ++holders);
            struct leave {
                int& n;
                ~leave() { --n; }
            } on_exit{holders};  // a holder may be cancelled while it holds
            for (int i = 0; i < hold; ++i) co_await aio::sleep(0s);
        };
        std::vector<aio::task_handle<>> ts;
        for (int round = 0; round < 500; ++round) {
            ts.push_back(aio::create_task(worker(static_cast<int>(next() % 4))));
            if (next() % 3 == 0) ts[next() % ts.size()].cancel();
            if (next() % 2 == 0) co_await aio::sleep(0s);
        }
        for (auto& h : ts) co_await settle(h);
        // Every unit came back: three tasks get in at once without suspending.
        for (int i = 0; i < 3; ++i) {
            if (s.locked()) co_return -1;
            co_await s.acquire();
        }
        if (!s.locked()) co_return -2;
        co_return max_holders;
    };
    REQUIRE(aio::run(program()) == 3);
}

TEST_CASE("releasing a bounded semaphore past its initial value throws aio::runtime_error") {
    aio::bounded_semaphore b(2);
    REQUIRE_THROWS_AS(b.release(), aio::runtime_error);
    auto program = [](aio::bounded_semaphore& s) -> aio::task<int> {
        co_await s.acquire();
        co_await s.acquire();
        s.release();
        s.release();
        int threw = 0;
        try {
            s.release();
        } catch (const aio::runtime_error&) {
            ++threw;
        }
        co_return threw;
    };
    REQUIRE(aio::run(program(b)) == 1);
    aio::semaphore plain(0);
    plain.release();
    plain.release();
    REQUIRE(!plain.locked());
}

TEST_CASE("a negative initial value throws std::invalid_argument") {
    REQUIRE_THROWS_AS(aio::semaphore(-1), std::invalid_argument);
    REQUIRE_THROWS_AS(aio::bounded_semaphore(-1), std::invalid_argument);
}

TEST_CASE("a semaphore with value 0 is locked until released") {
    auto program = []() -> aio::task<int> {
        aio::semaphore s(0);
        int got = 0;
        auto h = aio::create_task([](aio::semaphore& sem, int& g) -> aio::task<> {
            co_await sem.acquire();
            ++g;
        }(s, got));
        co_await aio::sleep(0s);
        const int before = got + (s.locked() ? 10 : 0);
        s.release();
        co_await h;
        co_return before * 10 + got;
    };
    REQUIRE(aio::run(program()) == 101);
}

TEST_CASE("the guard of scoped gives the unit back at scope exit") {
    auto program = []() -> aio::task<int> {
        aio::bounded_semaphore s(1);
        {
            auto guard = co_await s.scoped();
            if (!s.locked()) co_return -1;
        }
        if (s.locked()) co_return -2;
        auto guard = co_await s.scoped();
        auto moved = std::move(guard);
        if (guard.owns() || !moved.owns()) co_return -3;
        moved.release();
        co_return s.locked() ? -4 : 1;
    };
    REQUIRE(aio::run(program()) == 1);
}

TEST_CASE("100000 waiters on one semaphore do not overflow the stack") {
    constexpr int n = 100000;
    auto program = []() -> aio::task<int> {
        aio::semaphore s(0);
        int count = 0;
        std::vector<aio::task_handle<>> ts;
        ts.reserve(n);
        for (int i = 0; i < n; ++i)
            ts.push_back(aio::create_task([](aio::semaphore& sem, int& c) -> aio::task<> {
                co_await sem.acquire();
                ++c;
                sem.release();
            }(s, count)));
        co_await aio::sleep(0s);
        s.release();
        for (auto& h : ts) co_await h;
        co_return count;
    };
    REQUIRE(aio::run(program()) == n);
}

// See support/destroyed_primitive.hpp.
TEST_CASE("a task left waiting on a destroyed semaphore can be cancelled, and run() then returns main's value") {
    aio_test::check_waiters_of_destroyed_primitive(
        [] { return std::make_unique<aio::semaphore>(0); }, [](aio::semaphore&) -> aio::task<> { co_return; },
        [](aio::semaphore& p) -> aio::task<> { auto guard = co_await p.scoped(); });
}
