// aio::event: waking order, set/clear, cancellation, and the scheduling order against
// CPython.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it. aio follows 3.12's locks.py; these programs do not
// reach what 3.12 changed (the semaphore's wake-up bookkeeping), so both print the
// same lines.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event.hpp>
#include <aio/gather.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <memory>
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
using aio_test::expect_throws;
using lines = std::vector<std::string>;

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def waiter(e, name):
//     log.append(f"{name} waits")
//     await e.wait()
//     log.append(f"{name} woke")
// async def main():
//     e = asyncio.Event()
//     ts = [asyncio.create_task(waiter(e, f"w{i}")) for i in range(3)]
//     t = asyncio.create_task(ticker(4))
//     await asyncio.sleep(0)
//     log.append("set")
//     e.set()
//     e.clear()
//     log.append(f"is_set {e.is_set()}")
//     await asyncio.gather(*ts, t)
// asyncio.run(main())
// print(log)
TEST_CASE("set wakes every waiter in waiting order, and set then clear still wakes them, as in asyncio") {
    trace log;
    auto waiter = [&](aio::event& e, std::string name) -> aio::task<> {
        log(name + " waits");
        co_await e.wait();
        log(name + " woke");
    };
    auto program = [&]() -> aio::task<> {
        aio::event e;
        std::vector<aio::task_handle<>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(aio::create_task(waiter(e, "w" + std::to_string(i))));
        auto t = aio::create_task(ticker(log, 4));
        co_await aio::sleep(0s);
        log("set");
        e.set();
        e.clear();
        log("is_set " + yes_no(e.is_set()));
        for (auto& h : ts) co_await h;
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"w0 waits", "w1 waits", "w2 waits", "tick0", "set", "is_set False", "tick1",
                                "w0 woke", "w1 woke", "w2 woke", "tick2", "tick3"});
}

// import asyncio
// log = []
// async def ticker(n): ...as above
// async def main():
//     e = asyncio.Event()
//     e.set()
//     t = asyncio.create_task(ticker(2))
//     await e.wait()
//     log.append("waited")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("wait on a set event returns without suspending") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::event e;
        e.set();
        auto t = aio::create_task(ticker(log, 2));
        co_await e.wait();
        log("waited");
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"waited", "tick0", "tick1"});
}

// import asyncio
// log = []
// async def waiter(e, name):
//     try:
//         await e.wait()
//     except asyncio.CancelledError:
//         log.append(f"{name} cancelled")
//         raise
//     log.append(f"{name} woke")
// async def main():
//     e = asyncio.Event()
//     ts = [asyncio.create_task(waiter(e, f"w{i}")) for i in range(3)]
//     await asyncio.sleep(0)
//     ts[1].cancel()
//     await asyncio.sleep(0)
//     e.set()
//     ts[2].cancel()
//     await asyncio.gather(*ts, return_exceptions=True)
//     log.append(f"cancelled {[t.cancelled() for t in ts]}")
// asyncio.run(main())
// print(log)
TEST_CASE("a waiter cancelled while waiting, or after set woke it, gets cancelled_error; the others still wake") {
    trace log;
    auto waiter = [&](aio::event& e, std::string name) -> aio::task<> {
        co_await log_cancel(log, name + " cancelled", e.wait());
        log(name + " woke");
    };
    auto program = [&]() -> aio::task<> {
        aio::event e;
        std::vector<aio::task_handle<>> ts;
        for (int i = 0; i < 3; ++i) ts.push_back(aio::create_task(waiter(e, "w" + std::to_string(i))));
        co_await aio::sleep(0s);
        ts[1].cancel();
        co_await aio::sleep(0s);
        e.set();
        ts[2].cancel();
        for (auto& h : ts) co_await settle(h);
        log("cancelled [" + yes_no(ts[0].cancelled()) + ", " + yes_no(ts[1].cancelled()) + ", " +
            yes_no(ts[2].cancelled()) + "]");
    };
    aio::run(program());
    REQUIRE(log.events == lines{"w1 cancelled", "w0 woke", "w2 cancelled", "cancelled [False, True, True]"});
}

TEST_CASE("a task cancelled while running gets cancelled_error from its next wait") {
    auto program = []() -> aio::task<bool> {
        aio::event e;
        auto self = aio::current_task();
        self.cancel();
        const bool cancelled = co_await expect_throws<aio::cancelled_error>(e.wait());
        self.uncancel();
        co_return cancelled;
    };
    REQUIRE(aio::run(program()));
}

TEST_CASE("set on a set event changes nothing and clear makes wait suspend again") {
    auto program = []() -> aio::task<int> {
        aio::event e;
        e.set();
        e.set();
        bool set_now = e.is_set();
        e.clear();
        int woke = 0;
        auto h = aio::create_task([](aio::event& ev, int& n) -> aio::task<> {
            co_await ev.wait();
            ++n;
        }(e, woke));
        co_await aio::sleep(0s);
        const int before = woke;
        e.set();
        co_await h;
        co_return (set_now ? 100 : 0) + before * 10 + woke;
    };
    REQUIRE(aio::run(program()) == 101);
}

TEST_CASE("100000 waiters on one event do not overflow the stack") {
    constexpr int n = 100000;
    auto program = []() -> aio::task<int> {
        aio::event e;
        int woke = 0;
        std::vector<aio::task_handle<>> ts;
        ts.reserve(n);
        for (int i = 0; i < n; ++i)
            ts.push_back(aio::create_task([](aio::event& ev, int& count) -> aio::task<> {
                co_await ev.wait();
                ++count;
            }(e, woke)));
        co_await aio::sleep(0s);
        e.set();
        for (auto& h : ts) co_await h;
        co_return woke;
    };
    REQUIRE(aio::run(program()) == n);
}

TEST_CASE("a task still waiting on an event when run ends is cancelled and leaves the event's queue") {
    aio::event e;  // outlives the loop
    bool cancelled = false;
    auto program = [&]() -> aio::task<> {
        aio::create_task([](aio::event& ev, bool& c) -> aio::task<> {
            try {
                co_await ev.wait();
            } catch (const aio::cancelled_error&) {
                c = true;
                throw;
            }
        }(e, cancelled));
        co_await aio::sleep(0s);
    };
    aio::run(program());
    REQUIRE(cancelled);
    e.set();  // nobody waits any more
    REQUIRE(e.is_set());
}

// See support/destroyed_primitive.hpp.
TEST_CASE("a task left waiting on a destroyed event can be cancelled, and run() then returns main's value") {
    aio_test::check_waiters_of_destroyed_primitive(
        [] { return std::make_unique<aio::event>(); }, [](aio::event&) -> aio::task<> { co_return; },
        [](aio::event& p) -> aio::task<> { co_await p.wait(); });
}
