// The classic asyncio demo at scale: N tasks each sleep d. Run one after the
// other they take about N·d; run concurrently on one loop, about d.
//
// Arguments: {N tasks, d in ms} — {100, 10} is the demo, {10000, 100} the same at
// scale (no sequential run for that one: it would take 1000 s).
// Measured: counter wall_ms, the wall time from creating the first task to the
// end of the last one (loop setup and teardown included):
//   blocking: std::this_thread::sleep_for(d), N times in a row;
//   aio:      aio::gather of N tasks each doing co_await aio::sleep(d);
//   asio:     N coroutines co_spawned on one io_context, each waiting d on its own
//             steady_timer; io_context::run() returns when the last one is done.

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

double ms_since(steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(steady_clock::now() - start).count();
}

void BM_blocking_sleep_scale(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    const milliseconds d(state.range(1));
    double wall_ms = 0;
    for (auto _ : state) {
        const auto start = steady_clock::now();
        for (std::int64_t i = 0; i < n; ++i) std::this_thread::sleep_for(d);
        wall_ms = ms_since(start);
    }
    state.counters["wall_ms"] = wall_ms;
}

// ---- aio

aio::task<> aio_sleeper(milliseconds d) { co_await aio::sleep(d); }

aio::task<> aio_sleep_all(std::int64_t n, milliseconds d) {
    std::vector<aio::task<>> sleepers;
    sleepers.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) sleepers.push_back(aio_sleeper(d));
    co_await aio::gather(std::move(sleepers));
}

void BM_aio_sleep_scale(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    const milliseconds d(state.range(1));
    double wall_ms = 0;
    for (auto _ : state) {
        const auto start = steady_clock::now();
        aio::run(aio_sleep_all(n, d));
        wall_ms = ms_since(start);
    }
    state.counters["wall_ms"] = wall_ms;
}

// ---- asio

asio::awaitable<void> asio_sleeper(milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(asio::use_awaitable);
}

void BM_asio_sleep_scale(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    const milliseconds d(state.range(1));
    double wall_ms = 0;
    for (auto _ : state) {
        const auto start = steady_clock::now();
        {
            asio::io_context io(1);
            for (std::int64_t i = 0; i < n; ++i) asio::co_spawn(io, asio_sleeper(d), asio::detached);
            io.run();
        }
        wall_ms = ms_since(start);
    }
    state.counters["wall_ms"] = wall_ms;
}

}  // namespace

BENCHMARK(BM_blocking_sleep_scale)->Args({100, 10})->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_aio_sleep_scale)
    ->Args({100, 10})
    ->Args({10'000, 100})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_asio_sleep_scale)
    ->Args({100, 10})
    ->Args({10'000, 100})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
