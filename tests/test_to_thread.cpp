// aio::to_thread and event_loop::run_in_executor (include/aio/to_thread.hpp,
// event_loop.hpp, detail/executor_call.hpp): blocking work on a worker, its value or
// exception back through the ready queue, cancellation at once, and the default
// executor's shutdown.
#include <aio/create_task.hpp>
#include <aio/event.hpp>
#include <aio/event_loop.hpp>
#include <aio/gather.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/thread_pool.hpp>
#include <aio/to_thread.hpp>
#include <aio/wait_for.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <optional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/threads.hpp"

using namespace std::chrono_literals;

namespace {

// Runs each job inside submit(), on the submitting thread: its result is posted back
// before run_in_executor returns.
struct inline_executor {
    void submit(aio::job j) { std::move(j)(); }
};

// Drops every job without running it.
struct dropping_executor {
    void submit(aio::job j) { (void)std::move(j); }
};

struct refusing_executor {
    void submit(aio::job) { throw std::runtime_error("no room"); }
};

}  // namespace

TEST_CASE("to_thread runs the function on another thread and gives back its value") {
    const auto loop_thread = std::this_thread::get_id();
    auto [value, worker] = aio::run([]() -> aio::task<std::pair<int, std::thread::id>> {
        co_return co_await aio::to_thread([](int a, int b) { return std::pair{a * b, std::this_thread::get_id()}; }, 6, 7);
    }());
    REQUIRE(value == 42);
    REQUIRE(worker != loop_thread);
}

TEST_CASE("to_thread of a function that throws rethrows its exception in the awaiting task") {
    REQUIRE_THROWS_AS(aio::run([]() -> aio::task<> {
                          co_await aio::to_thread([] { throw std::out_of_range("past the end"); });
                      }()),
                      std::out_of_range);
}

TEST_CASE("gathered to_thread calls run in parallel on the default executor") {
    std::atomic<int> running{0}, most{0};
    aio_test::gate all_in;
    auto job = [&] {
        int now = ++running;
        for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
        }
        if (now == 3) all_in.open();
        all_in.wait();  // three at once, or this never returns
        --running;
        return now;
    };
    auto results = aio::run([&]() -> aio::task<std::vector<int>> {
        std::vector<aio::task<int>> calls;
        for (int i = 0; i < 3; ++i) calls.push_back(aio::to_thread(job));
        co_return co_await aio::gather(std::move(calls));
    }());
    REQUIRE(results.size() == 3);
    REQUIRE(most == 3);
}

TEST_CASE("a thousand to_thread calls each give back their own value") {
    auto results = aio::run([]() -> aio::task<std::vector<int>> {
        std::vector<aio::task<int>> calls;
        for (int i = 0; i < 1000; ++i) calls.push_back(aio::to_thread([i] { return i * 3; }));
        co_return co_await aio::gather(std::move(calls));
    }());
    REQUIRE(results.size() == 1000);
    for (int i = 0; i < 1000; ++i) REQUIRE(results[static_cast<std::size_t>(i)] == i * 3);
}

TEST_CASE("to_thread moves move-only arguments in and a move-only result out") {
    auto p = aio::run([]() -> aio::task<std::unique_ptr<int>> {
        co_return co_await aio::to_thread([](std::unique_ptr<int> q) { return std::make_unique<int>(*q + 1); },
                                          std::make_unique<int>(41));
    }());
    REQUIRE(*p == 42);
}

TEST_CASE("cancelling a to_thread await while its job runs ends the await at once; the result is dropped once") {
    aio_test::counted::reset();
    aio_test::gate release;
    std::atomic<bool> job_started{false}, job_done{false};
    {
        aio::event_loop loop;
        bool saw_cancel = false;
        // A coroutine lambda's captures live in the lambda object: it must outlive the task.
        auto body = [&]() -> aio::task<> {
            try {
                co_await aio::to_thread([&] {
                    job_started = true;
                    release.wait();
                    aio_test::counted c;
                    job_done = true;
                    return c;
                });
            } catch (const aio::cancelled_error&) {
                saw_cancel = true;
                throw;
            }
        };
        loop.run_until_complete([&]() -> aio::task<> {
            auto waiter = aio::create_task(body());
            while (!job_started) co_await aio::sleep(1ms);  // the job runs, and blocks
            waiter.cancel();
            try {
                co_await waiter;
            } catch (const aio::cancelled_error&) {
            }
            REQUIRE(saw_cancel);
            REQUIRE_FALSE(job_done);  // the await ended while the job still ran
            release.open();
        }());
        loop.run_until_complete(loop.shutdown_default_executor());  // the job ends; its result comes back to nobody
        REQUIRE(job_done);
    }
    REQUIRE(aio_test::counted::alive() == 0);
}

TEST_CASE("cancelling a run_in_executor await after its job ended but before the result arrived drops the result once") {
    aio_test::counted::reset();
    {
        aio::event_loop loop;
        inline_executor now;
        bool saw_cancel = false;
        auto body = [&]() -> aio::task<> {
            try {
                co_await aio::get_running_loop().run_in_executor(now, [] { return aio_test::counted(); });
            } catch (const aio::cancelled_error&) {
                saw_cancel = true;
                throw;
            }
        };
        loop.run_until_complete([&]() -> aio::task<> {
            auto waiter = aio::create_task(body());
            co_await aio::sleep(0s);  // the waiter ran: its result is posted, not yet taken in
            waiter.cancel();
            try {
                co_await waiter;
            } catch (const aio::cancelled_error&) {
            }
            REQUIRE(saw_cancel);
        }());
    }
    REQUIRE(aio_test::counted::alive() == 0);
}

TEST_CASE("cancelling a task whose run_in_executor result is in but not yet seen still cancels it, and drops the result") {
    aio_test::counted::reset();
    {
        aio::event_loop loop;
        inline_executor now;
        bool saw_cancel = false;
        auto body = [&]() -> aio::task<> {
            try {
                co_await aio::get_running_loop().run_in_executor(now, [] { return aio_test::counted(); });
            } catch (const aio::cancelled_error&) {
                saw_cancel = true;
                throw;
            }
        };
        loop.run_until_complete([&]() -> aio::task<> {
            auto waiter = aio::create_task(body());
            co_await aio::sleep(0s);  // the waiter submits; the result is posted
            co_await aio::sleep(0s);  // the result is taken in and the waiter is woken
            waiter.cancel();          // too late for the hook: the wake-up is queued
            try {
                co_await waiter;
            } catch (const aio::cancelled_error&) {
            }
            REQUIRE(saw_cancel);
        }());
    }
    REQUIRE(aio_test::counted::alive() == 0);
}

TEST_CASE("run_in_executor runs through the executor given, and nullptr means the default one") {
    aio::thread_pool pool(2);
    auto [mine, default_pool] = aio::run([&]() -> aio::task<std::pair<int, int>> {
        auto& loop = aio::get_running_loop();
        int a = co_await loop.run_in_executor(pool, [](int x) { return x + 1; }, 1);
        int b = co_await loop.run_in_executor(nullptr, [] { return 7; });
        co_return std::pair{a, b};
    }());
    REQUIRE(mine == 2);
    REQUIRE(default_pool == 7);
}

TEST_CASE("run_in_executor submits at once; the result can be awaited later") {
    std::atomic<bool> ran{false};
    aio::run([&]() -> aio::task<> {
        auto later = aio::get_running_loop().run_in_executor(nullptr, [&] { ran = true; });
        while (!ran) co_await aio::sleep(1ms);  // running before it is awaited
        co_await std::move(later);
    }());
    REQUIRE(ran);
}

TEST_CASE("a job its executor drops without running it ends the await with aio::runtime_error") {
    dropping_executor drops;
    REQUIRE_THROWS_AS(aio::run([&]() -> aio::task<> {
                          co_await aio::get_running_loop().run_in_executor(drops, [] { return 1; });
                      }()),
                      aio::runtime_error);
}

TEST_CASE("an executor whose submit throws makes run_in_executor throw, and keeps nothing alive") {
    refusing_executor refuses;
    aio::event_loop loop;
    REQUIRE_THROWS_WITH(loop.run_until_complete([&]() -> aio::task<> {
                            (void)aio::get_running_loop().run_in_executor(refuses, [] {});
                            co_return;
                        }()),
                        "no room");
    // Nothing is left that could wake the loop: a wait on nothing is a deadlock again.
    aio::event never_set;
    REQUIRE_THROWS_AS(loop.run_until_complete([&]() -> aio::task<> { co_await never_set.wait(); }()),
                      aio::runtime_error);
}

TEST_CASE("a loop closed while a job of its own pool runs never frees what the worker still uses") {
    aio_test::counted::reset();
    aio::thread_pool pool(1);
    aio_test::gate release;
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    {
        aio::event_loop loop;
        auto body = [&]() -> aio::task<> {
            co_await aio::get_running_loop().run_in_executor(pool, [&] {
                started = true;
                release.wait();
                finished = true;
                return aio_test::counted();
            });
        };
        auto h = loop.create_task(body());
        // Until the job runs: one still queued when the loop closes would never run.
        auto until_started = [&]() -> aio::task<> {
            while (!started) co_await aio::sleep(1ms);
        };
        loop.run_until_complete(until_started());
        REQUIRE_FALSE(h.done());
        loop.close();  // the awaiting frame goes; the job still runs
        REQUIRE(h.cancelled());
    }  // and the loop is gone
    release.open();
    pool.shutdown(true);  // the worker posts to a closed mailbox and frees the call itself
    REQUIRE(finished);
    REQUIRE(aio_test::counted::alive() == 0);
}

TEST_CASE("aio::run waits at shutdown for a job still running on the default executor") {
    std::atomic<bool> finished{false};
    auto body = [&]() -> aio::task<> {
        co_await aio::to_thread([&] {
            std::this_thread::sleep_for(100ms);
            finished = true;
        });
    };
    aio::run([&]() -> aio::task<> {
        (void)aio::create_task(body());
        co_await aio::sleep(10ms);  // main ends with the job running; its task is cancelled
    }());
    REQUIRE(finished);
}

TEST_CASE("shutdown_default_executor past its timeout reports the tasks whose jobs still run, then waits for them") {
    aio_test::gate release;
    std::atomic<bool> finished{false};
    std::vector<std::string> reports;
    aio::event_loop loop;
    loop.set_exception_handler([&](aio::event_loop&, const aio::exception_context& c) {
        reports.push_back(c.message);
        release.open();  // reported: now the job may end
    });
    loop.run_until_complete([&]() -> aio::task<> {
        auto& l = aio::get_running_loop();
        auto h = l.create_task(aio::to_thread([&] {
                                   release.wait();
                                   finished = true;
                               }),
                               "slow-reader");
        co_await aio::sleep(10ms);  // the job is running
        co_await l.shutdown_default_executor(20ms);
        REQUIRE(finished);  // waited for it after the report
        co_await h;
    }());
    REQUIRE(reports.size() == 1);
    REQUIRE(reports[0].find("did not finish joining") != std::string::npos);
    REQUIRE(reports[0].find("slow-reader") != std::string::npos);
    loop.close();
}

TEST_CASE("to_thread after shutdown_default_executor throws aio::runtime_error") {
    aio::event_loop loop;
    loop.run_until_complete([]() -> aio::task<> {
        co_await aio::to_thread([] {});  // the default executor starts
        co_await aio::get_running_loop().shutdown_default_executor();
        bool refused = false;
        try {
            co_await aio::to_thread([] {});
        } catch (const aio::runtime_error&) {
            refused = true;
        }
        REQUIRE(refused);
    }());
}

TEST_CASE("a loop waiting only for a job is alive, not deadlocked") {
    aio::event_loop loop;
    int v = loop.run_until_complete([]() -> aio::task<int> {
        co_return co_await aio::to_thread([] {
            std::this_thread::sleep_for(30ms);
            return 5;
        });
    }());
    REQUIRE(v == 5);
}

TEST_CASE("run_in_executor from a thread other than the running loop's throws aio::runtime_error") {
    aio::event_loop loop;
    std::atomic<bool> checked{false};
    bool threw = false;
    loop.run_until_complete([&]() -> aio::task<> {
        std::thread other([&] {
            try {
                (void)loop.run_in_executor(nullptr, [] {});
            } catch (const aio::runtime_error&) {
                threw = true;
            }
            checked = true;
        });
        while (!checked) co_await aio::sleep(1ms);
        other.join();
    }());
    REQUIRE(threw);
}

TEST_CASE("a job still queued when its await is cancelled never runs, as asyncio's pool skips it") {
    aio::thread_pool pool(1);
    aio_test::gate release;
    std::atomic<int> ran{0};
    aio::event_loop loop;
    auto blocker = [&]() -> aio::task<> {
        co_await aio::get_running_loop().run_in_executor(pool, [&] { release.wait(); });
    };
    auto queued = [&]() -> aio::task<> {
        co_await aio::get_running_loop().run_in_executor(pool, [&] { ++ran; });
    };
    loop.run_until_complete([&]() -> aio::task<> {
        auto first = aio::create_task(blocker());  // holds the only worker
        auto second = aio::create_task(queued());  // waits in the queue behind it
        co_await aio::sleep(0s);
        second.cancel();
        try {
            co_await second;
        } catch (const aio::cancelled_error&) {
        }
        release.open();
        co_await first;
    }());
    pool.shutdown(true);
    REQUIRE(ran == 0);
}

TEST_CASE("a loop on a manual clock waits for a job in real time instead of jumping past its timeout") {
    aio::detail::manual_clock clock;
    aio::event_loop loop(clock);
    int v = loop.run_until_complete([]() -> aio::task<int> {
        co_return co_await aio::wait_for(aio::to_thread([] {
                                             std::this_thread::sleep_for(30ms);
                                             return 9;
                                         }),
                                         10s);
    }());
    REQUIRE(v == 9);
}

TEST_CASE("a second shutdown_default_executor waits for the first one's jobs too") {
    aio_test::gate release;
    std::atomic<bool> finished{false};
    aio::event_loop loop;
    loop.run_until_complete([&]() -> aio::task<> {
        auto& l = aio::get_running_loop();
        auto job = l.create_task(aio::to_thread([&] {
            release.wait();
            finished = true;
        }));
        co_await aio::sleep(1ms);
        auto first = l.create_task(l.shutdown_default_executor());
        co_await aio::sleep(1ms);
        auto second = l.create_task(l.shutdown_default_executor());
        co_await aio::sleep(5ms);
        REQUIRE_FALSE(second.done());  // the job still runs
        release.open();
        co_await second;
        REQUIRE(finished);
        co_await first;
        co_await job;
    }());
}

TEST_CASE("default_executor from a thread other than the running loop's throws and creates no pool") {
    aio::event_loop loop;
    bool threw = false;
    std::atomic<bool> checked{false};
    loop.run_until_complete([&]() -> aio::task<> {
        std::thread other([&] {
            try {
                (void)loop.default_executor();
            } catch (const aio::runtime_error&) {
                threw = true;
            }
            checked = true;
        });
        while (!checked) co_await aio::sleep(1ms);
        other.join();
    }());
    REQUIRE(threw);
}

TEST_CASE("jobs, cross-thread calls and keep-alive tokens leave no descriptor or thread behind") {
    namespace fs = std::filesystem;
    auto descriptors = [] {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
        return n;
    };
    const std::size_t before = descriptors();
    {
        aio::event_loop loop;
        std::optional<aio::event_loop::keep_alive_token> token(loop.keep_alive());
        std::thread poster([&] { loop.call_soon_threadsafe([] {}); });
        poster.join();
        int v = loop.run_until_complete([]() -> aio::task<int> { co_return co_await aio::to_thread([] { return 2; }); }());
        REQUIRE(v == 2);
        loop.run_until_complete(loop.shutdown_default_executor());
        loop.close();
        token.reset();  // the last reference to the loop's mailbox, and its descriptor
    }
    REQUIRE(descriptors() == before);
}
