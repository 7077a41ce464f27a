// aio::gather: results, errors, cancellation and lifetimes, and its scheduling order
// against CPython 3.11 (API rules 4, 7 and 8).
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
#include <aio/gather.hpp>
#include <aio/outcome.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <array>
#include <chrono>
#include <exception>
#include <list>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
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
using aio_test::log_cancel;
using aio_test::expect_throws;
using aio_test::thrown_what;
using lines = std::vector<std::string>;

namespace {

aio::task<std::string> text(std::string s, int yields = 0) {
    for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
    co_return s;
}

aio::task<double> real(double d) {
    co_await aio::sleep(0s);
    co_return d;
}

aio::task<> nothing(int yields = 0) {
    for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
}

aio::task<> forever() { co_await aio::sleep(24h); }

}  // namespace

TEST_CASE("gather returns results in argument order") {
    auto program = []() -> aio::task<std::tuple<int, std::string, double>> {
        // The first child finishes last and the last first: the order is the arguments'.
        co_return co_await aio::gather(number(1, 3), text("two", 1), real(3.5));
    };
    auto [a, b, c] = aio::run(program());
    REQUIRE(a == 1);
    REQUIRE(b == "two");
    REQUIRE(c == 3.5);
}

TEST_CASE("gather gives std::monostate for a void child") {
    auto program = []() -> aio::task<int> {
        auto result = co_await aio::gather(nothing(1), number(7), nothing());
        static_assert(std::is_same_v<decltype(result), std::tuple<std::monostate, int, std::monostate>>);
        co_return std::get<1>(result);
    };
    REQUIRE(aio::run(program()) == 7);
}

TEST_CASE("gather of a vector of tasks returns a vector in order") {
    auto program = []() -> aio::task<std::vector<int>> {
        std::vector<aio::task<int>> children;
        for (int i = 0; i < 10; ++i) children.push_back(number(i, 10 - i));
        co_return co_await aio::gather(std::move(children));
    };
    REQUIRE(aio::run(program()) == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("gather of a vector of void tasks returns a vector of std::monostate") {
    auto program = []() -> aio::task<std::size_t> {
        std::vector<aio::task<>> children;
        for (int i = 0; i < 5; ++i) children.push_back(nothing(i));
        auto result = co_await aio::gather(std::move(children));
        static_assert(std::is_same_v<decltype(result), std::vector<std::monostate>>);
        co_return result.size();
    };
    REQUIRE(aio::run(program()) == 5);
}

TEST_CASE("gather of a vector of task handles returns a vector in order") {
    auto program = []() -> aio::task<std::vector<std::string>> {
        std::vector<aio::task_handle<std::string>> handles;
        for (int i = 0; i < 4; ++i) handles.push_back(aio::create_task(text(std::to_string(i), 4 - i)));
        co_return co_await aio::gather(std::move(handles));
    };
    REQUIRE(aio::run(program()) == std::vector<std::string>{"0", "1", "2", "3"});
}

TEST_CASE("gather takes any sized range: an array or span of handles (shared, not moved) and a list of tasks") {
    auto program = []() -> aio::task<std::string> {
        std::array<aio::task_handle<std::string>, 3> handles{aio::create_task(text("a", 2)), aio::create_task(text("b", 0)),
                                                            aio::create_task(text("c", 1))};
        std::vector<std::string> from_array = co_await aio::gather(handles);
        std::vector<std::string> from_span = co_await aio::gather(std::span(handles).subspan(1));
        std::list<aio::task<std::string>> lazy;
        lazy.push_back(text("x", 1));
        lazy.push_back(text("y", 0));
        std::vector<std::string> from_list = co_await aio::gather(std::move(lazy));
        std::string out;
        for (const auto* part : {&from_array, &from_span, &from_list})
            for (const std::string& x : *part) out += x;
        co_return out + (handles[0] ? "|kept" : "|moved");
    };
    REQUIRE(aio::run(program()) == "abcbcxy|kept");
}

// import asyncio
// log = []
// async def ticker():
//     for i in range(2):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     t = asyncio.create_task(ticker())
//     await asyncio.sleep(0)
//     log.append("before")
//     r = await asyncio.gather(*[])
//     log.append(f"after {len(r)}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("gather of an empty vector returns an empty vector without suspending") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 2));
        co_await aio::sleep(0s);
        log("before");
        std::vector<int> r = co_await aio::gather(std::vector<aio::task<int>>{});
        log("after " + std::to_string(r.size()));
        std::vector<int> h = co_await aio::gather(std::vector<aio::task_handle<int>>{});
        log("after " + std::to_string(h.size()));
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "before", "after 0", "after 0", "tick1"});
}

TEST_CASE("gather takes task handles and lazy tasks mixed") {
    auto program = []() -> aio::task<std::tuple<int, std::string, int, std::monostate>> {
        aio::task_handle<std::string> h = aio::create_task(text("handle", 2));
        aio::task_handle<> v = aio::create_task(nothing(1));
        auto [a, b, c, d] = co_await aio::gather(number(1, 1), h, number(3), v);
        co_return std::tuple{a, b, c, d};
    };
    auto [a, b, c, d] = aio::run(program());
    REQUIRE(a == 1);
    REQUIRE(b == "handle");
    REQUIRE(c == 3);
    (void)d;
}

// import asyncio
// log = []
// async def f():
//     return 5
// async def ticker():
//     for i in range(3):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     h = asyncio.create_task(f())
//     await h
//     t = asyncio.create_task(ticker())
//     log.append("gather")
//     r = await asyncio.gather(h, h)
//     log.append(f"gathered {r}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("gather of a handle to a finished task still resumes through the loop") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto h = aio::create_task(number(5));
        co_await h;
        auto t = aio::create_task(ticker(log, 3));
        log("gather");
        auto [x, y] = co_await aio::gather(h, h);
        log("gathered [" + std::to_string(x) + ", " + std::to_string(y) + "]");
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"gather", "tick0", "tick1", "gathered [5, 5]", "tick2"});
}

// import asyncio
// log = []
// async def number(n):
//     return n
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     h = asyncio.create_task(number(5))
//     await h
//     t = asyncio.create_task(ticker(5))
//     log.append("gather")
//     r = await asyncio.gather(asyncio.gather(h, h), number(3))
//     log.append(f"gathered {r}")
//     await t
// asyncio.run(main())
// print(log)
// ['gather', 'tick0', 'tick1', 'tick2', 'gathered [[5, 5], 3]', 'tick3', 'tick4']
TEST_CASE("a gather of finished tasks, moved into an outer gather with its completion step queued, completes in its place") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto h = aio::create_task(number(5));
        co_await h;
        auto t = aio::create_task(ticker(log, 5));
        log("gather");
        auto [inner, three] = co_await aio::gather(aio::gather(h, h), number(3));
        auto [x, y] = inner;
        log("gathered [[" + std::to_string(x) + ", " + std::to_string(y) + "], " + std::to_string(three) + "]");
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"gather", "tick0", "tick1", "tick2", "gathered [[5, 5], 3]", "tick3", "tick4"});
}

namespace {
aio::task<std::string> child(trace& log, std::string name, int yields) {
    log(name + " start");
    for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
    log(name + " end");
    co_return name;
}
}  // namespace

// import asyncio
// log = []
// async def child(name, steps):
//     log.append(f"{name} start")
//     for _ in range(steps):
//         await asyncio.sleep(0)
//     log.append(f"{name} end")
//     return name
// async def ticker():
//     for i in range(6):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     t = asyncio.create_task(ticker())
//     r = await asyncio.gather(child("a", 1), child("b", 0), child("c", 0))
//     log.append(f"gathered {r[0]}{r[1]}{r[2]}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("gather starts its children in argument order and resumes two iterations after the last one ends") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 6));
        auto [a, b, c] = co_await aio::gather(child(log, "a", 1), child(log, "b", 0), child(log, "c", 0));
        log("gathered " + a + b + c);
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "a start", "b start", "b end", "c start", "c end", "tick1", "a end", "tick2",
                                "tick3", "gathered abc", "tick4", "tick5"});
}

TEST_CASE("gather of a vector starts its children in order and resumes two iterations after the last one ends") {
    // Same program as above, through the range overload.
    trace log;
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 6));
        std::vector<aio::task<std::string>> children;
        children.push_back(child(log, "a", 1));
        children.push_back(child(log, "b", 0));
        children.push_back(child(log, "c", 0));
        auto r = co_await aio::gather(std::move(children));
        log("gathered " + r[0] + r[1] + r[2]);
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "a start", "b start", "b end", "c start", "c end", "tick1", "a end", "tick2",
                                "tick3", "gathered abc", "tick4", "tick5"});
}

namespace {
aio::task<int> slow(trace& log, std::string name) {
    log(name + " start");
    for (int i = 0; i < 3; ++i) co_await aio::sleep(0s);
    log(name + " end");
    co_return 1;
}

aio::task<int> failing_logged(trace& log) {
    log("failing start");
    co_await aio::sleep(0s);
    log("failing raises");
    throw boom("boom");
}
}  // namespace

// import asyncio
// log = []
// async def slow(name):
//     log.append(f"{name} start")
//     for _ in range(3):
//         await asyncio.sleep(0)
//     log.append(f"{name} end")
//     return 1
// async def failing():
//     log.append("failing start")
//     await asyncio.sleep(0)
//     log.append("failing raises")
//     raise ValueError("boom")
// async def main():
//     try:
//         await asyncio.gather(slow("lazy"), failing(), slow("other"))
//     except ValueError as e:
//         log.append(f"caught {e}")
//     for i in range(4):
//         log.append(f"main {i}")
//         await asyncio.sleep(0)
// asyncio.run(main())
// print(log)
TEST_CASE("gather's first exception reaches the awaiter while the other children keep running") {
    trace log;
    auto program = [&]() -> aio::task<> {
        try {
            co_await aio::gather(slow(log, "lazy"), failing_logged(log), slow(log, "other"));
        } catch (const boom& e) {
            log(std::string("caught ") + e.what());
        }
        for (int i = 0; i < 4; ++i) {
            log("main " + std::to_string(i));
            co_await aio::sleep(0s);
        }
    };
    aio::run(program());
    REQUIRE(log.events == lines{"lazy start", "failing start", "other start", "failing raises", "lazy end",
                                "caught boom", "main 0", "other end", "main 1", "main 2", "main 3"});
}

TEST_CASE("gather's first exception leaves a running child handle to finish normally") {
    int slow_result = 0;
    bool slow_cancelled = true;
    std::string caught;
    auto program = [&]() -> aio::task<> {
        auto h = aio::create_task(number(42, 5));
        caught = (co_await thrown_what<boom>(aio::gather(h, failing("first", 1), failing("second", 2)))).value_or("");
        slow_result = co_await h;
        slow_cancelled = h.cancelled();
    };
    aio::run(program());
    REQUIRE(caught == "first");
    REQUIRE(slow_result == 42);
    REQUIRE_FALSE(slow_cancelled);
}

// import asyncio, gc
// reports = []
// async def failing(what, yields):
//     for _ in range(yields):
//         await asyncio.sleep(0)
//     raise ValueError(what)
// async def main():
//     asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: reports.append(ctx["message"]))
//     try:
//         await asyncio.gather(failing("first", 1), failing("second", 2), failing("third", 3))
//     except ValueError:
//         pass
//     for _ in range(5):
//         await asyncio.sleep(0)
//     gc.collect()
// asyncio.run(main())
// gc.collect()
// print(reports)   # []
//
// "second" fails in the iteration where gather wakes the awaiter: its done step is
// still queued when the awaiter resumes; asyncio's callback still runs and retrieves it.
TEST_CASE("gather's later child errors are not reported as never retrieved") {
    std::vector<aio::exception_context> reports;
    auto program = [&]() -> aio::task<> {
        aio::get_running_loop().set_exception_handler(
            [&](aio::event_loop&, const aio::exception_context& c) { reports.push_back(c); });
        try {
            co_await aio::gather(failing("first", 1), failing("second", 2), failing("third", 3));
        } catch (const boom&) {
        }
        for (int i = 0; i < 5; ++i) co_await aio::sleep(0s);
    };
    aio::run(program());
    REQUIRE(reports.empty());
}

// import asyncio
// async def ok():
//     await asyncio.sleep(0)
//     return 1
// async def bad():
//     await asyncio.sleep(0)
//     raise ValueError("bad")
// async def main():
//     h = asyncio.create_task(asyncio.sleep(86400))
//     async def canceller():
//         await asyncio.sleep(0)
//         h.cancel()
//     r = await asyncio.gather(ok(), bad(), h, canceller(), return_exceptions=True)
//     print([type(x).__name__ if isinstance(x, BaseException) else x for x in r])
// asyncio.run(main())
// # [1, 'ValueError', 'CancelledError', None]
TEST_CASE("gather with return_exceptions holds a value or an exception in every slot") {
    auto program = []() -> aio::task<std::tuple<aio::outcome<int>, aio::outcome<int>, aio::outcome<void>,
                                                aio::outcome<void>>> {
        aio::task_handle<> h = aio::create_task(forever());
        auto canceller = [](aio::task_handle<> victim) -> aio::task<> {
            co_await aio::sleep(0s);
            victim.cancel();
        };
        co_return co_await aio::gather(aio::return_exceptions, number(1, 1), failing("bad", 1), h, canceller(h));
    };
    auto [ok, bad, cancelled, canceller] = aio::run(program());
    REQUIRE(ok.has_value());
    REQUIRE(ok.value() == 1);
    REQUIRE_FALSE(ok.error());

    REQUIRE_FALSE(bad.has_value());
    REQUIRE(bad.error());
    REQUIRE_THROWS_AS(std::rethrow_exception(bad.error()), boom);
    REQUIRE_THROWS_AS(bad.value(), boom);

    REQUIRE_FALSE(cancelled.has_value());
    REQUIRE_THROWS_AS(std::rethrow_exception(cancelled.error()), aio::cancelled_error);

    REQUIRE(canceller.has_value());
}

TEST_CASE("gather of a vector with return_exceptions holds a value or an exception in every slot") {
    auto program = []() -> aio::task<std::vector<aio::outcome<int>>> {
        std::vector<aio::task<int>> children;
        children.push_back(number(0, 2));
        children.push_back(failing("one", 1));
        children.push_back(number(2));
        children.push_back(failing("three", 3));
        co_return co_await aio::gather(aio::return_exceptions, std::move(children));
    };
    auto r = aio::run(program());
    REQUIRE(r.size() == 4);
    REQUIRE(r[0].value() == 0);
    REQUIRE_THROWS_WITH(r[1].value(), "one");
    REQUIRE(r[2].value() == 2);
    REQUIRE_THROWS_WITH(r[3].value(), "three");
}

TEST_CASE("gather of task handles with return_exceptions holds cancelled_error for a cancelled child") {
    auto program = []() -> aio::task<std::vector<aio::outcome<void>>> {
        std::vector<aio::task_handle<>> handles;
        handles.push_back(aio::create_task(nothing(1)));
        handles.push_back(aio::create_task(forever()));
        handles.push_back(aio::create_task(nothing(2)));
        handles[1].cancel();
        co_return co_await aio::gather(aio::return_exceptions, handles);
    };
    auto r = aio::run(program());
    REQUIRE(r.size() == 3);
    REQUIRE(r[0].has_value());
    REQUIRE_THROWS_AS(r[1].value(), aio::cancelled_error);
    REQUIRE(r[2].has_value());
}

namespace {
aio::task<> cancellable_child(trace& log, std::string name) {
    log(name + " start");
    bool cancelled = false;
    try {
        co_await aio::sleep(24h);
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        log(name + " cancelled");
        throw aio::cancelled_error();
    }
}

aio::task<> gather_waiter(trace& log) {
    bool cancelled = false;
    try {
        co_await aio::gather(cancellable_child(log, "a"), cancellable_child(log, "b"));
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        log("waiter cancelled");
        throw aio::cancelled_error();
    }
}
}  // namespace

// import asyncio
// log = []
// async def child(name):
//     log.append(f"{name} start")
//     try:
//         await asyncio.sleep(86400)
//     except asyncio.CancelledError:
//         log.append(f"{name} cancelled")
//         raise
// async def waiter():
//     try:
//         await asyncio.gather(child("a"), child("b"))
//     except asyncio.CancelledError:
//         log.append("waiter cancelled")
//         raise
// async def main():
//     w = asyncio.create_task(waiter())
//     await asyncio.sleep(0)
//     await asyncio.sleep(0)
//     log.append(f"cancel {w.cancel()}")
//     try:
//         await w
//     except asyncio.CancelledError:
//         log.append("main saw cancelled")
// asyncio.run(main())
// print(log)
TEST_CASE("cancelling the task that awaits a gather cancels every child and the awaiter gets cancelled_error") {
    trace log;
    bool waiter_cancelled = false;
    auto program = [&]() -> aio::task<> {
        auto w = aio::create_task(gather_waiter(log));
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        log(std::string("cancel ") + (w.cancel() ? "True" : "False"));
        try {
            co_await w;
        } catch (const aio::cancelled_error&) {
            log("main saw cancelled");
        }
        waiter_cancelled = w.cancelled();
    };
    const auto start = std::chrono::steady_clock::now();
    aio::run(program());
    REQUIRE(log.events ==
            lines{"a start", "b start", "cancel True", "a cancelled", "b cancelled", "waiter cancelled",
                  "main saw cancelled"});
    REQUIRE(waiter_cancelled);
    REQUIRE(std::chrono::steady_clock::now() - start < 10s);
}

TEST_CASE("cancelling the task that awaits a gather of handles cancels the handles' tasks") {
    bool a_cancelled = false;
    bool b_cancelled = false;
    bool waiter_cancelled = false;
    auto program = [&]() -> aio::task<> {
        auto a = aio::create_task(forever());
        auto b = aio::create_task(forever());
        auto waiter = [](aio::task_handle<> x, aio::task_handle<> y) -> aio::task<> { co_await aio::gather(x, y); };
        auto w = aio::create_task(waiter(a, b));
        co_await aio::sleep(0s);
        w.cancel();
        try {
            co_await w;
        } catch (const aio::cancelled_error&) {
        }
        waiter_cancelled = w.cancelled();
        a_cancelled = a.cancelled();
        b_cancelled = b.cancelled();
    };
    aio::run(program());
    REQUIRE(waiter_cancelled);
    REQUIRE(a_cancelled);
    REQUIRE(b_cancelled);
}

namespace {
aio::task<std::string> named_child(trace& log, std::string name, int yields) {
    for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
    log(name + " end");
    co_return name;
}
}  // namespace

// import asyncio
// log = []
// async def child(name, steps):
//     for _ in range(steps):
//         await asyncio.sleep(0)
//     log.append(f"{name} end")
//     return name
// async def main():
//     victim = asyncio.create_task(asyncio.sleep(86400))
//     other = asyncio.create_task(child("other", 3))
//     async def canceller():
//         await asyncio.sleep(0)
//         log.append(f"cancel {victim.cancel()}")
//     try:
//         await asyncio.gather(victim, other, canceller())
//     except asyncio.CancelledError:
//         log.append(f"main caught cancelled, main cancelling={asyncio.current_task().cancelling()}")
//     log.append(f"other done {other.done()}")
//     await other
//     log.append("main end")
// asyncio.run(main())
// print(log)
TEST_CASE("a cancelled child makes gather throw cancelled_error without cancelling the awaiter") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto victim = aio::create_task(forever());
        auto other = aio::create_task(named_child(log, "other", 3));
        auto canceller = [](trace& l, aio::task_handle<> v) -> aio::task<> {
            co_await aio::sleep(0s);
            l(std::string("cancel ") + (v.cancel() ? "True" : "False"));
        };
        try {
            co_await aio::gather(victim, other, canceller(log, victim));
        } catch (const aio::cancelled_error&) {
            log("main caught cancelled, main cancelling=" + std::to_string(aio::current_task().cancelling()));
        }
        log(std::string("other done ") + (other.done() ? "True" : "False"));
        co_await other;
        log("main end");
    };
    aio::run(program());
    REQUIRE(log.events == lines{"cancel True", "other end", "main caught cancelled, main cancelling=0",
                                "other done True", "main end"});
}

namespace {
aio::task<> late_waiter(trace& log) {
    bool cancelled = false;
    try {
        auto [a, b] = co_await aio::gather(named_child(log, "a", 1), named_child(log, "b", 1));
        log("waiter got [" + a + ", " + b + "]");
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        log("waiter cancelled");
        throw aio::cancelled_error();
    }
}
}  // namespace

// import asyncio
// log = []
// async def child(name):
//     await asyncio.sleep(0)
//     log.append(f"{name} end")
//     return name
// async def waiter():
//     try:
//         r = await asyncio.gather(child("a"), child("b"))
//         log.append(f"waiter got {r}")
//     except asyncio.CancelledError:
//         log.append("waiter cancelled")
//         raise
// async def main():
//     w = asyncio.create_task(waiter())
//     for _ in range(4):
//         await asyncio.sleep(0)   # a, b end in iteration 4; gather wakes the waiter in iteration 5
//     log.append(f"cancel {w.cancel()}")
//     try:
//         await w
//     except asyncio.CancelledError:
//         log.append("main saw cancelled")
// asyncio.run(main())
// print(log)
TEST_CASE("cancelling the awaiter after its gather completed but before it resumed throws cancelled_error") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto w = aio::create_task(late_waiter(log));
        for (int i = 0; i < 4; ++i) co_await aio::sleep(0s);
        log(std::string("cancel ") + (w.cancel() ? "True" : "False"));
        try {
            co_await w;
        } catch (const aio::cancelled_error&) {
            log("main saw cancelled");
        }
    };
    aio::run(program());
    REQUIRE(log.events == lines{"a end", "b end", "cancel True", "waiter cancelled", "main saw cancelled"});
}

namespace {
aio::task<std::string> swallow(trace& log, std::string name) {
    try {
        co_await aio::sleep(24h);
    } catch (const aio::cancelled_error&) {
        log(name + " swallowed");
    }
    co_return name;
}

aio::task<> swallow_waiter(trace& log, bool keep_exceptions) {
    bool cancelled = false;
    try {
        if (keep_exceptions) {
            auto [a, b] = co_await aio::gather(aio::return_exceptions, swallow(log, "a"), swallow(log, "b"));
            log("waiter got [" + a.value() + ", " + b.value() + "]");
        } else {
            auto [a, b] = co_await aio::gather(swallow(log, "a"), swallow(log, "b"));
            log("waiter got [" + a + ", " + b + "]");
        }
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        log("waiter cancelled");
        throw aio::cancelled_error();
    }
}
}  // namespace

// import asyncio
// log = []
// async def swallow(name):
//     try:
//         await asyncio.sleep(86400)
//     except asyncio.CancelledError:
//         log.append(f"{name} swallowed")
//     return name
// async def waiter(return_exceptions):
//     try:
//         r = await asyncio.gather(swallow("a"), swallow("b"), return_exceptions=return_exceptions)
//         log.append(f"waiter got {r}")
//     except asyncio.CancelledError:
//         log.append("waiter cancelled")
//         raise
// async def main():
//     for rx in (False, True):
//         w = asyncio.create_task(waiter(rx))
//         await asyncio.sleep(0)
//         await asyncio.sleep(0)
//         log.append(f"cancel {w.cancel()}")
//         try:
//             await w
//         except asyncio.CancelledError:
//             log.append("main saw cancelled")
// asyncio.run(main())
// print(log)
TEST_CASE("a cancelled gather throws cancelled_error even when every child swallowed its cancellation") {
    trace log;
    auto program = [&]() -> aio::task<> {
        for (bool keep_exceptions : {false, true}) {
            auto w = aio::create_task(swallow_waiter(log, keep_exceptions));
            co_await aio::sleep(0s);
            co_await aio::sleep(0s);
            log(std::string("cancel ") + (w.cancel() ? "True" : "False"));
            try {
                co_await w;
            } catch (const aio::cancelled_error&) {
                log("main saw cancelled");
            }
        }
    };
    aio::run(program());
    const lines once{"cancel True", "a swallowed", "b swallowed", "waiter cancelled", "main saw cancelled"};
    lines twice = once;
    twice.insert(twice.end(), once.begin(), once.end());
    REQUIRE(log.events == twice);
}

TEST_CASE("gather of 100,000 trivial tasks completes") {
    constexpr int count = 100'000;
    auto program = []() -> aio::task<long long> {
        std::vector<aio::task<int>> children;
        children.reserve(count);
        for (int i = 0; i < count; ++i) children.push_back(number(i));
        auto r = co_await aio::gather(std::move(children));
        long long sum = 0;
        for (std::size_t i = 0; i < r.size(); ++i) {
            if (r[i] != static_cast<int>(i)) co_return -1;
            sum += r[i];
        }
        co_return sum;
    };
    REQUIRE(aio::run(program()) == static_cast<long long>(count) * (count - 1) / 2);
}

namespace {
// A child whose frame holds a counted local and whose result is a counted value.
aio::task<counted> counted_child(int n, int yields) {
    counted in_frame(n);
    for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
    co_return counted(in_frame.value * 10);
}

aio::task<counted> counted_failure(int yields) {
    counted in_frame(-1);
    for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
    throw boom("counted failure");
}
}  // namespace

TEST_CASE("gather destroys every child frame and every result value exactly once") {
    counted::reset();
    SECTION("variadic") {
        auto program = []() -> aio::task<int> {
            auto h = aio::create_task(counted_child(3, 2));
            auto [a, b, c] = co_await aio::gather(counted_child(1, 1), counted_child(2, 0), h);
            co_return a.value + b.value + c.value;
        };
        REQUIRE(aio::run(program()) == 60);
        REQUIRE(counted::constructed > 0);
        REQUIRE(counted::alive() == 0);
    }
    SECTION("range") {
        auto program = []() -> aio::task<int> {
            std::vector<aio::task<counted>> children;
            for (int i = 0; i < 50; ++i) children.push_back(counted_child(i, i % 3));
            auto r = co_await aio::gather(std::move(children));
            int sum = 0;
            for (auto& c : r) sum += c.value;
            co_return sum;
        };
        REQUIRE(aio::run(program()) == 10 * 49 * 50 / 2);
        REQUIRE(counted::constructed > 0);
        REQUIRE(counted::alive() == 0);
    }
    SECTION("return_exceptions") {
        auto program = []() -> aio::task<int> {
            auto r = co_await aio::gather(aio::return_exceptions, counted_child(1, 1), counted_failure(2),
                                          counted_child(2, 3));
            co_return std::get<0>(r).value().value + std::get<2>(r).value().value +
                (std::get<1>(r).has_value() ? 1000 : 0);
        };
        REQUIRE(aio::run(program()) == 30);
        REQUIRE(counted::constructed > 0);
        REQUIRE(counted::alive() == 0);
    }
    SECTION("first exception, with the other children still running when the awaiter goes on") {
        auto program = []() -> aio::task<int> {
            try {
                co_await aio::gather(counted_child(1, 5), counted_failure(1), counted_child(2, 0));
            } catch (const boom&) {
                co_return 1;
            }
            co_return 0;
        };
        REQUIRE(aio::run(program()) == 1);
        REQUIRE(counted::constructed > 0);
        REQUIRE(counted::alive() == 0);
    }
    SECTION("the awaiter is cancelled") {
        auto program = []() -> aio::task<int> {
            auto waiter = []() -> aio::task<> {
                co_await aio::gather(counted_child(1, 2), counted_child(2, 100));
            };
            auto w = aio::create_task(waiter());
            co_await aio::sleep(0s);  // the waiter starts the gather
            co_await aio::sleep(0s);  // the children start
            w.cancel();
            try {
                co_await w;
            } catch (const aio::cancelled_error&) {
                co_return 1;
            }
            co_return 0;
        };
        REQUIRE(aio::run(program()) == 1);
        REQUIRE(counted::constructed > 0);
        REQUIRE(counted::alive() == 0);
    }
    // (Catch2 may run the test case once more without entering any section.)
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("gather moves a move-only result to the awaiter") {
    auto make = [](int n, int yields) -> aio::task<std::unique_ptr<int>> {
        for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
        co_return std::make_unique<int>(n);
    };
    auto program = [&]() -> aio::task<int> {
        auto [a, b] = co_await aio::gather(make(1, 1), make(2, 0));
        std::vector<aio::task<std::unique_ptr<int>>> children;
        for (int i = 0; i < 3; ++i) children.push_back(make(10 * i, i));
        std::vector<std::unique_ptr<int>> r = co_await aio::gather(std::move(children));
        auto slots = co_await aio::gather(aio::return_exceptions, make(100, 1));
        std::unique_ptr<int> c = std::move(std::get<0>(slots)).value();
        co_return *a + *b + *r[0] + *r[1] + *r[2] + *c;
    };
    REQUIRE(aio::run(program()) == 1 + 2 + 0 + 10 + 20 + 100);
}

TEST_CASE("gather without a running loop throws aio::runtime_error") {
    counted::reset();
    {
        auto lazy = [](counted c) -> aio::task<int> { co_return c.value; };
        aio::task<int> t = lazy(counted(1));  // the frame holds a counted parameter
        REQUIRE_THROWS_AS(aio::gather(std::move(t)), aio::runtime_error);
        REQUIRE_THROWS_AS(aio::gather(aio::return_exceptions, number(1)), aio::runtime_error);
        REQUIRE_THROWS_AS(aio::gather(std::vector<aio::task<int>>{}), aio::runtime_error);
        REQUIRE_THROWS_AS(aio::gather(std::vector<aio::task_handle<int>>{}), aio::runtime_error);
    }
    REQUIRE(counted::alive() == 0);
}

namespace {
aio::task<> sleeper(trace& log, std::string name) {
    co_await log_cancel(log, name + " cancelled", aio::sleep(24h));
}

template <class... C>
aio::task<> group(trace& log, std::string name, C... children) {
    co_await log_cancel(log, name + " cancelled", aio::gather(std::move(children)...));
}
}  // namespace

// import asyncio
// log = []
// async def sleeper(name):
//     try:
//         await asyncio.sleep(3600)
//     except asyncio.CancelledError:
//         log.append(f"{name} cancelled")
//         raise
// async def group(name, *children):
//     try:
//         await asyncio.gather(*children)
//     except asyncio.CancelledError:
//         log.append(f"{name} cancelled")
//         raise
// async def main():
//     t = asyncio.create_task(group("outer", group("left", sleeper("a"), sleeper("b")), sleeper("c"),
//                                   group("right", sleeper("d"))))
//     for _ in range(3):
//         await asyncio.sleep(0)
//     log.append(f"cancel {t.cancel()}")
//     try:
//         await t
//     except asyncio.CancelledError:
//         log.append("main saw cancelled")
// asyncio.run(main())
// print(log)
TEST_CASE("cancelling a task that awaits nested gathers cancels the children depth first in argument order, as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(group(log, "outer", group(log, "left", sleeper(log, "a"), sleeper(log, "b")),
                                        sleeper(log, "c"), group(log, "right", sleeper(log, "d"))));
        for (int i = 0; i < 3; ++i) co_await aio::sleep(0s);
        log(std::string("cancel ") + (t.cancel() ? "True" : "False"));
        try {
            co_await t;
        } catch (const aio::cancelled_error&) {
            log("main saw cancelled");
        }
    };
    aio::run(program());
    REQUIRE(log.events == lines{"cancel True", "a cancelled", "b cancelled", "c cancelled", "d cancelled",
                                "left cancelled", "outer cancelled", "right cancelled", "main saw cancelled"});
}

namespace {
aio::task<> gather_next(std::vector<aio::task_handle<>>& chain, std::size_t i) {
    if (i + 1 == chain.size()) co_await aio::sleep(24h);
    else co_await aio::gather(chain[i + 1]);
}
}  // namespace

// asyncio itself overflows its recursion limit on such a chain of a thousand.
TEST_CASE("cancelling the head of a hundred thousand tasks that each gather the next cancels them all without deep recursion") {
    constexpr std::size_t n = 100'000;
    std::vector<aio::task_handle<>> chain(n);
    bool cancel_returned = false;
    bool head_cancelled = false;
    auto program = [&]() -> aio::task<> {
        for (std::size_t i = n; i-- > 0;) chain[i] = aio::create_task(gather_next(chain, i));
        co_await aio::sleep(0s);  // every task is now suspended on its gather
        cancel_returned = chain[0].cancel();
        head_cancelled = co_await expect_throws<aio::cancelled_error>(chain[0]);
        for (std::size_t i = 0; i < n; i += 997) REQUIRE(chain[i].cancelled());
        REQUIRE(chain[n - 1].cancelling() == 1);
        chain.clear();
    };
    aio::run(program());
    REQUIRE(cancel_returned);
    REQUIRE(head_cancelled);
}

TEST_CASE("cancelling one of two tasks that gather each other returns, and run reports the deadlock") {
    counted::reset();
    aio::task_handle<> a;
    aio::task_handle<> b;
    auto gathers = [](aio::task_handle<>& other, counted) -> aio::task<> {
        co_await aio::sleep(0s);
        co_await aio::gather(other);
    };
    bool cancel_returned = false;
    auto program = [&]() -> aio::task<> {
        a = aio::create_task(gathers(b, counted(1)));
        b = aio::create_task(gathers(a, counted(2)));
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);  // a gathers b, b gathers a
        cancel_returned = a.cancel();
        co_await aio::sleep(0s);
    };
    // Nothing can ever wake either task: the shutdown finds the deadlock.
    REQUIRE_THROWS_AS(aio::run(program()), aio::runtime_error);
    REQUIRE(cancel_returned);
    a = {};
    b = {};
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a gather of a finished task of a closed loop, dropped before its done step runs, leaves nothing queued") {
    aio::task_handle<int> old;
    {
        aio::event_loop first;
        auto make = [&]() -> aio::task<> {
            old = aio::create_task(number(42));
            co_await old;
        };
        first.run_until_complete(make());
    }  // `old` has ended and outlives its loop
    int value = 0;
    auto program = [&]() -> aio::task<> {
        {
            auto g = aio::gather(old);  // its done step is queued on this loop at once
        }
        {
            auto g = aio::gather(std::vector<aio::task_handle<int>>{old});
        }
        co_await aio::sleep(0s);  // the dropped gathers' done steps would run here
        auto [v] = co_await aio::gather(old);
        value = v;
    };
    aio::run(program());
    REQUIRE(value == 42);
}

namespace {
template <class G>
aio::task<> await_gather(G& g, trace& log, std::string name) {
    try {
        auto [v] = co_await g;
        log(name + " got " + std::to_string(v));
    } catch (const aio::invalid_state_error&) {
        log(name + " refused");
    }
}
}  // namespace

TEST_CASE("a gather that a task awaits cannot be awaited by a second task: aio::invalid_state_error") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto g = aio::gather(number(1, 2));
        auto other = aio::create_task(await_gather(g, log, "other"));
        co_await aio::sleep(0s);                // other is suspended on g
        co_await await_gather(g, log, "main");  // refused at once, without suspending
        co_await other;
        co_await await_gather(g, log, "main again");  // the result is gone
    };
    aio::run(program());
    REQUIRE(log.events == lines{"main refused", "other got 1", "main again refused"});
}

TEST_CASE("a gather destroyed while another task awaits it leaves that task waiting, and run reports the deadlock") {
    trace log;
    aio::task_handle<> other;
    auto program = [&]() -> aio::task<> {
        auto g = aio::gather(number(1, 3));
        other = aio::create_task(await_gather(g, log, "other"));
        co_await aio::sleep(0s);  // other is suspended on g
    };  // g goes with main's frame: nothing may wake `other` or follow its hook now
    REQUIRE_THROWS_AS(aio::run(program()), aio::runtime_error);
    REQUIRE(log.events.empty());
    REQUIRE(other.cancelled());  // the loop closed with it pending
}

// A gather of gathers: the inner gather's result is one value of the outer one (a
// tuple here), and cancelling the outer gather cancels the inner gather's children,
// depth first, in argument order. (aio runs the inner gather in a task of its own, so
// its result reaches the outer gather one loop iteration later than in asyncio, where
// the inner gather is a future; the program does not observe that.)
//
// import asyncio
// log = []
// async def work(name, n):
//     for i in range(n):
//         await asyncio.sleep(0)
//     log.append(f"{name} done")
//     return name
// async def sleeper(name):
//     try:
//         await asyncio.sleep(3600)
//     except asyncio.CancelledError:
//         log.append(f"{name} cancelled")
//         raise
// async def both():
//     await asyncio.gather(asyncio.gather(sleeper("x"), sleeper("y")), sleeper("z"))
// async def main():
//     (a, b), c = await asyncio.gather(asyncio.gather(work("a", 2), work("b", 1)), work("c", 0))
//     log.append(f"{a} {b} {c}")
//     t = asyncio.create_task(both())
//     await asyncio.sleep(0)
//     await asyncio.sleep(0)
//     t.cancel()
//     try:
//         await t
//     except asyncio.CancelledError:
//         log.append("outer cancelled")
// asyncio.run(main())
// print(log)
TEST_CASE("gather of a gather gives the inner result as one value, and cancelling the outer cancels the inner's children") {
    trace log;
    auto work = [&log](std::string name, int n) -> aio::task<std::string> {
        for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
        log(name + " done");
        co_return name;
    };
    auto sleeper = [&log](std::string name) -> aio::task<> {
        try {
            co_await aio::sleep(1h);
        } catch (const aio::cancelled_error&) {
            log(name + " cancelled");
            throw;
        }
    };
    auto both = [&]() -> aio::task<> {
        co_await aio::gather(aio::gather(sleeper("x"), sleeper("y")), sleeper("z"));
    };
    auto body = [&]() -> aio::task<> {
        auto [ab, c] = co_await aio::gather(aio::gather(work("a", 2), work("b", 1)), work("c", 0));
        auto [a, b] = ab;
        log(a + " " + b + " " + c);
        auto t = aio::create_task(both());
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        t.cancel();
        try {
            co_await t;
        } catch (const aio::cancelled_error&) {
            log("outer cancelled");
        }
        // A range gather inside a gather, and a gather moved before it is awaited.
        std::vector<aio::task<int>> tasks;
        tasks.push_back(number(1));
        tasks.push_back(number(2, 1));
        auto [all, three] = co_await aio::gather(aio::gather(std::move(tasks)), number(3));
        auto inner = aio::gather(number(4, 1), number(5));
        auto moved = std::move(inner);
        auto [four, five] = co_await moved;
        // Moved while a finished child's done step is queued: the step follows the move.
        auto six_h = aio::create_task(number(6));
        co_await aio::sleep(0s);
        auto pending = aio::gather(six_h, number(7));
        auto relocated = std::move(pending);
        auto [six, seven] = co_await relocated;
        REQUIRE(all == std::vector<int>{1, 2});
        REQUIRE(three + four + five == 12);
        REQUIRE(six + seven == 13);
    };
    aio::run(body());
    REQUIRE(log.events == lines{"c done", "b done", "a done", "a b c", "x cancelled", "y cancelled", "z cancelled",
                                "outer cancelled"});
}
