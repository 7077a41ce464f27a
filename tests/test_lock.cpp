// aio::lock: FIFO hand-over, no barging, the guard, misuse, the cancellation races
// (cancelled while queued, cancelled after being woken), and the scheduling order
// against CPython.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it. aio follows 3.12's locks.py; these programs do not
// reach what 3.12 changed (the semaphore's wake-up bookkeeping), so both print the
// same lines.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/lock.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <cstdint>
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
using aio_test::on_cancel;
using lines = std::vector<std::string>;

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def user(l, name):
//     log.append(f"{name} acquires")
//     await l.acquire()
//     log.append(f"{name} holds")
//     await asyncio.sleep(0)
//     log.append(f"{name} releases")
//     l.release()
// async def main():
//     l = asyncio.Lock()
//     ts = [asyncio.create_task(user(l, n)) for n in ("a", "b", "c")]
//     t = asyncio.create_task(ticker(8))
//     await asyncio.gather(*ts, t)
//     log.append(f"locked {l.locked()}")
// asyncio.run(main())
// print(log)
TEST_CASE("the lock goes to the waiting tasks in the order they queued, as in asyncio") {
    trace log;
    auto user = [&](aio::lock& l, std::string name) -> aio::task<> {
        log(name + " acquires");
        co_await l.acquire();
        log(name + " holds");
        co_await aio::sleep(0s);
        log(name + " releases");
        l.release();
    };
    auto program = [&]() -> aio::task<> {
        aio::lock l;
        std::vector<aio::task_handle<>> ts;
        for (const char* n : {"a", "b", "c"}) ts.push_back(aio::create_task(user(l, n)));
        auto t = aio::create_task(ticker(log, 8));
        for (auto& h : ts) co_await h;
        co_await t;
        log("locked " + yes_no(l.locked()));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"a acquires", "a holds", "b acquires", "c acquires", "tick0", "a releases", "tick1",
                                "b holds", "tick2", "b releases", "tick3", "c holds", "tick4", "c releases", "tick5",
                                "tick6", "tick7", "locked False"});
}

// import asyncio
// log = []
// async def main():
//     l = asyncio.Lock()
//     await l.acquire()
//     async def a():
//         await l.acquire()
//         log.append("a holds")
//         l.release()
//     ta = asyncio.create_task(a())
//     await asyncio.sleep(0)
//     l.release()
//     log.append(f"released, locked {l.locked()}")
//     log.append("main acquires")
//     await l.acquire()
//     log.append("main holds")
//     l.release()
//     await ta
// asyncio.run(main())
// print(log)
TEST_CASE("right after release a newcomer still queues behind the woken waiter") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::lock l;
        co_await l.acquire();
        auto ta = aio::create_task([](aio::lock& lk, trace& lg) -> aio::task<> {
            co_await lk.acquire();
            lg("a holds");
            lk.release();
        }(l, log));
        co_await aio::sleep(0s);
        l.release();
        log("released, locked " + yes_no(l.locked()));
        log("main acquires");
        co_await l.acquire();
        log("main holds");
        l.release();
        co_await ta;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"released, locked False", "main acquires", "a holds", "main holds"});
}

// import asyncio
// log = []
// async def main():
//     l = asyncio.Lock()
//     await l.acquire()
//     async def w(name):
//         try:
//             await l.acquire()
//         except asyncio.CancelledError:
//             log.append(f"{name} cancelled, locked {l.locked()}")
//             raise
//         log.append(f"{name} holds")
//         await asyncio.sleep(0)
//         log.append(f"{name} releases")
//         l.release()
//     ta = asyncio.create_task(w("a"))
//     tb = asyncio.create_task(w("b"))
//     tc = asyncio.create_task(w("c"))
//     await asyncio.sleep(0)
//     l.release()
//     ta.cancel()
//     log.append("released, a cancelled")
//     await asyncio.gather(ta, tb, tc, return_exceptions=True)
//     log.append(f"locked {l.locked()}")
// asyncio.run(main())
// print(log)
TEST_CASE("a waiter cancelled while being woken passes the lock to the next waiter, as in asyncio") {
    trace log;
    auto w = [&](aio::lock& l, std::string name) -> aio::task<> {
        co_await on_cancel(l.acquire(), [&] { log(name + " cancelled, locked " + yes_no(l.locked())); });
        log(name + " holds");
        co_await aio::sleep(0s);
        log(name + " releases");
        l.release();
    };
    auto program = [&]() -> aio::task<> {
        aio::lock l;
        co_await l.acquire();
        auto ta = aio::create_task(w(l, "a"));
        auto tb = aio::create_task(w(l, "b"));
        auto tc = aio::create_task(w(l, "c"));
        co_await aio::sleep(0s);
        l.release();
        ta.cancel();
        log("released, a cancelled");
        co_await settle(ta);
        co_await settle(tb);
        co_await settle(tc);
        log("locked " + yes_no(l.locked()));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"released, a cancelled", "a cancelled, locked False", "b holds", "b releases",
                                "c holds", "c releases", "locked False"});
}

// import asyncio
// log = []
// async def main():
//     l = asyncio.Lock()
//     await l.acquire()
//     async def w(name):
//         try:
//             await l.acquire()
//         except asyncio.CancelledError:
//             log.append(f"{name} cancelled")
//             raise
//         log.append(f"{name} holds")
//         l.release()
//     ta = asyncio.create_task(w("a"))
//     tb = asyncio.create_task(w("b"))
//     await asyncio.sleep(0)
//     ta.cancel()
//     await asyncio.sleep(0)
//     log.append("release")
//     l.release()
//     await asyncio.gather(ta, tb, return_exceptions=True)
//     log.append(f"locked {l.locked()}")
// asyncio.run(main())
// print(log)
TEST_CASE("a waiter cancelled while queued leaves the queue and the next release wakes the one behind it") {
    trace log;
    auto w = [&](aio::lock& l, std::string name) -> aio::task<> {
        co_await log_cancel(log, name + " cancelled", l.acquire());
        log(name + " holds");
        l.release();
    };
    auto program = [&]() -> aio::task<> {
        aio::lock l;
        co_await l.acquire();
        auto ta = aio::create_task(w(l, "a"));
        auto tb = aio::create_task(w(l, "b"));
        co_await aio::sleep(0s);
        ta.cancel();
        co_await aio::sleep(0s);
        log("release");
        l.release();
        co_await settle(ta);
        co_await settle(tb);
        log("locked " + yes_no(l.locked()));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"a cancelled", "release", "b holds", "locked False"});
}

TEST_CASE("cancelling a woken waiter and releasing again never makes two holders nor loses a wake-up") {
    // A pseudo-random mix of holders, queued waiters and cancellations landing at
    // every point of the hand-over; the lock must always have at most one holder, and
    // every task that was not cancelled must get it.
    auto program = []() -> aio::task<int> {
        aio::lock l;
        int holders = 0;
        int max_holders = 0;
        int acquired = 0;
        std::uint32_t seed = 12345;
        auto next = [&seed] {
            seed = seed * 1103515245u + 12345u;
            return (seed >> 16) & 0x7fff;
        };
        auto worker = [&](int hold) -> aio::task<> {
            auto guard = co_await l.scoped();
            ++acquired;
            max_holders = std::max(max_holders, ++holders);
            struct leave {
                int& n;
                ~leave() { --n; }
            } on_exit{holders};  // a holder may be cancelled while it holds
            for (int i = 0; i < hold; ++i) co_await aio::sleep(0s);
        };
        std::vector<aio::task_handle<>> ts;
        for (int round = 0; round < 400; ++round) {
            ts.push_back(aio::create_task(worker(static_cast<int>(next() % 3))));
            if (next() % 3 == 0 && !ts.empty()) ts[next() % ts.size()].cancel();
            if (next() % 2 == 0) co_await aio::sleep(0s);
        }
        int cancelled = 0;
        for (auto& h : ts) {
            co_await settle(h);
            if (h.cancelled()) ++cancelled;
        }
        // Every task either got the lock or was cancelled (some after getting it), and
        // the lock ends free.
        if (l.locked() || acquired + cancelled < static_cast<int>(ts.size())) co_return -1;
        co_return max_holders;
    };
    REQUIRE(aio::run(program()) == 1);
}

TEST_CASE("releasing an unlocked lock throws aio::runtime_error") {
    aio::lock l;
    REQUIRE_THROWS_AS(l.release(), aio::runtime_error);
    auto program = [](aio::lock& lk) -> aio::task<bool> {
        co_await lk.acquire();
        lk.release();
        bool threw = false;
        try {
            lk.release();
        } catch (const aio::runtime_error&) {
            threw = true;
        }
        co_return threw;
    };
    REQUIRE(aio::run(program(l)));
}

TEST_CASE("the guard of scoped releases the lock at scope exit, also on an exception") {
    auto program = []() -> aio::task<int> {
        aio::lock l;
        int score = 0;
        {
            auto guard = co_await l.scoped();
            if (l.locked() && guard.owns()) ++score;
        }
        if (!l.locked()) ++score;
        try {
            auto guard = co_await l.scoped();
            throw aio_test::boom("inside");
        } catch (const aio_test::boom&) {
            if (!l.locked()) ++score;
        }
        auto guard = co_await l.scoped();
        guard.release();
        if (!l.locked() && !guard.owns()) ++score;
        co_return score;
    };
    REQUIRE(aio::run(program()) == 4);
}

TEST_CASE("acquire on a free lock with nobody queued does not suspend") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::lock l;
        auto t = aio::create_task(ticker(log, 1));
        co_await l.acquire();
        log("acquired");
        l.release();
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"acquired", "tick0"});
}

TEST_CASE("100000 waiters on one lock do not overflow the stack") {
    constexpr int n = 100000;
    auto program = []() -> aio::task<int> {
        aio::lock l;
        int count = 0;
        co_await l.acquire();
        std::vector<aio::task_handle<>> ts;
        ts.reserve(n);
        for (int i = 0; i < n; ++i)
            ts.push_back(aio::create_task([](aio::lock& lk, int& c) -> aio::task<> {
                co_await lk.acquire();
                ++c;
                lk.release();
            }(l, count)));
        co_await aio::sleep(0s);
        l.release();
        for (auto& h : ts) co_await h;
        co_return count;
    };
    REQUIRE(aio::run(program()) == n);
}

// See support/destroyed_primitive.hpp.
TEST_CASE("a task left waiting on a destroyed lock can be cancelled, and run() then returns main's value") {
    aio_test::check_waiters_of_destroyed_primitive(
        [] { return std::make_unique<aio::lock>(); }, [](aio::lock& p) -> aio::task<> { co_await p.acquire(); },
        [](aio::lock& p) -> aio::task<> { auto guard = co_await p.scoped(); });
}
