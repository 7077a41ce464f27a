// wait_for around an operation that completes in time — asyncio's
// `await asyncio.wait_for(asyncio.sleep(0), 10)`: the cost a time limit adds to an
// operation that does not need it, the common case of a time limit.
//
// The operation is a coroutine that yields to the scheduler once and returns; the
// time limit is 10 s, so it never fires. Measured: one iteration runs a fresh loop
// whose one task makes K such time-limited calls one after the other; reported per
// call (counter per_call). Each call costs both sides the operation's coroutine
// frame, its one trip through the scheduler, arming a timer for the limit and
// disarming it once the operation has ended first:
//   aio:  co_await aio::wait_for(op(), 10s), op() being a lazy aio::task<> that does
//         co_await aio::sleep(0s). As asyncio 3.12's wait_for, aio runs op() inline in
//         the calling task under a timeout scope (timeout.hpp): no task is created;
//         the scope arms a loop timer (call_at) on entry and cancels it on exit.
//   asio: co_await (op() || timer.async_wait(use_awaitable)) with the awaitable
//         operators of asio/experimental/awaitable_operators.hpp — asio's idiom for
//         a time limit on an operation — op() being an asio::awaitable<void> that
//         does co_await asio::post(use_awaitable) (asio's yield, as in
//         bench_sleep0), timer a steady_timer local to the loop body, made per call
//         with expires_after(10s). operator|| co_spawns both awaitables as two
//         coroutine threads in a parallel group (wait_for_one_success); once op()
//         has succeeded the group cancels the timer's wait (it completes with
//         operation_aborted, which use_awaitable throws inside the timer's thread)
//         and resumes the caller after both have ended.
// Both compute the same thing — "the operation's result, or a timeout after 10 s" —
// in each library's idiomatic form; asio's form does more work per call (two
// spawned threads, and an exception for the abandoned wait), which is the price of
// its idiom, not something the benchmark adds.

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <asio/experimental/awaitable_operators.hpp>

#include <chrono>
#include <cstdint>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;

// ---- aio

aio::task<> aio_op() { co_await aio::sleep(0s); }

aio::task<std::int64_t> aio_wait_for_loop(std::int64_t k) {
    std::int64_t completed = 0;
    for (std::int64_t i = 0; i < k; ++i) {
        co_await aio::wait_for(aio_op(), 10s);
        ++completed;
    }
    co_return completed;
}

void BM_aio_wait_for(benchmark::State& state) {
    const std::int64_t k = state.range(0);
    for (auto _ : state) {
        if (aio::run(aio_wait_for_loop(k)) != k) {
            state.SkipWithError("not every call completed in time");
            break;
        }
    }
    aio_bench::report_items(state, k, "per_call");
}

// ---- asio

asio::awaitable<void> asio_op() { co_await asio::post(asio::use_awaitable); }

asio::awaitable<std::int64_t> asio_wait_for_loop(std::int64_t k) {
    using namespace asio::experimental::awaitable_operators;
    auto ex = co_await asio::this_coro::executor;
    std::int64_t completed = 0;
    for (std::int64_t i = 0; i < k; ++i) {
        asio::steady_timer timer(ex);
        timer.expires_after(10s);
        auto winner = co_await (asio_op() || timer.async_wait(asio::use_awaitable));
        if (winner.index() == 0) ++completed;
    }
    co_return completed;
}

void BM_asio_wait_for(benchmark::State& state) {
    const std::int64_t k = state.range(0);
    for (auto _ : state) {
        if (aio_bench::asio_run(asio_wait_for_loop(k)) != k) {
            state.SkipWithError("not every call completed in time");
            break;
        }
    }
    aio_bench::report_items(state, k, "per_call");
}

}  // namespace

BENCHMARK(BM_aio_wait_for)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_wait_for)->Arg(100'000)->UseRealTime();

BENCHMARK_MAIN();
