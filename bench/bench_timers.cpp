// Arming and firing N timers with distinct delays — the loop's timer queue under
// load (asyncio's `loop.call_later(d, cb)` N times, then run until all fired).
//
// Delays: timer i waits ((i * 7919) % N) ns. 7919 is prime and does not divide N,
// so the delays are distinct and arrive shuffled (a heap must really sort them),
// and all lie below N ns (100 µs for N = 100,000) — less than arming them takes,
// so the loop finds them due instead of sleeping: the figure is the queue's cost.
//
// Measured: one iteration builds a fresh loop, arms the N timers, runs the loop
// until the last one fired and tears it down; reported per timer (counter
// per_timer). Both sides allocate one object per timer:
//   aio:  loop.call_later(d, callback), callback counting down and stopping the
//         loop at the last one (the returned aio::timer_handle is dropped);
//   asio: one asio::steady_timer per timer (constructed inside the measured
//         region, in a vector whose storage is reserved once outside it),
//         expires_after(d) + async_wait(callback), io_context::run().

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "support.hpp"

namespace {

std::chrono::nanoseconds delay_of(std::int64_t i, std::int64_t n) { return std::chrono::nanoseconds((i * 7919) % n); }

// ---- aio

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

// ---- asio

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

}  // namespace

BENCHMARK(BM_aio_timers)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_timers)->Arg(100'000)->UseRealTime();

BENCHMARK_MAIN();
