// The loop's timer queue under load, in two forms, both with N = 100,000 distinct
// delays:
//   timers:         arming and firing N timers — asyncio's `loop.call_later(d, cb)`
//                   N times, then run until all fired;
//   sleeping_tasks: the idiomatic coroutine form of the same — N tasks, task i doing
//                   `await asyncio.sleep(d_i)` — timers plus one task per timer.
//
// Delays: timer i waits ((i * 7919) % N) ns. 7919 is prime and does not divide N,
// so the delays are distinct and arrive shuffled (a heap must really sort them),
// and all lie below N ns (100 µs for N = 100,000) — less than arming them takes,
// so the loop finds them due instead of sleeping: the figure is the queue's cost.
//
// timers. Measured: one iteration builds a fresh loop, arms the N timers, runs the
// loop until the last one fired and tears it down; reported per timer (counter
// per_timer). Both sides allocate one object per timer:
//   aio:  loop.call_later(d, callback), callback counting down and stopping the
//         loop at the last one (the returned aio::timer_handle is dropped);
//   asio: one asio::steady_timer per timer (constructed inside the measured
//         region, in a vector whose storage is reserved once outside it),
//         expires_after(d) + async_wait(callback), io_context::run().
//
// sleeping_tasks. Measured: one iteration builds a fresh loop, spawns the N tasks
// from outside it, runs the loop until the last task has ended and tears it down;
// reported per task (counter per_timer, so that the two rows compare directly).
// Each task costs both sides a coroutine frame (the timer lives in it), a first
// step through the scheduler, arming the timer, its wake-up and the frame's end:
//   aio:  loop.create_task(sleeper(d)) N times, the handles dropped; the sleeper
//         does co_await aio::sleep(d) and counts down, the last one stopping the
//         loop; run_forever(). No main task, no gather, no awaited handles — the
//         least machinery besides the sleep itself, and the shape of asio's side
//         (asyncio's version gathers the tasks, its idiomatic form);
//   asio: co_spawn(io, sleeper(d), asio::detached) N times; the sleeper makes a
//         steady_timer on its executor, expires_after(d), co_awaits
//         async_wait(use_awaitable) and counts down; io_context::run() returns
//         when the last one has ended.

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "support.hpp"

namespace {

std::chrono::nanoseconds delay_of(std::int64_t i, std::int64_t n) { return std::chrono::nanoseconds((i * 7919) % n); }

// ---- timers: aio

void BM_aio_timers(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        aio::event_loop loop;
        std::int64_t left = n;
        for (std::int64_t i = 0; i < n; ++i) {
            (void)loop.call_later(delay_of(i, n), [&] {
                if (--left == 0) loop.stop();
            });
        }
        loop.run_forever();
        if (left != 0) {
            state.SkipWithError("timers did not all fire");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_timer");
}

// ---- timers: asio

void BM_asio_timers(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    std::vector<asio::steady_timer> timers;
    timers.reserve(static_cast<std::size_t>(n));
    for (auto _ : state) {
        asio::io_context io(1);
        std::int64_t left = n;
        for (std::int64_t i = 0; i < n; ++i) {
            asio::steady_timer& timer = timers.emplace_back(io);
            timer.expires_after(delay_of(i, n));
            timer.async_wait([&](const asio::error_code&) { --left; });
        }
        io.run();
        timers.clear();  // before io: a timer must not outlive its io_context
        if (left != 0) {
            state.SkipWithError("timers did not all fire");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_timer");
}

// ---- sleeping_tasks: aio

aio::task<> aio_sleeper(aio::event_loop& loop, std::chrono::nanoseconds d, std::int64_t& left) {
    co_await aio::sleep(d);
    if (--left == 0) loop.stop();
}

void BM_aio_sleeping_tasks(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        aio::event_loop loop;
        std::int64_t left = n;
        for (std::int64_t i = 0; i < n; ++i) (void)loop.create_task(aio_sleeper(loop, delay_of(i, n), left));
        loop.run_forever();
        if (left != 0) {
            state.SkipWithError("sleepers did not all wake");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_timer");
}

// ---- sleeping_tasks: asio

asio::awaitable<void> asio_sleeper(std::chrono::nanoseconds d, std::int64_t& left) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(d);
    co_await timer.async_wait(asio::use_awaitable);
    --left;
}

void BM_asio_sleeping_tasks(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        asio::io_context io(1);
        std::int64_t left = n;
        for (std::int64_t i = 0; i < n; ++i) asio::co_spawn(io, asio_sleeper(delay_of(i, n), left), asio::detached);
        io.run();
        if (left != 0) {
            state.SkipWithError("sleepers did not all wake");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_timer");
}

}  // namespace

BENCHMARK(BM_aio_timers)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_timers)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_aio_sleeping_tasks)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_sleeping_tasks)->Arg(100'000)->UseRealTime();

BENCHMARK_MAIN();
