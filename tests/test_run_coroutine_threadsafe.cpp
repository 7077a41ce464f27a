// aio::run_coroutine_threadsafe and aio::run_on: a task handed to a loop that runs
// (run_forever) on another thread — its value, exception and cancellation reach the
// concurrent_future, and a cancelled future cancels the task — as asyncio's
// run_coroutine_threadsafe and _chain_future do.
//
// No timing is measured: every wait for the other thread is a bounded poll.

#include <aio/concurrent_future.hpp>
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/run.hpp>
#include <aio/run_coroutine_threadsafe.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/wrap_future.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/counted.hpp"
#include "support/threads.hpp"
#include "support/handlers.hpp"
#include "support/steps.hpp"

using namespace std::chrono_literals;
using aio_test::boom;
using aio_test::counted;
using aio_test::eventually;
using aio_test::expect_throws;
using aio_test::number;

namespace {

// A loop that runs run_forever() on a thread of its own from start() on. The
// destructor stops it through its inbox, joins the thread and closes the loop.
class loop_thread {
public:
    explicit loop_thread(bool start_now = true) {
        if (start_now) start();
    }
    ~loop_thread() {
        stop();
        loop.close();
    }
    loop_thread(const loop_thread&) = delete;
    loop_thread& operator=(const loop_thread&) = delete;

    void start() {
        thread_ = std::thread([this] { loop.run_forever(); });
        id_ = thread_.get_id();
        auto& core = aio::detail::loop_access::core(loop);
        eventually([&] { return core.running_elsewhere(); });
    }
    void stop() {
        if (!thread_.joinable()) return;
        loop.call_soon_threadsafe([this] { loop.stop(); });
        thread_.join();
    }
    std::thread::id id() const { return id_; }

    aio::event_loop loop;

private:
    std::thread thread_;
    std::thread::id id_;
};

aio::task<std::thread::id> thread_of_task() {
    co_await aio::sleep(0s);
    co_return std::this_thread::get_id();
}

aio::task<int> fails_after_a_yield(std::string what) {
    co_await aio::sleep(0s);
    throw boom(what);
}

// Sets `started`, then sleeps until cancelled; `saw_cancel` is set in its catch.
aio::task<int> sleeps_until_cancelled(std::atomic<bool>& started, std::atomic<bool>& saw_cancel) {
    started = true;
    try {
        co_await aio::sleep(24h);
    } catch (const aio::cancelled_error&) {
        saw_cancel = true;
        throw;
    }
    co_return 0;
}

// Never gets past its first line if it never starts; holds a counted in its frame.
aio::task<int> marks_ran(std::atomic<bool>& ran, counted) {
    ran = true;
    co_return 1;
}

aio::task<int> waits_for(std::atomic<bool>& go, int value) {
    for (int i = 0; i < 10'000 && !go; ++i) co_await aio::sleep(1ms);
    co_return value;
}

}  // namespace

TEST_CASE("run_coroutine_threadsafe runs the task on the loop's thread and its value completes the future") {
    loop_thread remote;
    aio::concurrent_future<std::thread::id> f = aio::run_coroutine_threadsafe(thread_of_task(), remote.loop);
    REQUIRE(f.result(30s) == remote.id());
    REQUIRE(f.done());
    REQUIRE_FALSE(f.cancelled());
    REQUIRE(f.exception() == nullptr);

    aio::concurrent_future<int> g = aio::run_coroutine_threadsafe(number(42, 3), remote.loop);
    REQUIRE(g.result(30s) == 42);
}

TEST_CASE("run_coroutine_threadsafe of a void task completes a concurrent_future<void>") {
    loop_thread remote;
    std::atomic<int> ran{0};
    auto body = [](std::atomic<int>& r) -> aio::task<> {
        co_await aio::sleep(0s);
        ++r;
    };
    aio::concurrent_future<void> f = aio::run_coroutine_threadsafe(body(ran), remote.loop);
    REQUIRE_NOTHROW(f.result(30s));
    REQUIRE(ran == 1);
    REQUIRE(f.exception() == nullptr);
}

TEST_CASE("an exception from the task completes the future with it") {
    loop_thread remote;
    aio::concurrent_future<int> f = aio::run_coroutine_threadsafe(fails_after_a_yield("remote failure"), remote.loop);
    REQUIRE_THROWS_AS(f.result(30s), boom);
    REQUIRE_FALSE(f.cancelled());
    std::exception_ptr e = f.exception();
    REQUIRE(e != nullptr);
    try {
        std::rethrow_exception(e);
    } catch (const boom& b) {
        REQUIRE(std::string(b.what()) == "remote failure");
    }
}

TEST_CASE("several threads each handing many tasks to one loop get every result") {
    constexpr int submitters = 4;
    constexpr int per_submitter = 200;
    loop_thread remote;
    std::vector<long> sums(submitters, 0);
    std::vector<int> failures(submitters, 0);
    std::vector<std::thread> threads;
    for (int s = 0; s < submitters; ++s) {
        threads.emplace_back([&, s] {
            std::vector<aio::concurrent_future<int>> futures;
            for (int i = 0; i < per_submitter; ++i)
                futures.push_back(aio::run_coroutine_threadsafe(number(s * per_submitter + i, i % 3), remote.loop));
            for (auto& f : futures) {
                try {
                    sums[s] += f.result(30s);
                } catch (...) {
                    ++failures[s];
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    long total = 0;
    for (int s = 0; s < submitters; ++s) {
        REQUIRE(failures[s] == 0);
        total += sums[s];
    }
    constexpr long n = submitters * per_submitter;
    REQUIRE(total == n * (n - 1) / 2);
}

TEST_CASE("the done callbacks of a run_coroutine_threadsafe future run on the loop's thread") {
    loop_thread remote;
    std::atomic<bool> go{false};
    aio::concurrent_future<int> f = aio::run_coroutine_threadsafe(waits_for(go, 5), remote.loop);
    std::thread::id callback_thread;
    std::atomic<bool> called{false};
    f.add_done_callback([&](aio::concurrent_future<int>&) {
        callback_thread = std::this_thread::get_id();
        called = true;
    });
    go = true;
    REQUIRE(f.result(30s) == 5);
    REQUIRE(eventually([&] { return called.load(); }));
    REQUIRE(callback_thread == remote.id());
}

TEST_CASE("cancelling the future cancels the task on its loop, which sees aio::cancelled_error") {
    loop_thread remote;
    std::atomic<bool> started{false};
    std::atomic<bool> saw_cancel{false};
    aio::concurrent_future<int> f = aio::run_coroutine_threadsafe(sleeps_until_cancelled(started, saw_cancel), remote.loop);
    REQUIRE(eventually([&] { return started.load(); }));
    REQUIRE(f.cancel());
    REQUIRE(f.cancelled());
    REQUIRE_THROWS_AS(f.result(), aio::cancelled_error);
    REQUIRE(eventually([&] { return saw_cancel.load(); }));
    REQUIRE(f.cancel());  // still cancelled: true again
}

TEST_CASE("a task that cancels itself on its loop cancels the future") {
    loop_thread remote;
    std::atomic<bool> saw_cancel{false};
    auto body = [](std::atomic<bool>& saw) -> aio::task<int> {
        aio::current_task().cancel();
        try {
            co_await aio::sleep(0s);
        } catch (const aio::cancelled_error&) {
            saw = true;
            throw;
        }
        co_return 1;
    };
    aio::concurrent_future<int> f = aio::run_coroutine_threadsafe(body(saw_cancel), remote.loop);
    REQUIRE_THROWS_AS(f.result(30s), aio::cancelled_error);
    REQUIRE(f.cancelled());
    REQUIRE(saw_cancel);
}

TEST_CASE("a task cancelled by another task on its loop cancels the future") {
    aio::any_task_handle victim;  // touched only on the loop's thread, which empties it
    loop_thread remote;
    std::atomic<bool> saw_cancel{false};
    auto target = [](aio::any_task_handle& self, std::atomic<bool>& saw) -> aio::task<int> {
        self = aio::current_task();
        try {
            co_await aio::sleep(24h);
        } catch (const aio::cancelled_error&) {
            saw = true;
            throw;
        }
        co_return 1;
    };
    auto canceller = [](aio::any_task_handle& v) -> aio::task<bool> {
        for (int i = 0; i < 10'000 && !v; ++i) co_await aio::sleep(1ms);
        const bool cancelled = v && v.cancel();
        v = {};
        co_return cancelled;
    };
    aio::concurrent_future<int> f = aio::run_coroutine_threadsafe(target(victim, saw_cancel), remote.loop);
    aio::concurrent_future<bool> c = aio::run_coroutine_threadsafe(canceller(victim), remote.loop);
    REQUIRE(c.result(30s));
    REQUIRE_THROWS_AS(f.result(30s), aio::cancelled_error);
    REQUIRE(f.cancelled());
    REQUIRE(saw_cancel);
}

TEST_CASE("a future cancelled before its loop runs keeps the task's body from running") {
    counted::reset();
    std::atomic<bool> ran{false};
    {
        loop_thread remote(false);
        aio::concurrent_future<int> f = aio::run_coroutine_threadsafe(marks_ran(ran, counted(1)), remote.loop);
        REQUIRE(f.cancel());
        remote.start();
        // The loop has taken the post by the time a later one runs.
        aio::concurrent_future<int> later = aio::run_coroutine_threadsafe(number(2), remote.loop);
        REQUIRE(later.result(30s) == 2);
        REQUIRE(f.cancelled());
        REQUIRE_THROWS_AS(f.result(), aio::cancelled_error);
    }
    REQUIRE_FALSE(ran);
    REQUIRE(counted::alive() == 0);  // the frame that never ran was destroyed, once
}

TEST_CASE("a future cancelled while its loop is busy, before the task started, keeps the task's body from running") {
    counted::reset();
    std::atomic<bool> ran{false};
    {
        loop_thread remote;
        std::atomic<bool> busy{false};
        std::atomic<bool> release{false};
        remote.loop.call_soon_threadsafe([&] {
            busy = true;
            for (int i = 0; i < 60'000 && !release; ++i) std::this_thread::sleep_for(1ms);
        });
        REQUIRE(eventually([&] { return busy.load(); }));
        aio::concurrent_future<int> f = aio::run_coroutine_threadsafe(marks_ran(ran, counted(1)), remote.loop);
        REQUIRE(f.cancel());
        release = true;
        aio::concurrent_future<int> later = aio::run_coroutine_threadsafe(number(2), remote.loop);
        REQUIRE(later.result(30s) == 2);
        REQUIRE(f.cancelled());
    }
    REQUIRE_FALSE(ran);
    REQUIRE(counted::alive() == 0);
}

// cpython#121075: result() on the thread of the loop that must complete the future
// would wait forever; aio throws instead.
TEST_CASE("result() on the thread of the loop that must complete the future throws aio::runtime_error instead of deadlocking") {
    auto body = []() -> aio::task<int> {
        aio::concurrent_future<int> f = aio::run_coroutine_threadsafe(number(8, 1), aio::get_running_loop());
        int errors = 0;
        try {
            f.result();
        } catch (const aio::runtime_error&) {
            ++errors;
        }
        try {
            f.result(1s);
        } catch (const aio::runtime_error&) {
            ++errors;
        }
        try {
            f.exception();
        } catch (const aio::runtime_error&) {
            ++errors;
        }
        REQUIRE(errors == 3);
        REQUIRE_FALSE(f.done());
        // Awaiting it there is the way.
        co_return co_await aio::wrap_future(f);
    };
    REQUIRE(aio::run(body()) == 8);
}

TEST_CASE("result() of a done future on its loop's own thread returns the value") {
    auto body = []() -> aio::task<int> {
        aio::concurrent_future<int> f = aio::run_coroutine_threadsafe(number(4), aio::get_running_loop());
        const int v = co_await aio::wrap_future(f);
        REQUIRE(f.done());
        co_return v + f.result();  // done: no wait, no error
    };
    REQUIRE(aio::run(body()) == 8);
}

TEST_CASE("run_coroutine_threadsafe on a closed loop throws aio::runtime_error and destroys the task once") {
    counted::reset();
    std::atomic<bool> ran{false};
    {
        aio::event_loop loop;
        loop.close();
        REQUIRE_THROWS_AS(aio::run_coroutine_threadsafe(marks_ran(ran, counted(1)), loop), aio::runtime_error);
    }
    REQUIRE_FALSE(ran);
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("closing a loop while the task is pending cancels the future") {
    std::atomic<bool> started{false};
    std::atomic<bool> saw_cancel{false};
    aio::concurrent_future<int> f;
    {
        loop_thread remote;
        f = aio::run_coroutine_threadsafe(sleeps_until_cancelled(started, saw_cancel), remote.loop);
        REQUIRE(eventually([&] { return started.load(); }));
        REQUIRE_FALSE(f.done());
    }  // stopped, joined, closed: the sleeping frame is destroyed
    REQUIRE(f.cancelled());
    REQUIRE_THROWS_AS(f.result(), aio::cancelled_error);
}

TEST_CASE("closing a loop before the task started cancels the future and destroys the task once") {
    counted::reset();
    std::atomic<bool> ran{false};
    aio::concurrent_future<int> f;
    {
        loop_thread remote(false);
        f = aio::run_coroutine_threadsafe(marks_ran(ran, counted(1)), remote.loop);
    }  // closed without ever running
    REQUIRE(f.cancelled());
    REQUIRE_THROWS_AS(f.result(), aio::cancelled_error);
    REQUIRE_FALSE(ran);
    REQUIRE(counted::alive() == 0);
}

TEST_CASE("run_on awaits a task on a loop on another thread and returns its value") {
    loop_thread remote;
    auto body = [&]() -> aio::task<std::thread::id> {
        co_return co_await aio::run_on(remote.loop, thread_of_task());
    };
    const std::thread::id ran_on = aio::run(body());
    REQUIRE(ran_on == remote.id());
    REQUIRE(ran_on != std::this_thread::get_id());
}

TEST_CASE("run_on rethrows the remote task's exception in the awaiting task") {
    loop_thread remote;
    auto body = [&]() -> aio::task<std::string> {
        try {
            co_await aio::run_on(remote.loop, fails_after_a_yield("over there"));
        } catch (const boom& e) {
            co_return e.what();
        }
        co_return "no error";
    };
    REQUIRE(aio::run(body()) == "over there");
}

TEST_CASE("run_on does not block the awaiting loop while the remote task runs") {
    loop_thread remote;
    std::atomic<bool> go{false};
    auto ticker = [](std::atomic<bool>& g) -> aio::task<int> {
        int ticks = 0;
        for (; ticks < 3; ++ticks) co_await aio::sleep(0s);
        g = true;  // the awaiting loop ran three iterations while run_on waited
        co_return ticks;
    };
    auto body = [&]() -> aio::task<int> {
        auto t = aio::create_task(ticker(go));
        const int remote_value = co_await aio::run_on(remote.loop, waits_for(go, 10));
        co_return remote_value + co_await t;
    };
    REQUIRE(aio::run(body()) == 13);
}

TEST_CASE("run_on between two loops each on its own thread") {
    loop_thread a;
    loop_thread b;
    auto relay = [](aio::event_loop& to) -> aio::task<std::vector<std::thread::id>> {
        std::vector<std::thread::id> ids{std::this_thread::get_id()};
        ids.push_back(co_await aio::run_on(to, thread_of_task()));
        co_return ids;
    };
    aio::concurrent_future<std::vector<std::thread::id>> f = aio::run_coroutine_threadsafe(relay(b.loop), a.loop);
    REQUIRE(f.result(30s) == std::vector<std::thread::id>{a.id(), b.id()});
}

TEST_CASE("cancelling a task awaiting run_on cancels the remote task on its loop") {
    loop_thread remote;
    std::atomic<bool> started{false};
    std::atomic<bool> saw_cancel{false};
    auto body = [&]() -> aio::task<bool> {
        auto h = aio::create_task(aio::run_on(remote.loop, sleeps_until_cancelled(started, saw_cancel)));
        for (int i = 0; i < 10'000 && !started; ++i) co_await aio::sleep(1ms);
        REQUIRE(started);
        REQUIRE(h.cancel());
        const bool cancelled = co_await expect_throws<aio::cancelled_error>(h);
        REQUIRE(h.cancelled());
        co_return cancelled;
    };
    REQUIRE(aio::run(body()));
    REQUIRE(eventually([&] { return saw_cancel.load(); }));
}

TEST_CASE("cancelling the future of a task awaiting run_on cancels both tasks, each on its loop") {
    loop_thread a;
    loop_thread b;
    std::atomic<bool> started{false};
    std::atomic<bool> saw_cancel{false};
    std::atomic<bool> relay_saw_cancel{false};
    auto relay = [](aio::event_loop& to, std::atomic<bool>& s, std::atomic<bool>& inner_saw,
                    std::atomic<bool>& outer_saw) -> aio::task<int> {
        try {
            co_return co_await aio::run_on(to, sleeps_until_cancelled(s, inner_saw));
        } catch (const aio::cancelled_error&) {
            outer_saw = true;
            throw;
        }
    };
    aio::concurrent_future<int> f =
        aio::run_coroutine_threadsafe(relay(b.loop, started, saw_cancel, relay_saw_cancel), a.loop);
    REQUIRE(eventually([&] { return started.load(); }));
    REQUIRE(f.cancel());
    REQUIRE(eventually([&] { return relay_saw_cancel.load() && saw_cancel.load(); }));
    REQUIRE_THROWS_AS(f.result(), aio::cancelled_error);
}

TEST_CASE("a task awaiting run_on gets aio::cancelled_error when the remote loop closes under it") {
    loop_thread remote;
    std::atomic<bool> started{false};
    std::atomic<bool> saw_cancel{false};
    auto body = [&]() -> aio::task<bool> {
        auto h = aio::create_task(aio::run_on(remote.loop, sleeps_until_cancelled(started, saw_cancel)));
        for (int i = 0; i < 10'000 && !started; ++i) co_await aio::sleep(1ms);
        REQUIRE(started);
        remote.stop();  // blocks this loop for a moment: the remote one is idle
        remote.loop.close();  // destroys the remote frame: its future is cancelled
        const bool threw = co_await expect_throws<aio::cancelled_error>(h);
        REQUIRE(h.cancelled());
        co_return threw;
    };
    REQUIRE(aio::run(body()));
    REQUIRE_FALSE(saw_cancel);  // the remote frame was destroyed, not resumed
}
