// aio::wait: the three conditions, the timeout, cancellation of the awaiting task (which
// leaves the tasks running), misuse and lifetimes, and the scheduling order against
// CPython 3.12.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.12 printed for it.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
#include <aio/gather.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/wait.hpp>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <type_traits>
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
using lines = std::vector<std::string>;

namespace {

aio::task<> forever() { co_await aio::sleep(24h); }


// The names of the handles, sorted (asyncio's sets have no order of their own).
template <class Handle>
std::string names(const std::vector<Handle>& hs) {
    std::vector<std::string> n;
    for (const auto& h : hs) n.push_back(h.name());
    std::sort(n.begin(), n.end());
    std::string out;
    for (const auto& s : n) out += (out.empty() ? "" : " ") + s;
    return out;
}

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
// def names(fs):
//     return " ".join(sorted(f.get_name() for f in fs))
// async def main():
//     t = asyncio.create_task(ticker(14))
//     a = asyncio.create_task(work("a", 6), name="a")
//     b = asyncio.create_task(work("b", 1), name="b")
//     c = asyncio.create_task(work("c", 2), name="c")
//     done, pending = await asyncio.wait([a, b, c], return_when=asyncio.FIRST_COMPLETED)
//     log.append(f"first_completed done={names(done)} pending={names(pending)}")
//     d = asyncio.create_task(work("d", 1), name="d")
//     e = asyncio.create_task(work("e", 2, fail=True), name="e")
//     f = asyncio.create_task(work("f", 5), name="f")
//     done, pending = await asyncio.wait([d, e, f], return_when=asyncio.FIRST_EXCEPTION)
//     log.append(f"first_exception done={names(done)} pending={names(pending)}")
//     done, pending = await asyncio.wait([a, f])
//     log.append(f"all_completed done={names(done)} pending={names(pending)}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("wait returns on the first completion, the first exception or all completions in asyncio's order") {
    trace log;
    std::vector<std::string> reports;
    auto work = [&](std::string name, int steps, bool fail) -> aio::task<std::string> {
        for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
        log(name + " ends");
        if (fail) throw boom(name);
        co_return name;
    };
    auto program = [&]() -> aio::task<> {
        aio::get_running_loop().set_exception_handler(
            [&](aio::event_loop&, const aio::exception_context& c) { reports.push_back(c.message); });
        auto t = aio::create_task(ticker(log, 14));
        auto a = aio::create_task(work("a", 6, false), "a");
        auto b = aio::create_task(work("b", 1, false), "b");
        auto c = aio::create_task(work("c", 2, false), "c");
        std::vector hs1{a, b, c};
        auto [done1, pending1] = co_await aio::wait(std::move(hs1), aio::first_completed);
        log("first_completed done=" + names(done1) + " pending=" + names(pending1));
        auto d = aio::create_task(work("d", 1, false), "d");
        auto e = aio::create_task(work("e", 2, true), "e");
        auto f = aio::create_task(work("f", 5, false), "f");
        std::vector hs2{d, e, f};
        auto [done2, pending2] = co_await aio::wait(std::move(hs2), aio::first_exception);
        log("first_exception done=" + names(done2) + " pending=" + names(pending2));
        std::vector hs3{a, f};
        auto [done3, pending3] = co_await aio::wait(std::move(hs3));
        log("all_completed done=" + names(done3) + " pending=" + names(pending3));
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "tick1", "b ends", "tick2", "c ends", "tick3",
                                "first_completed done=b c pending=a", "tick4", "tick5", "d ends", "tick6", "a ends",
                                "e ends", "tick7", "tick8", "first_exception done=d e pending=f", "tick9", "f ends",
                                "tick10", "tick11", "all_completed done=a f pending=", "tick12", "tick13"});
    // first_exception looked at e's exception, as asyncio's f.exception() does: it
    // counts as retrieved.
    REQUIRE(reports.empty());
}

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def work():
//     return 1
// async def main():
//     a = asyncio.create_task(work())
//     b = asyncio.create_task(work())
//     await asyncio.sleep(0)
//     t = asyncio.create_task(ticker(4))
//     log.append(f"before done={a.done() and b.done()}")
//     done, pending = await asyncio.wait([a, b])
//     log.append(f"after {len(done)} {len(pending)}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("wait on tasks that have all ended still suspends for two iterations, as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto a = aio::create_task(number(1));
        auto b = aio::create_task(number(1));
        co_await aio::sleep(0s);
        auto t = aio::create_task(ticker(log, 4));
        log("before done=" + yes_no(a.done() && b.done()));
        std::vector hs4{a, b};
        auto [done, pending] = co_await aio::wait(std::move(hs4));
        log("after " + std::to_string(done.size()) + " " + std::to_string(pending.size()));
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"before done=True", "tick0", "tick1", "after 2 0", "tick2", "tick3"});
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
// async def waiter(hs):
//     try:
//         await asyncio.wait(hs)
//     except asyncio.CancelledError:
//         log.append("waiter cancelled")
//         raise
// async def main():
//     t = asyncio.create_task(ticker(6))
//     a = asyncio.create_task(work("a", 2))
//     b = asyncio.create_task(work("b", 4))
//     w = asyncio.create_task(waiter([a, b]))
//     await asyncio.sleep(0)
//     log.append("cancel")
//     w.cancel()
//     await asyncio.sleep(0)
//     log.append(f"a cancelled {a.cancelled()} b cancelled {b.cancelled()}")
//     r = await asyncio.gather(a, b)
//     log.append(f"results {r} waiter cancelled {w.cancelled()}")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("cancelling the task that awaits wait does not cancel the tasks it waits on") {
    trace log;
    auto work = [&](std::string name, int steps) -> aio::task<std::string> {
        for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
        log(name + " ends");
        co_return name;
    };
    auto waiter = [&](std::vector<aio::task_handle<std::string>> hs) -> aio::task<> {
        (void)co_await log_cancel(log, "waiter cancelled", aio::wait(std::move(hs)));
    };
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 6));
        auto a = aio::create_task(work("a", 2));
        auto b = aio::create_task(work("b", 4));
        auto w = aio::create_task(waiter({a, b}));
        co_await aio::sleep(0s);
        log("cancel");
        w.cancel();
        co_await aio::sleep(0s);
        log("a cancelled " + yes_no(a.cancelled()) + " b cancelled " + yes_no(b.cancelled()));
        auto [ra, rb] = co_await aio::gather(a, b);
        log("results ['" + ra + "', '" + rb + "'] waiter cancelled " + yes_no(w.cancelled()));
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "cancel", "tick1", "waiter cancelled", "a cancelled False b cancelled False",
                                "tick2", "a ends", "tick3", "tick4", "b ends", "tick5",
                                "results ['a', 'b'] waiter cancelled True"});
}

// import asyncio
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def sleeper(name, d):
//     await asyncio.sleep(d)
//     log.append(f"{name} ends")
// async def main():
//     a = asyncio.create_task(sleeper("a", 0.01))
//     b = asyncio.create_task(sleeper("b", 10))
//     done, pending = await asyncio.wait([a, b], timeout=0.05)
//     log.append(f"timeout done={len(done)} pending={len(pending)} b cancelled={b.cancelled()}")
//     t = asyncio.create_task(ticker(4))
//     done, pending = await asyncio.wait([b], timeout=0)
//     log.append(f"zero timeout done={len(done)} pending={len(pending)}")
//     b.cancel()
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("wait returns at its timeout with the unfinished tasks pending and not cancelled") {
    trace log;
    auto sleeper = [&](std::string name, auto d) -> aio::task<> {
        co_await aio::sleep(d);
        log(name + " ends");
    };
    auto program = [&]() -> aio::task<> {
        auto a = aio::create_task(sleeper("a", 10ms));
        auto b = aio::create_task(sleeper("b", 10s));
        std::vector hs5{a, b};
        auto [done, pending] = co_await aio::wait(std::move(hs5), 50ms);
        log("timeout done=" + std::to_string(done.size()) + " pending=" + std::to_string(pending.size()) +
            " b cancelled=" + yes_no(b.cancelled()));
        auto t = aio::create_task(ticker(log, 4));
        std::vector hs6{b};
        auto [done0, pending0] = co_await aio::wait(std::move(hs6), 0s);
        log("zero timeout done=" + std::to_string(done0.size()) + " pending=" + std::to_string(pending0.size()));
        b.cancel();
        co_await t;
    };
    // On simulated time: the 10 ms sleep ends before the 50 ms timeout however slow
    // the machine is.
    aio::detail::manual_clock clock;
    aio::event_loop loop(clock);
    const auto start = loop.time();
    loop.run_until_complete(program());
    REQUIRE(log.events == lines{"a ends", "timeout done=1 pending=1 b cancelled=False", "tick0", "tick1",
                                "zero timeout done=0 pending=1", "tick2", "tick3"});
    REQUIRE(loop.time() - start == 50ms);
}

TEST_CASE("wait returns before its timeout when the condition is met, and its timer is gone") {
    auto program = []() -> aio::task<std::size_t> {
        auto a = aio::create_task(number(1, 1));
        auto b = aio::create_task(forever());
        std::vector<aio::any_task_handle> any{a, b};
        auto [done, pending] = co_await aio::wait(std::move(any), aio::first_completed, 24h);
        b.cancel();
        co_return done.size() * 10 + pending.size();
    };
    aio::detail::manual_clock clock;
    aio::event_loop loop(clock);
    const auto start = loop.time();
    REQUIRE(loop.run_until_complete(program()) == 11);
    REQUIRE(loop.time() == start);  // no timer fired: the loop never moved its clock
}

TEST_CASE("wait keeps the order of the handles in done and pending") {
    auto program = []() -> aio::task<std::string> {
        std::vector<aio::task_handle<int>> hs;
        for (int i = 0; i < 8; ++i) hs.push_back(aio::create_task(number(i, i % 2 ? 1 : 100)));
        auto [done, pending] = co_await aio::wait(hs, aio::first_completed);
        std::string out;
        for (auto& h : done) out += std::to_string(h.result());
        out += "|";
        for (auto& h : pending) {
            out += h.name();
            h.cancel();
        }
        co_return out;
    };
    REQUIRE(aio::run(program()) == "1357|Task-2Task-4Task-6Task-8");
}

TEST_CASE("wait with first_exception ignores a cancelled task and waits for all when none fails") {
    auto program = []() -> aio::task<std::string> {
        auto a = aio::create_task(number(1, 1));
        auto b = aio::create_task(number(2, 3));
        auto c = aio::create_task(number(3, 5));
        a.cancel();
        std::vector hs7{a, b, c};
        auto [done, pending] = co_await aio::wait(std::move(hs7), aio::first_exception);
        co_return std::to_string(done.size()) + std::to_string(pending.size()) + yes_no(done[0].cancelled());
    };
    REQUIRE(aio::run(program()) == "30True");
}

TEST_CASE("wait does not rethrow the tasks' exceptions: they stay in the handles") {
    auto program = []() -> aio::task<std::string> {
        auto a = aio::create_task(failing("one", 1));
        std::vector hs8{a};
        auto [done, pending] = co_await aio::wait(std::move(hs8));
        try {
            (void)done.at(0).result();
        } catch (const boom& e) {
            co_return e.what();
        }
        co_return "no exception";
    };
    REQUIRE(aio::run(program()) == "one");
}

TEST_CASE("wait of a handle given twice lists it twice") {
    auto program = []() -> aio::task<std::size_t> {
        auto a = aio::create_task(number(1, 1));
        std::vector hs9{a, a};
        auto [done, pending] = co_await aio::wait(std::move(hs9));
        co_return done.size() * 10 + pending.size();
    };
    REQUIRE(aio::run(program()) == 20);
}

TEST_CASE("a task cancelled before it awaits wait gets cancelled_error there and the tasks run on") {
    auto program = []() -> aio::task<std::string> {
        auto a = aio::create_task(number(5, 2));
        auto self = aio::current_task();
        self.cancel();
        std::string seen;
        try {
            std::vector hs10{a};
            (void)co_await aio::wait(std::move(hs10));
            seen = "no error";
        } catch (const aio::cancelled_error&) {
            seen = "cancelled";
        }
        self.uncancel();
        int v = co_await a;
        co_return seen + " " + std::to_string(v);
    };
    REQUIRE(aio::run(program()) == "cancelled 5");
}

TEST_CASE("cancelling the awaiting task after wait completed but before it resumed throws cancelled_error") {
    auto program = []() -> aio::task<std::string> {
        std::string seen;
        auto a = aio::create_task(number(3, 1));
        auto waiter = aio::create_task([](aio::task_handle<int> a, std::string& seen) -> aio::task<> {
            try {
                std::vector hs11{a};
                (void)co_await aio::wait(std::move(hs11));
                seen = "returned";
            } catch (const aio::cancelled_error&) {
                seen = "cancelled";
                throw;
            }
        }(a, seen));
        co_await aio::sleep(0s);  // the waiter suspends on the wait
        co_await aio::sleep(0s);  // a ends: wait's done step is queued
        co_await aio::sleep(0s);  // the done step has run, just before this: the waiter is queued
        waiter.cancel();
        try {
            co_await waiter;
        } catch (const aio::cancelled_error&) {
        }
        co_return seen + " / a cancelled " + yes_no(a.cancelled());
    };
    REQUIRE(aio::run(program()) == "cancelled / a cancelled False");
}

TEST_CASE("wait of an empty vector throws aio::invalid_state_error, as asyncio raises ValueError") {
    auto program = []() -> aio::task<int> {
        int errors = 0;
        try {
            (void)co_await aio::wait(std::vector<aio::task_handle<int>>{});
        } catch (const aio::invalid_state_error&) {
            ++errors;
        }
        try {
            (void)co_await aio::wait(std::vector<aio::any_task_handle>{}, aio::first_completed, 1s);
        } catch (const aio::invalid_state_error&) {
            ++errors;
        }
        co_return errors;
    };
    REQUIRE(aio::run(program()) == 2);
}

TEST_CASE("wait of an empty handle throws aio::invalid_state_error") {
    auto program = []() -> aio::task<bool> {
        auto a = aio::create_task(number(1));
        try {
            std::vector hs12{a, aio::task_handle<int>{}};
            (void)co_await aio::wait(std::move(hs12));
        } catch (const aio::invalid_state_error&) {
            co_return true;
        }
        co_return false;
    };
    REQUIRE(aio::run(program()));
}

TEST_CASE("a wait can be awaited only once: aio::invalid_state_error") {
    auto program = []() -> aio::task<bool> {
        auto a = aio::create_task(number(1, 1));
        auto w = aio::wait(std::vector{a});
        (void)co_await w;
        co_return co_await expect_throws<aio::invalid_state_error>(w);
    };
    REQUIRE(aio::run(program()));
}

TEST_CASE("wait without a running loop throws aio::runtime_error") {
    REQUIRE_THROWS_AS((void)aio::wait(std::vector<aio::any_task_handle>{}), aio::runtime_error);
}

TEST_CASE("wait of a task of another event loop throws aio::runtime_error") {
    aio::event_loop other;
    aio::task_handle<> foreign;
    auto setup = [&]() -> aio::task<> {
        foreign = aio::create_task(forever());
        co_return;
    };
    other.run_until_complete(setup());
    auto program = [&]() -> aio::task<bool> {
        try {
            std::vector hs13{foreign};
            (void)co_await aio::wait(std::move(hs13));
        } catch (const aio::runtime_error&) {
            co_return true;
        }
        co_return false;
    };
    REQUIRE(aio::run(program()));
    foreign = {};
    other.close();
}

TEST_CASE("wait holds its tasks and destroys every frame and result exactly once") {
    counted::reset();
    auto work = [](int n, int yields) -> aio::task<counted> {
        counted in_frame(n);
        for (int i = 0; i < yields; ++i) co_await aio::sleep(0s);
        co_return counted(n);
    };
    {
        auto program = [&]() -> aio::task<int> {
            std::vector<aio::task_handle<counted>> hs;
            for (int i = 0; i < 10; ++i) hs.push_back(aio::create_task(work(i, i)));
            auto [done, pending] = co_await aio::wait(std::move(hs), aio::first_completed);
            int sum = 0;
            for (auto& h : done) sum += h.result().value;
            auto [rest, none] = co_await aio::wait(std::move(pending));
            for (auto& h : rest) sum += h.result().value;
            co_return sum + static_cast<int>(none.size());
        };
        REQUIRE(aio::run(program()) == 45);
        REQUIRE(counted::constructed > 0);
        REQUIRE(counted::alive() == 0);
    }
    {
        // The awaiting task cancelled, the loop closing while the tasks still run.
        auto program = [&]() -> aio::task<> {
            std::vector<aio::task_handle<counted>> hs;
            for (int i = 0; i < 4; ++i) hs.push_back(aio::create_task(work(i, 1000)));
            auto waiter = aio::create_task([](std::vector<aio::task_handle<counted>> hs) -> aio::task<> {
                (void)co_await aio::wait(std::move(hs), 1h);
            }(hs));
            auto still = aio::create_task([](std::vector<aio::task_handle<counted>> hs) -> aio::task<> {
                (void)co_await aio::wait(std::move(hs), aio::first_exception, 1h);
            }(hs));
            co_await aio::sleep(0s);
            waiter.cancel();
            co_await aio::sleep(0s);
        };
        aio::run(program());
        REQUIRE(counted::alive() == 0);
    }
}

TEST_CASE("wait of 100,000 tasks completes") {
    auto program = []() -> aio::task<std::size_t> {
        std::vector<aio::task_handle<int>> hs;
        hs.reserve(100000);
        for (int i = 0; i < 100000; ++i) hs.push_back(aio::create_task(number(i, i % 3)));
        auto [done, pending] = co_await aio::wait(std::move(hs));
        co_return done.size() + pending.size() * 1000000;
    };
    REQUIRE(aio::run(program()) == 100000);
}

TEST_CASE("wait's result type holds the handle type it was given") {
    auto program = []() -> aio::task<> {
        auto a = aio::create_task(number(1));
        std::vector hs14{a};
        auto r1 = co_await aio::wait(std::move(hs14));
        static_assert(std::is_same_v<decltype(r1), aio::wait_result<aio::task_handle<int>>>);
        std::vector<aio::any_task_handle> any{a};
        auto r2 = co_await aio::wait(std::move(any), 1s, aio::first_completed);
        static_assert(std::is_same_v<decltype(r2.done), std::vector<aio::any_task_handle>>);
    };
    aio::run(program());
}
