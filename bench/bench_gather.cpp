// Gathering N trivial tasks — asyncio's `await asyncio.gather(*(f() for _ in range(N)))`.
//
// Measured: one iteration runs a fresh loop whose main coroutine creates N trivial
// child coroutines, runs them all concurrently and waits until every one has
// finished; reported per child (counter per_task). Creating the children's frames
// is included on both sides, as it is in the asyncio version:
//   aio:  a std::vector<aio::task<>> handed to aio::gather, which wraps each child
//         into a task, queues it, collects its result and wakes the awaiter after
//         the last one;
//   asio: asio has no gather; the idiomatic join is N co_spawns whose completion
//         handlers count down, the last one cancelling a timer the parent waits on.
//         (It collects no results, so it does strictly less work than a gather.)

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <variant>
#include <vector>

#include "support.hpp"

namespace {

// ---- aio

aio::task<> aio_trivial() { co_return; }

aio::task<std::size_t> aio_gather_all(std::int64_t n) {
    std::vector<aio::task<>> children;
    children.reserve(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) children.push_back(aio_trivial());
    std::vector<std::monostate> results = co_await aio::gather(std::move(children));
    co_return results.size();
}

void BM_aio_gather(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        std::size_t finished = aio::run(aio_gather_all(n));
        if (finished != static_cast<std::size_t>(n)) {
            state.SkipWithError("gather lost children");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_task");
}

// ---- asio

asio::awaitable<void> asio_trivial() { co_return; }

asio::awaitable<std::int64_t> asio_gather_all(std::int64_t n) {
    auto ex = co_await asio::this_coro::executor;
    // The join: a timer that never expires by itself; the last child to finish
    // cancels it, which wakes the parent.
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    std::int64_t left = n;
    std::exception_ptr first_error;
    for (std::int64_t i = 0; i < n; ++i) {
        asio::co_spawn(ex, asio_trivial(), [&](std::exception_ptr e) {
            if (e && !first_error) first_error = e;
            if (--left == 0) all_done.cancel();
        });
    }
    if (left > 0) {
        asio::error_code ignored;  // operation_aborted: the join fired
        co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    if (first_error) std::rethrow_exception(first_error);
    co_return n - left;
}

void BM_asio_gather(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        std::int64_t finished = aio_bench::asio_run(asio_gather_all(n));
        if (finished != n) {
            state.SkipWithError("join lost children");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_task");
}

}  // namespace

BENCHMARK(BM_aio_gather)->Arg(1'000)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_gather)->Arg(1'000)->Arg(100'000)->UseRealTime();

BENCHMARK_MAIN();
