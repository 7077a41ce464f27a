// aio::async_generator<T>: laziness, both ways of consuming it, its scheduling order
// inside the consuming task, frame lifetimes, exceptions, cancellation, misuse and
// stack depth.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it.

#include <aio/async_generator.hpp>
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/gather.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <memory>
#include <optional>
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
using aio_test::log_cancel;
using aio_test::thrown_what;
using lines = std::vector<std::string>;

namespace {

aio::async_generator<int> count_to(int n) {
    for (int i = 0; i < n; ++i) co_yield i;
}

// Logs its destruction: a `finally` block.
struct finally_log {
    trace& log;
    std::string line;
    ~finally_log() { log(line); }
};

// A step that is still pending while another task tries to take one.
aio::async_generator<int> slow_numbers() {
    co_await aio::sleep(0s);
    co_yield 1;
}

// What a step throws as invalid_state_error: its message, or "" if it throws nothing.
template <class Step>
aio::task<std::string> misuse_message(Step step) {
    const auto what = co_await thrown_what<aio::invalid_state_error>(step);
    co_return what.value_or("no error");
}

}  // namespace

TEST_CASE("a generator runs nothing until the first next()") {
    trace log;
    auto gen = [&]() -> aio::async_generator<int> {
        log("body");
        co_yield 1;
    };
    auto program = [&]() -> aio::task<> {
        auto g = gen();
        log("created");
        co_await aio::sleep(0s);
        log("yielded to the loop");
        auto x = co_await g.next();
        log("got " + std::to_string(*x));
    };
    aio::run(program());
    REQUIRE(log.events == lines{"created", "yielded to the loop", "body", "got 1"});
}

TEST_CASE("next() returns each yielded value, then an empty optional at the end") {
    auto program = []() -> aio::task<std::vector<int>> {
        std::vector<int> seen;
        auto g = count_to(4);
        while (auto x = co_await g.next()) seen.push_back(*x);
        co_return seen;
    };
    REQUIRE(aio::run(program()) == std::vector<int>{0, 1, 2, 3});
}

TEST_CASE("the awaitable iterator visits every value and then equals end()") {
    auto program = []() -> aio::task<std::vector<int>> {
        std::vector<int> seen;
        auto g = count_to(4);
        for (auto it = co_await g.begin(); it != g.end(); co_await ++it) seen.push_back(*it);
        co_return seen;
    };
    REQUIRE(aio::run(program()) == std::vector<int>{0, 1, 2, 3});
}

TEST_CASE("a generator that yields nothing gives an empty optional and an iterator at end()") {
    auto program = []() -> aio::task<std::pair<bool, bool>> {
        auto a = count_to(0);
        auto x = co_await a.next();
        auto b = count_to(0);
        auto it = co_await b.begin();
        co_return std::pair{x.has_value(), it == b.end()};
    };
    REQUIRE(aio::run(program()) == std::pair{false, true});
}

TEST_CASE("co_yield converts the value to T") {
    auto gen = []() -> aio::async_generator<std::string> {
        co_yield "from a literal";
        std::string s = "from an lvalue";
        co_yield s;
        co_yield std::string("from an rvalue");
    };
    auto program = [&]() -> aio::task<std::vector<std::string>> {
        std::vector<std::string> seen;
        auto g = gen();
        while (auto x = co_await g.next()) seen.push_back(std::move(*x));
        co_return seen;
    };
    REQUIRE(aio::run(program()) == std::vector<std::string>{"from a literal", "from an lvalue", "from an rvalue"});
}

TEST_CASE("a move-only value type is moved out by next() and read in place by the iterator") {
    auto gen = []() -> aio::async_generator<std::unique_ptr<int>> {
        for (int i = 1; i <= 3; ++i) co_yield std::make_unique<int>(i * 10);
    };
    auto program = [&]() -> aio::task<std::vector<int>> {
        std::vector<int> seen;
        auto a = gen();
        while (auto p = co_await a.next()) {
            std::unique_ptr<int> owned = std::move(*p);
            seen.push_back(*owned);
        }
        auto b = gen();
        for (auto it = co_await b.begin(); it != b.end(); co_await ++it) seen.push_back(**it + 1);
        co_return seen;
    };
    REQUIRE(aio::run(program()) == std::vector<int>{10, 20, 30, 11, 21, 31});
}

TEST_CASE("every yielded value is destroyed exactly once") {
    counted::reset();
    auto gen = []() -> aio::async_generator<counted> {
        for (int i = 0; i < 5; ++i) co_yield counted(i);
    };
    auto program = [&]() -> aio::task<int> {
        int sum = 0;
        {
            auto a = gen();
            while (auto x = co_await a.next()) sum += x->value;
        }
        {
            auto b = gen();
            for (auto it = co_await b.begin(); it != b.end(); co_await ++it) sum += it->value;
        }
        {
            auto c = gen();
            auto it = co_await c.begin();  // left at a value: the generator's destruction ends it
            sum += it->value;
        }
        co_return sum;
    };
    REQUIRE(aio::run(program()) == 20);
    REQUIRE(counted::alive() == 0);
}

// import asyncio
// log = []
// async def numbers(n):
//     for i in range(n):
//         log.append(f"gen before sleep {i}")
//         await asyncio.sleep(0)
//         log.append(f"gen yields {i}")
//         yield i
//     log.append("gen end")
// async def ticker(k):
//     for i in range(k):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     t = asyncio.create_task(ticker(5))
//     async for x in numbers(3):
//         log.append(f"got {x}")
//     log.append("done")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("a generator that sleeps interleaves with a ticker task as in asyncio") {
    const lines expected{"gen before sleep 0", "tick0", "gen yields 0", "got 0", "gen before sleep 1", "tick1",
                         "gen yields 1", "got 1", "gen before sleep 2", "tick2", "gen yields 2", "got 2",
                         "gen end", "done", "tick3", "tick4"};
    trace log;
    auto numbers = [&](int n) -> aio::async_generator<int> {
        for (int i = 0; i < n; ++i) {
            log("gen before sleep " + std::to_string(i));
            co_await aio::sleep(0s);
            log("gen yields " + std::to_string(i));
            co_yield i;
        }
        log("gen end");
    };
    SECTION("consumed with the iterator (async for)") {
        auto program = [&]() -> aio::task<> {
            auto t = aio::create_task(aio_test::ticker(log, 5));
            auto g = numbers(3);
            for (auto it = co_await g.begin(); it != g.end(); co_await ++it) log("got " + std::to_string(*it));
            log("done");
            co_await t;
        };
        aio::run(program());
        REQUIRE(log.events == expected);
    }
    SECTION("consumed with next() (anext)") {
        auto program = [&]() -> aio::task<> {
            auto t = aio::create_task(aio_test::ticker(log, 5));
            auto g = numbers(3);
            while (auto x = co_await g.next()) log("got " + std::to_string(*x));
            log("done");
            co_await t;
        };
        aio::run(program());
        REQUIRE(log.events == expected);
    }
}

// import asyncio
// log = []
// async def ticker(k):
//     for i in range(k):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def child(name, steps):
//     for i in range(steps):
//         await asyncio.sleep(0)
//     log.append(f"{name} done")
//     return name
// async def gen():
//     h = asyncio.create_task(child("handle", 2))
//     log.append("gen awaits lazy")
//     v = await child("lazy", 1)
//     yield v
//     v = await h
//     yield v
//     a, b = await asyncio.gather(child("a", 2), child("b", 1))
//     yield a + b
// async def main():
//     t = asyncio.create_task(ticker(6))
//     g = gen()
//     while (x := await anext(g, None)) is not None:
//         log.append(f"got {x}")
//     log.append("end")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("a generator body awaits lazy tasks, task handles and gather in asyncio's order") {
    trace log;
    auto child = [&](std::string name, int steps) -> aio::task<std::string> {
        for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
        log(name + " done");
        co_return name;
    };
    auto gen = [&]() -> aio::async_generator<std::string> {
        auto h = aio::create_task(child("handle", 2));
        log("gen awaits lazy");
        std::string v = co_await child("lazy", 1);
        co_yield v;
        v = co_await h;
        co_yield v;
        auto [a, b] = co_await aio::gather(child("a", 2), child("b", 1));
        co_yield a + b;
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(aio_test::ticker(log, 6));
        auto g = gen();
        while (auto x = co_await g.next()) log("got " + *x);
        log("end");
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"gen awaits lazy", "tick0", "lazy done", "got lazy", "tick1", "tick2",
                                "handle done", "tick3", "got handle", "tick4", "tick5", "b done", "a done",
                                "got ab", "end"});
}

TEST_CASE("a generator can consume another generator that sleeps") {
    auto doubled = [](aio::async_generator<int> inner) -> aio::async_generator<int> {
        while (auto x = co_await inner.next()) {
            co_await aio::sleep(0s);
            co_yield *x * 2;
        }
    };
    auto source = []() -> aio::async_generator<int> {
        for (int i = 1; i <= 3; ++i) {
            co_await aio::sleep(1ms);
            co_yield i;
        }
    };
    auto program = [&]() -> aio::task<std::vector<int>> {
        std::vector<int> seen;
        auto g = doubled(source());
        for (auto it = co_await g.begin(); it != g.end(); co_await ++it) seen.push_back(*it);
        co_return seen;
    };
    REQUIRE(aio::run(program()) == std::vector<int>{2, 4, 6});
}

// import asyncio, contextlib
// log = []
// async def counting():
//     try:
//         for i in range(10):
//             log.append(f"gen yields {i}")
//             yield i
//     finally:
//         log.append("gen finally")
// async def main():
//     async with contextlib.aclosing(counting()) as g:
//         async for x in g:
//             log.append(f"got {x}")
//             if x == 2:
//                 break
//     log.append("closed")
// asyncio.run(main())
// print(log)
TEST_CASE("a consumer that stops early destroys the suspended frame and its locals") {
    trace log;
    counted::reset();
    auto counting = [&]() -> aio::async_generator<int> {
        finally_log finally{log, "gen finally"};
        counted held(1);
        for (int i = 0; i < 10; ++i) {
            log("gen yields " + std::to_string(i));
            co_yield i;
        }
    };
    auto program = [&]() -> aio::task<int> {
        int alive_inside = 0;
        {
            auto g = counting();
            for (auto it = co_await g.begin(); it != g.end(); co_await ++it) {
                log("got " + std::to_string(*it));
                if (*it == 2) break;
            }
            alive_inside = counted::alive();
        }
        log("closed");
        co_return alive_inside;
    };
    REQUIRE(aio::run(program()) == 1);
    REQUIRE(counted::alive() == 0);
    REQUIRE(log.events ==
            lines{"gen yields 0", "got 0", "gen yields 1", "got 1", "gen yields 2", "got 2", "gen finally", "closed"});
}

TEST_CASE("destroying a generator that never ran destroys its frame and arguments without running the body") {
    counted::reset();
    bool ran = false;
    auto gen = [&](counted c) -> aio::async_generator<int> {
        ran = true;
        co_yield c.value;
    };
    {
        auto g = gen(counted(3));
        REQUIRE(counted::alive() == 1);
    }
    REQUIRE(counted::alive() == 0);
    REQUIRE_FALSE(ran);
}

TEST_CASE("a generator sleeping when aio::run ends is unwound by the shutdown's cancellation") {
    counted::reset();
    auto gen = []() -> aio::async_generator<int> {
        counted held(1);
        co_yield 1;
        co_await aio::sleep(24h);
        co_yield 2;
    };
    auto consumer = [&]() -> aio::task<> {
        auto g = gen();
        while (auto x = co_await g.next()) {
        }
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(consumer());
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        // main returns: run() cancels the consumer, whose generator sleeps
    };
    aio::run(program());
    REQUIRE(counted::alive() == 0);
}

// import asyncio
// log = []
// async def failing():
//     log.append("gen yields 1")
//     yield 1
//     await asyncio.sleep(0)
//     log.append("gen raises")
//     raise ValueError("boom")
// async def main():
//     try:
//         async for x in failing():
//             log.append(f"got {x}")
//     except ValueError as e:
//         log.append(f"caught {e}")
// asyncio.run(main())
// print(log)
TEST_CASE("an exception in the generator reaches the consumer at the step, as in asyncio") {
    trace log;
    auto failing = [&]() -> aio::async_generator<int> {
        log("gen yields 1");
        co_yield 1;
        co_await aio::sleep(0s);
        log("gen raises");
        throw aio_test::boom("boom");
    };
    SECTION("at ++it") {
        auto program = [&]() -> aio::task<> {
            auto g = failing();
            try {
                for (auto it = co_await g.begin(); it != g.end(); co_await ++it) log("got " + std::to_string(*it));
            } catch (const aio_test::boom& e) {
                log(std::string("caught ") + e.what());
            }
        };
        aio::run(program());
    }
    SECTION("at next()") {
        auto program = [&]() -> aio::task<> {
            auto g = failing();
            try {
                while (auto x = co_await g.next()) log("got " + std::to_string(*x));
            } catch (const aio_test::boom& e) {
                log(std::string("caught ") + e.what());
            }
        };
        aio::run(program());
    }
    REQUIRE(log.events == lines{"gen yields 1", "got 1", "gen raises", "caught boom"});
}

TEST_CASE("an exception before the first yield is rethrown by begin(), and the generator is then finished") {
    auto gen = []() -> aio::async_generator<int> {
        throw aio_test::boom("at once");
        co_yield 1;
    };
    auto program = [&]() -> aio::task<std::pair<std::string, std::string>> {
        auto g = gen();
        std::string first = (co_await thrown_what<aio_test::boom>(g.begin())).value_or("no error");
        std::string second = co_await misuse_message(g.next());
        co_return std::pair{first, second};
    };
    auto [first, second] = aio::run(program());
    REQUIRE(first == "at once");
    REQUIRE(second.find("already finished") != std::string::npos);
}

// import asyncio
// log = []
// async def slow():
//     try:
//         log.append("gen start")
//         yield 1
//         log.append("gen sleeps")
//         await asyncio.sleep(3600)
//         yield 2
//     except asyncio.CancelledError:
//         log.append("gen cancelled")
//         raise
//     finally:
//         log.append("gen finally")
// async def consumer():
//     try:
//         async for x in slow():
//             log.append(f"got {x}")
//     except asyncio.CancelledError:
//         log.append("consumer cancelled")
//         raise
// async def main():
//     t = asyncio.create_task(consumer())
//     await asyncio.sleep(0)
//     await asyncio.sleep(0)
//     log.append("cancelling")
//     t.cancel()
//     try:
//         await t
//     except asyncio.CancelledError:
//         log.append(f"main sees cancelled: {t.cancelled()}")
// asyncio.run(main())
// print(log)
TEST_CASE("cancelling the consumer while the generator sleeps unwinds the body, then the consumer, as in asyncio") {
    trace log;
    auto slow = [&]() -> aio::async_generator<int> {
        finally_log finally{log, "gen finally"};
        log("gen start");
        co_yield 1;
        log("gen sleeps");
        co_await log_cancel(log, "gen cancelled", aio::sleep(1h));
        co_yield 2;
    };
    auto consumer = [&]() -> aio::task<> {
        try {
            auto g = slow();
            for (auto it = co_await g.begin(); it != g.end(); co_await ++it) log("got " + std::to_string(*it));
        } catch (const aio::cancelled_error&) {
            log("consumer cancelled");
            throw;
        }
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(consumer());
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        log("cancelling");
        t.cancel();
        try {
            co_await t;
        } catch (const aio::cancelled_error&) {
            log("main sees cancelled: " + aio_test::yes_no(t.cancelled()));
        }
    };
    aio::run(program());
    REQUIRE(log.events == lines{"gen start", "got 1", "gen sleeps", "cancelling", "gen cancelled", "gen finally",
                                "consumer cancelled", "main sees cancelled: True"});
}

TEST_CASE("cancelling the consumer while the generator awaits a lazy task cancels that await") {
    trace log;
    auto inner = [&]() -> aio::task<int> {
        co_await log_cancel(log, "inner task cancelled", aio::sleep(1h));
        co_return 1;
    };
    auto gen = [&]() -> aio::async_generator<int> { co_yield co_await inner(); };
    auto consumer = [&]() -> aio::task<> {
        auto g = gen();
        auto x = co_await g.next();
        log(x ? "got a value" : "got the end");
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(consumer());
        co_await aio::sleep(0s);
        t.cancel();
        try {
            co_await t;
        } catch (const aio::cancelled_error&) {
            log("consumer cancelled");
        }
    };
    aio::run(program());
    REQUIRE(log.events == lines{"inner task cancelled", "consumer cancelled"});
}

TEST_CASE("a generator body that catches the cancellation can go on yielding") {
    auto gen = []() -> aio::async_generator<std::string> {
        try {
            co_await aio::sleep(1h);
            co_yield "slept";
        } catch (const aio::cancelled_error&) {
        }
        co_yield "recovered";
    };
    auto consumer = [&]() -> aio::task<std::string> {
        auto g = gen();
        auto x = co_await g.next();
        co_return *x;
    };
    auto program = [&]() -> aio::task<std::string> {
        auto t = aio::create_task(consumer());
        co_await aio::sleep(0s);
        t.cancel();
        co_return co_await t;
    };
    REQUIRE(aio::run(program()) == "recovered");
}

TEST_CASE("next() while another step of the same generator is pending throws invalid_state_error") {
    auto program = []() -> aio::task<std::string> {
        auto g = slow_numbers();
        auto first = aio::create_task([](aio::async_generator<int>& gen) -> aio::task<int> {
            auto x = co_await gen.next();
            co_return *x;
        }(g));
        co_await aio::sleep(0s);  // `first` now waits inside the generator's sleep
        std::string message = co_await misuse_message(g.next());
        int value = co_await first;
        co_return message + " / " + std::to_string(value);
    };
    const std::string result = aio::run(program());
    REQUIRE(result ==
            "aio::async_generator::next() on an aio::async_generator whose previous step is still pending "
            "(a generator runs one step at a time) / 1");
}

TEST_CASE("a step after the end throws invalid_state_error") {
    auto program = []() -> aio::task<std::pair<std::string, std::string>> {
        auto g = count_to(1);
        while (auto x = co_await g.next()) {
        }
        std::string after_next = co_await misuse_message(g.next());
        auto h = count_to(1);
        auto it = co_await h.begin();
        co_await ++it;  // to the end
        std::string after_end = co_await misuse_message(++it);
        co_return std::pair{after_next, after_end};
    };
    auto [after_next, after_end] = aio::run(program());
    REQUIRE(after_next ==
            "aio::async_generator::next() on an aio::async_generator that has already finished "
            "(its end or its exception was already reported)");
    REQUIRE(after_end.find("iterator::operator++()") != std::string::npos);
}

TEST_CASE("a step on a moved-from generator throws invalid_state_error") {
    auto program = []() -> aio::task<std::pair<std::string, int>> {
        auto g = count_to(3);
        auto moved = std::move(g);
        std::string message = co_await misuse_message(g.next());
        auto x = co_await moved.next();
        co_return std::pair{message, *x};
    };
    auto [message, first] = aio::run(program());
    REQUIRE(message == "aio::async_generator::next() on an empty or moved-from aio::async_generator");
    REQUIRE(first == 0);
}

TEST_CASE("a million synchronous yields in a row do not overflow the stack") {
    auto program = []() -> aio::task<long> {
        long sum = 0;
        auto a = count_to(1'000'000);
        while (auto x = co_await a.next()) sum += 1;
        auto b = count_to(1'000'000);
        for (auto it = co_await b.begin(); it != b.end(); co_await ++it) sum += 1;
        co_return sum;
    };
    REQUIRE(aio::run(program()) == 2'000'000);
}

TEST_CASE("a million yields resumed alternately by the loop and inline do not overflow the stack") {
    // Every other value comes after a sleep: the body returns to the consumer by
    // symmetric transfer, the others inside the step.
    auto gen = []() -> aio::async_generator<int> {
        for (int i = 0; i < 1'000'000; ++i) {
            if (i % 2 == 0) co_await aio::sleep(0s);
            co_yield 1;
        }
    };
    auto program = [&]() -> aio::task<long> {
        long sum = 0;
        auto g = gen();
        while (auto x = co_await g.next()) sum += *x;
        co_return sum;
    };
    REQUIRE(aio::run(program()) == 1'000'000);
}
