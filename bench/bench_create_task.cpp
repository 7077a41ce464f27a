// Spawning a concurrent task and awaiting its result, in a loop — asyncio's
// `await asyncio.create_task(child())`.
//
// Measured: one iteration runs a fresh loop whose main coroutine spawns and awaits
// a child n times; reported per spawn+await (counter per_task). Each round trip
// allocates the child's frame, goes through the scheduler to run it, and wakes the
// parent with its result:
//   aio:  co_await aio::create_task(child()) — the child's first step is queued at
//         the back of the ready queue, the parent is woken through the queue when
//         the child ends (two loop iterations per round trip, as in asyncio);
//   asio: co_await asio::co_spawn(ex, child(), asio::use_awaitable) — asio's
//         nearest equivalent. asio 1.22 starts the child with dispatch() and may
//         hand the result back with dispatch() too, so it can skip queueing steps
//         that aio (keeping asyncio's ordering rules) must take.

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>

#include "support.hpp"

namespace {

// ---- aio

aio::task<int> aio_child() { co_return 1; }

aio::task<std::int64_t> aio_spawn_loop(std::int64_t n) {
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += co_await aio::create_task(aio_child());
    co_return sum;
}

void BM_aio_create_task(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        std::int64_t sum = aio::run(aio_spawn_loop(n));
        benchmark::DoNotOptimize(sum);
        if (sum != n) {
            state.SkipWithError("wrong sum");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_task");
}

// ---- asio

asio::awaitable<int> asio_child() { co_return 1; }

asio::awaitable<std::int64_t> asio_spawn_loop(std::int64_t n) {
    auto ex = co_await asio::this_coro::executor;
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += co_await asio::co_spawn(ex, asio_child(), asio::use_awaitable);
    co_return sum;
}

void BM_asio_create_task(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        std::int64_t sum = aio_bench::asio_run(asio_spawn_loop(n));
        benchmark::DoNotOptimize(sum);
        if (sum != n) {
            state.SkipWithError("wrong sum");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_task");
}

}  // namespace

BENCHMARK(BM_aio_create_task)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_create_task)->Arg(100'000)->UseRealTime();

BENCHMARK_MAIN();
