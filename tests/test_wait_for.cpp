// aio::wait_for: asyncio.wait_for (CPython 3.12 and later, which awaits the work
// inside a timeout scope; 3.11 wrapped a coroutine in a task of its own first).
//
// Trace tests carry the asyncio program they mirror; the expected lines are what
// CPython printed for it (the first one with the 3.12 order, see its comment).

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/gather.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/wait_for.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/handlers.hpp"
#include "support/steps.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::ticker;
using aio_test::trace;
using aio_test::log_cancel;
using aio_test::expect_throws;
using lines = std::vector<std::string>;

namespace {

aio::task<int> value_after(std::chrono::milliseconds d, int v) {
    co_await aio::sleep(d);
    co_return v;
}

// Cleans up with an await after its cancellation, then lets it through.
aio::task<int> careful(trace& log) {
    bool cancelled = false;
    try {
        log("work start");
        co_await aio::sleep(10s);
        log("work done");
    } catch (const aio::cancelled_error&) {
        log("work cancelled");
        cancelled = true;
    }
    if (cancelled) {
        co_await aio::sleep(0s);
        log("work cleanup done");
        throw aio::cancelled_error();
    }
    co_return 7;
}

}  // namespace

TEST_CASE("wait_for returns the result of work that ends in time") {
    auto body = []() -> aio::task<> {
        const int v = co_await aio::wait_for(value_after(1ms, 3), 10s);
        REQUIRE(v == 3);
        co_await aio::wait_for(aio::sleep(1ms), 10s);  // void
        auto [a, b] = co_await aio::wait_for(aio::gather(value_after(1ms, 1), value_after(2ms, 2)), 10s);
        REQUIRE(a + b == 3);
    };
    aio::run(body());
}

// async def main():
//     t = asyncio.create_task(ticker(4))
//     try:
//         await asyncio.wait_for(careful(), 0.01)
//     except TimeoutError:
//         print("main timeout")
//     await t
// CPython 3.12+: work start / tick0..tick3 / work cancelled / work cleanup done / main timeout
// (3.11 printed tick0 before "work start": it ran the work as a task of its own.)
TEST_CASE("wait_for cancels work that runs out of time, waits for its cleanup, then throws timeout_error") {
    trace log;
    auto main_task = [](trace& log) -> aio::task<> {
        auto t = aio::create_task(ticker(log, 4));
        try {
            (void)co_await aio::wait_for(careful(log), 10ms);
        } catch (const aio::timeout_error&) {
            log("main timeout");
        }
        co_await t;
        REQUIRE(aio::current_task().cancelling() == 0);
    };
    aio::run(main_task(log));
    REQUIRE(log.events == lines{"work start", "tick0", "tick1", "tick2", "tick3", "work cancelled",
                                "work cleanup done", "main timeout"});
}

TEST_CASE("wait_for returns the value of work that catches its cancellation and returns one") {
    auto stubborn = []() -> aio::task<int> {
        try {
            co_await aio::sleep(10s);
        } catch (const aio::cancelled_error&) {
        }
        co_return 42;
    };
    auto body = [&]() -> aio::task<> {
        const int v = co_await aio::wait_for(stubborn(), 10ms);
        REQUIRE(v == 42);
    };
    aio::run(body());
}

TEST_CASE("wait_for rethrows the work's own exception") {
    auto failing = []() -> aio::task<int> {
        co_await aio::sleep(1ms);
        throw std::out_of_range("nope");
    };
    auto body = [&]() -> aio::task<> {
        const bool caught = co_await expect_throws<std::out_of_range>(aio::wait_for(failing(), 10s));
        REQUIRE(caught);
    };
    aio::run(body());
}

// w = asyncio.create_task(...sleep(1)...); await asyncio.wait_for(w, 0.01)
// -> w cancelled; timeout, h.cancelled=True
TEST_CASE("wait_for on a task handle cancels the task when time runs out") {
    trace log;
    auto w = [](trace& log) -> aio::task<> {
        co_await log_cancel(log, "w cancelled", aio::sleep(1s));
    };
    auto body = [&]() -> aio::task<> {
        auto h = aio::create_task(w(log));
        try {
            co_await aio::wait_for(h, 10ms);
        } catch (const aio::timeout_error&) {
            log("timeout, h.cancelled=" + std::to_string(h.cancelled()));
        }
    };
    aio::run(body());
    REQUIRE(log.events == lines{"w cancelled", "timeout, h.cancelled=1"});
}

// h = create_task(quick()); await sleep(0); await wait_for(h, 0)   -> 5
// h2 = create_task(careful()); await sleep(0); await wait_for(h2, 0) -> TimeoutError, h2 cancelled
// await wait_for(lazy(), 0)                                          -> TimeoutError, lazy never ran
TEST_CASE("wait_for with a timeout of zero starts nothing: a finished task gives its result, anything else times out") {
    trace log;
    auto quick = []() -> aio::task<int> { co_return 5; };
    int ran = 0;
    auto lazy = [&ran]() -> aio::task<int> {
        ++ran;
        co_return 1;
    };
    auto body = [&]() -> aio::task<> {
        auto h = aio::create_task(quick());
        co_await aio::sleep(0s);
        const int v = co_await aio::wait_for(h, 0s);
        log("done handle -> " + std::to_string(v));

        auto h2 = aio::create_task(careful(log));
        co_await aio::sleep(0s);
        try {
            (void)co_await aio::wait_for(h2, 0s);
        } catch (const aio::timeout_error&) {
            log("pending handle -> timeout, cancelled=" + std::to_string(h2.cancelled()));
        }

        try {
            (void)co_await aio::wait_for(lazy(), -1s);
        } catch (const aio::timeout_error&) {
            log("lazy -> timeout, ran=" + std::to_string(ran));
        }
    };
    aio::run(body());
    REQUIRE(log.events == lines{"done handle -> 5", "work start", "work cancelled", "work cleanup done",
                                "pending handle -> timeout, cancelled=1", "lazy -> timeout, ran=0"});
}

// wait_for(h, 0) cancels h and waits for it through a private future
// (_cancel_and_wait): cancelling the caller stops only that wait, it does not send h a
// second cancel. aio used to await h itself, so the caller's cancel reached h, which
// swallowed both and the caller returned normally ("caller got 1").
//
// import asyncio
// log = []
// async def winding_down():
//     try:
//         await asyncio.sleep(3600)
//     except asyncio.CancelledError:
//         log.append("work cancelled")
//         for i in range(3):
//             await asyncio.sleep(0)
//         log.append("work wound down")
//     return 1
// async def caller(h):
//     try:
//         v = await asyncio.wait_for(h, 0)
//         log.append(f"caller got {v}")
//     except asyncio.CancelledError:
//         log.append("caller cancelled")
// async def main():
//     h = asyncio.create_task(winding_down())
//     await asyncio.sleep(0)
//     c = asyncio.create_task(caller(h))
//     await asyncio.sleep(0)
//     await asyncio.sleep(0)
//     c.cancel()
//     await c
//     log.append(f"h done {h.done()}")
//     log.append(f"h result {await h}")
// asyncio.run(main())
// print(log)
TEST_CASE("cancelling a task blocked in wait_for(h, 0) cancels only its wait, not h a second time, as in asyncio") {
    trace log;
    auto winding_down = [&]() -> aio::task<int> {
        bool cancelled = false;  // the cleanup awaits: outside the handler
        try {
            co_await aio::sleep(1h);
        } catch (const aio::cancelled_error&) {
            log("work cancelled");
            cancelled = true;
        }
        if (cancelled) {
            for (int i = 0; i < 3; ++i) co_await aio::sleep(0s);
            log("work wound down");
        }
        co_return 1;
    };
    auto caller = [&](aio::task_handle<int> h) -> aio::task<> {
        try {
            const int v = co_await aio::wait_for(h, 0s);
            log("caller got " + std::to_string(v));
        } catch (const aio::cancelled_error&) {
            log("caller cancelled");
        }
    };
    auto body = [&]() -> aio::task<> {
        auto h = aio::create_task(winding_down());
        co_await aio::sleep(0s);
        auto c = aio::create_task(caller(h));
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        c.cancel();
        co_await c;
        log(std::string("h done ") + (h.done() ? "True" : "False"));
        log("h result " + std::to_string(co_await h));
    };
    aio::run(body());
    REQUIRE(log.events == lines{"work cancelled", "caller cancelled", "h done False", "work wound down", "h result 1"});
}

// A zero time-out costs three loop iterations, with a lazy task (wrapped in a task that
// is cancelled before its first step) as with a running one: the task's step, its done
// callback, the caller's wake-up. aio used to throw at once (0) and after 2.
//
// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def work():
//     log.append("work start")
//     await asyncio.sleep(0)
//     return 1
// async def main():
//     t = asyncio.create_task(ticker(4))
//     try:
//         await asyncio.wait_for(work(), 0)
//     except asyncio.TimeoutError:
//         log.append("lazy timed out")
//     await t
//     t = asyncio.create_task(ticker(5))
//     h = asyncio.create_task(work())
//     await asyncio.sleep(0)
//     log.append("waiting")
//     try:
//         await asyncio.wait_for(h, 0)
//     except asyncio.TimeoutError:
//         log.append("running timed out")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("wait_for with a zero time-out resumes its caller three iterations later, as in asyncio") {
    trace log;
    auto work = [&]() -> aio::task<int> {
        log("work start");
        co_await aio::sleep(0s);
        co_return 1;
    };
    auto body = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 4));
        try {
            (void)co_await aio::wait_for(work(), 0s);
        } catch (const aio::timeout_error&) {
            log("lazy timed out");
        }
        co_await t;
        t = aio::create_task(ticker(log, 5));
        auto h = aio::create_task(work());
        co_await aio::sleep(0s);
        log("waiting");
        try {
            (void)co_await aio::wait_for(h, 0s);
        } catch (const aio::timeout_error&) {
            log("running timed out");
        }
        co_await t;
    };
    aio::run(body());
    REQUIRE(log.events == lines{"tick0", "tick1", "tick2", "lazy timed out", "tick3", "tick0", "work start", "waiting",
                                "tick1", "tick2", "tick3", "running timed out", "tick4"});
}

TEST_CASE("cancelling the task that runs wait_for cancels the work and ends with cancelled_error") {
    trace log;
    auto waiter = [](trace& log) -> aio::task<> {
        try {
            (void)co_await aio::wait_for(careful(log), 10s);
        } catch (const aio::timeout_error&) {
            log("wrongly timed out");
        }
    };
    auto body = [&]() -> aio::task<> {
        auto t = aio::create_task(waiter(log));
        co_await aio::sleep(1ms);
        t.cancel();
        const bool cancelled = co_await expect_throws<aio::cancelled_error>(t);
        REQUIRE(cancelled);
    };
    aio::run(body());
    REQUIRE(log.events == lines{"work start", "work cancelled", "work cleanup done"});
}

TEST_CASE("wait_for destroys the work's result and frames exactly once") {
    aio_test::counted::reset();
    {
        auto make = []() -> aio::task<aio_test::counted> {
            co_await aio::sleep(1ms);
            co_return aio_test::counted(1);
        };
        auto slow = []() -> aio::task<aio_test::counted> {
            aio_test::counted local(2);
            co_await aio::sleep(10s);
            co_return aio_test::counted(3);
        };
        auto body = [&]() -> aio::task<> {
            aio_test::counted v = co_await aio::wait_for(make(), 10s);
            REQUIRE(v.value == 1);
            try {
                (void)co_await aio::wait_for(slow(), 1ms);
            } catch (const aio::timeout_error&) {
            }
        };
        aio::run(body());
    }
    REQUIRE(aio_test::counted::alive() == 0);
}
