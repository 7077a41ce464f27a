// aio::timeout / aio::timeout_at: asyncio.timeout's scope, its states and its
// conversion of its own cancellation into aio::timeout_error.
//
// Trace tests carry the asyncio program they mirror; the expected lines are what
// CPython printed for it. Deadlines are 10 ms against sleeps of a second or more, so
// a slow machine cannot reorder them.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/timeout.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/handlers.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::trace;
using aio_test::log_cancel;
using aio_test::on_cancel;
using aio_test::expect_throws;
using aio_test::thrown_what;
using lines = std::vector<std::string>;
using state = aio::timeout_scope::state;

namespace {

aio::task<int> slow_value(std::chrono::milliseconds d, int v) {
    co_await aio::sleep(d);
    co_return v;
}

// Catches its cancellation and returns a value anyway.
aio::task<int> stubborn(trace& log) {
    try {
        co_await aio::sleep(10s);
    } catch (const aio::cancelled_error&) {
        log("caught");
    }
    co_return 42;
}

// Cleans up with an await after its cancellation, then lets it through.
aio::task<> careful(trace& log) {
    bool cancelled = false;
    try {
        log("work start");
        co_await aio::sleep(10s);
    } catch (const aio::cancelled_error&) {
        log("work cancelled");
        cancelled = true;
    }
    if (cancelled) {
        co_await aio::sleep(0s);
        log("work cleanup done");
        throw aio::cancelled_error();
    }
}

int cancelling_now() { return aio::current_task().cancelling(); }

}  // namespace

TEST_CASE("a timeout scope returns the value of work that ends in time and does not expire") {
    auto body = []() -> aio::task<> {
        auto limit = aio::timeout(10s);
        REQUIRE(limit.current_state() == state::created);
        const int v = co_await limit.run(slow_value(1ms, 5));
        REQUIRE(v == 5);
        REQUIRE_FALSE(limit.expired());
        REQUIRE(limit.current_state() == state::exited);
    };
    aio::run(body());
}

// async def main():
//     try:
//         async with asyncio.timeout(0.01):
//             await careful()          # logs as below
//     except TimeoutError:
//         print("main timeout")
// -> work start / work cancelled / work cleanup done / main timeout
TEST_CASE("an expired timeout scope cancels the work, waits for its cleanup, then throws timeout_error") {
    trace log;
    auto body = [](trace& log) -> aio::task<> {
        auto limit = aio::timeout(10ms);
        try {
            co_await limit.run(careful(log));
        } catch (const aio::timeout_error&) {
            log("main timeout");
        }
        REQUIRE(limit.expired());
        REQUIRE(limit.current_state() == state::expired);
        REQUIRE(cancelling_now() == 0);  // the scope took its own cancellation back
    };
    aio::run(body(log));
    REQUIRE(log.events == lines{"work start", "work cancelled", "work cleanup done", "main timeout"});
}

// async with asyncio.timeout(0.01) as cm:
//     v = await stubborn()
// -> caught; v=42 expired=True cancelling=0
TEST_CASE("work that catches the cancellation of an expired scope and returns a value returns it") {
    trace log;
    auto body = [](trace& log) -> aio::task<> {
        auto limit = aio::timeout(10ms);
        const int v = co_await limit.run(stubborn(log));
        log("v=" + std::to_string(v) + " expired=" + std::to_string(limit.expired()) +
            " cancelling=" + std::to_string(cancelling_now()));
    };
    aio::run(body(log));
    REQUIRE(log.events == lines{"caught", "v=42 expired=1 cancelling=0"});
}

TEST_CASE("a timeout scope lets the work's own exception through unchanged") {
    auto body = []() -> aio::task<> {
        auto limit = aio::timeout(10s);
        auto failing = []() -> aio::task<int> {
            co_await aio::sleep(1ms);
            throw std::logic_error("boom");
        };
        const bool caught = co_await thrown_what<std::logic_error>(limit.run(failing())) == "boom";
        REQUIRE(caught);
        REQUIRE_FALSE(limit.expired());
    };
    aio::run(body());
}

// async with asyncio.timeout(0.01) as outer:
//     try:
//         async with asyncio.timeout(10) as inner:
//             await asyncio.sleep(1)
//     except asyncio.CancelledError:
//         print(f"inner saw cancelled, inner expired={inner.expired()}"); raise
// except TimeoutError: print(f"outer timeout, outer expired={outer.expired()}")
// print(f"cancelling={asyncio.current_task().cancelling()}")
TEST_CASE("when an outer scope expires, an inner scope lets the cancellation through and only the outer converts it") {
    trace log;
    auto body = [](trace& log) -> aio::task<> {
        auto outer = aio::timeout(10ms);
        auto inner_part = [](trace& log) -> aio::task<> {
            auto inner = aio::timeout(10s);
            co_await on_cancel(inner.run(aio::sleep(1s)), [&] {
                log("inner saw cancelled, inner expired=" + std::to_string(inner.expired()));
            });
        };
        try {
            co_await outer.run(inner_part(log));
        } catch (const aio::timeout_error&) {
            log("outer timeout, outer expired=" + std::to_string(outer.expired()));
        }
        log("cancelling=" + std::to_string(cancelling_now()));
    };
    aio::run(body(log));
    REQUIRE(log.events == lines{"inner saw cancelled, inner expired=0", "outer timeout, outer expired=1", "cancelling=0"});
}

TEST_CASE("when an inner scope expires, it throws timeout_error and the outer scope carries on") {
    auto body = []() -> aio::task<> {
        auto outer = aio::timeout(10s);
        auto inner_part = []() -> aio::task<std::string> {
            auto inner = aio::timeout(10ms);
            try {
                co_await inner.run(aio::sleep(1s));
            } catch (const aio::timeout_error&) {
                co_return "inner timed out";
            }
            co_return "no timeout";
        };
        const std::string what = co_await outer.run(inner_part());
        REQUIRE(what == "inner timed out");
        REQUIRE_FALSE(outer.expired());
        REQUIRE(cancelling_now() == 0);
    };
    aio::run(body());
}

// async def body():
//     try:
//         async with asyncio.timeout(10): await asyncio.sleep(1)
//     except asyncio.CancelledError: print("body cancelled"); raise
// t = asyncio.create_task(body()); await asyncio.sleep(0.01); t.cancel()
// -> body cancelled; t cancelled
TEST_CASE("a cancel() from outside reaches the code around a timeout scope as cancelled_error") {
    trace log;
    auto body = [](trace& log) -> aio::task<> {
        auto limit = aio::timeout(10s);
        co_await log_cancel(log, "body cancelled", limit.run(aio::sleep(1s)));
    };
    auto main_task = [&]() -> aio::task<> {
        auto t = aio::create_task(body(log));
        co_await aio::sleep(10ms);
        t.cancel();
        try {
            co_await t;
        } catch (const aio::cancelled_error&) {
            log("t cancelled");
        }
    };
    aio::run(main_task());
    REQUIRE(log.events == lines{"body cancelled", "t cancelled"});
}

TEST_CASE("a scope that expires in the same iteration as a cancel() from outside lets the cancellation through") {
    // Both requests are pending: the scope takes back only its own, one is left, so
    // the code around it sees aio::cancelled_error, not a time-out.
    auto body = []() -> aio::task<> {
        auto limit = aio::timeout_at(std::nullopt);
        auto inner = [&limit]() -> aio::task<> {
            limit.reschedule(aio::timeout_scope::clock::now() - 1s);  // expires next iteration
            aio::current_task().cancel();                            // and a request from outside
            co_await aio::sleep(1s);
        };
        co_await limit.run(inner());
    };
    auto main_task = [&]() -> aio::task<> {
        auto t = aio::create_task(body());
        const bool cancelled = co_await expect_throws<aio::cancelled_error>(t);
        REQUIRE(cancelled);
        REQUIRE(t.cancelled());
    };
    aio::run(main_task());
}

TEST_CASE("reschedule() moves the deadline later, to the past, or away") {
    auto body = []() -> aio::task<> {
        {  // later: the work finishes
            auto limit = aio::timeout(10ms);
            auto work = [&limit]() -> aio::task<int> {
                limit.reschedule(aio::timeout_scope::clock::now() + 10s);
                co_await aio::sleep(30ms);
                co_return 1;
            };
            const int v = co_await limit.run(work());
            REQUIRE(v == 1);
            REQUIRE_FALSE(limit.expired());
        }
        {  // into the past: expires at the next iteration
            auto limit = aio::timeout(10s);
            auto work = [&limit]() -> aio::task<> {
                limit.reschedule(aio::timeout_scope::clock::now() - 1s);
                co_await aio::sleep(1s);
            };
            const bool timed_out = co_await expect_throws<aio::timeout_error>(limit.run(work()));
            REQUIRE(timed_out);
            REQUIRE(limit.expired());
        }
        {  // away: no deadline any more
            auto limit = aio::timeout(1ms);
            auto work = [&limit]() -> aio::task<> {
                limit.reschedule(std::nullopt);
                REQUIRE_FALSE(limit.when().has_value());
                co_await aio::sleep(20ms);
            };
            co_await limit.run(work());
            REQUIRE_FALSE(limit.expired());
        }
    };
    aio::run(body());
}

TEST_CASE("when() reports the deadline, and a scope without one never expires") {
    const auto before = aio::timeout_scope::clock::now();
    auto limit = aio::timeout(5s);
    REQUIRE(limit.when().has_value());
    REQUIRE(*limit.when() >= before + 5s);
    REQUIRE(*limit.when() <= aio::timeout_scope::clock::now() + 5s);
    const auto at = aio::timeout_scope::clock::now() + 1h;
    REQUIRE(aio::timeout_at(at).when() == at);
    auto body = []() -> aio::task<> {
        auto never = aio::timeout_at(std::nullopt);
        co_await never.run(aio::sleep(10ms));
        REQUIRE_FALSE(never.expired());
    };
    aio::run(body());
}

TEST_CASE("a huge delay saturates instead of overflowing") {
    auto limit = aio::timeout(std::chrono::hours::max());
    REQUIRE(limit.when().has_value());
    REQUIRE(*limit.when() > aio::timeout_scope::clock::now() + 24h * 365 * 100);
}

TEST_CASE("misusing a timeout scope throws aio::runtime_error") {
    auto body = []() -> aio::task<> {
        auto limit = aio::timeout(10s);
        REQUIRE_THROWS_AS(limit.reschedule(std::nullopt), aio::runtime_error);  // not entered yet
        co_await limit.run(aio::sleep(0s));
        REQUIRE(limit.current_state() == state::exited);
        REQUIRE_THROWS_AS(limit.reschedule(std::nullopt), aio::runtime_error);  // exited
        // run() enters the scope a second time.
        const bool twice = co_await expect_throws<aio::runtime_error>(limit.run(aio::sleep(0s)));
        REQUIRE(twice);

        auto expiring = aio::timeout(1ms);
        try {
            co_await expiring.run(aio::sleep(1s));
        } catch (const aio::timeout_error&) {
        }
        REQUIRE_THROWS_AS(expiring.reschedule(std::nullopt), aio::runtime_error);  // expired
    };
    aio::run(body());
}

TEST_CASE("a scope whose task is destroyed by the loop closing leaves no timer behind") {
    aio::event_loop loop;
    auto body = []() -> aio::task<> {
        auto limit = aio::timeout(10ms);
        co_await limit.run(aio::sleep(1h));
    };
    auto h = loop.create_task(body());
    loop.call_later(1ms, [&loop] { loop.stop(); });
    loop.run_forever();  // the scope is entered, its timer armed
    loop.close();        // the frame goes, and the scope's timer with it
    REQUIRE(h.done());
    REQUIRE(h.cancelled());
}

// The block form: a time limit over several statements, as `async with
// asyncio.timeout(d):`, without a helper coroutine.
//
// import asyncio
// log = []
// async def main():
//     try:
//         async with asyncio.timeout(0.05):
//             log.append("step one")
//             await asyncio.sleep(0)
//             log.append("step two")
//             await asyncio.sleep(3600)
//             log.append("not reached")
//     except TimeoutError:
//         log.append("timed out")
//     async with asyncio.timeout(10):
//         log.append("quick block")
//         v = 7
//     log.append(f"value {v}")
// asyncio.run(main())
// print(log)
TEST_CASE("a timeout scope runs a block of statements under its deadline, as async with asyncio.timeout()") {
    trace log;
    auto body = [&]() -> aio::task<> {
        try {
            co_await aio::timeout(50ms).run([&](aio::timeout_scope&) -> aio::task<> {
                log("step one");
                co_await aio::sleep(0s);
                log("step two");
                co_await aio::sleep(1h);
                log("not reached");
            });
        } catch (const aio::timeout_error&) {
            log("timed out");
        }
        const int v = co_await aio::timeout(10s).run([&](aio::timeout_scope& scope) -> aio::task<int> {
            log("quick block");
            REQUIRE(scope.current_state() == aio::timeout_scope::state::entered);
            co_return 7;
        });
        log("value " + std::to_string(v));
    };
    aio::run(body());
    REQUIRE(log.events == lines{"step one", "step two", "timed out", "quick block", "value 7"});
}
