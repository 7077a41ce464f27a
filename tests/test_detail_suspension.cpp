// The suspension protocol in include/aio/detail/suspension.hpp, through the example awaitable the README shows.

#include <aio/create_task.hpp>
#include <aio/detail/suspension.hpp>
#include <aio/errors.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <coroutine>
#include <string>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::trace;

namespace {

// README, "Writing an awaitable": one task waits until open() is called.
class gate {
public:
    void open() {  // wakes the waiting task through the ready queue (rule 4)
        if (aio::detail::task_state* t = std::exchange(waiter_, nullptr)) aio::detail::core_of(t->loop())->schedule(*t);
    }
    auto wait() { return awaiter(*this); }

private:
    struct awaiter : aio::detail::cancel_hook {
        explicit awaiter(gate& g) : g(g) { cancel = on_cancel; }
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) {
            aio::detail::task_state& t = aio::detail::suspending_task("gate::wait()");
            task = g.waiter_ = &t;             // register the wait, so on_cancel can undo it,
            aio::detail::suspend(t, h, *this);  // then suspend
        }
        void await_resume() { aio::detail::resumed(task, cancelled); }
        static bool on_cancel(aio::detail::cancel_hook* hook) noexcept {
            auto& a = static_cast<awaiter&>(*hook);
            if (a.g.waiter_ != a.task) return false;  // already woken: the task keeps the cancel
            a.g.waiter_ = nullptr;
            a.cancelled = true;
            aio::detail::core_of(a.task->loop())->schedule(*a.task);
            return true;
        }
        gate& g;
        aio::detail::task_state* task = nullptr;
        bool cancelled = false;
    };
    aio::detail::task_state* waiter_ = nullptr;
};

aio::task<> passes(gate& g, trace& log) {
    try {
        co_await g.wait();
        log("through");
    } catch (const aio::cancelled_error& e) {
        log(std::string("cancelled: ") + e.what());
    }
}

}  // namespace

TEST_CASE("an awaitable built on the suspension protocol resumes its task through the ready queue") {
    trace log;
    gate g;
    auto body = [&]() -> aio::task<> {
        auto t = aio::create_task(passes(g, log));
        co_await aio::sleep(0s);
        g.open();
        log("opened");
        co_await t;
    };
    aio::run(body());
    REQUIRE(log.events == std::vector<std::string>{"opened", "through"});
}

TEST_CASE("cancelling a task suspended on such an awaitable runs its hook and the task gets cancelled_error with the message") {
    trace log;
    gate g;
    auto body = [&]() -> aio::task<> {
        auto t = aio::create_task(passes(g, log));
        co_await aio::sleep(0s);
        REQUIRE(t.cancel("stop"));
        g.open();  // nobody waits any more: the hook unregistered the task
        co_await t;
    };
    aio::run(body());
    REQUIRE(log.events == std::vector<std::string>{"cancelled: stop"});
}

TEST_CASE("a cancel() that came while the task ran reaches the awaitable at once when the task suspends on it") {
    trace log;
    gate g;
    auto body = [&]() -> aio::task<> {
        aio::current_task().cancel();
        try {
            co_await g.wait();  // suspend() calls the hook at once
            log("through");
        } catch (const aio::cancelled_error&) {
            log("cancelled");
        }
        g.open();  // nobody waits
    };
    aio::run(body());
    REQUIRE(log.events == std::vector<std::string>{"cancelled"});
}

TEST_CASE("a cancel() after the wake-up is queued is delivered by resumed(), once") {
    trace log;
    gate g;
    auto body = [&]() -> aio::task<> {
        auto t = aio::create_task(passes(g, log));
        co_await aio::sleep(0s);
        g.open();            // the wake-up is queued
        REQUIRE(t.cancel()); // too late for the hook: the task keeps it
        co_await t;
    };
    aio::run(body());
    REQUIRE(log.events == std::vector<std::string>{"cancelled: the task was cancelled"});
}
