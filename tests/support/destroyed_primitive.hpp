#pragma once
// The scenario each primitive's "a task left waiting on a destroyed <primitive> can be
// cancelled" test runs. Destroying a primitive under its waiters is a bug, but one that
// must not make them uncancellable: each waiter is detached and keeps a working cancel
// hook, so cancel() ends it with cancelled_error (touching nothing of the dead
// primitive), and aio::run's shutdown cancels one left behind and returns main's value
// instead of reporting a deadlock. No asyncio program: Python keeps the primitive alive
// while a task refers to it.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "catch.hpp"
#include "trace.hpp"

namespace aio_test {

// `make()` gives a std::unique_ptr to a primitive; `prepare(p)` (a task) puts it in a
// state where `wait(p)` (a task) suspends. Both are called from inside the loop.
template <class Make, class Prepare, class Wait>
void check_waiters_of_destroyed_primitive(Make make, Prepare prepare, Wait wait) {
    trace log;
    auto waiter = [&](auto& p) -> aio::task<> {
        try {
            co_await wait(p);
        } catch (const aio::cancelled_error&) {
            log("waiter cancelled");
            throw;
        }
    };
    auto body = [&]() -> aio::task<int> {
        auto p = make();
        co_await prepare(*p);
        auto h = aio::create_task(waiter(*p));
        co_await aio::sleep(std::chrono::seconds(0));
        co_await aio::sleep(std::chrono::seconds(0));
        p.reset();
        REQUIRE(h.cancel());
        try {
            co_await h;
        } catch (const aio::cancelled_error&) {
            log("h cancelled");
        }
        auto q = make();
        co_await prepare(*q);
        auto left = aio::create_task(waiter(*q));
        co_await aio::sleep(std::chrono::seconds(0));
        co_await aio::sleep(std::chrono::seconds(0));
        q.reset();
        co_return 7;
    };
    REQUIRE(aio::run(body()) == 7);
    REQUIRE(log.events == std::vector<std::string>{"waiter cancelled", "h cancelled", "waiter cancelled"});
}

}  // namespace aio_test
