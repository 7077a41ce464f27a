// aio::shield: results, cancellation (the awaiting task's, and the shielded task's own),
// misuse and lifetimes, and the scheduling order against CPython 3.12.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.12 printed for it.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
#include <aio/run.hpp>
#include <aio/shield.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/handlers.hpp"
#include "support/steps.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::counted;
using aio_test::trace;
using aio_test::boom;
using aio_test::ticker;
using aio_test::number;
using aio_test::failing;
using aio_test::yes_no;
using aio_test::log_cancel;
using aio_test::expect_throws;
using aio_test::thrown_what;
using lines = std::vector<std::string>;

namespace {


}  // namespace

TEST_CASE("shield returns the value of the shielded task") {
    auto program = []() -> aio::task<int> {
        auto h = aio::create_task(number(41, 2));
        int a = co_await aio::shield(h);
        int b = co_await aio::shield(number(1, 1));
        co_return a + b;
    };
    REQUIRE(aio::run(program()) == 42);
}

TEST_CASE("shield rethrows the exception of the shielded task") {
    auto program = []() -> aio::task<std::string> {
        co_return (co_await thrown_what<boom>(aio::shield(failing("broken", 1)))).value_or("no exception");
    };
    REQUIRE(aio::run(program()) == "broken");
}

TEST_CASE("shield of a void task returns once the task has ended") {
    auto program = []() -> aio::task<int> {
        int steps = 0;
        auto h = aio::create_task([](int& s) -> aio::task<> {
            co_await aio::sleep(0s);
            ++s;
        }(steps));
        co_await aio::shield(h);
        co_return steps;
    };
    REQUIRE(aio::run(program()) == 1);
}

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def work():
//     await asyncio.sleep(0)
//     log.append("work done")
//     return 7
// async def main():
//     t = asyncio.create_task(ticker(5))
//     w = asyncio.create_task(work())
//     v = await asyncio.shield(w)
//     log.append(f"shield {v}")
//     w2 = asyncio.create_task(work())
//     v = await w2
//     log.append(f"direct {v}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("shield resumes the awaiting task one iteration later than awaiting the task directly, as in asyncio") {
    trace log;
    auto work = [&]() -> aio::task<int> {
        co_await aio::sleep(0s);
        log("work done");
        co_return 7;
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 5));
        auto w = aio::create_task(work());
        int v = co_await aio::shield(w);
        log("shield " + std::to_string(v));
        auto w2 = aio::create_task(work());
        v = co_await w2;
        log("direct " + std::to_string(v));
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events ==
            lines{"tick0", "tick1", "work done", "tick2", "tick3", "shield 7", "tick4", "work done", "direct 7"});
}

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def work():
//     log.append("work start")
//     for i in range(3):
//         await asyncio.sleep(0)
//         log.append(f"work step{i}")
//     return 7
// async def waiter(w):
//     try:
//         await asyncio.shield(w)
//     except asyncio.CancelledError:
//         log.append("waiter cancelled")
//         raise
// async def main():
//     t = asyncio.create_task(ticker(6))
//     w = asyncio.create_task(work())
//     o = asyncio.create_task(waiter(w))
//     await asyncio.sleep(0)
//     log.append("cancel")
//     o.cancel()
//     log.append(f"w.cancelled {w.cancelled()}")
//     r = await w
//     log.append(f"result {r} waiter cancelled {o.cancelled()}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("a shielded task keeps running when the task awaiting it is cancelled") {
    trace log;
    auto work = [&]() -> aio::task<int> {
        log("work start");
        for (int i = 0; i < 3; ++i) {
            co_await aio::sleep(0s);
            log("work step" + std::to_string(i));
        }
        co_return 7;
    };
    auto waiter = [&](aio::task_handle<int> w) -> aio::task<> {
        co_await log_cancel(log, "waiter cancelled", aio::shield(w));
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 6));
        auto w = aio::create_task(work());
        auto o = aio::create_task(waiter(w));
        co_await aio::sleep(0s);
        log("cancel");
        o.cancel();
        log("w.cancelled " + yes_no(w.cancelled()));
        int r = co_await w;
        log("result " + std::to_string(r) + " waiter cancelled " + yes_no(o.cancelled()));
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "work start", "cancel", "w.cancelled False", "tick1", "work step0",
                                "waiter cancelled", "tick2", "work step1", "tick3", "work step2", "tick4",
                                "result 7 waiter cancelled True", "tick5"});
}

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def work():
//     log.append("work start")
//     await asyncio.sleep(0)
//     log.append("work end")
//     return 7
// async def main():
//     t = asyncio.create_task(ticker(5))
//     s = asyncio.shield(work())
//     log.append("shielded")
//     try:
//         await s
//     except asyncio.CancelledError:
//         log.append("cancelled")
//     inner = asyncio.create_task(work())
//     await asyncio.sleep(0)
//     log.append("cancel inner")
//     inner.cancel()
//     try:
//         await asyncio.shield(inner)
//     except asyncio.CancelledError:
//         log.append(f"inner cancelled, main cancelling {asyncio.current_task().cancelling()}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("shield of a lazy task schedules it, and a cancelled shielded task gives cancelled_error without cancelling the awaiter") {
    trace log;
    auto work = [&]() -> aio::task<int> {
        log("work start");
        co_await aio::sleep(0s);
        log("work end");
        co_return 7;
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 5));
        auto s = aio::shield(work());
        log("shielded");
        try {
            co_await s;
        } catch (const aio::cancelled_error&) {
            log("cancelled");
        }
        auto inner = aio::create_task(work());
        co_await aio::sleep(0s);
        log("cancel inner");
        inner.cancel();
        try {
            co_await aio::shield(inner);
        } catch (const aio::cancelled_error&) {
            log("inner cancelled, main cancelling " + std::to_string(aio::current_task().cancelling()));
        }
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"shielded", "tick0", "work start", "tick1", "work end", "tick2", "tick3", "tick4",
                                "work start", "cancel inner", "inner cancelled, main cancelling 0"});
}

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def work():
//     return 5
// async def main():
//     w = asyncio.create_task(work())
//     await asyncio.sleep(0)
//     t = asyncio.create_task(ticker(3))
//     log.append(f"w done {w.done()}")
//     v = await asyncio.shield(w)
//     log.append(f"shield {v}")
//     await asyncio.sleep(0)
//     log.append("after")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("shield of a finished task returns without suspending") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto w = aio::create_task(number(5));
        co_await aio::sleep(0s);
        auto t = aio::create_task(ticker(log, 3));
        log("w done " + yes_no(w.done()));
        int v = co_await aio::shield(w);
        log("shield " + std::to_string(v));
        co_await aio::sleep(0s);
        log("after");
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"w done True", "shield 5", "tick0", "after", "tick1", "tick2"});
}

TEST_CASE("a shield whose task has ended and whose done step has run returns without suspending") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto w = aio::create_task(number(5, 1));
        auto s = aio::shield(w);
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);  // w ended in the second iteration, the shield's step ran in the third
        auto t = aio::create_task(ticker(log, 2));
        int v = co_await s;
        log("shield " + std::to_string(v));
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"shield 5", "tick0", "tick1"});
}

TEST_CASE("cancelling the awaiting task after the shield completed but before it resumed throws cancelled_error") {
    auto program = []() -> aio::task<std::string> {
        std::string seen;
        auto w = aio::create_task(number(3, 1));
        auto waiter = aio::create_task([](aio::task_handle<int> w, std::string& seen) -> aio::task<> {
            try {
                int v = co_await aio::shield(w);
                seen = "value " + std::to_string(v);
            } catch (const aio::cancelled_error&) {
                seen = "cancelled";
                throw;
            }
        }(w, seen));
        co_await aio::sleep(0s);  // the waiter suspends on the shield
        co_await aio::sleep(0s);  // w ends: the shield's step is queued
        co_await aio::sleep(0s);  // the shield's step has run, just before this: the waiter is queued
        waiter.cancel();
        try {
            co_await waiter;
        } catch (const aio::cancelled_error&) {
        }
        co_return seen + " / w cancelled " + yes_no(w.cancelled());
    };
    REQUIRE(aio::run(program()) == "cancelled / w cancelled False");
}

TEST_CASE("a task cancelled before it awaits a shield gets cancelled_error there and the shielded task runs on") {
    auto program = []() -> aio::task<std::string> {
        auto w = aio::create_task(number(9, 2));
        auto self = aio::current_task();
        self.cancel();  // delivered at the next suspension: the shield's
        std::string seen;
        try {
            co_await aio::shield(w);
            seen = "no error";
        } catch (const aio::cancelled_error&) {
            seen = "cancelled";
        }
        self.uncancel();
        int v = co_await w;
        co_return seen + " " + std::to_string(v);
    };
    REQUIRE(aio::run(program()) == "cancelled 9");
}

TEST_CASE("cancelling the awaiter of a chain of shields cancels none of the shielded tasks") {
    auto program = []() -> aio::task<int> {
        auto inner = aio::create_task(number(4, 5));
        auto middle = aio::create_task([](aio::task_handle<int> h) -> aio::task<int> {
            co_return co_await aio::shield(h) * 10;
        }(inner));
        auto outer = aio::create_task([](aio::task_handle<int> h) -> aio::task<int> {
            co_return co_await aio::shield(h) + 1;
        }(middle));
        co_await aio::sleep(0s);
        outer.cancel();
        int r = co_await middle;
        REQUIRE(outer.cancelled());
        REQUIRE_FALSE(inner.cancelled());
        co_return r;
    };
    REQUIRE(aio::run(program()) == 40);
}

TEST_CASE("a failure of a shielded task whose awaiter was cancelled is reported as never retrieved") {
    std::vector<std::string> reports;
    auto program = [&]() -> aio::task<> {
        aio::get_running_loop().set_exception_handler(
            [&](aio::event_loop&, const aio::exception_context& c) { reports.push_back(c.message); });
        auto waiter = aio::create_task([]() -> aio::task<> { co_await aio::shield(failing("late", 2)); }());
        co_await aio::sleep(0s);
        waiter.cancel();
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
    };
    aio::run(program());
    REQUIRE(reports == std::vector<std::string>{"Task exception was never retrieved"});
}

TEST_CASE("a failure of a shielded task that ended just before its awaiter was cancelled counts as retrieved") {
    // The task has ended and the shield's done step is queued when the cancellation
    // comes: asyncio's step then sees the outer future cancelled and retrieves the error.
    std::vector<std::string> reports;
    auto program = [&]() -> aio::task<> {
        aio::get_running_loop().set_exception_handler(
            [&](aio::event_loop&, const aio::exception_context& c) { reports.push_back(c.message); });
        auto failure = aio::create_task(failing("at once", 1));
        auto waiter = aio::create_task([](aio::task_handle<int> f) -> aio::task<> { co_await aio::shield(f); }(failure));
        co_await aio::sleep(0s);  // the waiter suspends on the shield
        co_await aio::sleep(0s);  // failure ends, just before this: the shield's step is queued
        waiter.cancel();
        failure = {};
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        REQUIRE(waiter.cancelled());
    };
    aio::run(program());
    REQUIRE(reports.empty());
}

TEST_CASE("a shield can be awaited only once: aio::invalid_state_error") {
    auto program = []() -> aio::task<int> {
        auto s = aio::shield(number(2, 1));
        int v = co_await s;
        int errors = 0;
        if (co_await expect_throws<aio::invalid_state_error>(s)) ++errors;
        // A second task awaiting it while the first waits.
        auto h = aio::create_task(number(3, 3));
        auto s2 = aio::shield(h);
        auto other = aio::create_task([](decltype(s2)& s) -> aio::task<int> { co_return co_await s; }(s2));
        co_await aio::sleep(0s);  // other now waits on s2
        if (co_await expect_throws<aio::invalid_state_error>(s2)) ++errors;
        int w = co_await other;
        co_return v + w + errors * 100;
    };
    REQUIRE(aio::run(program()) == 205);
}

TEST_CASE("shield of an empty handle throws aio::invalid_state_error") {
    auto program = []() -> aio::task<bool> {
        try {
            co_await aio::shield(aio::task_handle<int>{});
        } catch (const aio::invalid_state_error&) {
            co_return true;
        }
        co_return false;
    };
    REQUIRE(aio::run(program()));
}

TEST_CASE("shield of a lazy task without a running loop throws aio::runtime_error") {
    counted::reset();
    {
        auto lazy = [](counted c) -> aio::task<int> { co_return c.value; };
        REQUIRE_THROWS_AS((void)aio::shield(lazy(counted(1))), aio::runtime_error);
    }
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a task awaiting a shield of itself gets aio::runtime_error") {
    auto program = []() -> aio::task<bool> {
        aio::task_handle<bool> me;
        auto body = [](aio::task_handle<bool>& me) -> aio::task<bool> {
            co_await aio::sleep(0s);  // `me` is set by now
            co_return co_await expect_throws<aio::runtime_error>(aio::shield(me));
        };
        me = aio::create_task(body(me));
        bool r = co_await me;
        co_return r;
    };
    REQUIRE(aio::run(program()));
}

namespace {
aio::task<counted> counted_work(int n, int yields) {
    counted in_frame(n);
    for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
    co_return counted(in_frame.value * 10);
}
}  // namespace

TEST_CASE("shield destroys the shielded frame and its result exactly once") {
    counted::reset();
    {
        // Awaited to the end, with the only handle (the value is moved out) and a shared one.
        auto program = []() -> aio::task<int> {
            counted a = co_await aio::shield(counted_work(1, 2));
            auto h = aio::create_task(counted_work(2, 1));
            counted b = co_await aio::shield(h);
            co_return a.value + b.value + h.result().value;
        };
        REQUIRE(aio::run(program()) == 50);
        REQUIRE(counted::constructed > 0);
        REQUIRE(counted::alive() == 0);
    }
    {
        // The awaiter cancelled: the shielded task finishes later, alone.
        auto program = []() -> aio::task<> {
            auto waiter = aio::create_task([]() -> aio::task<> { (void)co_await aio::shield(counted_work(3, 4)); }());
            co_await aio::sleep(0s);
            waiter.cancel();
            co_await aio::sleep(0s);
            REQUIRE(waiter.cancelled());
            for (int i = 0; i < 6; ++i) co_await aio::sleep(0s);
        };
        aio::run(program());
        REQUIRE(counted::alive() == 0);
    }
    {
        // The loop ends while the shielded task and its awaiter still wait.
        auto program = []() -> aio::task<> {
            auto waiter = aio::create_task([]() -> aio::task<> { (void)co_await aio::shield(counted_work(4, 100)); }());
            co_await aio::sleep(0s);
        };
        aio::run(program());
        REQUIRE(counted::alive() == 0);
    }
    {
        // A shield that is never awaited.
        auto program = []() -> aio::task<> {
            {
                auto s = aio::shield(counted_work(5, 2));
            }
            for (int i = 0; i < 5; ++i) co_await aio::sleep(0s);
        };
        aio::run(program());
        REQUIRE(counted::alive() == 0);
    }
}

TEST_CASE("shield moves a move-only result out when it holds the only handle") {
    auto program = []() -> aio::task<int> {
        std::unique_ptr<int> p = co_await aio::shield([]() -> aio::task<std::unique_ptr<int>> {
            co_await aio::sleep(0s);
            co_return std::make_unique<int>(12);
        }());
        co_return *p;
    };
    REQUIRE(aio::run(program()) == 12);
}

// shield's done callback cancels its outer future without a message when the inner
// task ends cancelled (CPython 3.11-3.13: outer.cancel()), and retrieves nothing from
// the inner task: the first `await h` still gets the task's own "m".
//
// import asyncio
// log = []
// async def sleeper():
//     await asyncio.sleep(3600)
// async def main():
//     h = asyncio.create_task(sleeper())
//     await asyncio.sleep(0)
//     h.cancel("m")
//     try:
//         await asyncio.shield(h)
//     except asyncio.CancelledError as e:
//         log.append(f"shield {e.args}")
//     for i in range(2):
//         try:
//             await h
//         except asyncio.CancelledError as e:
//             log.append(f"await {i} {e.args}")
// asyncio.run(main())
// print(log)
TEST_CASE("shield of a task that ends cancelled with a message throws a bare cancellation, as in asyncio") {
    trace log;
    auto args = aio_test::cancel_args;
    auto sleeper = []() -> aio::task<> { co_await aio::sleep(1h); };
    auto body = [&]() -> aio::task<> {
        auto h = aio::create_task(sleeper());
        co_await aio::sleep(0s);
        h.cancel("m");
        try {
            co_await aio::shield(h);
        } catch (const aio::cancelled_error& e) {
            log("shield " + args(e));
        }
        for (int i = 0; i < 2; ++i) {
            try {
                co_await h;
            } catch (const aio::cancelled_error& e) {
                log("await " + std::to_string(i) + " " + args(e));
            }
        }
    };
    aio::run(body());
    REQUIRE(log.events == lines{"shield ()", "await 0 ('m',)", "await 1 ()"});
}
