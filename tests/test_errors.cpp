// aio/errors.hpp: the ordinary errors are std::exceptions; a cancellation and Ctrl-C
// are aio::base_exceptions, which ordinary error handling cannot swallow.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "support/catch.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::trace;

static_assert(std::is_base_of_v<aio::base_exception, aio::cancelled_error>);
static_assert(std::is_base_of_v<aio::base_exception, aio::keyboard_interrupt>);
static_assert(!std::is_base_of_v<std::exception, aio::base_exception>);
static_assert(!std::is_base_of_v<std::exception, aio::cancelled_error>);
static_assert(!std::is_base_of_v<std::exception, aio::keyboard_interrupt>);
static_assert(std::is_base_of_v<std::exception, aio::timeout_error>);
static_assert(std::is_base_of_v<std::exception, aio::invalid_state_error>);
static_assert(std::is_base_of_v<std::exception, aio::runtime_error>);
static_assert(std::is_base_of_v<aio::runtime_error, aio::broken_barrier_error>);
static_assert(std::is_nothrow_copy_constructible_v<aio::cancelled_error>);

TEST_CASE("a cancellation carries its message, or the default one") {
    REQUIRE(std::string(aio::cancelled_error().what()) == "the task was cancelled");
    REQUIRE(std::string(aio::cancelled_error("").what()) == "the task was cancelled");
    REQUIRE(std::string(aio::cancelled_error("shutdown").what()) == "shutdown");
    REQUIRE(std::string(aio::keyboard_interrupt().what()) == "interrupted (SIGINT)");
    aio::cancelled_error original("kept");
    aio::cancelled_error copy = original;
    REQUIRE(std::string(copy.what()) == "kept");
}

TEST_CASE("catch (const std::exception&) lets a cancellation through; catch (...) sees it") {
    bool by_std = false, by_base = false, by_any = false;
    try {
        try {
            throw aio::cancelled_error("stop");
        } catch (const std::exception&) {
            by_std = true;
        }
    } catch (const aio::base_exception& e) {
        by_base = std::string(e.what()) == "stop";
    }
    try {
        throw aio::cancelled_error();
    } catch (...) {
        by_any = true;
    }
    REQUIRE_FALSE(by_std);
    REQUIRE(by_base);
    REQUIRE(by_any);
}

// import asyncio
// log = []
// async def worker():
//     try:
//         await asyncio.sleep(3600)
//     except Exception:
//         log.append("swallowed")
//     log.append("ran on")
// async def main():
//     t = asyncio.create_task(worker())
//     await asyncio.sleep(0)
//     t.cancel()
//     try:
//         await t
//     except asyncio.CancelledError:
//         log.append("worker cancelled")
// asyncio.run(main())
// print(log)
TEST_CASE("a task whose ordinary error handler surrounds an await is still cancelled") {
    trace log;
    auto worker = [&]() -> aio::task<> {
        try {
            co_await aio::sleep(1h);
        } catch (const std::exception&) {
            log("swallowed");
        }
        log("ran on");
    };
    auto main_task = [&]() -> aio::task<> {
        auto t = aio::create_task(worker());
        co_await aio::sleep(0s);
        t.cancel();
        try {
            co_await t;
        } catch (const aio::cancelled_error&) {
            log("worker cancelled");
        }
    };
    aio::run(main_task());
    REQUIRE(log.events == std::vector<std::string>{"worker cancelled"});
}

TEST_CASE("an ordinary error is still a std::exception with its message") {
    try {
        throw aio::timeout_error();
    } catch (const std::exception& e) {
        REQUIRE(std::string(e.what()) == "the operation timed out");
    }
    try {
        throw aio::broken_barrier_error("broken");
    } catch (const std::runtime_error& e) {
        REQUIRE(std::string(e.what()) == "broken");
    }
}
