// aio::run: main's value or exception, misuse, and the shutdown of API rule 9 —
// checked against CPython 3.11's asyncio.run.
//
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/gather.hpp>
#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <signal.h>

#include <chrono>
#include <csignal>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <typeinfo>
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

struct derived_error : std::logic_error {
    explicit derived_error(int c) : std::logic_error("derived"), code(c) {}
    int code;
};

// Not derived from std::exception at all.
struct plain_error {
    int code;
};

aio::task<> forever() { co_await aio::sleep(24h); }

// Records every report that reaches the running loop's exception handler.
void record_reports(std::vector<aio::exception_context>& reports) {
    aio::get_running_loop().set_exception_handler(
        [&reports](aio::event_loop&, const aio::exception_context& c) { reports.push_back(c); });
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("run returns main's value") {
    auto answer = []() -> aio::task<int> {
        co_await aio::sleep(0s);
        co_return 42;
    };
    REQUIRE(aio::run(answer()) == 42);

    auto greeting = []() -> aio::task<std::string> { co_return std::string(1000, 'x'); };
    REQUIRE(aio::run(greeting()) == std::string(1000, 'x'));
}

TEST_CASE("run returns a move-only value of main") {
    auto program = []() -> aio::task<std::unique_ptr<int>> {
        co_await aio::sleep(0s);
        co_return std::make_unique<int>(7);
    };
    std::unique_ptr<int> p = aio::run(program());
    REQUIRE(p);
    REQUIRE(*p == 7);
}

TEST_CASE("run of a void main returns once main has ended") {
    bool ended = false;
    auto program = [&]() -> aio::task<> {
        co_await aio::sleep(1ms);
        ended = true;
    };
    aio::run(program());
    REQUIRE(ended);
}

TEST_CASE("run rethrows main's exception with its exact type") {
    SECTION("derived from std::exception") {
        auto program = []() -> aio::task<int> {
            co_await aio::sleep(0s);
            throw derived_error(17);
        };
        try {
            aio::run(program());
            FAIL("run did not throw");
        } catch (const std::exception& e) {
            REQUIRE(typeid(e) == typeid(derived_error));
            REQUIRE(dynamic_cast<const derived_error&>(e).code == 17);
        }
    }
    SECTION("not derived from std::exception") {
        auto program = []() -> aio::task<> {
            co_await aio::sleep(0s);
            throw plain_error{5};
        };
        try {
            aio::run(program());
            FAIL("run did not throw");
        } catch (const plain_error& e) {
            REQUIRE(e.code == 5);
        }
    }
    SECTION("aio::cancelled_error from main") {
        auto program = []() -> aio::task<> {
            co_await aio::sleep(0s);
            throw aio::cancelled_error();
        };
        REQUIRE_THROWS_AS(aio::run(program()), aio::cancelled_error);
    }
}

TEST_CASE("run inside a running loop throws aio::runtime_error and leaves the outer run working") {
    counted::reset();
    bool threw = false;
    bool resumed_after = false;
    int result = 0;
    auto inner = [](counted c) -> aio::task<int> { co_return c.value; };
    auto program = [&]() -> aio::task<int> {
        try {
            aio::run(inner(counted(1)));
        } catch (const aio::runtime_error&) {
            threw = true;
        }
        co_await aio::sleep(0s);
        resumed_after = true;
        co_return 3;
    };
    result = aio::run(program());
    REQUIRE(threw);
    REQUIRE(resumed_after);
    REQUIRE(result == 3);
    REQUIRE(counted::alive() == 0);  // the rejected main's frame was destroyed
}

TEST_CASE("no loop is running on the thread once run has returned") {
    auto program = []() -> aio::task<bool> { co_return aio::get_running_loop().is_running(); };
    REQUIRE(aio::run(program()));
    REQUIRE_THROWS_AS(aio::get_running_loop(), aio::runtime_error);
    REQUIRE(aio::run(program()));  // and a second run gets a fresh loop
}

namespace {
aio::task<> pending_sleeper(counted) { co_await aio::sleep(24h); }

aio::task<> pending_waiter(counted, aio::task_handle<> other) { co_await other; }

aio::task<> never_started(counted, bool& ran) {
    ran = true;
    co_return;
}
}  // namespace

TEST_CASE("run cancels the tasks still pending when main ends and destroys their frames") {
    counted::reset();
    bool ran = false;
    aio::task_handle<> kept;  // outlives the loop
    auto program = [&]() -> aio::task<> {
        auto s = aio::create_task(pending_sleeper(counted(1)));
        aio::create_task(pending_waiter(counted(2), s));
        kept = aio::create_task(pending_sleeper(counted(3)));
        co_await aio::sleep(0s);
        // Queued by main's last iteration: its first step would come after the stop.
        aio::get_running_loop().call_soon([&ran] { aio::create_task(never_started(counted(4), ran)); });
    };
    const auto start = std::chrono::steady_clock::now();
    aio::run(program());
    REQUIRE(std::chrono::steady_clock::now() - start < 10s);
    REQUIRE(kept.done());
    REQUIRE(kept.cancelled());
    REQUIRE_FALSE(ran);
    REQUIRE(counted::alive() == 1);  // the frame `kept` refers to
    kept = aio::task_handle<>{};
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("run cancels ten thousand pending tasks and destroys every frame") {
    counted::reset();
    constexpr int count = 10'000;
    auto program = []() -> aio::task<> {
        for (int i = 0; i < count; ++i) {
            if (i % 2 == 0) aio::create_task(pending_sleeper(counted(i)));
            else aio::create_task(pending_waiter(counted(i), aio::create_task(pending_sleeper(counted(-i)))));
        }
        co_await aio::sleep(0s);
    };
    aio::run(program());
    REQUIRE(counted::alive() == 0);
}

namespace {
aio::task<> other_steps(trace& log) {
    bool cancelled = false;
    try {
        log("other step 1");
        co_await aio::sleep(0s);
        log("other step 2");
        co_await aio::sleep(0s);
        log("other step 3");
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        log("other cancelled");
        throw aio::cancelled_error();
    }
}
}  // namespace

// import asyncio
// log = []
// async def other():
//     try:
//         log.append("other step 1")
//         await asyncio.sleep(0)
//         log.append("other step 2")
//         await asyncio.sleep(0)
//         log.append("other step 3")
//     except asyncio.CancelledError:
//         log.append("other cancelled")
//         raise
// async def main():
//     loop = asyncio.get_running_loop()
//     t = asyncio.create_task(other())
//     await asyncio.sleep(0)
//     loop.call_soon(lambda: log.append("callback"))
//     log.append("main end")
// asyncio.run(main())
// print(log)
TEST_CASE("what is queued in the iteration where main ends still runs before the shutdown") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::event_loop& loop = aio::get_running_loop();
        auto t = aio::create_task(other_steps(log));
        co_await aio::sleep(0s);
        loop.call_soon([&log] { log("callback"); });
        log("main end");
    };
    aio::run(program());
    REQUIRE(log.events == lines{"other step 1", "main end", "other step 2", "callback", "other cancelled"});
}

namespace {
aio::task<> late(trace& log) {
    log("late start");
    bool cancelled = false;
    try {
        co_await aio::sleep(0s);
        log("late resumed");
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        log("late cancelled");
        throw aio::cancelled_error();
    }
}
}  // namespace

// import asyncio
// log = []
// async def late():
//     log.append("late start")
//     try:
//         await asyncio.sleep(0)
//         log.append("late resumed")
//     except asyncio.CancelledError:
//         log.append("late cancelled")
//         raise
// async def main():
//     asyncio.get_running_loop().call_soon(lambda: log.append("callback"))
//     t = asyncio.create_task(late())
//     log.append("main end")
// asyncio.run(main())
// print(log)
TEST_CASE("a task created by main's last step takes its first step before the shutdown") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::get_running_loop().call_soon([&log] { log("callback"); });
        auto t = aio::create_task(late(log));
        log("main end");
        co_return;
    };
    aio::run(program());
    REQUIRE(log.events == lines{"main end", "callback", "late start", "late cancelled"});
}

namespace {
aio::task<> late_body(trace& log) {
    log("late body");
    co_return;
}
}  // namespace

// import asyncio
// log = []
// tasks = []
// async def late():
//     log.append("late body")
// async def main():
//     loop = asyncio.get_running_loop()
//     def callback():
//         log.append("callback")
//         tasks.append(asyncio.create_task(late()))
//     loop.call_soon(callback)
//     log.append("main end")
// asyncio.run(main())
// log.append(f"late cancelled {tasks[0].cancelled()}")
// print(log)
TEST_CASE("a task created after main's last step is cancelled at shutdown before its body runs") {
    trace log;
    std::vector<aio::task_handle<>> tasks;
    auto program = [&]() -> aio::task<> {
        aio::get_running_loop().call_soon([&] {
            log("callback");
            tasks.push_back(aio::create_task(late_body(log)));
        });
        log("main end");
        co_return;
    };
    aio::run(program());
    REQUIRE(tasks.size() == 1);
    log(std::string("late cancelled ") + (tasks[0].cancelled() ? "True" : "False"));
    REQUIRE(log.events == lines{"main end", "callback", "late cancelled True"});
}

namespace {
aio::task<> worker_with_cleanup(trace& log, std::string name, std::chrono::seconds delay) {
    log(name + " start");
    bool cancelled = false;
    try {
        co_await aio::sleep(delay);
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {  // a handler cannot co_await: the cleanup runs after it
        log(name + " cancelled");
        co_await aio::sleep(0s);
        log(name + " cleanup done");
        throw aio::cancelled_error();
    }
}
}  // namespace

// import asyncio
// log = []
// async def worker(name, delay):
//     log.append(f"{name} start")
//     try:
//         await asyncio.sleep(delay)
//     except asyncio.CancelledError:
//         log.append(f"{name} cancelled")
//         await asyncio.sleep(0)
//         log.append(f"{name} cleanup done")
//         raise
// async def main():
//     tasks = [asyncio.create_task(worker("a", 30)),
//              asyncio.create_task(worker("b", 10)),
//              asyncio.create_task(worker("c", 20))]
//     await asyncio.sleep(0)
//     log.append("main end")
// asyncio.run(main())
// print(log)
TEST_CASE("run cancels pending tasks in creation order and lets their cleanup await") {
    trace log;
    auto program = [&]() -> aio::task<> {
        std::vector<aio::task_handle<>> tasks;
        tasks.push_back(aio::create_task(worker_with_cleanup(log, "a", 30s)));
        tasks.push_back(aio::create_task(worker_with_cleanup(log, "b", 10s)));
        tasks.push_back(aio::create_task(worker_with_cleanup(log, "c", 20s)));
        co_await aio::sleep(0s);
        log("main end");
    };
    const auto start = std::chrono::steady_clock::now();
    aio::run(program());
    REQUIRE(log.events == lines{"a start", "b start", "c start", "main end", "a cancelled", "b cancelled",
                                "c cancelled", "a cleanup done", "b cleanup done", "c cleanup done"});
    REQUIRE(std::chrono::steady_clock::now() - start < 10s);
}

namespace {
// Runs RAII cleanup when its frame is destroyed at shutdown.
struct on_exit {
    trace& log;
    std::string what;
    ~on_exit() { log(what); }
};

aio::task<> raii_worker(trace& log, std::string name) {
    on_exit guard{log, name + " frame destroyed"};
    co_await aio::sleep(24h);
    log(name + " woke");
}
}  // namespace

TEST_CASE("run destroys the frames of cancelled pending tasks, running their destructors") {
    trace log;
    auto program = [&]() -> aio::task<> {
        aio::create_task(raii_worker(log, "a"));
        aio::create_task(raii_worker(log, "b"));
        co_await aio::sleep(0s);
        log("main end");
    };
    aio::run(program());
    REQUIRE(log.events == lines{"main end", "a frame destroyed", "b frame destroyed"});
}

namespace {
aio::task<> waiting_worker(trace& log) {
    bool cancelled = false;
    try {
        co_await aio::sleep(24h);
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        log("worker cancelled");
        throw aio::cancelled_error();
    }
}
}  // namespace

// import asyncio
// log = []
// async def worker():
//     try:
//         await asyncio.sleep(86400)
//     except asyncio.CancelledError:
//         log.append("worker cancelled")
//         raise
// async def main():
//     t = asyncio.create_task(worker())
//     await asyncio.sleep(0)
//     log.append("main raises")
//     raise KeyError("main")
// try:
//     asyncio.run(main())
// except KeyError as e:
//     log.append(f"run raised {e}")
// print(log)
TEST_CASE("run cancels pending tasks before rethrowing main's exception") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(waiting_worker(log));
        co_await aio::sleep(0s);
        log("main raises");
        throw std::out_of_range("main");
    };
    try {
        aio::run(program());
    } catch (const std::out_of_range& e) {
        log(std::string("run raised ") + e.what());
    }
    REQUIRE(log.events == lines{"main raises", "worker cancelled", "run raised main"});
}

namespace {
aio::task<> stubborn(trace& log) {
    try {
        co_await aio::sleep(24h);
    } catch (const aio::cancelled_error&) {
        log("stubborn cancelled");
    }
    for (int i = 0; i < 3; ++i) {
        log("stubborn " + std::to_string(i));
        co_await aio::sleep(0s);
    }
    log("stubborn returns");
}
}  // namespace

// import asyncio
// log = []
// async def stubborn():
//     try:
//         await asyncio.sleep(86400)
//     except asyncio.CancelledError:
//         log.append("stubborn cancelled")
//     for i in range(3):
//         log.append(f"stubborn {i}")
//         await asyncio.sleep(0)
//     log.append("stubborn returns")
// async def main():
//     t = asyncio.create_task(stubborn())
//     await asyncio.sleep(0)
//     log.append("main end")
// asyncio.run(main())
// print(log)
TEST_CASE("run waits for a task that swallows its cancellation at shutdown") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto t = aio::create_task(stubborn(log));
        co_await aio::sleep(0s);
        log("main end");
    };
    aio::run(program());
    REQUIRE(log.events ==
            lines{"main end", "stubborn cancelled", "stubborn 0", "stubborn 1", "stubborn 2", "stubborn returns"});
}

namespace {
aio::task<> fails_on_cancel() {
    try {
        co_await aio::sleep(24h);
    } catch (const aio::cancelled_error&) {
        throw std::invalid_argument("cleanup failed");
    }
}
}  // namespace

// import asyncio
// log = []
// async def stubborn():
//     try:
//         await asyncio.sleep(86400)
//     except asyncio.CancelledError:
//         raise ValueError("cleanup failed")
// async def main():
//     loop = asyncio.get_running_loop()
//     loop.set_exception_handler(lambda loop, ctx: log.append(
//         (ctx["message"], ctx["task"].get_name(), repr(ctx["exception"]))))
//     asyncio.create_task(stubborn(), name="stubborn")
//     await asyncio.sleep(0)
// asyncio.run(main())
// print(log)
// # [('unhandled exception during asyncio.run() shutdown', 'stubborn', "ValueError('cleanup failed')")]
TEST_CASE("a task that fails during run's shutdown is reported once to the exception handler") {
    std::vector<aio::exception_context> reports;
    auto program = [&]() -> aio::task<> {
        record_reports(reports);
        aio::create_task(fails_on_cancel(), "stubborn");
        co_await aio::sleep(0s);
    };
    aio::run(program());
    REQUIRE(reports.size() == 1);
    CHECK(contains(reports[0].message, "shutdown"));
    CHECK(reports[0].task_name == "stubborn");
    REQUIRE(reports[0].exception);
    REQUIRE_THROWS_WITH(std::rethrow_exception(reports[0].exception), "cleanup failed");
    REQUIRE_THROWS_AS(std::rethrow_exception(reports[0].exception), std::invalid_argument);
}

TEST_CASE("a task that fails during the shutdown after main threw is reported and main's exception wins") {
    std::vector<aio::exception_context> reports;
    auto program = [&]() -> aio::task<> {
        record_reports(reports);
        aio::create_task(fails_on_cancel(), "stubborn");
        co_await aio::sleep(0s);
        throw derived_error(1);
    };
    REQUIRE_THROWS_AS(aio::run(program()), derived_error);
    REQUIRE(reports.size() == 1);
    CHECK(contains(reports[0].message, "shutdown"));
    CHECK(reports[0].task_name == "stubborn");
    REQUIRE_THROWS_AS(std::rethrow_exception(reports[0].exception), std::invalid_argument);
}

TEST_CASE("run does not report tasks that end cancelled at shutdown") {
    std::vector<aio::exception_context> reports;
    auto program = [&]() -> aio::task<> {
        record_reports(reports);
        aio::create_task(forever(), "quiet");
        aio::create_task(forever());
        co_await aio::sleep(0s);
    };
    aio::run(program());
    REQUIRE(reports.empty());
}

namespace {
aio::task<> fails_soon() {
    co_await aio::sleep(0s);
    throw std::invalid_argument("nobody looks");
}
}  // namespace

// CPython reports it when the Task object is garbage collected:
//   Task exception was never retrieved
//   future: <Task finished name='doomed' ... exception=ValueError('nobody looks')>
TEST_CASE("a task whose exception is never retrieved is reported once with its name") {
    std::vector<aio::exception_context> reports;
    SECTION("no handle is kept") {
        auto program = [&]() -> aio::task<> {
            record_reports(reports);
            aio::create_task(fails_soon(), "doomed");
            for (int i = 0; i < 3; ++i) co_await aio::sleep(0s);
        };
        aio::run(program());
    }
    SECTION("the last handle is dropped after the task failed") {
        auto program = [&]() -> aio::task<> {
            record_reports(reports);
            {
                auto h = aio::create_task(fails_soon(), "doomed");
                for (int i = 0; i < 3; ++i) co_await aio::sleep(0s);
                CHECK(h.done());
            }
            co_await aio::sleep(0s);
        };
        aio::run(program());
    }
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].message == "Task exception was never retrieved");
    CHECK(reports[0].task_name == "doomed");
    REQUIRE_THROWS_AS(std::rethrow_exception(reports[0].exception), std::invalid_argument);
}

TEST_CASE("a task whose exception was retrieved is not reported") {
    std::vector<aio::exception_context> reports;
    bool caught = false;
    auto program = [&]() -> aio::task<> {
        record_reports(reports);
        auto h = aio::create_task(fails_soon(), "seen");
        caught = co_await expect_throws<std::invalid_argument>(h);
    };
    aio::run(program());
    REQUIRE(caught);
    REQUIRE(reports.empty());
}

namespace {
aio::task<> cancelled_at_shutdown(trace& log) {
    co_await log_cancel(log, "worker cancelled", aio::sleep(24h));
}
}  // namespace

// import asyncio
// log = []
// async def worker():
//     try:
//         await asyncio.sleep(3600)
//     except asyncio.CancelledError:
//         log.append("worker cancelled")
//         raise
// async def main():
//     h = asyncio.create_task(worker())
//     h.add_done_callback(lambda t: log.append(f"done callback: cancelled={t.cancelled()}"))
//     await asyncio.sleep(0)
//     log.append("main returns")
// asyncio.run(main())
// log.append("end")
// print(log)
TEST_CASE("the done callback of a task cancelled at shutdown runs before the loop closes, as in asyncio") {
    trace log;
    auto program = [&]() -> aio::task<> {
        auto h = aio::create_task(cancelled_at_shutdown(log));
        h.add_done_callback([&log](const aio::task_handle<>& t) {
            log(std::string("done callback: cancelled=") + (t.cancelled() ? "True" : "False"));
        });
        co_await aio::sleep(0s);
        log("main returns");
    };
    aio::run(program());
    log("end");
    REQUIRE(log.events == lines{"main returns", "worker cancelled", "done callback: cancelled=True", "end"});
}

namespace {

// SIGINT with its default action for the duration of a test (the test framework has
// its own handler, which aio::run would rightly leave alone), restored afterwards.
struct default_sigint {
    struct sigaction saved {};
    default_sigint() {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        ::sigaction(SIGINT, &dfl, &saved);
    }
    ~default_sigint() { ::sigaction(SIGINT, &saved, nullptr); }
};

bool sigint_is_default() {
    struct sigaction current {};
    ::sigaction(SIGINT, nullptr, &current);
    return current.sa_handler == SIG_DFL;
}

aio::task<> worker_with_cleanup(trace& log) {
    co_await log_cancel(log, "worker cleanup", aio::sleep(1h));
}

}  // namespace

// async def main():
//     asyncio.create_task(worker()); await asyncio.sleep(0)
//     asyncio.get_running_loop().call_later(0.001, signal.raise_signal, signal.SIGINT)
//     try: await asyncio.sleep(3600)
//     except asyncio.CancelledError: print("main cleanup"); raise
// try: asyncio.run(main())
// except KeyboardInterrupt: print("KeyboardInterrupt")
// -> main cleanup / worker cleanup / KeyboardInterrupt
TEST_CASE("Ctrl-C during aio::run cancels the main task, unwinds every task, then throws keyboard_interrupt") {
    default_sigint scope;
    trace log;
    auto main_task = [](trace& log) -> aio::task<> {
        auto w = aio::create_task(worker_with_cleanup(log));
        co_await aio::sleep(0s);
        (void)aio::get_running_loop().call_later(1ms, [] { ::raise(SIGINT); });
        co_await log_cancel(log, "main cleanup", aio::sleep(1h));
    };
    try {
        aio::run(main_task(log));
        log("run returned");
    } catch (const aio::keyboard_interrupt&) {
        log("keyboard_interrupt");
    }
    REQUIRE(log.events == lines{"main cleanup", "worker cleanup", "keyboard_interrupt"});
    REQUIRE(sigint_is_default());  // run put the default action back
}

TEST_CASE("Ctrl-C reaches a main task that never suspends on a timer, and one that catches it may return a value") {
    default_sigint scope;
    auto main_task = []() -> aio::task<int> {
        ::raise(SIGINT);  // while running: delivered at the next iteration
        try {
            for (;;) co_await aio::sleep(0s);  // busy, never idle
        } catch (const aio::cancelled_error&) {
        }
        co_return 7;
    };
    REQUIRE(aio::run(main_task()) == 7);
}

namespace {
volatile std::sig_atomic_t own_handler_ran = 0;
extern "C" void own_sigint_handler(int) { own_handler_ran = 1; }
}  // namespace

TEST_CASE("aio::run leaves a SIGINT handler the program installed in charge") {
    struct sigaction ours {};
    ours.sa_handler = own_sigint_handler;
    sigemptyset(&ours.sa_mask);
    struct sigaction saved {};
    ::sigaction(SIGINT, &ours, &saved);
    own_handler_ran = 0;
    auto main_task = []() -> aio::task<int> {
        ::raise(SIGINT);
        co_await aio::sleep(1ms);  // not cancelled
        co_return 1;
    };
    const int v = aio::run(main_task());
    struct sigaction after {};
    ::sigaction(SIGINT, &saved, &after);
    REQUIRE(v == 1);
    REQUIRE(own_handler_ran == 1);
    REQUIRE(after.sa_handler == own_sigint_handler);
}

namespace {
aio::task<int> numbered_sleeper(int i) {
    for (int k = 0; k < 3; ++k) co_await aio::sleep(0s);
    co_return i;
}

// What one loop sees: its result, and the names of the tasks it made.
struct loop_report {
    long long sum = 0;
    std::vector<std::string> names;
};

aio::task<loop_report> one_loop_of_many(int tasks) {
    loop_report r;
    std::vector<aio::task_handle<int>> handles;
    for (int i = 0; i < tasks; ++i) handles.push_back(aio::create_task(numbered_sleeper(i)));
    for (auto& h : handles) r.names.push_back(h.name());
    for (int v : co_await aio::gather(handles)) r.sum += v;
    co_return r;
}
}  // namespace

TEST_CASE("four threads each running aio::run at once keep their loops apart") {
    constexpr int threads = 4;
    constexpr int tasks = 2'000;
    std::vector<loop_report> reports(threads);
    std::vector<std::thread> runners;
    for (int t = 0; t < threads; ++t)
        runners.emplace_back([&, t] { reports[static_cast<std::size_t>(t)] = aio::run(one_loop_of_many(tasks)); });
    for (auto& r : runners) r.join();
    for (const loop_report& r : reports) {
        REQUIRE(r.sum == static_cast<long long>(tasks) * (tasks - 1) / 2);
        // Task numbers are each loop's own: main is Task-1 everywhere.
        REQUIRE(r.names.front() == "Task-2");
        REQUIRE(r.names.back() == "Task-" + std::to_string(tasks + 1));
    }
}
