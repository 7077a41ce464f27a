// Timer precision: how late a 1 ms sleep wakes up (asyncio's `await asyncio.sleep(0.001)`).
//
// Measured: one task sleeps 1 ms M times in a row (M = 1000 by default), timing
// each sleep with steady_clock from just before the co_await to just after it
// resumes; oversleep = measured − 1 ms. Counters: median_us, p99_us (and max_us),
// in microseconds. The loop is otherwise idle, so the figure is the cost of
// blocking in the kernel and waking up through the loop:
//   aio:  co_await aio::sleep(1ms);
//   asio: steady_timer::expires_after(1ms) + co_await async_wait(use_awaitable).
// Wall-clock results depend on the machine's load; compare.py runs each side in
// its own process, one after the other.

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <vector>

#include "support.hpp"

namespace {

using std::chrono::steady_clock;

constexpr auto nominal = std::chrono::milliseconds(1);

double oversleep_us(steady_clock::time_point start, steady_clock::time_point end) {
    return std::chrono::duration<double, std::micro>(end - start - nominal).count();
}

// ---- aio

aio::task<std::vector<double>> aio_sleep_many(std::int64_t m) {
    std::vector<double> samples;
    samples.reserve(static_cast<std::size_t>(m));
    for (std::int64_t i = 0; i < m; ++i) {
        const auto start = steady_clock::now();
        co_await aio::sleep(nominal);
        samples.push_back(oversleep_us(start, steady_clock::now()));
    }
    co_return samples;
}

void BM_aio_oversleep(benchmark::State& state) {
    std::vector<double> samples;
    for (auto _ : state) samples = aio::run(aio_sleep_many(state.range(0)));
    aio_bench::report_oversleep(state, samples);
}

// ---- asio

asio::awaitable<std::vector<double>> asio_sleep_many(std::int64_t m) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::vector<double> samples;
    samples.reserve(static_cast<std::size_t>(m));
    for (std::int64_t i = 0; i < m; ++i) {
        const auto start = steady_clock::now();
        timer.expires_after(nominal);
        co_await timer.async_wait(asio::use_awaitable);
        samples.push_back(oversleep_us(start, steady_clock::now()));
    }
    co_return samples;
}

void BM_asio_oversleep(benchmark::State& state) {
    std::vector<double> samples;
    for (auto _ : state) samples = aio_bench::asio_run(asio_sleep_many(state.range(0)));
    aio_bench::report_oversleep(state, samples);
}

}  // namespace

// 1000 sleeps is the scenario; 100 is compare.py --quick's smoke size.
BENCHMARK(BM_aio_oversleep)->Arg(1000)->Arg(100)->Iterations(1)->UseRealTime();
BENCHMARK(BM_asio_oversleep)->Arg(1000)->Arg(100)->Iterations(1)->UseRealTime();

BENCHMARK_MAIN();
