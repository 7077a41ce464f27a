// aio::condition: notify order, wait re-acquiring the lock (also when cancelled),
// wait_for, misuse, notifications never lost to a cancelled waiter, and the
// scheduling order against CPython.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it. aio follows 3.12's locks.py; these programs do not
// reach what 3.12 changed (the semaphore's wake-up bookkeeping), so both print the
// same lines.

#include <aio/condition.hpp>
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/lock.hpp>
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
using aio_test::on_cancel;
using aio_test::expect_throws;
using lines = std::vector<std::string>;

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def waiter(cv, name):
//     async with cv:
//         log.append(f"{name} waits")
//         await cv.wait()
//         log.append(f"{name} notified, locked {cv.locked()}")
//         await asyncio.sleep(0)
//         log.append(f"{name} leaves")
// async def main():
//     cv = asyncio.Condition()
//     ts = [asyncio.create_task(waiter(cv, f"w{i}")) for i in range(4)]
//     t = asyncio.create_task(ticker(10))
//     await asyncio.sleep(0)
//     async with cv:
//         log.append("notify 1")
//         cv.notify()
//     await asyncio.sleep(0)
//     async with cv:
//         log.append("notify_all")
//         cv.notify_all()
//     await asyncio.gather(*ts, t)
// asyncio.run(main())
// print(log)
TEST_CASE("notify wakes the oldest waiter, notify_all the rest in order, each re-acquiring the lock, as in asyncio") {
    trace log;
    auto waiter = [&](aio::condition& cv, std::string name) -> aio::task<> {
        auto guard = co_await cv.scoped();
        log(name + " waits");
        co_await cv.wait();
        log(name + " notified, locked " + yes_no(cv.locked()));
        co_await aio::sleep(0s);
        log(name + " leaves");
    };
    auto program = [&]() -> aio::task<> {
        aio::condition cv;
        std::vector<aio::task_handle<>> ts;
        for (int i = 0; i < 4; ++i) ts.push_back(aio::create_task(waiter(cv, "w" + std::to_string(i))));
        auto t = aio::create_task(ticker(log, 10));
        co_await aio::sleep(0s);
        {
            auto guard = co_await cv.scoped();
            log("notify 1");
            cv.notify();
        }
        co_await aio::sleep(0s);
        {
            auto guard = co_await cv.scoped();
            log("notify_all");
            cv.notify_all();
        }
        for (auto& h : ts) co_await h;
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"w0 waits", "w1 waits", "w2 waits", "w3 waits", "tick0", "notify 1", "tick1",
                                "w0 notified, locked True", "tick2", "w0 leaves", "tick3", "notify_all", "tick4",
                                "w1 notified, locked True", "tick5", "w1 leaves", "tick6",
                                "w2 notified, locked True", "tick7", "w2 leaves", "tick8",
                                "w3 notified, locked True", "tick9", "w3 leaves"});
}

// import asyncio
// log = []
// async def main():
//     cv = asyncio.Condition()
//     items = []
//     async def consumer(name):
//         async with cv:
//             v = await cv.wait_for(lambda: len(items) > 0)
//             log.append(f"{name} sees {v}, takes {items.pop(0)}")
//     ts = [asyncio.create_task(consumer(n)) for n in ("a", "b")]
//     await asyncio.sleep(0)
//     for i in range(2):
//         async with cv:
//             items.append(i)
//             log.append(f"put {i}")
//             cv.notify_all()
//         await asyncio.sleep(0)
//     await asyncio.gather(*ts)
// asyncio.run(main())
// print(log)
TEST_CASE("wait_for waits until the predicate holds and returns its value, as in asyncio") {
    trace log;
    std::vector<int> items;
    auto consumer = [&](aio::condition& cv, std::string name) -> aio::task<> {
        auto guard = co_await cv.scoped();
        bool v = co_await cv.wait_for([&] { return !items.empty(); });
        const int item = items.front();
        items.erase(items.begin());
        log(name + " sees " + yes_no(v) + ", takes " + std::to_string(item));
    };
    auto program = [&]() -> aio::task<> {
        aio::condition cv;
        auto ta = aio::create_task(consumer(cv, "a"));
        auto tb = aio::create_task(consumer(cv, "b"));
        co_await aio::sleep(0s);
        for (int i = 0; i < 2; ++i) {
            {
                auto guard = co_await cv.scoped();
                items.push_back(i);
                log("put " + std::to_string(i));
                cv.notify_all();
            }
            co_await aio::sleep(0s);
        }
        co_await ta;
        co_await tb;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"put 0", "a sees True, takes 0", "put 1", "b sees True, takes 1"});
}

// import asyncio
// log = []
// async def main():
//     cv = asyncio.Condition()
//     async def w():
//         async with cv:
//             try:
//                 await cv.wait()
//             except asyncio.CancelledError:
//                 log.append(f"cancelled, locked {cv.locked()}")
//                 raise
//     async def holder():
//         async with cv:
//             log.append("holder holds")
//             await asyncio.sleep(0)
//             await asyncio.sleep(0)
//             log.append("holder releases")
//     t = asyncio.create_task(w())
//     await asyncio.sleep(0)
//     h = asyncio.create_task(holder())
//     await asyncio.sleep(0)
//     t.cancel()
//     await asyncio.gather(t, h, return_exceptions=True)
//     log.append(f"done, cancelled {t.cancelled()}, locked {cv.locked()}")
// asyncio.run(main())
// print(log)
TEST_CASE("wait re-acquires the lock before returning even when cancelled, as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::condition cv;
        auto t = aio::create_task([](aio::condition& c, trace& lg) -> aio::task<> {
            auto guard = co_await c.scoped();
            co_await on_cancel(c.wait(), [&] { lg("cancelled, locked " + yes_no(c.locked())); });
        }(cv, log));
        co_await aio::sleep(0s);
        auto h = aio::create_task([](aio::condition& c, trace& lg) -> aio::task<> {
            auto guard = co_await c.scoped();
            lg("holder holds");
            co_await aio::sleep(0s);
            co_await aio::sleep(0s);
            lg("holder releases");
        }(cv, log));
        co_await aio::sleep(0s);
        t.cancel();
        co_await settle(t);
        co_await settle(h);
        log("done, cancelled " + yes_no(t.cancelled()) + ", locked " + yes_no(cv.locked()));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"holder holds", "holder releases", "cancelled, locked True",
                                "done, cancelled True, locked False"});
}

TEST_CASE("a notify is never lost to a waiter cancelled after it was notified") {
    // a and b wait; notify(1) wakes a, which is cancelled before it runs: its
    // notification passes to b (CPython 3.13's behaviour; 3.12 loses it).
    trace log;
    auto waiter = [&](aio::condition& cv, std::string name) -> aio::task<> {
        auto guard = co_await cv.scoped();
        co_await log_cancel(log, name + " cancelled", cv.wait());
        log(name + " notified");
    };
    auto program = [&]() -> aio::task<> {
        aio::condition cv;
        auto ta = aio::create_task(waiter(cv, "a"));
        auto tb = aio::create_task(waiter(cv, "b"));
        co_await aio::sleep(0s);
        {
            auto guard = co_await cv.scoped();
            cv.notify(1);
        }
        ta.cancel();
        co_await settle(ta);
        co_await tb;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"a cancelled", "b notified"});
}

TEST_CASE("a waiter cancelled while it re-acquires the lock still returns holding it, and passes a notification on") {
    trace log;
    auto waiter = [&](aio::condition& cv, std::string name) -> aio::task<> {
        auto guard = co_await cv.scoped();
        co_await on_cancel(cv.wait(), [&] { log(name + " cancelled, locked " + yes_no(cv.locked())); });
        log(name + " notified");
    };
    auto program = [&]() -> aio::task<> {
        aio::condition cv;
        auto ta = aio::create_task(waiter(cv, "a"));
        auto tb = aio::create_task(waiter(cv, "b"));
        co_await aio::sleep(0s);
        {
            auto guard = co_await cv.scoped();
            cv.notify(1);
            co_await aio::sleep(0s);  // a runs: notified, it queues for the lock
            co_await aio::sleep(0s);
            ta.cancel();              // a is cancelled while it re-acquires the lock
            co_await aio::sleep(0s);
        }
        co_await settle(ta);
        co_await tb;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"a cancelled, locked True", "b notified"});
}

TEST_CASE("wait and notify without the lock held throw aio::runtime_error") {
    auto program = []() -> aio::task<int> {
        aio::condition cv;
        int threw = 0;
        if (co_await expect_throws<aio::runtime_error>(cv.wait())) ++threw;
        try {
            cv.notify();
        } catch (const aio::runtime_error&) {
            ++threw;
        }
        try {
            cv.notify_all();
        } catch (const aio::runtime_error&) {
            ++threw;
        }
        co_return threw;
    };
    REQUIRE(aio::run(program()) == 3);
}

TEST_CASE("a condition over a given lock shares that lock") {
    auto program = []() -> aio::task<int> {
        aio::lock l;
        aio::condition a(l);
        aio::condition b(l);
        int score = 0;
        co_await l.acquire();
        if (a.locked() && b.locked()) ++score;
        auto t = aio::create_task([](aio::condition& c) -> aio::task<> {
            auto guard = co_await c.scoped();
            co_await c.wait();
        }(b));
        l.release();
        co_await aio::sleep(0s);  // t now waits on b, having released l
        if (!l.locked()) ++score;
        co_await a.acquire();
        a.notify_all();  // a's waiters only: t stays
        b.notify();
        a.release();
        co_await t;
        if (!l.locked()) ++score;
        co_return score;
    };
    REQUIRE(aio::run(program()) == 3);
}

// See support/destroyed_primitive.hpp.
TEST_CASE("a task left waiting on a destroyed condition can be cancelled, and run() then returns main's value") {
    aio_test::check_waiters_of_destroyed_primitive(
        [] { return std::make_unique<aio::condition>(); }, [](aio::condition&) -> aio::task<> { co_return; },
        [](aio::condition& p) -> aio::task<> {
            auto guard = co_await p.scoped();  // disowned when the condition goes
            co_await p.wait_for([] { return false; });
        });
}
