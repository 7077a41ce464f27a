// co_await of a lazy child coroutine that returns an int, in a loop inside one
// coroutine — asyncio's `await child()`, the cheapest thing a coroutine does.
//
// Measured: one iteration runs a fresh loop whose main coroutine awaits the child
// n times; reported per await (counter per_await). The loop's setup is amortised
// over n awaits. Both sides start the child inline and resume the parent when it
// returns, with no trip through the scheduler:
//   aio:  aio::task<int> child, awaited from an aio::task<> run by aio::run;
//   asio: asio::awaitable<int> child, awaited from an awaitable co_spawned on an
//         io_context (asio's awaitable threads run a child on the caller's stack).

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>

#include "support.hpp"

namespace {

// ---- aio

aio::task<int> aio_child() { co_return 1; }

aio::task<std::int64_t> aio_await_loop(std::int64_t n) {
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += co_await aio_child();
    co_return sum;
}

void BM_aio_await(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        std::int64_t sum = aio::run(aio_await_loop(n));
        benchmark::DoNotOptimize(sum);
        if (sum != n) {
            state.SkipWithError("wrong sum");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_await");
}

// ---- asio

asio::awaitable<int> asio_child() { co_return 1; }

asio::awaitable<std::int64_t> asio_await_loop(std::int64_t n) {
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += co_await asio_child();
    co_return sum;
}

void BM_asio_await(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        std::int64_t sum = aio_bench::asio_run(asio_await_loop(n));
        benchmark::DoNotOptimize(sum);
        if (sum != n) {
            state.SkipWithError("wrong sum");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_await");
}

}  // namespace

BENCHMARK(BM_aio_await)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_await)->Arg(100'000)->UseRealTime();

BENCHMARK_MAIN();
