#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::counted;
using strings = std::vector<std::string>;

// import asyncio
// async def main():
//     loop = asyncio.get_running_loop()
//     log = []
//     def a():
//         log.append("a"); loop.call_soon(lambda: log.append("a2"))
//     loop.call_soon(a); loop.call_soon(lambda: log.append("b"))
//     log.append("main")
//     await asyncio.sleep(0)
//     log.append("main resumed")
//     await asyncio.sleep(0)
//     log.append("main resumed 2")
//     print(log)
// asyncio.run(main())
// -> ['main', 'a', 'b', 'main resumed', 'a2', 'main resumed 2']
TEST_CASE("callbacks scheduled during an iteration run in the next one (rule 1)") {
    aio_test::trace log;
    aio::event_loop loop;
    auto body = [&]() -> aio::task<> {
        auto& l = aio::get_running_loop();
        l.call_soon([&] {
            log("a");
            l.call_soon([&] { log("a2"); });
        });
        l.call_soon([&] { log("b"); });
        log("main");
        co_await aio::sleep(0s);
        log("main resumed");
        co_await aio::sleep(0s);
        log("main resumed 2");
    };
    loop.run_until_complete(body());
    REQUIRE(log.events == strings{"main", "a", "b", "main resumed", "a2", "main resumed 2"});
}

TEST_CASE("run_until_complete returns the value and rethrows the exception") {
    aio::event_loop loop;
    auto value = []() -> aio::task<int> { co_return 3; };
    auto failing = []() -> aio::task<int> {
        throw std::out_of_range("x");
        co_return 0;
    };
    REQUIRE(loop.run_until_complete(value()) == 3);
    REQUIRE_THROWS_AS(loop.run_until_complete(failing()), std::out_of_range);
    REQUIRE(loop.run_until_complete(value()) == 3);  // the loop is reusable
    REQUIRE_FALSE(loop.is_running());
    REQUIRE_FALSE(loop.is_closed());
}

TEST_CASE("is_running is true only while the loop runs") {
    aio::event_loop loop;
    bool inside = false;
    auto body = [&]() -> aio::task<> {
        inside = loop.is_running();
        co_return;
    };
    loop.run_until_complete(body());
    REQUIRE(inside);
    REQUIRE_FALSE(loop.is_running());
}

TEST_CASE("call_later callbacks fire in deadline order with ties in arming order") {
    aio::event_loop loop;
    aio_test::trace log;
    auto base = loop.time() + 5ms;
    loop.call_at(base + 2ms, [&] { log("c"); });
    loop.call_at(base, [&] { log("a1"); });
    loop.call_at(base + 1ms, [&] { log("b"); });
    loop.call_at(base, [&] { log("a2"); });
    loop.call_at(base + 2ms, [&] { log("stop"); loop.stop(); });
    loop.run_forever();
    REQUIRE(log.events == strings{"a1", "a2", "b", "c", "stop"});
}

TEST_CASE("call_at with a time in the past fires on the next iteration") {
    aio::event_loop loop;
    aio_test::trace log;
    loop.call_soon([&] { log("soon"); });
    loop.call_at(loop.time() - 1s, [&] { log("past"); });
    loop.call_later(-5ms, [&] {
        log("negative");
        loop.stop();
    });
    loop.run_forever();
    REQUIRE(log.events == strings{"soon", "past", "negative"});
}

TEST_CASE("a cancelled timer never fires") {
    aio::event_loop loop;
    bool fired = false;
    auto h = loop.call_later(1ms, [&] { fired = true; });
    loop.call_later(5ms, [&] { loop.stop(); });
    h.cancel();
    REQUIRE(h.cancelled());
    loop.run_forever();
    REQUIRE_FALSE(fired);
}

TEST_CASE("cancelled timers leave the heap: the loop does not wait for them") {
    aio::event_loop loop;
    std::vector<aio::timer_handle> far;
    for (int i = 0; i < 10'000; ++i) far.push_back(loop.call_later(std::chrono::hours(1 + i), [] {}));
    for (auto& h : far) h.cancel();
    auto quick = []() -> aio::task<int> {
        co_await aio::sleep(1ms);
        co_return 1;
    };
    auto start = std::chrono::steady_clock::now();
    REQUIRE(loop.run_until_complete(quick()) == 1);
    REQUIRE(std::chrono::steady_clock::now() - start < 10s);
    // With every timer gone, nothing is left that could wake the loop.
    REQUIRE_THROWS_AS(loop.run_forever(), aio::runtime_error);
}

TEST_CASE("time() is a monotonic steady_clock time") {
    aio::event_loop loop;
    auto a = loop.time();
    auto b = loop.time();
    REQUIRE(b >= a);
    REQUIRE(std::chrono::steady_clock::now() >= b);
}

TEST_CASE("an exception thrown by a callback goes to the exception handler and the loop goes on") {
    aio::event_loop loop;
    std::vector<aio::exception_context> seen;
    loop.set_exception_handler([&](aio::event_loop&, const aio::exception_context& c) { seen.push_back(c); });
    bool after = false;
    loop.call_soon([] { throw std::logic_error("boom"); });
    loop.call_soon([&] {
        after = true;
        loop.stop();
    });
    loop.run_forever();
    REQUIRE(after);
    REQUIRE(seen.size() == 1);
    REQUIRE(seen[0].message == "Exception in callback");
    REQUIRE_THROWS_AS(std::rethrow_exception(seen[0].exception), std::logic_error);
}

TEST_CASE("an exception thrown by the exception handler does not escape the loop") {
    aio::event_loop loop;
    loop.set_exception_handler([](aio::event_loop&, const aio::exception_context&) { throw std::runtime_error("handler"); });
    loop.call_soon([] { throw std::logic_error("boom"); });
    loop.call_soon([&] { loop.stop(); });
    REQUIRE_NOTHROW(loop.run_forever());
}

TEST_CASE("get_running_loop returns the running loop and throws outside one") {
    REQUIRE_THROWS_AS(aio::get_running_loop(), aio::runtime_error);
    aio::event_loop loop;
    aio::event_loop* seen = nullptr;
    auto body = [&]() -> aio::task<> {
        seen = &aio::get_running_loop();
        co_return;
    };
    loop.run_until_complete(body());
    REQUIRE(seen == &loop);
    REQUIRE_THROWS_AS(aio::get_running_loop(), aio::runtime_error);
}

TEST_CASE("run_until_complete inside a running loop throws runtime_error") {
    aio::event_loop loop;
    aio::event_loop other;
    auto inner = []() -> aio::task<> { co_return; };
    auto body = [&]() -> aio::task<> {
        REQUIRE_THROWS_AS(loop.run_until_complete(inner()), aio::runtime_error);
        REQUIRE_THROWS_AS(other.run_until_complete(inner()), aio::runtime_error);
        REQUIRE_THROWS_AS(loop.close(), aio::runtime_error);
        co_return;
    };
    loop.run_until_complete(body());
}

TEST_CASE("a closed loop refuses work with runtime_error") {
    aio::event_loop loop;
    loop.close();
    REQUIRE(loop.is_closed());
    auto t = []() -> aio::task<> { co_return; };
    REQUIRE_THROWS_AS(loop.call_soon([] {}), aio::runtime_error);
    REQUIRE_THROWS_AS(loop.call_later(1ms, [] {}), aio::runtime_error);
    REQUIRE_THROWS_AS(loop.create_task(t()), aio::runtime_error);
    REQUIRE_THROWS_AS(loop.run_until_complete(t()), aio::runtime_error);
    REQUIRE_THROWS_AS(loop.run_forever(), aio::runtime_error);
    REQUIRE_NOTHROW(loop.close());
}

TEST_CASE("a deadlock raises runtime_error instead of hanging") {
    aio::event_loop loop;
    aio::task_handle<> first;
    auto second = [](aio::task_handle<>* first) -> aio::task<> { co_await *first; };
    auto first_body = [&]() -> aio::task<> { co_await aio::create_task(second(&first)); };
    auto main_body = [&]() -> aio::task<> {
        first = aio::create_task(first_body());
        co_await first;  // first waits for second, second waits for first
    };
    REQUIRE_THROWS_AS(loop.run_until_complete(main_body()), aio::runtime_error);
}

TEST_CASE("close destroys the frames of tasks still pending") {
    counted::reset();
    {
        aio::event_loop loop;
        auto sleeper = [](counted c) -> aio::task<> {
            co_await aio::sleep(std::chrono::hours(1));
            (void)c;
        };
        auto waiter = [](counted c, aio::task_handle<> other) -> aio::task<> {
            co_await other;
            (void)c;
        };
        auto never_started = [](counted c) -> aio::task<> {
            (void)c;
            co_return;
        };
        auto body = [&]() -> aio::task<> {
            auto s = aio::create_task(sleeper(counted(1)));
            aio::create_task(waiter(counted(2), s));
            co_await aio::sleep(0s);
        };
        loop.run_until_complete(body());
        auto unstarted = loop.create_task(never_started(counted(3)));
        REQUIRE(counted::alive() == 3);
        loop.close();
        REQUIRE(counted::alive() == 1);  // the unstarted task's frame waits for its handle
        REQUIRE(unstarted.cancelled());
        unstarted = {};
        REQUIRE(counted::alive() == 0);
    }
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a handle that outlives its loop stays usable and safe to drop") {
    aio::task_handle<int> kept;
    aio::task_handle<int> finished;
    {
        aio::event_loop loop;
        auto forever = []() -> aio::task<int> {
            co_await aio::sleep(std::chrono::hours(1));
            co_return 1;
        };
        auto quick = []() -> aio::task<int> { co_return 2; };
        auto body = [&]() -> aio::task<> {
            kept = aio::create_task(forever());
            finished = aio::create_task(quick());
            co_await finished;
        };
        loop.run_until_complete(body());
    }
    REQUIRE(kept.done());
    REQUIRE(kept.cancelled());
    REQUIRE_THROWS_AS(kept.result(), aio::cancelled_error);
    REQUIRE_FALSE(kept.cancel());
    REQUIRE(finished.result() == 2);
}

TEST_CASE("closing a loop drops callbacks that never ran") {
    counted::reset();
    {
        aio::event_loop loop;
        counted c(1);
        loop.call_soon([c] { (void)c; });
        auto h = loop.call_later(std::chrono::hours(1), [c] { (void)c; });
        loop.close();
        REQUIRE_NOTHROW(h.cancel());
    }
    REQUIRE(counted::alive() == 0);
}
