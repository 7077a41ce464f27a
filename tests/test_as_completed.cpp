// aio::as_completed: results in completion order, errors, the timeout, cancellation of
// the consumer (which leaves the tasks running), misuse and lifetimes, and the
// scheduling order against CPython 3.12.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.12 printed for it.

#include <aio/as_completed.hpp>
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
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
#include "support/steps.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::counted;
using aio_test::trace;
using aio_test::boom;
using aio_test::ticker;
using aio_test::number;
using aio_test::yes_no;
using aio_test::log_cancel;
using aio_test::expect_throws;
using lines = std::vector<std::string>;

namespace {


}  // namespace

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def work(name, steps, fail=False):
//     for i in range(steps):
//         await asyncio.sleep(0)
//     log.append(f"{name} ends")
//     if fail:
//         raise ValueError(name)
//     return name
// async def main():
//     t = asyncio.create_task(ticker(10))
//     fs = [asyncio.create_task(work("a", 3)), asyncio.create_task(work("b", 1)),
//           asyncio.create_task(work("c", 5, fail=True)), asyncio.create_task(work("d", 1))]
//     for f in asyncio.as_completed(fs):
//         try:
//             r = await f
//             log.append(f"got {r}")
//         except ValueError as e:
//             log.append(f"error {e}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("as_completed gives the results in completion order, in asyncio's order") {
    trace log;
    auto work = [&](std::string name, int steps, bool fail) -> aio::task<std::string> {
        for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
        log(name + " ends");
        if (fail) throw boom(name);
        co_return name;
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 10));
        std::vector<aio::task_handle<std::string>> fs{
            aio::create_task(work("a", 3, false)), aio::create_task(work("b", 1, false)),
            aio::create_task(work("c", 5, true)), aio::create_task(work("d", 1, false))};
        auto ac = aio::as_completed(std::move(fs));
        for (std::size_t i = 0; i < ac.size(); ++i) {
            try {
                std::string r = co_await ac.next();
                log("got " + r);
            } catch (const boom& e) {
                log(std::string("error ") + e.what());
            }
        }
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "tick1", "b ends", "d ends", "tick2", "tick3", "a ends", "got b", "got d",
                                "tick4", "tick5", "got a", "c ends", "tick6", "tick7", "error c", "tick8", "tick9"});
}

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def work(name, steps):
//     for i in range(steps):
//         await asyncio.sleep(0)
//     log.append(f"{name} ends")
//     return name
// async def main():
//     t = asyncio.create_task(ticker(8))
//     fs = [asyncio.create_task(work("a", 1)), asyncio.create_task(work("b", 2))]
//     it = asyncio.as_completed(fs)
//     first = next(it)
//     await asyncio.sleep(0)
//     await asyncio.sleep(0)
//     await asyncio.sleep(0)
//     await asyncio.sleep(0)
//     log.append("consume")
//     r = await first
//     log.append(f"got {r}")
//     r = await next(it)
//     log.append(f"got {r}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("as_completed's next returns without suspending once results are recorded") {
    trace log;
    auto work = [&](std::string name, int steps) -> aio::task<std::string> {
        for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
        log(name + " ends");
        co_return name;
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 8));
        std::vector<aio::task_handle<std::string>> fs{aio::create_task(work("a", 1)), aio::create_task(work("b", 2))};
        auto ac = aio::as_completed(std::move(fs));
        for (int i = 0; i < 4; ++i) co_await aio::sleep(0s);
        log("consume");
        std::string r = co_await ac.next();
        log("got " + r);
        r = co_await ac.next();
        log("got " + r);
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "tick1", "a ends", "tick2", "b ends", "tick3", "consume", "got a", "got b",
                                "tick4", "tick5", "tick6", "tick7"});
}

// import asyncio
// log = []
// async def sleeper(name, d):
//     await asyncio.sleep(d)
//     log.append(f"{name} ends")
//     return name
// async def main():
//     fs = [asyncio.create_task(sleeper("slow", 10)), asyncio.create_task(sleeper("fast", 0.01)),
//           asyncio.create_task(sleeper("slower", 20))]
//     for f in asyncio.as_completed(fs, timeout=0.05):
//         try:
//             log.append(f"got {await f}")
//         except TimeoutError:
//             log.append("timeout")
//     log.append(f"slow cancelled {fs[0].cancelled()}")
//     for f in fs:
//         f.cancel()
// asyncio.run(main())
// print(log)
TEST_CASE("after as_completed's timeout every remaining next throws timeout_error and no task is cancelled") {
    trace log;
    auto sleeper = [&](std::string name, auto d) -> aio::task<std::string> {
        co_await aio::sleep(d);
        log(name + " ends");
        co_return name;
    };
    auto program = [&]() -> aio::task<> {
        std::vector<aio::task_handle<std::string>> fs{aio::create_task(sleeper("slow", 10s)),
                                                      aio::create_task(sleeper("fast", 10ms)),
                                                      aio::create_task(sleeper("slower", 20s))};
        auto ac = aio::as_completed(fs, 50ms);
        while (!ac.done()) {
            try {
                std::string r = co_await ac.next();
                log("got " + r);
            } catch (const aio::timeout_error&) {
                log("timeout");
            }
        }
        log("slow cancelled " + yes_no(fs[0].cancelled()));
        for (auto& f : fs) f.cancel();
    };
    // On simulated time: the 10 ms task ends before the 50 ms timeout however slow
    // the machine is.
    aio::detail::manual_clock clock;
    aio::event_loop loop(clock);
    const auto start = loop.time();
    loop.run_until_complete(program());
    REQUIRE(log.events == lines{"fast ends", "got fast", "timeout", "timeout", "slow cancelled False"});
    REQUIRE(loop.time() - start == 50ms);
}

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def work(name, steps):
//     for i in range(steps):
//         await asyncio.sleep(0)
//     log.append(f"{name} ends")
//     return name
// async def consumer(it):
//     try:
//         await next(it)
//     except asyncio.CancelledError:
//         log.append("consumer cancelled")
//         raise
// async def main():
//     t = asyncio.create_task(ticker(8))
//     fs = [asyncio.create_task(work("a", 3)), asyncio.create_task(work("b", 5))]
//     it = asyncio.as_completed(fs)
//     c = asyncio.create_task(consumer(it))
//     await asyncio.sleep(0)
//     log.append("cancel")
//     c.cancel()
//     await asyncio.sleep(0)
//     log.append(f"a cancelled {fs[0].cancelled()} b cancelled {fs[1].cancelled()}")
//     log.append(f"got {await next(it)}")
//     log.append(f"b {await fs[1]}")
//     await t
// asyncio.run(main())
// print(log)
//
// asyncio's cancelled consumer used up one of the iterator's coroutines; aio's
// cancelled next() takes no result, so a third next() would still give b.
TEST_CASE("cancelling the task waiting in as_completed's next does not cancel the tasks") {
    trace log;
    auto work = [&](std::string name, int steps) -> aio::task<std::string> {
        for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
        log(name + " ends");
        co_return name;
    };
    using results = aio::as_completed_results<std::string>;
    auto consumer = [&](results& ac) -> aio::task<> {
        (void)co_await log_cancel(log, "consumer cancelled", ac.next());
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 8));
        std::vector<aio::task_handle<std::string>> fs{aio::create_task(work("a", 3)), aio::create_task(work("b", 5))};
        auto ac = aio::as_completed(fs);
        auto c = aio::create_task(consumer(ac));
        co_await aio::sleep(0s);
        log("cancel");
        c.cancel();
        co_await aio::sleep(0s);
        log("a cancelled " + yes_no(fs[0].cancelled()) + " b cancelled " + yes_no(fs[1].cancelled()));
        std::string r = co_await ac.next();
        log("got " + r);
        r = co_await fs[1];
        log("b " + r);
        co_await t;
        r = co_await ac.next();
        REQUIRE(r == "b");
        REQUIRE(ac.done());
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "cancel", "tick1", "consumer cancelled", "a cancelled False b cancelled False",
                                "tick2", "tick3", "a ends", "tick4", "tick5", "got a", "b ends", "tick6", "b b",
                                "tick7"});
}

TEST_CASE("as_completed of lazy tasks schedules them in order") {
    trace log;
    auto work = [&](std::string name, int steps) -> aio::task<std::string> {
        log(name + " starts");
        for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
        co_return name;
    };
    auto program = [&]() -> aio::task<std::string> {
        std::vector<aio::task<std::string>> tasks;
        tasks.push_back(work("x", 3));
        tasks.push_back(work("y", 0));
        tasks.push_back(work("z", 1));
        auto ac = aio::as_completed(std::move(tasks), 1h);
        std::string order;
        while (!ac.done()) {
            std::string r = co_await ac.next();
            order += r;
        }
        co_return order;
    };
    REQUIRE(aio::run(program()) == "yzx");
    REQUIRE(log.events == lines{"x starts", "y starts", "z starts"});
}

TEST_CASE("as_completed gives cancelled_error for a cancelled task") {
    auto program = []() -> aio::task<std::string> {
        std::vector<aio::task_handle<int>> hs{aio::create_task(number(1, 3)), aio::create_task(number(2, 100))};
        auto ac = aio::as_completed(hs);
        hs[1].cancel();
        std::string out;
        while (!ac.done()) {
            try {
                int v = co_await ac.next();
                out += std::to_string(v);
            } catch (const aio::cancelled_error&) {
                out += "cancelled ";
            }
        }
        co_return out;
    };
    REQUIRE(aio::run(program()) == "cancelled 1");
}

TEST_CASE("as_completed of void tasks returns once per task") {
    auto program = []() -> aio::task<int> {
        std::vector<aio::task<>> tasks;
        for (int i = 0; i < 5; ++i) tasks.push_back([](int n) -> aio::task<> {
            for (int k = 0; k < n; ++k) co_await aio::sleep(0s);
        }(i));
        auto ac = aio::as_completed(std::move(tasks));
        int n = 0;
        for (std::size_t i = 0; i < ac.size(); ++i) {
            co_await ac.next();
            ++n;
        }
        co_return n;
    };
    REQUIRE(aio::run(program()) == 5);
}

TEST_CASE("as_completed of an empty vector is done at once and its next throws aio::invalid_state_error") {
    auto program = []() -> aio::task<bool> {
        auto ac = aio::as_completed(std::vector<aio::task_handle<int>>{}, 1s);
        REQUIRE(ac.size() == 0);
        REQUIRE(ac.done());
        co_return co_await expect_throws<aio::invalid_state_error>(ac.next());
    };
    REQUIRE(aio::run(program()));
}

TEST_CASE("as_completed's next after the last result throws aio::invalid_state_error") {
    auto program = []() -> aio::task<bool> {
        std::vector<aio::task_handle<int>> hs{aio::create_task(number(1, 1))};
        auto ac = aio::as_completed(std::move(hs));
        int v = co_await ac.next();
        REQUIRE(v == 1);
        REQUIRE(ac.done());
        co_return co_await expect_throws<aio::invalid_state_error>(ac.next());
    };
    REQUIRE(aio::run(program()));
}

TEST_CASE("a second task waiting in as_completed's next gets aio::invalid_state_error") {
    auto program = []() -> aio::task<int> {
        std::vector<aio::task_handle<int>> hs{aio::create_task(number(1, 3)), aio::create_task(number(2, 4))};
        auto ac = aio::as_completed(std::move(hs));
        auto first = aio::create_task([](aio::as_completed_results<int>& ac) -> aio::task<int> {
            co_return co_await ac.next();
        }(ac));
        co_await aio::sleep(0s);  // first now waits in next()
        int errors = 0;
        if (co_await expect_throws<aio::invalid_state_error>(ac.next())) ++errors;
        int a = co_await first;
        int b = co_await ac.next();
        co_return a * 100 + b * 10 + errors;
    };
    REQUIRE(aio::run(program()) == 121);
}

TEST_CASE("a task cancelled before it waits in as_completed's next gets cancelled_error and takes no result") {
    auto program = []() -> aio::task<std::string> {
        std::vector<aio::task_handle<int>> hs{aio::create_task(number(7, 2))};
        auto ac = aio::as_completed(std::move(hs));
        auto self = aio::current_task();
        self.cancel();
        std::string seen;
        try {
            (void)co_await ac.next();
            seen = "no error";
        } catch (const aio::cancelled_error&) {
            seen = "cancelled";
        }
        self.uncancel();
        int v = co_await ac.next();
        co_return seen + " " + std::to_string(v) + " " + yes_no(ac.done());
    };
    REQUIRE(aio::run(program()) == "cancelled 7 True");
}

TEST_CASE("cancelling the consumer after its result was recorded but before it resumed keeps the result for the next call") {
    auto program = []() -> aio::task<std::string> {
        std::vector<aio::task_handle<int>> hs{aio::create_task(number(4, 1))};
        auto ac = aio::as_completed(std::move(hs));
        std::string seen;
        auto consumer = aio::create_task([](aio::as_completed_results<int>& ac, std::string& seen) -> aio::task<> {
            try {
                int v = co_await ac.next();
                seen = "value " + std::to_string(v);
            } catch (const aio::cancelled_error&) {
                seen = "cancelled";
                throw;
            }
        }(ac, seen));
        co_await aio::sleep(0s);  // the consumer waits in next()
        co_await aio::sleep(0s);  // the task ends: as_completed's done step is queued
        co_await aio::sleep(0s);  // the done step has run, just before this: the consumer is queued
        consumer.cancel();
        try {
            co_await consumer;
        } catch (const aio::cancelled_error&) {
        }
        int v = co_await ac.next();
        co_return seen + " / then " + std::to_string(v);
    };
    REQUIRE(aio::run(program()) == "cancelled / then 4");
}

TEST_CASE("as_completed of an empty handle throws aio::invalid_state_error") {
    auto program = []() -> aio::task<bool> {
        std::vector<aio::task_handle<int>> hs{aio::create_task(number(1)), {}};
        try {
            auto ac = aio::as_completed(std::move(hs));
        } catch (const aio::invalid_state_error&) {
            co_return true;
        }
        co_return false;
    };
    REQUIRE(aio::run(program()));
}

TEST_CASE("as_completed without a running loop throws aio::runtime_error") {
    counted::reset();
    {
        auto lazy = [](counted c) -> aio::task<int> { co_return c.value; };
        std::vector<aio::task<int>> tasks;
        tasks.push_back(lazy(counted(1)));
        REQUIRE_THROWS_AS((void)aio::as_completed(std::move(tasks)), aio::runtime_error);
        REQUIRE_THROWS_AS((void)aio::as_completed(std::vector<aio::task_handle<int>>{}), aio::runtime_error);
    }
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("as_completed moves a move-only result out when it holds the only handle") {
    auto program = []() -> aio::task<int> {
        std::vector<aio::task<std::unique_ptr<int>>> tasks;
        for (int i = 1; i <= 3; ++i) tasks.push_back([](int n) -> aio::task<std::unique_ptr<int>> {
            for (int k = 0; k < n; ++k) co_await aio::sleep(0s);
            co_return std::make_unique<int>(n);
        }(i));
        auto ac = aio::as_completed(std::move(tasks));
        int sum = 0;
        while (!ac.done()) {
            std::unique_ptr<int> p = co_await ac.next();
            sum = sum * 10 + *p;
        }
        co_return sum;
    };
    REQUIRE(aio::run(program()) == 123);
}

namespace {
aio::task<counted> counted_work(int n, int yields) {
    counted in_frame(n);
    for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
    co_return counted(n);
}
}  // namespace

TEST_CASE("as_completed destroys every frame and result exactly once") {
    counted::reset();
    {
        auto program = []() -> aio::task<int> {
            std::vector<aio::task<counted>> tasks;
            for (int i = 0; i < 20; ++i) tasks.push_back(counted_work(i, 20 - i));
            auto ac = aio::as_completed(std::move(tasks));
            int sum = 0;
            while (!ac.done()) {
                counted c = co_await ac.next();
                sum += c.value;
            }
            co_return sum;
        };
        REQUIRE(aio::run(program()) == 190);
        REQUIRE(counted::constructed > 0);
        REQUIRE(counted::alive() == 0);
    }
    {
        // Results never taken, a timeout, tasks still running when the loop ends.
        auto program = []() -> aio::task<> {
            std::vector<aio::task<counted>> tasks;
            for (int i = 0; i < 6; ++i) tasks.push_back(counted_work(i, i < 3 ? 1 : 100000));
            auto ac = aio::as_completed(std::move(tasks), 1ms);
            counted first = co_await ac.next();
            co_await aio::sleep(5ms);
        };
        aio::run(program());
        REQUIRE(counted::alive() == 0);
    }
    {
        // The loop ends while a consumer waits in next().
        auto program = []() -> aio::task<> {
            std::vector<aio::task<counted>> tasks;
            tasks.push_back(counted_work(1, 100000));
            auto consumer = aio::create_task([](std::vector<aio::task<counted>> tasks) -> aio::task<> {
                auto ac = aio::as_completed(std::move(tasks));
                (void)co_await ac.next();
            }(std::move(tasks)));
            co_await aio::sleep(0s);
        };
        aio::run(program());
        REQUIRE(counted::alive() == 0);
    }
}

TEST_CASE("as_completed of 100,000 tasks gives every result once") {
    auto program = []() -> aio::task<long long> {
        std::vector<aio::task_handle<int>> hs;
        hs.reserve(100000);
        for (int i = 0; i < 100000; ++i) hs.push_back(aio::create_task(number(i, i % 3)));
        auto ac = aio::as_completed(std::move(hs));
        long long sum = 0;
        while (!ac.done()) {
            int v = co_await ac.next();
            sum += v;
        }
        co_return sum;
    };
    REQUIRE(aio::run(program()) == 4999950000LL);
}
