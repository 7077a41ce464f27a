// Cancellation injected at every suspension point of a task that uses each kind of
// await in turn (sleep, a lazy child, gather, a spawned task's handle, wait_for, a
// timeout scope): whichever point the cancellation lands on, the task ends cancelled
// or completes, no step runs twice, every RAII guard is released, and nothing leaks
// (LeakSanitizer checks the frames).

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/gather.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/timeout.hpp>
#include <aio/wait_for.hpp>

#include <array>
#include <chrono>
#include <string>

#include "support/catch.hpp"
#include "support/counted.hpp"

using namespace std::chrono_literals;

namespace {

constexpr int step_count = 16;

struct probe {
    std::array<int, step_count> ran{};  // how many times each step ran
    int guards = 0;                     // guards alive
    void step(int i) { ++ran[static_cast<std::size_t>(i)]; }
};

struct guard {
    probe& p;
    explicit guard(probe& pr) : p(pr) { ++p.guards; }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { --p.guards; }
};

aio::task<aio_test::counted> child(probe& p, int first_step) {
    guard g(p);
    aio_test::counted local(first_step);
    p.step(first_step);
    co_await aio::sleep(0s);
    p.step(first_step + 1);
    co_return aio_test::counted(first_step);
}

aio::task<> spawned(probe& p) {
    guard g(p);
    co_await aio::sleep(0s);
    co_await aio::sleep(0s);
}

aio::task<int> worker(probe& p) {
    guard g(p);
    p.step(0);
    co_await aio::sleep(0s);
    p.step(1);
    aio_test::counted a = co_await child(p, 2);  // steps 2, 3
    p.step(4);
    auto [b, c] = co_await aio::gather(child(p, 5), child(p, 7));  // steps 5..8
    p.step(9);
    auto h = aio::create_task(spawned(p));
    co_await h;
    p.step(10);
    aio_test::counted d = co_await aio::wait_for(child(p, 11), 10s);  // steps 11, 12
    auto limit = aio::timeout(10s);
    aio_test::counted e = co_await limit.run(child(p, 13));  // steps 13, 14
    p.step(15);
    co_return a.value + b.value + c.value + d.value + e.value;
}

}  // namespace

TEST_CASE("a cancellation injected at each suspension point in turn unwinds cleanly, running no step twice") {
    aio_test::counted::reset();
    bool completed_once = false;
    for (int k = 0; k < 40; ++k) {
        probe p;
        bool ended_cancelled = false;
        bool completed = false;
        auto main_task = [&]() -> aio::task<> {
            auto w = aio::create_task(worker(p));
            for (int i = 0; i < k; ++i) co_await aio::sleep(0s);  // let it run k iterations
            w.cancel();
            try {
                const int sum = co_await w;
                REQUIRE(sum == 2 + 5 + 7 + 11 + 13);
                completed = true;
            } catch (const aio::cancelled_error&) {
                ended_cancelled = true;
            }
        };
        aio::run(main_task());
        INFO("cancelled after " << k << " iterations");
        REQUIRE(completed != ended_cancelled);
        for (int n : p.ran) REQUIRE(n <= 1);
        if (completed) {
            for (int n : p.ran) REQUIRE(n == 1);
            completed_once = true;
        }
        REQUIRE(p.guards == 0);
        REQUIRE(aio_test::counted::alive() == 0);
    }
    REQUIRE(completed_once);  // the last injections came after the end: every point was covered
}
