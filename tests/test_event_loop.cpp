// aio::event_loop: iterations (API rule 1), run_until_complete / run_forever / stop /
// close, callbacks and timers, the exception handler, misuse and lifetimes — checked
// against CPython 3.11.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event.hpp>
#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
#include <aio/handle.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/stderr_capture.hpp"
#include "support/counted.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::counted;
using aio_test::trace;
using lines = std::vector<std::string>;
using steady = std::chrono::steady_clock;

namespace {

struct my_error : std::runtime_error {
    explicit my_error(int c) : std::runtime_error("my_error " + std::to_string(c)), code(c) {}
    int code;
};

aio::task<int> value_after(int steps, int value) {
    for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
    co_return value;
}

aio::task<int> fail_after(int steps, int code) {
    for (int i = 0; i < steps; ++i) co_await aio::sleep(0s);
    throw my_error(code);
}

aio::task<> forever_holding(counted) { co_await aio::sleep(24h); }

aio::task<> await_holding(aio::task_handle<> h, counted) { co_await h; }

aio::task<> never_started(counted) { co_return; }

aio::task<> lazy_sleeper(int v) {
    counted held(v);
    co_await aio::sleep(24h);
}

aio::task<> awaits_lazy_sleeper(counted) { co_await lazy_sleeper(9); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }


std::size_t count_lines(const std::string& text) {
    std::size_t n = 0;
    for (char c : text) n += c == '\n';
    return n;
}

}  // namespace

// import asyncio
// log = []
// loop = asyncio.new_event_loop()
// def a():
//     log.append("a")
//     loop.call_soon(lambda: log.append("a's child"))
// def b():
//     log.append("b")
//     loop.call_soon(lambda: log.append("b's child"))
// def stopper():
//     log.append("stop")
//     loop.stop()
// loop.call_soon(a)
// loop.call_soon(b)
// loop.call_soon(stopper)
// loop.run_forever()
// log.append("run_forever returned")
// loop.call_soon(stopper)
// loop.run_forever()
// log.append("run_forever returned")
// loop.close()
// print(log)
TEST_CASE("call_soon callbacks scheduled during an iteration run in the next one, as in asyncio") {
    trace log;
    aio::event_loop loop;
    auto stopper = [&] {
        log("stop");
        loop.stop();
    };
    loop.call_soon([&] {
        log("a");
        loop.call_soon([&] { log("a's child"); });
    });
    loop.call_soon([&] {
        log("b");
        loop.call_soon([&] { log("b's child"); });
    });
    loop.call_soon([&] { stopper(); });
    loop.run_forever();
    log("run_forever returned");
    loop.call_soon([&] { stopper(); });
    loop.run_forever();
    log("run_forever returned");
    loop.close();
    REQUIRE(log.events ==
            lines{"a", "b", "stop", "run_forever returned", "a's child", "b's child", "stop", "run_forever returned"});
}

// import asyncio
// log = []
// async def main():
//     loop = asyncio.get_running_loop()
//     def cb(name, depth):
//         log.append(f"{name}{depth}")
//         if depth < 2:
//             loop.call_soon(cb, name, depth + 1)
//     loop.call_soon(cb, "a", 0)
//     loop.call_soon(cb, "b", 0)
//     for i in range(4):
//         log.append(f"main{i}")
//         await asyncio.sleep(0)
// asyncio.run(main())
// print(log)
TEST_CASE("callbacks and tasks share one FIFO and each iteration runs only what was queued when it began, as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto& loop = aio::get_running_loop();
        struct chain {
            aio::event_loop& loop;
            trace& log;
            std::string name;
            int depth;
            void operator()() const {
                log(name + std::to_string(depth));
                if (depth < 2) loop.call_soon(chain{loop, log, name, depth + 1});
            }
        };
        loop.call_soon(chain{loop, log, "a", 0});
        loop.call_soon(chain{loop, log, "b", 0});
        for (int i = 0; i < 4; ++i) {
            log("main" + std::to_string(i));
            co_await aio::sleep(0s);
        }
    };
    aio::run(program());
    REQUIRE(log.events == lines{"main0", "a0", "b0", "main1", "a1", "b1", "main2", "a2", "b2", "main3"});
}

// import asyncio
// log = []
// loop = asyncio.new_event_loop()
// def first():
//     log.append("first")
//     loop.call_soon(lambda: log.append("next iteration"))
//     loop.stop()
// loop.call_soon(first)
// loop.call_soon(lambda: log.append("same iteration"))
// loop.run_forever()
// log.append("returned")
// loop.call_soon(lambda: log.append("queued before stop"))
// loop.stop()
// loop.run_forever()
// log.append("returned again")
// loop.close()
// print(log)
TEST_CASE("stop() lets the current iteration finish, and a stop() before run_forever runs one iteration, as in asyncio") {
    trace log;
    aio::event_loop loop;
    loop.call_soon([&] {
        log("first");
        loop.call_soon([&] { log("next iteration"); });
        loop.stop();
    });
    loop.call_soon([&] { log("same iteration"); });
    loop.run_forever();
    log("returned");
    loop.call_soon([&] { log("queued before stop"); });
    loop.stop();
    loop.run_forever();
    log("returned again");
    loop.close();
    REQUIRE(log.events == lines{"first", "same iteration", "returned", "next iteration", "queued before stop",
                                "returned again"});
}

TEST_CASE("call_soon, call_later and call_at accept a named callable and call a copy of it") {
    int calls = 0;
    aio::event_loop loop;
    auto count = [&calls] { ++calls; };
    std::function<void()> stop = [&loop] { loop.stop(); };
    loop.call_soon(count);
    loop.call_later(1ms, count);
    loop.call_at(loop.time() + 2ms, count);
    loop.call_later(10ms, stop);
    loop.run_forever();
    REQUIRE(calls == 3);
    REQUIRE(static_cast<bool>(stop));  // copied, not moved from
}

TEST_CASE("run_until_complete returns the task's value or rethrows its exception") {
    aio::event_loop loop;
    REQUIRE(loop.run_until_complete(value_after(3, 17)) == 17);
    try {
        loop.run_until_complete(fail_after(2, 4));
        FAIL("no exception");
    } catch (const my_error& e) {
        REQUIRE(e.code == 4);
    }
    auto void_main = []() -> aio::task<> { co_await aio::sleep(0s); };
    loop.run_until_complete(void_main());
    REQUIRE_FALSE(loop.is_running());
    REQUIRE_FALSE(loop.is_closed());
}

// import asyncio
// log = []
// loop = asyncio.new_event_loop()
// b = None
// async def bg():
//     for i in range(4):
//         log.append(f"bg{i}")
//         await asyncio.sleep(0)
// async def first():
//     global b
//     b = asyncio.create_task(bg())
//     await asyncio.sleep(0)
//     log.append("first end")
// async def second():
//     log.append("second start")
//     await b
//     log.append("second end")
// loop.run_until_complete(first())
// log.append("between")
// loop.run_until_complete(second())
// loop.close()
// print(log)
TEST_CASE("tasks left pending by one run_until_complete carry on in the next, as in asyncio") {
    trace log;
    aio::event_loop loop;
    aio::task_handle<> b;
    auto bg = [&]() -> aio::task<> {
        for (int i = 0; i < 4; ++i) {
            log("bg" + std::to_string(i));
            co_await aio::sleep(0s);
        }
    };
    auto first = [&]() -> aio::task<> {
        b = aio::create_task(bg());
        co_await aio::sleep(0s);
        log("first end");
    };
    auto second = [&]() -> aio::task<> {
        log("second start");
        co_await b;
        log("second end");
    };
    loop.run_until_complete(first());
    log("between");
    loop.run_until_complete(second());
    loop.close();
    REQUIRE(log.events == lines{"bg0", "first end", "bg1", "between", "bg2", "second start", "bg3", "second end"});
}

// import asyncio
// log = []
// loop = asyncio.new_event_loop()
// async def main():
//     log.append("main start")
//     asyncio.get_running_loop().stop()
//     await asyncio.sleep(0)
//     log.append("main end")
//     return 1
// try:
//     loop.run_until_complete(main())
// except RuntimeError as e:
//     log.append("RuntimeError")
// loop.close()
// print(log)
TEST_CASE("run_until_complete throws aio::runtime_error when the loop stops before the task ends, as in asyncio") {
    trace log;
    counted::reset();
    {
        aio::event_loop loop;
        auto program = [&](counted) -> aio::task<int> {
            log("main start");
            aio::get_running_loop().stop();
            co_await aio::sleep(0s);
            log("main end");
            co_return 1;
        };
        try {
            loop.run_until_complete(program(counted(1)));
        } catch (const aio::runtime_error&) {
            log("RuntimeError");
        }
        REQUIRE_FALSE(loop.is_running());
        loop.close();
    }
    REQUIRE(log.events == lines{"main start", "RuntimeError"});
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("run_until_complete rethrows cancelled_error when the main task is cancelled") {
    aio::event_loop loop;
    auto program = []() -> aio::task<int> {
        aio::current_task().cancel();
        co_await aio::sleep(0s);
        co_return 1;
    };
    REQUIRE_THROWS_AS(loop.run_until_complete(program()), aio::cancelled_error);
    REQUIRE(loop.run_until_complete(value_after(1, 2)) == 2);
}

TEST_CASE("run_until_complete after stop() runs one iteration and throws aio::runtime_error, as in asyncio") {
    // import asyncio
    // loop = asyncio.new_event_loop()
    // async def main():
    //     await asyncio.sleep(0)
    // loop.stop()
    // loop.run_until_complete(main())  # RuntimeError: Event loop stopped before Future completed.
    trace log;
    aio::event_loop loop;
    auto program = [&]() -> aio::task<> {
        log("first step");
        co_await aio::sleep(0s);
        log("second step");
    };
    loop.stop();
    REQUIRE_THROWS_AS(loop.run_until_complete(program()), aio::runtime_error);
    REQUIRE(log.events == lines{"first step"});
}

TEST_CASE("run_until_complete inside a running loop throws aio::runtime_error and the outer loop carries on") {
    counted::reset();
    aio::event_loop loop;
    auto program = [&]() -> aio::task<int> {
        REQUIRE_THROWS_AS(loop.run_until_complete(never_started(counted(1))), aio::runtime_error);
        aio::event_loop other;
        REQUIRE_THROWS_AS(other.run_until_complete(never_started(counted(2))), aio::runtime_error);
        REQUIRE_THROWS_AS(other.run_forever(), aio::runtime_error);
        REQUIRE_THROWS_AS(loop.run_forever(), aio::runtime_error);
        REQUIRE(counted::alive() == 0);
        co_return co_await value_after(2, 5);
    };
    REQUIRE(loop.run_until_complete(program()) == 5);
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("get_running_loop returns the running loop and throws aio::runtime_error when none runs") {
    REQUIRE_THROWS_AS(aio::get_running_loop(), aio::runtime_error);
    aio::event_loop loop;
    bool same = false;
    bool in_callback = false;
    auto program = [&]() -> aio::task<> {
        same = &aio::get_running_loop() == &loop;
        loop.call_soon([&] { in_callback = &aio::get_running_loop() == &loop; });
        co_await aio::sleep(0s);
    };
    loop.run_until_complete(program());
    REQUIRE(same);
    REQUIRE(in_callback);
    REQUIRE_THROWS_AS(aio::get_running_loop(), aio::runtime_error);
}

TEST_CASE("is_running is true only while the loop runs") {
    aio::event_loop loop;
    REQUIRE_FALSE(loop.is_running());
    bool inside = false;
    loop.call_soon([&] {
        inside = loop.is_running();
        loop.stop();
    });
    loop.run_forever();
    REQUIRE(inside);
    REQUIRE_FALSE(loop.is_running());
}

TEST_CASE("a closed loop refuses call_soon, call_later, call_at, create_task and running with aio::runtime_error") {
    counted::reset();
    aio::event_loop loop;
    REQUIRE_FALSE(loop.is_closed());
    loop.close();
    REQUIRE(loop.is_closed());
    loop.close();  // closing twice is harmless
    REQUIRE(loop.is_closed());
    counted c(1);
    REQUIRE_THROWS_AS(loop.call_soon([c] {}), aio::runtime_error);
    REQUIRE_THROWS_AS(loop.call_later(1ms, [c] {}), aio::runtime_error);
    REQUIRE_THROWS_AS(loop.call_at(loop.time(), [c] {}), aio::runtime_error);
    REQUIRE_THROWS_AS(loop.create_task(never_started(counted(2))), aio::runtime_error);
    REQUIRE_THROWS_AS(loop.run_until_complete(never_started(counted(3))), aio::runtime_error);
    REQUIRE_THROWS_AS(loop.run_forever(), aio::runtime_error);
    REQUIRE(counted::alive() == 1);  // only `c` itself
}

TEST_CASE("close() of a running loop throws aio::runtime_error") {
    aio::event_loop loop;
    bool from_callback = false;
    auto program = [&]() -> aio::task<> {
        REQUIRE_THROWS_AS(loop.close(), aio::runtime_error);
        loop.call_soon([&] {
            try {
                loop.close();
            } catch (const aio::runtime_error&) {
                from_callback = true;
            }
        });
        co_await aio::sleep(0s);
    };
    loop.run_until_complete(program());
    REQUIRE(from_callback);
    REQUIRE_FALSE(loop.is_closed());
    loop.close();
    REQUIRE(loop.is_closed());
}

TEST_CASE("close() destroys the frames of tasks still pending: sleeping, awaiting other tasks, never started") {
    counted::reset();
    aio::event_loop loop;
    auto program = [&]() -> aio::task<> {
        auto sleeper = aio::create_task(forever_holding(counted(1)));
        aio::create_task(await_holding(sleeper, counted(2)));
        aio::create_task(awaits_lazy_sleeper(counted(3)));
        co_await aio::sleep(0s);
        REQUIRE(counted::alive() == 4);  // three tasks and the lazy child's local
    };
    loop.run_until_complete(program());
    loop.create_task(never_started(counted(4)));  // queued while the loop is stopped
    REQUIRE(counted::alive() == 5);
    loop.close();
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("close() destroys a pending task whose frame holds a handle to itself") {
    counted::reset();
    {
        aio::event_loop loop;
        auto self_aware = [](counted) -> aio::task<> {
            aio::any_task_handle me = aio::current_task();  // e.g. to log its own name
            co_await aio::sleep(24h);
        };
        auto program = [&]() -> aio::task<> {
            aio::create_task(self_aware(counted(1)));
            co_await aio::sleep(0s);
        };
        loop.run_until_complete(program());
        REQUIRE(counted::alive() == 1);
        loop.close();
        REQUIRE(counted::alive() == 0);
    }
    REQUIRE(counted::alive() == 0);
}

namespace {
// Holds a handle to the task that holds it, as a coroutine parameter: parameters are
// destroyed after the promise, so this handle goes after the task's state.
struct self_holder {
    aio::any_task_handle self;
    counted c{1};
};

aio::task<> held_by_its_parameter(std::shared_ptr<self_holder>) { co_await aio::sleep(24h); }
}  // namespace

TEST_CASE("close() frees a pending task whose coroutine parameter holds the last handle to it") {
    counted::reset();
    aio::any_task_handle kept;
    {
        aio::event_loop loop;
        auto program = [&]() -> aio::task<> {
            auto alone = std::make_shared<self_holder>();
            alone->self = aio::create_task(held_by_its_parameter(alone));
            auto shared = std::make_shared<self_holder>();
            shared->self = aio::create_task(held_by_its_parameter(shared));
            kept = shared->self;  // this one outlives the loop
            co_await aio::sleep(0s);
        };
        loop.run_until_complete(program());
        REQUIRE(counted::alive() == 2);
        loop.close();
        REQUIRE(counted::alive() == 0);
    }
    REQUIRE(kept.done());
    REQUIRE(kept.cancelled());
    kept = {};  // frees the last one (LeakSanitizer checks the rest)
}

TEST_CASE("destroying an open loop closes it and destroys every pending frame and callback") {
    counted::reset();
    {
        aio::event_loop loop;
        auto program = [&]() -> aio::task<> {
            auto sleeper = aio::create_task(forever_holding(counted(1)));
            aio::create_task(await_holding(sleeper, counted(2)));
            co_await aio::sleep(0s);
            loop.call_later(1h, [c = counted(3)] {});
        };
        loop.run_until_complete(program());
        // Queued while the loop is stopped: they never run.
        loop.create_task(never_started(counted(4)));
        loop.call_soon([c = counted(5)] {});
        REQUIRE(counted::alive() == 5);
    }
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a callback's captures are destroyed exactly once, whether it ran, was cancelled or never ran") {
    counted::reset();
    {
        aio::event_loop loop;
        counted c(1);
        loop.call_soon([c] {});
        loop.call_soon([c] {}).cancel();
        loop.call_later(1ms, [c] {});
        loop.call_later(1h, [c] {}).cancel();
        loop.call_later(5ms, [&] { loop.stop(); });
        loop.call_later(1h, [c] {});  // pending when the loop closes
        loop.run_forever();
        loop.call_soon([c] {});  // queued when the loop closes
        REQUIRE(counted::alive() == 3);
    }
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("call_later callbacks fire in deadline order with ties in arming order") {
    trace log;
    aio::event_loop loop;
    const auto when = loop.time() + 5ms;
    loop.call_later(30ms, [&] { log("30ms"); });
    loop.call_at(when, [&] { log("tie 1"); });
    loop.call_later(10ms, [&] { log("10ms"); });
    loop.call_at(when, [&] { log("tie 2"); });
    loop.call_later(20ms, [&] { log("20ms"); });
    loop.call_at(when, [&] { log("tie 3"); });
    loop.call_later(50ms, [&] {
        log("stop");
        loop.stop();
    });
    SECTION("fired one by one") {}
    SECTION("all due in the same iteration") {
        loop.call_soon([] { std::this_thread::sleep_for(60ms); });
    }
    loop.run_forever();
    REQUIRE(log.events == lines{"tie 1", "tie 2", "tie 3", "10ms", "20ms", "30ms", "stop"});
}

// import asyncio
// log = []
// loop = asyncio.new_event_loop()
// def first():
//     log.append("first")
//     loop.call_at(loop.time() - 1, lambda: log.append("past call_at"))
//     loop.call_later(-1, lambda: log.append("negative call_later"))
//     loop.call_soon(lambda: log.append("soon"))
// def stopper():
//     log.append("stop")
//     loop.stop()
// loop.call_soon(first)
// loop.call_soon(lambda: loop.call_soon(lambda: loop.call_soon(stopper)))
// loop.run_forever()
// loop.close()
// print(log)
TEST_CASE("call_at with a past time fires on the next iteration, behind what call_soon queued, as in asyncio") {
    trace log;
    aio::event_loop loop;
    auto stopper = [&] {
        log("stop");
        loop.stop();
    };
    loop.call_soon([&] {
        log("first");
        loop.call_at(loop.time() - 1s, [&] { log("past call_at"); });
        loop.call_later(-1s, [&] { log("negative call_later"); });
        loop.call_soon([&] { log("soon"); });
    });
    loop.call_soon([&] { loop.call_soon([&] { loop.call_soon([&] { stopper(); }); }); });
    loop.run_forever();
    loop.close();
    REQUIRE(log.events == lines{"first", "soon", "past call_at", "negative call_later", "stop"});
}

TEST_CASE("a cancelled timer never fires") {
    trace log;
    aio::event_loop loop;
    auto a = loop.call_later(1ms, [&] { log("a"); });
    auto b = loop.call_later(2ms, [&] { log("b"); });
    auto c = loop.call_later(3ms, [&] { log("c"); });
    b.cancel();
    REQUIRE(b.cancelled());
    REQUIRE_FALSE(a.cancelled());
    loop.call_later(20ms, [&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(log.events == lines{"a", "c"});
}

TEST_CASE("cancelling ten thousand far-future timers leaves none of them in the timer queue once the loop waits") {
    aio::event_loop loop;
    std::vector<aio::timer_handle> timers;
    timers.reserve(10'000);
    for (int i = 0; i < 10'000; ++i) timers.push_back(loop.call_later(1h + i * 1ms, [] { FAIL("fired"); }));
    auto& queue = aio::detail::loop_access::core(loop).timers;
    REQUIRE(queue.size() == 10'000);
    for (auto& t : timers) t.cancel();
    for (auto& t : timers) REQUIRE(t.cancelled());
    REQUIRE(queue.size() < 100);  // swept as they were cancelled, but for a few

    auto start = steady::now();
    auto short_task = []() -> aio::task<int> {
        co_await aio::sleep(1ms);
        co_return 3;
    };
    REQUIRE(loop.run_until_complete(short_task()) == 3);
    REQUIRE(steady::now() - start < 10s);
    REQUIRE(queue.empty());  // the loop swept them before it waited
    // Nothing is left that could wake the loop: a task that waits forever is reported
    // at once instead of after an hour.
    aio::event never_set;
    auto waits_forever = [&]() -> aio::task<> { co_await never_set.wait(); };
    REQUIRE_THROWS_AS(loop.run_until_complete(waits_forever()), aio::runtime_error);
}

TEST_CASE("a timer whose deadline lies beyond the clock's range neither overflows nor fires early") {
    trace log;
    aio::event_loop loop;
    auto a = loop.call_later(std::chrono::years(1000), [&] { log("1000 years"); });
    auto b = loop.call_later(std::chrono::hours::max(), [&] { log("hours::max()"); });
    auto c = loop.call_at(aio::event_loop::time_point::max(), [&] { log("time_point::max()"); });
    loop.call_later(-std::chrono::years(1000), [&] { log("1000 years ago"); });
    loop.call_later(20ms, [&] {
        log("stop");
        loop.stop();
    });
    loop.run_forever();
    REQUIRE(log.events == lines{"1000 years ago", "stop"});
    REQUIRE(a.when() > loop.time() + 24h);
    REQUIRE(b.when() > loop.time() + 24h);
    REQUIRE(c.when() > loop.time() + 24h);
}

// run_forever() used to throw on a loop with nothing ready, no timer and no descriptor.
// It blocks now, as asyncio's does: another thread may always post to the loop's inbox
// (call_soon_threadsafe), so an empty loop is not a deadlock.
TEST_CASE("run_forever on an empty loop blocks until another thread posts to it") {
    aio::event_loop loop;
    auto& core = aio::detail::loop_access::core(loop);
    struct stopper : aio::detail::inbox_node {
        aio::detail::loop_core* loop;
    } node;
    node.loop = &core;
    node.run = [](aio::detail::ready_item* item) noexcept { static_cast<stopper*>(item)->loop->stopping = true; };
    std::atomic<bool> started{false};
    std::thread poster([&] {
        while (!core.running_elsewhere()) std::this_thread::yield();
        started = true;
        std::this_thread::sleep_for(20ms);  // let the loop go to sleep in the poller
        core.post(&node);
    });
    loop.run_forever();
    poster.join();
    REQUIRE(started);
    REQUIRE_FALSE(loop.is_running());
    // The loop is still usable.
    REQUIRE(loop.run_until_complete(value_after(1, 2)) == 2);
}

TEST_CASE("time() is monotonic and a timer never fires before its deadline") {
    aio::event_loop loop;
    auto before = steady::now();
    auto previous = loop.time();
    REQUIRE(previous >= before);
    for (int i = 0; i < 10'000; ++i) {
        auto now = loop.time();
        REQUIRE(now >= previous);
        previous = now;
    }
    REQUIRE(previous <= steady::now());

    std::vector<std::pair<aio::event_loop::time_point, aio::event_loop::time_point>> fired;  // (deadline, time)
    std::vector<aio::timer_handle> handles;
    for (auto d : {3ms, 1ms, 7ms, 5ms}) {
        auto h = loop.call_later(d, [&fired, &loop, &handles, index = handles.size()] {
            fired.emplace_back(handles[index].when(), loop.time());
        });
        handles.push_back(h);
    }
    loop.call_later(20ms, [&] { loop.stop(); });
    loop.run_forever();
    REQUIRE(fired.size() == 4);
    for (std::size_t i = 0; i < fired.size(); ++i) {
        REQUIRE(fired[i].second >= fired[i].first);
        if (i > 0) REQUIRE(fired[i].first >= fired[i - 1].first);
    }
}

// import asyncio
// log = []
// loop = asyncio.new_event_loop()
// loop.set_exception_handler(lambda l, ctx: log.append(f"handler: {ctx['message']}"))
// def bad():
//     log.append("bad")
//     raise ValueError("boom")
// loop.call_soon(bad)
// loop.call_soon(lambda: log.append("after bad"))
// loop.call_soon(loop.stop)
// loop.run_forever()
// loop.close()
// print(log)
TEST_CASE("an exception thrown by a callback goes to the exception handler and the loop keeps running, as in asyncio") {
    trace log;
    std::vector<aio::exception_context> reports;
    aio::event_loop loop;
    loop.set_exception_handler([&](aio::event_loop& l, const aio::exception_context& c) {
        REQUIRE(&l == &loop);
        reports.push_back(c);
        log("handler");
    });
    loop.call_soon([&] {
        log("bad");
        throw my_error(1);
    });
    loop.call_soon([&] { log("after bad"); });
    loop.call_later(1ms, [&] {
        log("bad timer");
        throw my_error(2);
    });
    loop.call_later(10ms, [&] {
        log("stop");
        loop.stop();
    });
    loop.run_forever();
    REQUIRE(log.events == lines{"bad", "handler", "after bad", "bad timer", "handler", "stop"});
    REQUIRE(reports.size() == 2);
    REQUIRE(contains(reports[0].message, "callback"));
    REQUIRE(reports[0].task_name.empty());
    try {
        std::rethrow_exception(reports[1].exception);
    } catch (const my_error& e) {
        REQUIRE(e.code == 2);
    }
}

TEST_CASE("set_exception_handler replaces the handler and an empty one restores the default") {
    aio::event_loop loop;
    REQUIRE_FALSE(static_cast<bool>(loop.get_exception_handler()));
    std::vector<aio::exception_context> reports;
    loop.set_exception_handler([&](aio::event_loop&, const aio::exception_context& c) { reports.push_back(c); });
    REQUIRE(static_cast<bool>(loop.get_exception_handler()));
    loop.call_exception_handler({"custom report", std::make_exception_ptr(my_error(3)), "some task"});
    REQUIRE(reports.size() == 1);
    REQUIRE(reports[0].message == "custom report");
    REQUIRE(reports[0].task_name == "some task");

    loop.set_exception_handler({});
    REQUIRE_FALSE(static_cast<bool>(loop.get_exception_handler()));
    aio_test::stderr_capture capture;
    loop.call_exception_handler({"custom report", std::make_exception_ptr(my_error(3)), "some task"});
    std::string text = capture.text();
    INFO(text);
    REQUIRE(reports.size() == 1);
    REQUIRE(count_lines(text) == 1);
    REQUIRE(contains(text, "custom report"));
    REQUIRE(contains(text, "some task"));
    REQUIRE(contains(text, "my_error 3"));
}

TEST_CASE("an exception handler that replaces itself while it runs keeps its captures until it returns") {
    aio::event_loop loop;
    std::vector<std::string> handled;
    const std::string tag(64, 'x');  // on the heap: reading a freed copy would show
    loop.set_exception_handler([&handled, tag](aio::event_loop& l, const aio::exception_context& c) {
        l.set_exception_handler({});  // one-shot: back to the default
        handled.push_back(c.message + " " + tag);
    });
    loop.call_exception_handler({"first report", nullptr, {}});
    aio_test::stderr_capture capture;
    loop.call_exception_handler({"second report", nullptr, {}});
    const std::string text = capture.text();
    REQUIRE(handled == std::vector<std::string>{"first report " + tag});
    REQUIRE(contains(text, "second report"));
}

TEST_CASE("a failed task nobody retrieved reaches the loop's handler once, with its name") {
    std::vector<aio::exception_context> reports;
    aio::event_loop loop;
    loop.set_exception_handler([&](aio::event_loop&, const aio::exception_context& c) { reports.push_back(c); });
    auto program = [&]() -> aio::task<> {
        aio::create_task(fail_after(1, 6), "failing worker");
        for (int i = 0; i < 4; ++i) co_await aio::sleep(0s);
    };
    loop.run_until_complete(program());
    loop.close();
    REQUIRE(reports.size() == 1);
    REQUIRE(reports[0].task_name == "failing worker");
    REQUIRE(contains(reports[0].message, "never retrieved"));
    REQUIRE_THROWS_AS(std::rethrow_exception(reports[0].exception), my_error);
}

TEST_CASE("a user's exception anywhere never calls std::terminate") {
    aio_test::stderr_capture capture;
    bool finished = false;
    {
        aio::event_loop loop;
        loop.set_exception_handler([](aio::event_loop&, const aio::exception_context&) { throw my_error(99); });
        auto program = [&]() -> aio::task<> {
            loop.call_soon([] { throw 7; });  // not a std::exception
            auto thrower = []() -> aio::task<> {
                throw std::string("not an exception class");
                co_return;
            };
            aio::create_task(thrower());
            auto h = aio::create_task(value_after(0, 1));
            h.add_done_callback([](const aio::task_handle<int>&) { throw my_error(5); });
            for (int i = 0; i < 4; ++i) co_await aio::sleep(0s);
            finished = true;
        };
        loop.run_until_complete(program());
    }
    std::string text = capture.text();
    INFO(text);
    REQUIRE(finished);
    // Each of the three reports: the handler's own failure, then the report itself.
    REQUIRE(count_lines(text) == 6);
}

TEST_CASE("a deadlock gives aio::runtime_error rather than a hang") {
    counted::reset();
    aio::task_handle<> main_task;
    auto awaits_main = [&](counted) -> aio::task<> { co_await main_task; };
    auto real_main = [&]() -> aio::task<> {
        auto other = aio::create_task(awaits_main(counted(1)));
        co_await other;  // `other` awaits us: nothing can ever run again
    };
    auto entry = [&]() -> aio::task<> {
        main_task = aio::create_task(real_main());
        co_await main_task;
    };
    SECTION("run_until_complete") {
        {
            aio::event_loop loop;
            REQUIRE_THROWS_AS(loop.run_until_complete(entry()), aio::runtime_error);
            REQUIRE_FALSE(loop.is_running());
            main_task = {};
        }
        REQUIRE(counted::alive() == 0);
    }
    SECTION("run") {
        REQUIRE_THROWS_AS(aio::run(entry()), aio::runtime_error);
        main_task = {};
        REQUIRE(counted::alive() == 0);
    }
}

TEST_CASE("a loop leaves no descriptor behind: its poller's epoll, eventfd and timerfd close with it") {
    auto open_descriptors = [] {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
        return n;
    };
    const std::size_t before = open_descriptors();
    {
        aio::event_loop loop;
        REQUIRE(open_descriptors() > before);
        REQUIRE(loop.run_until_complete(value_after(1, 2)) == 2);
    }
    REQUIRE(open_descriptors() == before);
}

// --- call_soon_threadsafe

TEST_CASE("call_soon_threadsafe from eight threads runs every call exactly once, in each thread's order") {
    constexpr int threads = 8;
    constexpr int per_thread = 100'000;
    aio::event_loop loop;
    std::vector<int> next(threads, 0);  // the loop thread's alone
    std::atomic<int> out_of_order{0};
    int ran = 0;
    std::vector<std::thread> posters;
    std::atomic<bool> go{false};
    for (int t = 0; t < threads; ++t)
        posters.emplace_back([&, t] {
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < per_thread; ++i)
                loop.call_soon_threadsafe([&, t, i] {
                    if (next[static_cast<std::size_t>(t)] != i) out_of_order.fetch_add(1);
                    next[static_cast<std::size_t>(t)] = i + 1;
                    if (++ran == threads * per_thread) loop.stop();
                });
        });
    go = true;
    loop.run_forever();
    for (auto& p : posters) p.join();
    REQUIRE(ran == threads * per_thread);
    REQUIRE(out_of_order == 0);
    for (int n : next) REQUIRE(n == per_thread);
}

TEST_CASE("a loop asleep on a far timer is woken at once by call_soon_threadsafe from another thread") {
    aio::event_loop loop;
    auto& core = aio::detail::loop_access::core(loop);
    auto far = loop.call_later(1h, [] {});
    std::thread poster([&] {
        while (!core.running_elsewhere()) std::this_thread::yield();
        std::this_thread::sleep_for(20ms);  // let the loop go to sleep in the poller
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    const auto start = steady::now();
    loop.run_forever();
    const auto waited = steady::now() - start;
    poster.join();
    far.cancel();
    REQUIRE(waited < 30s);  // it returns at all: the far timer would have held it an hour
}

TEST_CASE("call_soon_threadsafe on a closed loop throws aio::runtime_error and drops the callable") {
    counted::reset();
    aio::event_loop loop;
    loop.close();
    bool refused = false;
    std::thread other([&] {
        try {
            loop.call_soon_threadsafe([c = counted()] {});
        } catch (const aio::runtime_error&) {
            refused = true;
        }
    });
    other.join();
    REQUIRE(refused);
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("calls posted from another thread that never ran are destroyed when the loop closes") {
    counted::reset();
    {
        aio::event_loop loop;
        std::thread other([&] {
            for (int i = 0; i < 10; ++i) loop.call_soon_threadsafe([c = counted()] { FAIL("ran after close"); });
        });
        other.join();
        loop.close();
        REQUIRE(counted::alive() == 0);
    }
}

TEST_CASE("an exception from a call_soon_threadsafe callback goes to the exception handler") {
    aio::event_loop loop;
    std::vector<std::string> messages;
    loop.set_exception_handler([&](aio::event_loop&, const aio::exception_context& c) { messages.push_back(c.message); });
    std::thread other([&] {
        loop.call_soon_threadsafe([] { throw std::runtime_error("boom"); });
        loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    other.join();
    loop.run_forever();
    REQUIRE(messages == std::vector<std::string>{"Exception in callback"});
}

// import asyncio
// log = []
// async def main():
//     loop = asyncio.get_running_loop()
//     loop.call_soon_threadsafe(log.append, "threadsafe 1")
//     loop.call_soon(log.append, "soon")
//     loop.call_soon_threadsafe(log.append, "threadsafe 2")
//     await asyncio.sleep(0)
// asyncio.run(main())
// print(log)
TEST_CASE("call_soon_threadsafe from the loop's own thread keeps its place among call_soon calls") {
    trace t;
    aio::run([&]() -> aio::task<> {
        auto& loop = aio::get_running_loop();
        loop.call_soon_threadsafe([&] { t("threadsafe 1"); });
        loop.call_soon([&] { t("soon"); });
        loop.call_soon_threadsafe([&] { t("threadsafe 2"); });
        co_await aio::sleep(0s);
    }());
    REQUIRE(t.events == std::vector<std::string>{"threadsafe 1", "soon", "threadsafe 2"});
}

TEST_CASE("run_until_complete waits for a call another thread is about to post instead of reporting a deadlock") {
    aio::event_loop loop;
    aio::event ready;
    std::thread other;
    loop.run_until_complete([&]() -> aio::task<> {
        // Nothing is ready, no timer is armed: only the other thread's call can wake the
        // loop, and its keep-alive token says one is coming.
        other = std::thread([&, alive = loop.keep_alive()] {
            std::this_thread::sleep_for(20ms);
            loop.call_soon_threadsafe([&] { ready.set(); });
        });
        co_await ready.wait();
    }());
    other.join();
}

TEST_CASE("a loop whose last keep-alive token is dropped without a call reports the deadlock instead of hanging") {
    aio::event_loop loop;
    aio::event never_set;
    std::thread other;
    REQUIRE_THROWS_AS(loop.run_until_complete([&]() -> aio::task<> {
                          other = std::thread([alive = loop.keep_alive()]() mutable {
                              std::this_thread::sleep_for(20ms);
                              alive.reset();  // and no call after all
                          });
                          co_await never_set.wait();
                      }()),
                      aio::runtime_error);
    other.join();
}

TEST_CASE("a keep-alive token may outlive its loop") {
    std::optional<aio::event_loop::keep_alive_token> token;
    {
        aio::event_loop loop;
        token.emplace(loop.keep_alive());
    }
    token.reset();
}
