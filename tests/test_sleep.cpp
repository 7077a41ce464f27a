// aio::sleep: scheduling order against CPython 3.11 (API rules 5, 6 and 8) and the
// behaviour of sleeps of every kind of duration.
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

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <random>
#include <ratio>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/steps.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::ticker;
using aio_test::trace;
using lines = std::vector<std::string>;
using steady = std::chrono::steady_clock;

namespace {

aio::task<> ping(trace& log, std::string name, int steps) {
    for (int i = 0; i < steps; ++i) {
        log(name + std::to_string(i));
        co_await aio::sleep(0s);
    }
}

aio::task<> sleeper(trace& log, std::string name, steady::duration delay) {
    log(name + " start");
    co_await aio::sleep(delay);
    log(name + " woke");
}

}  // namespace

// import asyncio
// log = []
// async def worker(name, n):
//     for i in range(n):
//         log.append(f"{name}{i}")
//         await asyncio.sleep(0)
// async def main():
//     a = asyncio.create_task(worker("a", 3))
//     b = asyncio.create_task(worker("b", 3))
//     log.append("main")
//     await a
//     log.append("a done")
//     await b
//     log.append("b done")
// asyncio.run(main())
// print(log)
TEST_CASE("sleep(0) makes two tasks take turns, as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto a = aio::create_task(ping(log, "a", 3));
        auto b = aio::create_task(ping(log, "b", 3));
        log("main");
        co_await a;
        log("a done");
        co_await b;
        log("b done");
    };
    aio::run(program());
    REQUIRE(log.events == lines{"main", "a0", "b0", "a1", "b1", "a2", "b2", "a done", "b done"});
}

// import asyncio, time
// log = []
// async def sleeper():
//     log.append("sleeper start")
//     await asyncio.sleep(0.001)
//     log.append("sleeper woke")
// async def ticker():
//     for i in range(5):
//         log.append(f"tick{i}")
//         if i == 0:
//             time.sleep(0.02)  # block: the timer is due when the next iteration starts
//         await asyncio.sleep(0)
// async def main():
//     s = asyncio.create_task(sleeper())
//     t = asyncio.create_task(ticker())
//     await s
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("a timer wake-up costs two loop iterations, as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto s = aio::create_task(sleeper(log, "sleeper", 1ms));
        auto t = aio::create_task(ticker(log, 5, 20ms));
        co_await s;
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"sleeper start", "tick0", "tick1", "tick2", "sleeper woke", "tick3", "tick4"});
}

// import asyncio, time
// log = []
// async def sleeper(name, delay):
//     log.append(f"{name} start")
//     await asyncio.sleep(delay)
//     log.append(f"{name} woke")
// async def ticker():
//     for i in range(4):
//         log.append(f"tick{i}")
//         if i == 0:
//             time.sleep(0.02)  # block: both timers are due when the next iteration starts
//         await asyncio.sleep(0)
// async def main():
//     slow = asyncio.create_task(sleeper("slow", 0.002))
//     fast = asyncio.create_task(sleeper("fast", 0.001))
//     t = asyncio.create_task(ticker())
//     await slow
//     await fast
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("timers due in the same iteration wake their tasks in deadline order, as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto slow = aio::create_task(sleeper(log, "slow", 2ms));
        auto fast = aio::create_task(sleeper(log, "fast", 1ms));
        auto t = aio::create_task(ticker(log, 4, 20ms));
        co_await slow;
        co_await fast;
        co_await t;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"slow start", "fast start", "tick0", "tick1", "tick2", "fast woke", "slow woke", "tick3"});
}

namespace {
aio::task<> yielder(trace& log, std::string name, steady::duration delay) {
    log(name + " before");
    co_await aio::sleep(delay);
    log(name + " after");
}
}  // namespace

// import asyncio
// log = []
// async def yielder(name, delay):
//     log.append(f"{name} before")
//     await asyncio.sleep(delay)
//     log.append(f"{name} after")
// async def ticker():
//     for i in range(3):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     t = asyncio.create_task(ticker())
//     z = asyncio.create_task(yielder("zero", 0))
//     n = asyncio.create_task(yielder("negative", -0.005))
//     await t; await z; await n
// asyncio.run(main())
// print(log)
TEST_CASE("sleep of zero or a negative duration yields exactly one loop iteration") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 3));
        auto z = aio::create_task(yielder(log, "zero", 0s));
        auto n = aio::create_task(yielder(log, "negative", -5ms));
        co_await t;
        co_await z;
        co_await n;
    };
    aio::run(program());
    REQUIRE(log.events ==
            lines{"tick0", "zero before", "negative before", "tick1", "zero after", "negative after", "tick2"});
}

namespace {
aio::task<int> inline_child(trace& log, std::string name) {
    log(name + " in");
    co_await aio::sleep(0s);
    log(name + " out");
    co_return 1;
}

aio::task<> inline_parent(trace& log) {
    log("parent");
    int x = co_await inline_child(log, "c1");
    int y = co_await inline_child(log, "c2");
    log("parent end " + std::to_string(x + y));
}
}  // namespace

// import asyncio
// log = []
// async def child(name):
//     log.append(f"{name} in")
//     await asyncio.sleep(0)
//     log.append(f"{name} out")
//     return 1
// async def parent():
//     log.append("parent")
//     x = await child("c1")
//     y = await child("c2")
//     log.append(f"parent end {x + y}")
// async def ticker():
//     for i in range(4):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     t = asyncio.create_task(ticker())
//     p = asyncio.create_task(parent())
//     await t
//     await p
// asyncio.run(main())
// print(log)
TEST_CASE("a sleep inside an awaited lazy task suspends the whole task for one iteration") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 4));
        auto p = aio::create_task(inline_parent(log));
        co_await t;
        co_await p;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "parent", "c1 in", "tick1", "c1 out", "c2 in", "tick2", "c2 out",
                                "parent end 2", "tick3"});
}

namespace {
aio::task<> day_sleeper(trace& log) {
    log("sleeper start");
    bool cancelled = false;
    try {
        co_await aio::sleep(24h);
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        log("sleeper cancelled");
        throw aio::cancelled_error();
    }
    log("sleeper woke");
}
}  // namespace

// import asyncio
// log = []
// async def sleeper():
//     log.append("sleeper start")
//     try:
//         await asyncio.sleep(86400)
//     except asyncio.CancelledError:
//         log.append("sleeper cancelled")
//         raise
// async def ticker():
//     for i in range(4):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     s = asyncio.create_task(sleeper())
//     t = asyncio.create_task(ticker())
//     await asyncio.sleep(0)
//     log.append(f"cancel {s.cancel()}")
//     try:
//         await s
//     except asyncio.CancelledError:
//         log.append("main saw cancelled")
//     await t
// asyncio.run(main())
// print(log)
TEST_CASE("cancelling a day-long sleep wakes the sleeper at once with cancelled_error") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto s = aio::create_task(day_sleeper(log));
        auto t = aio::create_task(ticker(log, 4));
        co_await aio::sleep(0s);
        log(std::string("cancel ") + (s.cancel() ? "True" : "False"));
        try {
            co_await s;
        } catch (const aio::cancelled_error&) {
            log("main saw cancelled");
        }
        co_await t;
    };
    const auto start = steady::now();
    aio::run(program());
    const auto elapsed = steady::now() - start;
    REQUIRE(log.events == lines{"sleeper start", "tick0", "cancel True", "tick1", "sleeper cancelled", "tick2",
                                "main saw cancelled", "tick3"});
    REQUIRE(elapsed < 10s);  // generous: the run must not wait for the day-long timer
}

namespace {
// Sleeps `first`, is cancelled during it, then sleeps `second`: a timer left behind
// by the cancelled sleep would wake the second sleep early.
aio::task<> rearming_sleeper(steady::duration first, steady::duration second, steady::duration& slept,
                             bool& cancelled) {
    try {
        co_await aio::sleep(first);
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    const auto start = steady::now();
    co_await aio::sleep(second);
    slept = steady::now() - start;
}
}  // namespace

// import asyncio, time
// async def sleeper(result):
//     try:
//         await asyncio.sleep(0.005)
//     except asyncio.CancelledError:
//         result["cancelled"] = True
//     start = time.monotonic()
//     await asyncio.sleep(0.04)
//     result["slept"] = time.monotonic() - start
// async def main():
//     result = {}
//     s = asyncio.create_task(sleeper(result))
//     await asyncio.sleep(0)
//     s.cancel()
//     await s
//     print(result["cancelled"], result["slept"] >= 0.04)   # True True
// asyncio.run(main())
TEST_CASE("a cancelled sleep leaves no timer behind to wake the task later") {
    steady::duration slept{};
    bool cancelled = false;
    auto program = [&]() -> aio::task<> {
        auto s = aio::create_task(rearming_sleeper(5ms, 40ms, slept, cancelled));
        co_await aio::sleep(0s);
        s.cancel();
        co_await s;
    };
    aio::run(program());
    REQUIRE(cancelled);
    REQUIRE(slept >= 40ms);  // a lower bound only: sleeps never end early
}

namespace {
aio::task<> self_cancelling(trace& log, std::string label, steady::duration delay) {
    aio::current_task().cancel();
    log("cancel requested " + label);
    bool cancelled = false;
    try {
        co_await aio::sleep(delay);
        log("slept");
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) log("cancelled at sleep " + label);
}
}  // namespace

// import asyncio
// log = []
// async def selfish(delay):
//     asyncio.current_task().cancel()
//     log.append(f"cancel requested {delay}")
//     try:
//         await asyncio.sleep(delay)
//         log.append("slept")
//     except asyncio.CancelledError:
//         log.append(f"cancelled at sleep {delay}")
// async def ticker():
//     for i in range(3):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     t = asyncio.create_task(ticker())
//     a = asyncio.create_task(selfish(0))
//     b = asyncio.create_task(selfish(86400))
//     await t; await a; await b
// asyncio.run(main())
// print(log)
TEST_CASE("a task cancelled while it runs gets cancelled_error from its next sleep, one iteration later") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(ticker(log, 3));
        auto a = aio::create_task(self_cancelling(log, "0", 0s));
        auto b = aio::create_task(self_cancelling(log, "86400", 24h));
        co_await t;
        co_await a;
        co_await b;
    };
    const auto start = steady::now();
    aio::run(program());
    REQUIRE(log.events == lines{"tick0", "cancel requested 0", "cancel requested 86400", "tick1",
                                "cancelled at sleep 0", "cancelled at sleep 86400", "tick2"});
    REQUIRE(steady::now() - start < 10s);
}

namespace {
aio::task<> short_sleeper(trace& log) {
    log("sleeper start");
    bool cancelled = false;
    try {
        co_await aio::sleep(1ms);
        log("sleeper woke");
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        log("sleeper cancelled");
        throw aio::cancelled_error();
    }
}
}  // namespace

// import asyncio, time
// log = []
// async def sleeper():
//     log.append("sleeper start")
//     try:
//         await asyncio.sleep(0.001)
//         log.append("sleeper woke")
//     except asyncio.CancelledError:
//         log.append("sleeper cancelled")
//         raise
// async def main():
//     s = asyncio.create_task(sleeper())
//     await asyncio.sleep(0)
//     time.sleep(0.02)           # the timer is due when the next iteration starts
//     await asyncio.sleep(0)     # runs ahead of the due timer in that iteration
//     log.append(f"cancel {s.cancel()}")
//     try:
//         await s
//     except asyncio.CancelledError:
//         log.append("main saw cancelled")
// asyncio.run(main())
// print(log)
TEST_CASE("cancelling a sleep whose timer is due but has not run yet still cancels it") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto s = aio::create_task(short_sleeper(log));
        co_await aio::sleep(0s);
        std::this_thread::sleep_for(20ms);
        co_await aio::sleep(0s);
        log(std::string("cancel ") + (s.cancel() ? "True" : "False"));
        try {
            co_await s;
        } catch (const aio::cancelled_error&) {
            log("main saw cancelled");
        }
    };
    aio::run(program());
    REQUIRE(log.events == lines{"sleeper start", "cancel True", "sleeper cancelled", "main saw cancelled"});
}

// The same program with one more `await asyncio.sleep(0)` before the cancel: the timer
// has completed the sleep and the sleeper's wake-up is queued behind main, so cancel()
// cannot cancel the sleep any more; the task gets CancelledError when it resumes.
// CPython 3.11: ['sleeper start', 'cancel True', 'sleeper cancelled', 'main saw cancelled']
TEST_CASE("cancelling a task whose sleep has completed but which has not resumed yet still cancels it") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto s = aio::create_task(short_sleeper(log));
        co_await aio::sleep(0s);
        std::this_thread::sleep_for(20ms);
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        log(std::string("cancel ") + (s.cancel() ? "True" : "False"));
        try {
            co_await s;
        } catch (const aio::cancelled_error&) {
            log("main saw cancelled");
        }
    };
    aio::run(program());
    REQUIRE(log.events == lines{"sleeper start", "cancel True", "sleeper cancelled", "main saw cancelled"});
}

TEST_CASE("sleep accepts any std::chrono::duration and never ends early") {
    std::vector<steady::duration> wanted;
    std::vector<steady::duration> slept;
    auto measure = [&](auto delay) -> aio::task<> {
        // What the sleep must at least last: nothing for a delay <= 0.
        wanted.push_back(std::max(std::chrono::ceil<steady::duration>(delay), steady::duration::zero()));
        const auto start = steady::now();
        co_await aio::sleep(delay);
        slept.push_back(steady::now() - start);
    };
    auto program = [&]() -> aio::task<> {
        co_await measure(2ms);
        co_await measure(1500us);
        co_await measure(std::chrono::nanoseconds(1'000'000));
        co_await measure(std::chrono::duration<double>(0.0015));         // seconds, floating point
        co_await measure(std::chrono::duration<float, std::milli>(1.25f));  // milliseconds, float
        co_await measure(std::chrono::duration<std::int16_t, std::ratio<1, 10'000>>(12));  // 1.2 ms, short
        co_await measure(std::chrono::duration<unsigned, std::micro>(1000u));               // unsigned rep
        co_await measure(0min);
        co_await measure(-1h);
    };
    aio::run(program());
    REQUIRE(slept.size() == wanted.size());
    for (std::size_t i = 0; i < slept.size(); ++i) {
        INFO("sleep #" << i);
        CHECK(slept[i] >= wanted[i]);
        CHECK(slept[i] < wanted[i] + 5s);  // generous: it did wake
    }
}

namespace {
aio::task<> deadline_sleeper(std::vector<int>& woke, int rank, aio::event_loop::time_point deadline) {
    co_await aio::sleep(deadline - aio::get_running_loop().time());
    woke.push_back(rank);
}
}  // namespace

// On simulated time: each task's deadline depends on its rank alone, however long
// arming them takes on a loaded machine.
TEST_CASE("a thousand tasks created in shuffled order wake in deadline order") {
    constexpr int count = 1000;
    std::vector<int> ranks(count);
    std::iota(ranks.begin(), ranks.end(), 0);
    std::shuffle(ranks.begin(), ranks.end(), std::mt19937(20240611));
    std::vector<int> woke;
    aio::detail::manual_clock clock;
    aio::event_loop loop(clock);
    const auto base = loop.time() + 1s;
    auto program = [&]() -> aio::task<> {
        std::vector<aio::task_handle<>> tasks;
        for (int rank : ranks) tasks.push_back(aio::create_task(deadline_sleeper(woke, rank, base + rank * 1ms)));
        for (auto& t : tasks) co_await t;
    };
    loop.run_until_complete(program());
    REQUIRE(loop.time() == base + (count - 1) * 1ms);  // no time passed but the sleeps'
    std::vector<int> sorted(count);
    std::iota(sorted.begin(), sorted.end(), 0);
    REQUIRE(woke == sorted);
}
