// aio::wrap_future: a task awaits a concurrent_future or a std::future that another
// thread completes, without blocking its loop — asyncio's wrap_future — and a
// cancelled await cancels the concurrent_future, as asyncio chains them.
//
// No timing is measured: that the loop kept running while a task waited is shown by
// another task's iterations, and every wait for another thread is bounded.

#include <aio/concurrent_future.hpp>
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/gather.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/wrap_future.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/handlers.hpp"
#include "support/steps.hpp"

using namespace std::chrono_literals;
using aio_test::boom;
using aio_test::counted;
using aio_test::expect_throws;

namespace {

// Counts loop iterations until told to stop (bounded).
aio::task<int> count_iterations(std::atomic<int>& iterations, std::atomic<bool>& stop) {
    for (int i = 0; i < 1'000'000 && !stop; ++i) {
        ++iterations;
        co_await aio::sleep(0s);
    }
    co_return iterations.load();
}

// Waits (bounded) until `iterations` has reached `n`.
void wait_for_iterations(std::atomic<int>& iterations, int n) {
    for (int i = 0; i < 10'000 && iterations < n; ++i) std::this_thread::sleep_for(1ms);
}

aio::task<int> await_future(aio::concurrent_future<int> f, std::atomic<bool>& saw_cancel) {
    try {
        co_return co_await aio::wrap_future(f);
    } catch (const aio::cancelled_error&) {
        saw_cancel = true;
        throw;
    }
}

}  // namespace

TEST_CASE("awaiting a concurrent_future that another thread completes later gives its value, and the loop runs meanwhile") {
    aio::concurrent_future<int> f;
    std::atomic<int> iterations{0};
    std::atomic<bool> stop{false};
    // The value arrives only once the loop has gone round a few times while the task waits.
    std::thread completer([f, &iterations]() mutable {
        wait_for_iterations(iterations, 5);
        f.set_result(21);
    });
    auto body = [&]() -> aio::task<int> {
        auto counter = aio::create_task(count_iterations(iterations, stop));
        const int v = co_await aio::wrap_future(f);
        stop = true;
        const int counted_iterations = co_await counter;
        REQUIRE(counted_iterations >= 5);
        co_return v * 2;
    };
    const int result = aio::run(body());
    completer.join();
    REQUIRE(result == 42);
}

TEST_CASE("awaiting a concurrent_future that is already done gives its value") {
    aio::concurrent_future<int> f;
    f.set_result(3);
    auto body = [&]() -> aio::task<int> { co_return co_await aio::wrap_future(f); };
    REQUIRE(aio::run(body()) == 3);
    REQUIRE(f.result() == 3);  // a copyable value stays in the future
}

TEST_CASE("awaiting a done concurrent_future copies its value and every copy is destroyed once") {
    counted::reset();
    {
        aio::concurrent_future<counted> f;
        f.set_result(counted(8));
        auto body = [&]() -> aio::task<int> {
            counted a = co_await aio::wrap_future(f);
            counted b = co_await aio::wrap_future(f);
            co_return a.value + b.value;
        };
        REQUIRE(aio::run(body()) == 16);
        REQUIRE(counted::alive() == 1);  // the future's own
    }
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("awaiting a concurrent_future that fails rethrows its exception") {
    SECTION("failed already") {
        aio::concurrent_future<int> f;
        f.set_exception(std::make_exception_ptr(boom("done badly")));
        auto body = [&]() -> aio::task<std::string> {
            try {
                co_await aio::wrap_future(f);
            } catch (const boom& e) {
                co_return e.what();
            }
            co_return "no error";
        };
        REQUIRE(aio::run(body()) == "done badly");
    }
    SECTION("failed later by another thread") {
        aio::concurrent_future<int> f;
        std::atomic<bool> awaiting{false};
        std::thread failer([f, &awaiting]() mutable {
            for (int i = 0; i < 10'000 && !awaiting; ++i) std::this_thread::sleep_for(1ms);
            f.set_exception(std::make_exception_ptr(boom("failed over there")));
        });
        auto body = [&]() -> aio::task<std::string> {
            awaiting = true;
            try {
                co_await aio::wrap_future(f);
            } catch (const boom& e) {
                co_return e.what();
            }
            co_return "no error";
        };
        const std::string what = aio::run(body());
        failer.join();
        REQUIRE(what == "failed over there");
    }
}

TEST_CASE("awaiting a concurrent_future that is cancelled throws aio::cancelled_error") {
    SECTION("cancelled already") {
        aio::concurrent_future<int> f;
        f.cancel();
        std::atomic<bool> saw_cancel{false};
        auto body = [&]() -> aio::task<bool> {
            co_return co_await expect_throws<aio::cancelled_error>(await_future(f, saw_cancel));
        };
        REQUIRE(aio::run(body()));
        REQUIRE(saw_cancel);
    }
    SECTION("cancelled later by another thread") {
        aio::concurrent_future<int> f;
        std::atomic<bool> awaiting{false};
        std::thread canceller([f, &awaiting]() mutable {
            for (int i = 0; i < 10'000 && !awaiting; ++i) std::this_thread::sleep_for(1ms);
            f.cancel();
        });
        std::atomic<bool> saw_cancel{false};
        auto body = [&]() -> aio::task<bool> {
            awaiting = true;
            co_return co_await expect_throws<aio::cancelled_error>(await_future(f, saw_cancel));
        };
        const bool threw = aio::run(body());
        canceller.join();
        REQUIRE(threw);
        REQUIRE(saw_cancel);
        REQUIRE(f.cancelled());
    }
}

TEST_CASE("cancelling the task awaiting a concurrent_future cancels the future") {
    aio::concurrent_future<int> f;
    std::atomic<bool> saw_cancel{false};
    std::atomic<int> callbacks{0};
    f.add_done_callback([&](aio::concurrent_future<int>&) { ++callbacks; });
    auto body = [&]() -> aio::task<bool> {
        auto h = aio::create_task(await_future(f, saw_cancel));
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        REQUIRE_FALSE(h.done());
        REQUIRE(h.cancel());
        const bool threw = co_await expect_throws<aio::cancelled_error>(h);
        REQUIRE(h.cancelled());
        co_return threw;
    };
    REQUIRE(aio::run(body()));
    REQUIRE(saw_cancel);
    REQUIRE(f.cancelled());
    REQUIRE(callbacks == 1);
    REQUIRE_FALSE(f.set_result(1));  // too late: the producer finds it cancelled
}

TEST_CASE("a task awaiting a concurrent_future that another thread is about to complete can still be cancelled") {
    // The producer and the cancel race; either way the await ends and nothing leaks.
    for (int round = 0; round < 50; ++round) {
        aio::concurrent_future<int> f;
        std::atomic<bool> awaiting{false};
        std::thread producer([f, &awaiting]() mutable {
            for (int i = 0; i < 10'000 && !awaiting; ++i) std::this_thread::yield();
            f.set_result(1);
        });
        std::atomic<bool> saw_cancel{false};
        auto body = [&]() -> aio::task<int> {
            auto h = aio::create_task(await_future(f, saw_cancel));
            co_await aio::sleep(0s);
            awaiting = true;
            co_await aio::sleep(0s);
            h.cancel();
            try {
                co_return co_await h;
            } catch (const aio::cancelled_error&) {
                co_return -1;
            }
        };
        const int r = aio::run(body());
        producer.join();
        INFO("round " << round);
        REQUIRE((r == 1 || r == -1));
        REQUIRE(f.done());
    }
}

TEST_CASE("two tasks awaiting one concurrent_future both get its value") {
    aio::concurrent_future<std::string> f;
    std::thread completer;
    auto body = [&]() -> aio::task<std::string> {
        auto a = aio::create_task(aio::wrap_future(f));
        auto b = aio::create_task(aio::wrap_future(f));
        co_await aio::sleep(0s);
        completer = std::thread([f]() mutable { f.set_result("shared"); });
        co_return co_await a + "/" + co_await b;
    };
    const std::string r = aio::run(body());
    completer.join();
    REQUIRE(r == "shared/shared");
}

TEST_CASE("awaiting a concurrent_future of a move-only value moves it into the task") {
    aio::concurrent_future<std::unique_ptr<int>> f;
    std::thread completer([f]() mutable { f.set_result(std::make_unique<int>(17)); });
    auto body = [&]() -> aio::task<int> {
        std::unique_ptr<int> p = co_await aio::wrap_future(f);
        co_return p ? *p : -1;
    };
    const int v = aio::run(body());
    completer.join();
    REQUIRE(v == 17);
    REQUIRE_THROWS_AS(f.result(), aio::invalid_state_error);  // moved out already
}

TEST_CASE("awaiting a concurrent_future<void> ends when another thread completes it") {
    aio::concurrent_future<void> f;
    std::atomic<bool> awaiting{false};
    std::thread completer([f, &awaiting]() mutable {
        for (int i = 0; i < 10'000 && !awaiting; ++i) std::this_thread::sleep_for(1ms);
        f.set_result();
    });
    auto body = [&]() -> aio::task<int> {
        awaiting = true;
        co_await aio::wrap_future(f);
        co_return 1;
    };
    REQUIRE(aio::run(body()) == 1);
    completer.join();
}

TEST_CASE("awaiting a std::future from std::async gives its value, or its exception") {
    auto body = []() -> aio::task<int> {
        std::future<int> value = std::async(std::launch::async, [] {
            std::this_thread::sleep_for(2ms);
            return 9;
        });
        const int v = co_await aio::wrap_future(std::move(value));
        std::future<int> failure = std::async(std::launch::async, []() -> int { throw boom("async failed"); });
        try {
            co_await aio::wrap_future(std::move(failure));
        } catch (const boom& e) {
            REQUIRE(std::string(e.what()) == "async failed");
            co_return v;
        }
        co_return -1;
    };
    REQUIRE(aio::run(body()) == 9);
}

TEST_CASE("awaiting a std::future of a std::promise that another thread keeps, while the loop runs") {
    std::promise<std::string> promise;
    std::future<std::string> future = promise.get_future();
    std::atomic<int> iterations{0};
    std::atomic<bool> stop{false};
    std::thread keeper([&] {
        wait_for_iterations(iterations, 5);
        promise.set_value("kept");
    });
    auto body = [&]() -> aio::task<std::string> {
        auto counter = aio::create_task(count_iterations(iterations, stop));
        std::string v = co_await aio::wrap_future(std::move(future));
        stop = true;
        REQUIRE(co_await counter >= 5);
        co_return v;
    };
    const std::string r = aio::run(body());
    keeper.join();
    REQUIRE(r == "kept");
}

TEST_CASE("awaiting a std::future<void> whose promise another thread fails rethrows the exception") {
    std::promise<void> promise;
    std::future<void> future = promise.get_future();
    std::thread keeper([&] {
        std::this_thread::sleep_for(2ms);
        promise.set_exception(std::make_exception_ptr(boom("promise broken")));
    });
    auto body = [&]() -> aio::task<std::string> {
        try {
            co_await aio::wrap_future(std::move(future));
        } catch (const boom& e) {
            co_return e.what();
        }
        co_return "no error";
    };
    const std::string r = aio::run(body());
    keeper.join();
    REQUIRE(r == "promise broken");
}

TEST_CASE("cancelling a task awaiting a std::future ends the await, and the worker finishes once the future is ready") {
    std::promise<int> promise;
    std::future<int> future = promise.get_future();
    auto body = [&]() -> aio::task<bool> {
        auto h = aio::create_task(aio::wrap_future(std::move(future)));
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        REQUIRE(h.cancel());
        const bool threw = co_await expect_throws<aio::cancelled_error>(h);
        promise.set_value(1);  // lets the default executor's worker go, for aio::run's shutdown
        co_return threw;
    };
    REQUIRE(aio::run(body()));
}

TEST_CASE("awaiting an invalid std::future throws aio::invalid_state_error") {
    auto body = []() -> aio::task<bool> {
        std::future<int> empty;
        co_return co_await expect_throws<aio::invalid_state_error>(aio::wrap_future(std::move(empty)));
    };
    REQUIRE(aio::run(body()));
}

TEST_CASE("gather of several wrap_future tasks returns the values in argument order") {
    std::vector<aio::concurrent_future<int>> futures(4);
    std::atomic<bool> awaiting{false};
    // Completed last first.
    std::thread completer([futures, &awaiting]() mutable {
        for (int i = 0; i < 10'000 && !awaiting; ++i) std::this_thread::sleep_for(1ms);
        for (int i = 3; i >= 0; --i) futures[i].set_result(i * 10);
    });
    auto body = [&]() -> aio::task<std::tuple<int, int, int, int>> {
        awaiting = true;
        co_return co_await aio::gather(aio::wrap_future(futures[0]), aio::wrap_future(futures[1]),
                                       aio::wrap_future(futures[2]), aio::wrap_future(futures[3]));
    };
    const auto r = aio::run(body());
    completer.join();
    REQUIRE(r == std::make_tuple(0, 10, 20, 30));
}

TEST_CASE("gather of a vector of wrap_future tasks, one of them a std::future") {
    constexpr int n = 8;
    std::vector<aio::concurrent_future<int>> futures(n);
    std::promise<int> promise;
    std::future<int> from_promise = promise.get_future();
    std::thread completer([futures, &promise]() mutable {
        for (int i = 0; i < n; ++i) futures[i].set_result(i);
        promise.set_value(100);
    });
    auto body = [&]() -> aio::task<int> {
        std::vector<aio::task<int>> tasks;
        for (auto& f : futures) tasks.push_back(aio::wrap_future(f));
        tasks.push_back(aio::wrap_future(std::move(from_promise)));
        const std::vector<int> values = co_await aio::gather(std::move(tasks));
        int sum = 0;
        for (int v : values) sum += v;
        REQUIRE(values.size() == n + 1);
        REQUIRE(values.back() == 100);
        co_return sum;
    };
    const int sum = aio::run(body());
    completer.join();
    REQUIRE(sum == n * (n - 1) / 2 + 100);
}

TEST_CASE("a task awaiting a concurrent_future on a loop that closes lets go of it, and completing it later is harmless") {
    aio::concurrent_future<int> f;
    std::atomic<bool> saw_cancel{false};
    {
        aio::event_loop loop;
        auto body = [&]() -> aio::task<int> {
            loop.create_task(await_future(f, saw_cancel));
            co_await aio::sleep(0s);
            co_await aio::sleep(0s);
            co_return 0;
        };
        REQUIRE(loop.run_until_complete(body()) == 0);
        loop.close();  // the awaiting frame is destroyed; its done callback stays on the future
    }
    std::thread completer([f]() mutable { f.set_result(1); });  // runs that callback on another thread
    completer.join();
    REQUIRE(f.result() == 1);
    REQUIRE_FALSE(saw_cancel);  // a destroyed frame is not resumed
}

TEST_CASE("closing a loop whose task awaits a std::future waits for the default executor's worker, which the promise lets go") {
    std::promise<int> promise;
    std::future<int> future = promise.get_future();
    std::atomic<bool> closing{false};
    std::atomic<bool> value_set{false};
    std::thread keeper([&] {
        for (int i = 0; i < 10'000 && !closing; ++i) std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(5ms);
        value_set = true;
        promise.set_value(3);
    });
    {
        aio::event_loop loop;
        auto body = [&]() -> aio::task<int> {
            loop.create_task(aio::wrap_future(std::move(future)));
            co_await aio::sleep(0s);
            co_await aio::sleep(0s);
            co_return 0;
        };
        REQUIRE(loop.run_until_complete(body()) == 0);
        closing = true;
        loop.close();  // joins the worker blocked in get(): it returns only once the promise is kept
        REQUIRE(value_set);
    }
    keeper.join();
}

TEST_CASE("a wrap_future awaiter that went away does not take the move-only value from a later reader") {
    aio::concurrent_future<std::unique_ptr<int>> f;
    {
        aio::event_loop loop;
        loop.run_until_complete([&]() -> aio::task<> {
            (void)aio::create_task(aio::wrap_future(f));  // awaits; destroyed with the loop
            co_await aio::sleep(0s);
        }());
    }  // the loop closes: that await is gone, its done callback stays on the future
    f.set_result(std::make_unique<int>(8));
    auto body = [&]() -> aio::task<int> {
        std::unique_ptr<int> p = co_await aio::wrap_future(f);
        co_return *p;
    };
    REQUIRE(aio::run(body()) == 8);
}

TEST_CASE("wrap_future of an rvalue future moves the value; of an lvalue, copies it") {
    aio::concurrent_future<std::string> f;
    f.set_result("text");
    auto body = [&]() -> aio::task<std::string> {
        std::string a = co_await aio::wrap_future(f);
        std::string b = co_await aio::wrap_future(aio::concurrent_future<std::string>(f));
        co_return a + "/" + b;
    };
    REQUIRE(aio::run(body()) == "text/text");
    REQUIRE_THROWS_AS(f.result(), aio::invalid_state_error);  // the rvalue's await moved it out
}
