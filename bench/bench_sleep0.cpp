// The sleep(0) round trip between two tasks — asyncio's `await asyncio.sleep(0)`
// ping-pong, the cost of one trip through the scheduler.
//
// Measured: one iteration runs a fresh loop with two concurrent tasks that each
// yield to the scheduler K times; a round trip is one yield of each task (both
// go once through the ready queue), reported per round trip (counter
// per_roundtrip):
//   aio:  co_await aio::sleep(0s) — appends the task to the ready queue;
//   asio: co_await asio::post(ex, asio::use_awaitable) — asio's idiom for
//         yielding: the coroutine's continuation is posted to the io_context.

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include "support.hpp"

namespace {

// ---- aio

aio::task<> aio_yielder(std::int64_t k) {
    for (std::int64_t i = 0; i < k; ++i) co_await aio::sleep(std::chrono::seconds(0));
}

aio::task<> aio_ping_pong(std::int64_t k) {
    auto a = aio::create_task(aio_yielder(k));
    auto b = aio::create_task(aio_yielder(k));
    co_await a;
    co_await b;
}

void BM_aio_sleep0(benchmark::State& state) {
    const std::int64_t k = state.range(0);
    for (auto _ : state) aio::run(aio_ping_pong(k));
    aio_bench::report_items(state, k, "per_roundtrip");
}

// ---- asio

asio::awaitable<void> asio_yielder(std::int64_t k) {
    auto ex = co_await asio::this_coro::executor;
    for (std::int64_t i = 0; i < k; ++i) co_await asio::post(ex, asio::use_awaitable);
}

void BM_asio_sleep0(benchmark::State& state) {
    const std::int64_t k = state.range(0);
    for (auto _ : state) {
        asio::io_context io(1);  // as in aio_bench::asio_run
        asio::co_spawn(io, asio_yielder(k), asio::detached);
        asio::co_spawn(io, asio_yielder(k), asio::detached);
        io.run();
    }
    aio_bench::report_items(state, k, "per_roundtrip");
}

}  // namespace

BENCHMARK(BM_aio_sleep0)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_sleep0)->Arg(100'000)->UseRealTime();

BENCHMARK_MAIN();
