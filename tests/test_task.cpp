// aio::task<T>: the lazy coroutine — inline co_await (API rule 3), values, exceptions,
// misuse, frame lifetimes and stack depth.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/run.hpp>
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
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::counted;
using aio_test::trace;
using aio_test::log_cancel;
using aio_test::expect_throws;
using lines = std::vector<std::string>;

namespace {

struct base_error : std::runtime_error {
    explicit base_error(const char* what) : std::runtime_error(what) {}
};
struct derived_error : base_error {
    explicit derived_error(int c) : base_error("derived"), code(c) {}
    int code;
};

aio::task<int> one() { co_return 1; }

aio::task<int> one_through_another() { co_return co_await one(); }

aio::task<> log_body(trace& log, std::string name) {
    log(name + " body");
    co_return;
}

aio::task<counted> make_counted(int v) { co_return counted(v); }

aio::task<int> keep_argument(counted c) { co_return c.value; }

aio::task<int> throws_at_once() {
    throw derived_error(7);
    co_return 0;
}

aio::task<int> throws_after_a_step() {
    co_await aio::sleep(0s);
    throw derived_error(8);
}

aio::task<int> rethrows_from(aio::task<int> inner) { co_return co_await inner; }

aio::task<int> after_steps(int steps, int value) {
    for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
    co_return value;
}

aio::task<int> recurse(int depth) {
    if (depth == 0) {
        co_await aio::sleep(0s);
        co_return 0;
    }
    co_return 1 + co_await recurse(depth - 1);
}

aio::task<> sleep_forever_holding(int v) {
    counted held(v);
    co_await aio::sleep(24h);
}

}  // namespace

TEST_CASE("co_await of a lazy task returns its value") {
    auto child = []() -> aio::task<int> { co_return 7; };
    auto parent = [&]() -> aio::task<int> { co_return co_await child() * 6; };
    REQUIRE(aio::run(parent()) == 42);
}

TEST_CASE("calling a task function runs nothing until the task is awaited") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::task<> t = log_body(log, "child");
        log("created");
        co_await aio::sleep(0s);
        log("yielded");
        co_await t;
        log("awaited");
    };
    aio::run(program());
    REQUIRE(log.events == lines{"created", "yielded", "child body", "awaited"});
}

// import asyncio
// log = []
// async def leaf():
//     log.append("leaf")
//     return 1
// async def middle():
//     log.append("middle start")
//     v = await leaf()
//     log.append("middle after leaf")
//     return v + 1
// async def sleepy():
//     log.append("sleepy start")
//     await asyncio.sleep(0)
//     log.append("sleepy end")
// async def other():
//     for i in range(3):
//         log.append(f"other{i}")
//         await asyncio.sleep(0)
// async def main():
//     t = asyncio.create_task(other())
//     await asyncio.sleep(0)
//     log.append("main before")
//     v = await middle()
//     log.append(f"main got {v}")
//     await sleepy()
//     log.append("main end")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("awaiting a lazy task runs it inline without a trip through the loop, as in asyncio") {
    trace log;
    auto leaf = [&]() -> aio::task<int> {
        log("leaf");
        co_return 1;
    };
    auto middle = [&]() -> aio::task<int> {
        log("middle start");
        int v = co_await leaf();
        log("middle after leaf");
        co_return v + 1;
    };
    auto sleepy = [&]() -> aio::task<> {
        log("sleepy start");
        co_await aio::sleep(0s);
        log("sleepy end");
    };
    auto other = [&]() -> aio::task<> {
        for (int i = 0; i < 3; ++i) {
            log("other" + std::to_string(i));
            co_await aio::sleep(0s);
        }
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(other());
        co_await aio::sleep(0s);
        log("main before");
        int v = co_await middle();
        log("main got " + std::to_string(v));
        co_await sleepy();
        log("main end");
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"other0", "main before", "middle start", "leaf", "middle after leaf", "main got 2",
                                "sleepy start", "other1", "sleepy end", "main end", "other2"});
}

TEST_CASE("a lazy task returns void, strings, move-only values and values without a default constructor") {
    struct no_default {
        explicit no_default(int x) : v(x) {}
        int v;
    };
    auto program = []() -> aio::task<> {
        co_await []() -> aio::task<> { co_return; }();
        std::string s = co_await []() -> aio::task<std::string> { co_return std::string(100, 'x'); }();
        REQUIRE(s == std::string(100, 'x'));
        std::unique_ptr<int> p = co_await []() -> aio::task<std::unique_ptr<int>> {
            co_return std::make_unique<int>(5);
        }();
        REQUIRE(p);
        REQUIRE(*p == 5);
        no_default n = co_await []() -> aio::task<no_default> { co_return no_default(3); }();
        REQUIRE(n.v == 3);
    };
    aio::run(program());
}

TEST_CASE("an exception propagates through co_await of lazy tasks with its exact type") {
    SECTION("thrown before the child's first suspension") {
        auto program = []() -> aio::task<int> { co_return co_await rethrows_from(rethrows_from(throws_at_once())); };
        try {
            aio::run(program());
            FAIL("no exception");
        } catch (const derived_error& e) {
            REQUIRE(e.code == 7);
        }
    }
    SECTION("thrown after the child has suspended") {
        auto program = []() -> aio::task<int> {
            co_return co_await rethrows_from(rethrows_from(throws_after_a_step()));
        };
        try {
            aio::run(program());
            FAIL("no exception");
        } catch (const derived_error& e) {
            REQUIRE(e.code == 8);
        }
    }
    SECTION("an exception that does not derive from std::exception") {
        auto thrower = []() -> aio::task<> {
            throw 42;
            co_return;
        };
        auto program = [&]() -> aio::task<int> {
            try {
                co_await thrower();
            } catch (int v) {
                co_return v;
            }
            co_return 0;
        };
        REQUIRE(aio::run(program()) == 42);
    }
}

TEST_CASE("a parent that catches a lazy child's exception carries on") {
    auto program = []() -> aio::task<int> {
        int caught = 0;
        try {
            co_await throws_at_once();
        } catch (const base_error&) {
            ++caught;
        }
        try {
            co_await throws_after_a_step();
        } catch (const derived_error& e) {
            caught += e.code;
        }
        co_return caught + co_await one();
    };
    REQUIRE(aio::run(program()) == 10);
}

TEST_CASE("awaiting a lazy task twice throws aio::invalid_state_error") {
    auto program = []() -> aio::task<int> {
        aio::task<int> t = one();
        int v = co_await t;
        REQUIRE_THROWS_AS(co_await t, aio::invalid_state_error);
        co_return v;
    };
    REQUIRE(aio::run(program()) == 1);
}

TEST_CASE("awaiting a lazy task that another task is already awaiting throws aio::invalid_state_error") {
    aio::task<int> shared = after_steps(3, 9);
    bool second_refused = false;
    auto first = [&]() -> aio::task<int> { co_return co_await shared; };
    auto second = [&]() -> aio::task<> {
        second_refused = co_await expect_throws<aio::invalid_state_error>(shared);
    };
    auto program = [&]() -> aio::task<int> {
        auto a = aio::create_task(first());
        co_await aio::sleep(0s);  // `first` is now suspended inside `shared`
        co_await second();
        co_return co_await a;
    };
    REQUIRE(aio::run(program()) == 9);
    REQUIRE(second_refused);
}

TEST_CASE("awaiting a moved-from or default-constructed task throws aio::invalid_state_error") {
    auto program = []() -> aio::task<int> {
        aio::task<int> t = one();
        aio::task<int> moved = std::move(t);
        REQUIRE_THROWS_AS(co_await t, aio::invalid_state_error);
        aio::task<int> empty;
        REQUIRE_THROWS_AS(co_await empty, aio::invalid_state_error);
        co_return co_await moved;
    };
    REQUIRE(aio::run(program()) == 1);
}

TEST_CASE("valid() is false for a default-constructed or moved-from task") {
    aio::task<int> empty;
    REQUIRE_FALSE(empty.valid());
    REQUIRE_FALSE(static_cast<bool>(empty));
    aio::task<int> t = one();
    REQUIRE(t.valid());
    REQUIRE(static_cast<bool>(t));
    aio::task<int> u = std::move(t);
    REQUIRE_FALSE(t.valid());
    REQUIRE(u.valid());
}

TEST_CASE("a lazy task that is never awaited destroys its frame and arguments without running") {
    counted::reset();
    {
        aio::task<int> t = keep_argument(counted(1));
        REQUIRE(counted::alive() == 1);  // the frame's copy of the argument
    }
    REQUIRE(counted::alive() == 0);
    {
        std::vector<aio::task<int>> many;
        for (int i = 0; i < 100; ++i) many.push_back(keep_argument(counted(i)));
        REQUIRE(counted::alive() == 100);
    }
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a lazy task's frame and result are destroyed exactly once") {
    counted::reset();
    auto program = []() -> aio::task<> {
        {
            counted c = co_await make_counted(4);
            REQUIRE(c.value == 4);
            REQUIRE(counted::alive() == 1);
        }
        REQUIRE(counted::alive() == 0);
        int v = co_await keep_argument(counted(5));
        REQUIRE(v == 5);
        REQUIRE(counted::alive() == 0);
    };
    aio::run(program());
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("move-assigning a task destroys the frame it held") {
    counted::reset();
    aio::task<int> t = keep_argument(counted(1));
    aio::task<int> u = keep_argument(counted(2));
    REQUIRE(counted::alive() == 2);
    t = std::move(u);
    REQUIRE(counted::alive() == 1);
    t = aio::task<int>{};
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a lazy task that suspends resumes its awaiter when it ends") {
    trace log;
    auto ticker = [&]() -> aio::task<> {
        for (int i = 0; i < 4; ++i) {
            log("tick" + std::to_string(i));
            co_await aio::sleep(0s);
        }
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker());
        int v = co_await after_steps(2, 11);
        log("got " + std::to_string(v));
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "tick1", "got 11", "tick2", "tick3"});
}

TEST_CASE("a recursive chain of lazy tasks that suspends at the bottom returns through every level") {
    REQUIRE(aio::run(recurse(1000)) == 1000);
}

TEST_CASE("a million synchronously completing co_awaits of lazy tasks in a row do not overflow the stack") {
    auto program = []() -> aio::task<long> {
        long sum = 0;
        for (int i = 0; i < 1'000'000; ++i) sum += co_await one();
        co_return sum;
    };
    REQUIRE(aio::run(program()) == 1'000'000);
}

TEST_CASE("a million co_awaits of lazy tasks that each await another synchronous task do not overflow the stack") {
    auto program = []() -> aio::task<long> {
        long sum = 0;
        for (int i = 0; i < 1'000'000; ++i) sum += co_await one_through_another();
        co_return sum;
    };
    REQUIRE(aio::run(program()) == 1'000'000);
}

TEST_CASE("ten thousand lazy tasks that each suspend once run one after another without growing the stack") {
    auto program = []() -> aio::task<long> {
        long sum = 0;
        for (int i = 0; i < 10'000; ++i) sum += co_await after_steps(1, 1);
        co_return sum;
    };
    REQUIRE(aio::run(program()) == 10'000);
}

TEST_CASE("cancelling a task while a lazy child it awaits sleeps throws cancelled_error through both") {
    trace log;
    auto child = [&]() -> aio::task<> {
        co_await log_cancel(log, "child cancelled", aio::sleep(24h));
    };
    auto parent = [&]() -> aio::task<> {
        co_await log_cancel(log, "parent cancelled", child());
    };
    auto program = [&]() -> aio::task<> {
        auto p = aio::create_task(parent());
        co_await aio::sleep(0s);
        REQUIRE(p.cancel());
        REQUIRE_THROWS_AS(co_await p, aio::cancelled_error);
        REQUIRE(p.cancelled());
    };
    aio::run(program());
    REQUIRE(log.events == lines{"child cancelled", "parent cancelled"});
}

TEST_CASE("closing a loop destroys a lazy child suspended inside a pending task") {
    counted::reset();
    {
        aio::event_loop loop;
        auto parent = []() -> aio::task<> { co_await sleep_forever_holding(1); };
        auto program = [&]() -> aio::task<> {
            aio::create_task(parent());
            co_await aio::sleep(0s);
            REQUIRE(counted::alive() == 1);
        };
        loop.run_until_complete(program());
        REQUIRE(counted::alive() == 1);
        loop.close();
        REQUIRE(counted::alive() == 0);
    }
    REQUIRE(counted::alive() == 0);
}

namespace {
struct throws_on_exit {
    ~throws_on_exit() noexcept(false) { throw std::runtime_error("destructor"); }
};

aio::task<counted> returns_then_a_local_throws() {
    throws_on_exit local;
    co_return counted(3);
}
}  // namespace

TEST_CASE("a local whose destructor throws after co_return destroys the returned value and the awaiter gets the exception") {
    counted::reset();
    std::string caught;
    auto program = [&]() -> aio::task<> {
        try {
            counted c = co_await returns_then_a_local_throws();
            caught = "value " + std::to_string(c.value);
        } catch (const std::runtime_error& e) {
            caught = e.what();
        }
    };
    aio::run(program());
    REQUIRE(caught == "destructor");
    REQUIRE(counted::alive() == 0);
}
