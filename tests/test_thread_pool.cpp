// aio::thread_pool: every job runs once, workers start lazily and never exceed
// max_workers, shutdown refuses new jobs (dropping them) and waits for the queued ones,
// join_for, running_origins and the default size — checked against what
// concurrent.futures.ThreadPoolExecutor does.
//
// No timing is measured: concurrency is observed with counters, waits are bounded.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/executor.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/thread_pool.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/threads.hpp"
#include "support/steps.hpp"

using namespace std::chrono_literals;
using aio_test::boom;
using aio_test::counted;
using aio_test::eventually;
using aio_test::gate;

namespace {

// A job made by hand, as an executor sees one: `fn` runs on the worker; destroyed
// without running, it counts a drop.
template <class F>
struct test_job final : aio::detail::job_node {
    F fn;
    std::atomic<int>* drops;
    test_job(F f, std::atomic<int>* d) : fn(std::move(f)), drops(d) {
        run = [](aio::detail::job_node* n) noexcept {
            auto* self = static_cast<test_job*>(n);
            self->fn();
            delete self;
        };
        drop = [](aio::detail::job_node* n) noexcept {
            auto* self = static_cast<test_job*>(n);
            if (self->drops) ++*self->drops;
            delete self;
        };
    }
};

template <class F>
aio::job make_job(F f, std::atomic<int>* drops = nullptr) {
    return aio::job(new test_job<F>(std::move(f), drops));
}

// How many jobs run at once now, and the most that ever did.
struct concurrency {
    std::atomic<int> now{0};
    std::atomic<int> peak{0};
    void enter() {
        const int n = ++now;
        int p = peak.load();
        while (n > p && !peak.compare_exchange_weak(p, n)) {
        }
    }
    void leave() { --now; }
};

// The ids of the threads that ran jobs.
struct thread_ids {
    std::mutex mutex;
    std::set<std::thread::id> ids;
    void add() {
        std::lock_guard lock(mutex);
        ids.insert(std::this_thread::get_id());
    }
    std::size_t size() {
        std::lock_guard lock(mutex);
        return ids.size();
    }
};

// The threads of this process, as Linux lists them.
std::size_t threads_in_process() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a thread pool runs every job submitted from several threads exactly once") {
    constexpr int submitters = 4;
    constexpr int per_submitter = 2'500;
    std::vector<std::atomic<int>> runs(submitters * per_submitter);
    concurrency active;
    {
        aio::thread_pool pool(4);
        std::vector<std::thread> threads;
        std::atomic<int> ready{0};
        for (int s = 0; s < submitters; ++s) {
            threads.emplace_back([&, s] {
                ++ready;
                while (ready < submitters) std::this_thread::yield();
                for (int i = 0; i < per_submitter; ++i) {
                    pool.submit(make_job([&, slot = s * per_submitter + i] {
                        active.enter();
                        ++runs[slot];
                        active.leave();
                    }));
                }
            });
        }
        for (auto& t : threads) t.join();
        pool.shutdown(true);
        REQUIRE(pool.pending() == 0);
    }
    for (std::size_t i = 0; i < runs.size(); ++i) {
        INFO("job " << i);
        REQUIRE(runs[i] == 1);
    }
    REQUIRE(active.peak >= 1);
    REQUIRE(active.peak <= 4);
}

TEST_CASE("a pool of one worker runs its jobs one at a time in the order they were submitted") {
    std::vector<int> order;  // the one worker's; read after shutdown joined it
    concurrency active;
    aio::thread_pool pool(1);
    for (int i = 0; i < 100; ++i) {
        pool.submit(make_job([&, i] {
            active.enter();
            order.push_back(i);
            active.leave();
        }));
    }
    pool.shutdown(true);
    std::vector<int> expected(100);
    for (int i = 0; i < 100; ++i) expected[i] = i;
    REQUIRE(order == expected);
    REQUIRE(active.peak == 1);
}

TEST_CASE("a thread pool starts no thread until a job arrives, and reuses an idle worker") {
    const std::size_t before = threads_in_process();
    aio::thread_pool pool(8);
    REQUIRE(threads_in_process() == before);
    REQUIRE(pool.pending() == 0);
    REQUIRE(pool.running_origins().empty());

    // One job at a time, each submitted once the last has finished: the first worker,
    // idle by then, runs them all.
    thread_ids ids;
    std::atomic<int> ran{0};
    for (int i = 0; i < 20; ++i) {
        pool.submit(make_job([&] {
            ids.add();
            ++ran;
        }));
        REQUIRE(eventually([&] { return pool.pending() == 0; }));
    }
    REQUIRE(ran == 20);
    REQUIRE(ids.size() == 1);
    REQUIRE(threads_in_process() > before);  // (a sanitizer may start a thread of its own with the first)
}

TEST_CASE("a thread pool never runs more than max_workers jobs at once, and starts that many when jobs wait") {
    gate g;
    concurrency active;
    thread_ids ids;
    std::atomic<int> finished{0};
    aio::thread_pool pool(3);
    REQUIRE(pool.max_workers() == 3);
    for (int i = 0; i < 12; ++i) {
        pool.submit(make_job([&] {
            active.enter();
            ids.add();
            g.wait();
            active.leave();
            ++finished;
        }));
    }
    // Three workers take three jobs; the other nine wait in the queue.
    REQUIRE(eventually([&] { return active.now == 3; }));
    REQUIRE(pool.pending() == 12);
    REQUIRE(pool.running_origins().size() == 3);
    g.open();
    pool.shutdown(true);
    REQUIRE(finished == 12);
    REQUIRE(active.peak == 3);
    REQUIRE(ids.size() == 3);
}

TEST_CASE("a thread pool with max_workers 0 is rejected with std::invalid_argument") {
    REQUIRE_THROWS_AS(aio::thread_pool(0), std::invalid_argument);
}

TEST_CASE("submit after shutdown throws aio::runtime_error and drops the job, freeing what it holds once") {
    counted::reset();
    std::atomic<int> ran{0};
    std::atomic<int> drops{0};
    aio::thread_pool pool(2);
    pool.shutdown();
    REQUIRE_THROWS_AS(pool.submit(make_job([&ran, held = counted(1)] { ++ran; }, &drops)), aio::runtime_error);
    REQUIRE(ran == 0);
    REQUIRE(drops == 1);
    REQUIRE(counted::alive() == 0);
    // shutdown is idempotent, and the pool still refuses.
    pool.shutdown(true);
    REQUIRE_THROWS_AS(pool.submit(make_job([&ran] { ++ran; }, &drops)), aio::runtime_error);
    REQUIRE(drops == 2);
    REQUIRE(ran == 0);
}

TEST_CASE("run_in_executor on a pool that was shut down gives the awaiting task aio::runtime_error") {
    std::atomic<bool> ran{false};
    aio::thread_pool pool(2);
    pool.shutdown();
    aio::event_loop loop;
    auto body = [&]() -> aio::task<std::string> {
        try {
            co_await loop.run_in_executor(pool, [&] {
                ran = true;
                return 1;
            });
        } catch (const aio::runtime_error& e) {
            co_return e.what();
        }
        co_return "no error";
    };
    const std::string what = loop.run_until_complete(body());
    INFO(what);
    REQUIRE(contains(what, "shutdown"));
    REQUIRE_FALSE(ran);
    // The dropped job's node came back to the loop and let it go: nothing keeps the
    // loop awake, and it still runs.
    REQUIRE(loop.run_until_complete(aio_test::number(5, 1)) == 5);
    loop.close();
}

TEST_CASE("a job an executor drops without running it gives the awaiting task aio::runtime_error") {
    struct dropping_executor {
        int submitted = 0;
        void submit(aio::job j) {
            ++submitted;
            REQUIRE(static_cast<bool>(j));
            REQUIRE(j.origin() == "dropper");
        }  // j is destroyed here, unrun
    } executor;
    static_assert(aio::executor<dropping_executor>);
    aio::event_loop loop;
    bool ran = false;
    auto dropper = [&]() -> aio::task<std::string> {
        try {
            co_await loop.run_in_executor(executor, [&] { ran = true; });
        } catch (const aio::runtime_error& e) {
            co_return e.what();
        }
        co_return "no error";
    };
    auto body = [&]() -> aio::task<std::string> { co_return co_await loop.create_task(dropper(), "dropper"); };
    const std::string what = loop.run_until_complete(body());
    INFO(what);
    REQUIRE(contains(what, "dropped"));
    REQUIRE(executor.submitted == 1);
    REQUIRE_FALSE(ran);
    loop.close();
}

TEST_CASE("run_in_executor on a pool gives the awaiting task the job's value or its exception") {
    aio::thread_pool pool(2);
    aio::event_loop loop;
    const auto loop_thread = std::this_thread::get_id();
    auto body = [&]() -> aio::task<int> {
        const std::thread::id worker = co_await loop.run_in_executor(pool, [] { return std::this_thread::get_id(); });
        REQUIRE(worker != loop_thread);
        const int sum = co_await loop.run_in_executor(pool, [](int a, int b) { return a + b; }, 40, 2);
        try {
            co_await loop.run_in_executor(pool, [] { throw boom("in the pool"); });
        } catch (const boom& e) {
            REQUIRE(std::string(e.what()) == "in the pool");
            co_return sum;
        }
        co_return -1;
    };
    REQUIRE(loop.run_until_complete(body()) == 42);
    loop.close();
}

TEST_CASE("shutdown(false) returns at once and shutdown(true) waits for the jobs still queued") {
    gate g;
    std::atomic<bool> first_started{false};
    std::atomic<int> ran{0};
    aio::thread_pool pool(1);
    pool.submit(make_job([&] {
        first_started = true;
        g.wait();
        ++ran;
    }));
    for (int i = 0; i < 4; ++i) pool.submit(make_job([&] { ++ran; }));
    REQUIRE(eventually([&] { return first_started.load(); }));

    pool.shutdown(false);  // the first job is still blocked: this must not wait for it
    REQUIRE(ran == 0);
    REQUIRE(pool.pending() == 5);
    REQUIRE_THROWS_AS(pool.submit(make_job([&] { ++ran; })), aio::runtime_error);

    std::atomic<bool> returned{false};
    std::atomic<int> ran_when_returned{-1};
    std::thread closer([&] {
        pool.shutdown(true);
        ran_when_returned = ran.load();
        returned = true;
    });
    REQUIRE_FALSE(returned);  // it cannot return while the first job is blocked
    g.open();
    closer.join();
    REQUIRE(returned);
    REQUIRE(ran_when_returned == 5);  // every queued job ran before shutdown(true) returned
}

TEST_CASE("destroying a thread pool waits for its running and queued jobs") {
    std::atomic<int> ran{0};
    {
        aio::thread_pool pool(2);
        for (int i = 0; i < 6; ++i) {
            pool.submit(make_job([&] {
                std::this_thread::sleep_for(2ms);
                ++ran;
            }));
        }
    }
    REQUIRE(ran == 6);
}

TEST_CASE("join_for returns false while a job runs and true once every worker has finished") {
    gate g;
    std::atomic<bool> started{false};
    aio::thread_pool pool(2);
    pool.submit(make_job([&] {
        started = true;
        g.wait();
    }));
    REQUIRE(eventually([&] { return started.load(); }));
    REQUIRE_FALSE(pool.join_for(20ms));
    REQUIRE(pool.pending() == 1);
    // join_for shuts the pool down, whatever it returns.
    REQUIRE_THROWS_AS(pool.submit(make_job([] {})), aio::runtime_error);
    g.open();
    REQUIRE(pool.join_for(30s));
    REQUIRE(pool.pending() == 0);
    REQUIRE(pool.join_for(0ms));  // nothing left: at once
}

TEST_CASE("join_for on a pool that never started a worker returns true at once") {
    aio::thread_pool pool(4);
    REQUIRE(pool.join_for(0ms));
    REQUIRE_THROWS_AS(pool.submit(make_job([] {})), aio::runtime_error);
}

TEST_CASE("running_origins names the task that submitted each running job") {
    gate g;
    std::atomic<int> started{0};
    aio::thread_pool pool(4);
    aio::event_loop loop;
    auto blocked = [&] {
        ++started;
        g.wait();
        return 1;
    };
    auto submitter = [&]() -> aio::task<int> { co_return co_await loop.run_in_executor(pool, blocked); };
    std::vector<std::string> origins;
    std::string unnamed_name;
    auto body = [&]() -> aio::task<int> {
        auto named = aio::create_task(submitter(), "fetcher");
        auto unnamed = aio::create_task(submitter());
        unnamed_name = unnamed.name();
        for (int i = 0; i < 10'000 && started < 2; ++i) co_await aio::sleep(1ms);
        origins = pool.running_origins();
        g.open();
        co_return co_await named + co_await unnamed;
    };
    REQUIRE(loop.run_until_complete(body()) == 2);
    std::sort(origins.begin(), origins.end());
    REQUIRE(unnamed_name == "Task-2");  // the main task is Task-1; a named task takes no number
    REQUIRE(origins == std::vector<std::string>{"Task-2", "fetcher"});
    pool.shutdown(true);
    REQUIRE(pool.running_origins().empty());
    loop.close();
}

TEST_CASE("running_origins shows a job submitted from outside any task as (unknown)") {
    gate g;
    std::atomic<bool> started{false};
    aio::thread_pool pool(1);
    pool.submit(make_job([&] {
        started = true;
        g.wait();
    }));
    REQUIRE(eventually([&] { return started.load(); }));
    REQUIRE(pool.running_origins() == std::vector<std::string>{"(unknown)"});
    g.open();
    pool.shutdown(true);
    REQUIRE(pool.running_origins().empty());
}

TEST_CASE("default_max_workers is min(32, cores + 4), as in concurrent.futures, and is a pool's default") {
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    REQUIRE(aio::thread_pool::default_max_workers() == std::min<std::size_t>(32, cores + 4));
    aio::thread_pool pool;
    REQUIRE(pool.max_workers() == aio::thread_pool::default_max_workers());
    aio::event_loop loop;
    REQUIRE(loop.default_executor().max_workers() == aio::thread_pool::default_max_workers());
    loop.close();
}

TEST_CASE("a job may submit another job to its own pool from the worker") {
    std::atomic<int> ran{0};
    std::atomic<int> refused{0};
    aio::thread_pool pool(2);
    pool.submit(make_job([&] {
        ++ran;
        try {
            pool.submit(make_job([&] { ++ran; }));
        } catch (...) {
            ++refused;
        }
    }));
    REQUIRE(eventually([&] { return ran == 2; }));
    pool.shutdown(true);
    REQUIRE(ran == 2);
    REQUIRE(refused == 0);
}

TEST_CASE("cancelling a task awaiting a pool's job ends the await, the job runs on and its result is destroyed once") {
    counted::reset();
    gate g;
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    aio::thread_pool pool(1);
    {
        aio::event_loop loop;
        auto body = [&]() -> aio::task<bool> {
            auto h = aio::create_task(loop.run_in_executor(pool, [&] {
                started = true;
                g.wait();
                finished = true;
                return counted(5);
            }));
            for (int i = 0; i < 10'000 && !started; ++i) co_await aio::sleep(1ms);
            REQUIRE(h.cancel());
            bool cancelled = false;
            try {
                co_await h;
            } catch (const aio::cancelled_error&) {
                cancelled = true;
            }
            REQUIRE_FALSE(finished);  // the await ended before the job did
            g.open();
            // The job's result comes back to nobody; the loop frees it.
            for (int i = 0; i < 10'000 && pool.pending() != 0; ++i) co_await aio::sleep(1ms);
            co_await aio::sleep(0s);
            co_return cancelled;
        };
        REQUIRE(loop.run_until_complete(body()));
        loop.close();
    }
    pool.shutdown(true);
    REQUIRE(finished);
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("a job still running on a pool when its loop closes is freed once it finishes") {
    counted::reset();
    gate g;
    std::atomic<bool> started{false};
    aio::thread_pool pool(1);  // outlives the loop
    {
        aio::event_loop loop;
        auto body = [&]() -> aio::task<int> {
            aio::create_task(loop.run_in_executor(pool, [&] {
                started = true;
                g.wait();
                return counted(7);
            }));
            for (int i = 0; i < 10'000 && !started; ++i) co_await aio::sleep(1ms);
            co_return 0;
        };
        REQUIRE(loop.run_until_complete(body()) == 0);
        loop.close();  // the awaiting task's frame goes; the job still runs
    }  // and the loop is gone
    g.open();
    pool.shutdown(true);  // the job's result is refused by the closed mailbox and freed
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("shutdown(true) called from two threads returns in each only once the queued jobs have run") {
    gate g;
    std::atomic<bool> started{false};
    std::atomic<int> ran{0};
    aio::thread_pool pool(1);
    pool.submit(make_job([&] {
        started = true;
        g.wait();
        ++ran;
    }));
    REQUIRE(eventually([&] { return started.load(); }));
    std::atomic<int> ran_when_first_returned{-1};
    std::atomic<int> ran_when_second_returned{-1};
    std::thread first([&] {
        pool.shutdown(true);
        ran_when_first_returned = ran.load();
    });
    // Once submit is refused, the first shutdown has begun (and taken the workers).
    REQUIRE(eventually([&] {
        try {
            pool.submit(make_job([] {}));
            return false;
        } catch (const aio::runtime_error&) {
            return true;
        }
    }));
    std::thread second([&] {
        pool.shutdown(true);
        ran_when_second_returned = ran.load();
    });
    // Give a wrong early return the time to show; a correct second call waits here.
    for (int i = 0; i < 200 && ran_when_second_returned < 0; ++i) std::this_thread::sleep_for(1ms);
    g.open();
    first.join();
    second.join();
    REQUIRE(ran_when_first_returned == 1);
    REQUIRE(ran_when_second_returned == 1);
}

TEST_CASE("shutdown(true) or join_for from one of the pool's own workers throws instead of waiting for itself") {
    aio::thread_pool pool(1);
    std::atomic<int> refused{0};
    std::atomic<bool> done{false};
    aio::event_loop loop;
    loop.run_until_complete([&]() -> aio::task<> {
        co_await aio::get_running_loop().run_in_executor(pool, [&] {
            try {
                pool.shutdown(true);
            } catch (const aio::runtime_error&) {
                ++refused;
            }
            try {
                (void)pool.join_for(std::chrono::milliseconds(1));
            } catch (const aio::runtime_error&) {
                ++refused;
            }
            done = true;
        });
    }());
    REQUIRE(done);
    REQUIRE(refused == 2);
}

TEST_CASE("join_for with a timeout of nanoseconds::max() waits for the jobs instead of overflowing") {
    aio::thread_pool pool(1);
    std::atomic<bool> ran{false};
    aio::event_loop loop;
    loop.run_until_complete([&]() -> aio::task<> {
        auto h = aio::create_task(aio::get_running_loop().run_in_executor(pool, [&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            ran = true;
        }));
        co_await aio::sleep(std::chrono::milliseconds(1));
        REQUIRE(pool.join_for(std::chrono::nanoseconds::max()));
        REQUIRE(ran);
        co_await h;
    }());
}
