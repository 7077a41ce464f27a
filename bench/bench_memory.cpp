// Resident memory per sleeping task, with N tasks (1,000,000 by default) all asleep
// at once — what a server holding a million idle connections pays per coroutine.
//
// ONE IMPLEMENTATION PER PROCESS. The figure is the growth of VmRSS while the
// tasks sleep; memory that a previous benchmark in the same process allocated and
// freed stays in the allocator and would be reused, hiding the cost. Run each
// benchmark alone in a fresh process, e.g.
//     bench_memory --benchmark_filter='^BM_aio_memory/1000000$'
// (bench/compare.py does so). Running the whole binary at once gives meaningless
// figures for every benchmark but the first.
//
// Measured: counter bytes_per_task = (VmRSS with every task asleep − VmRSS before
// the loop existed) / N. It covers everything a sleeping task costs: its frame
// (with the timer inside it), the loop's bookkeeping and the timer queue:
//   aio:  main creates N tasks running `co_await aio::sleep(1h)` (dropping the
//         handles), then sleeps 0 once, so every task has run its first step and
//         armed its timer; it reads VmRSS and returns, and aio::run cancels and
//         reaps the sleepers;
//   asio: N coroutines, each awaiting a steady_timer of 1 h that is a local of
//         the coroutine; the io_context runs until all have started; VmRSS is
//         read, then destroying the io_context destroys the pending waits and,
//         with them, the coroutines.

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include "support.hpp"

namespace {

void report(benchmark::State& state, std::int64_t rss_before, std::int64_t rss_asleep, std::int64_t n) {
    if (rss_before < 0 || rss_asleep < 0) {
        state.SkipWithError("cannot read VmRSS from /proc/self/status");
        return;
    }
    state.counters["bytes_per_task"] = static_cast<double>(rss_asleep - rss_before) / static_cast<double>(n);
    state.counters["rss_before_mib"] = static_cast<double>(rss_before) / (1 << 20);
    state.counters["rss_asleep_mib"] = static_cast<double>(rss_asleep) / (1 << 20);
}

// ---- aio

aio::task<> aio_sleeper() { co_await aio::sleep(std::chrono::hours(1)); }

aio::task<std::int64_t> aio_spawn_sleepers(std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) (void)aio::create_task(aio_sleeper());
    co_await aio::sleep(std::chrono::seconds(0));  // every sleeper has now armed its timer
    co_return aio_bench::vm_rss_bytes();
}

void BM_aio_memory(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        const std::int64_t before = aio_bench::vm_rss_bytes();
        const std::int64_t asleep = aio::run(aio_spawn_sleepers(n));
        report(state, before, asleep, n);
    }
}

// ---- asio

asio::awaitable<void> asio_sleeper(std::int64_t& started) {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
    ++started;
    co_await timer.async_wait(asio::use_awaitable);
}

void BM_asio_memory(benchmark::State& state) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        const std::int64_t before = aio_bench::vm_rss_bytes();
        std::int64_t asleep = -1;
        {
            asio::io_context io(1);
            std::int64_t started = 0;
            for (std::int64_t i = 0; i < n; ++i) asio::co_spawn(io, asio_sleeper(started), asio::detached);
            // A handler that bumps `started` also arms that coroutine's wait before
            // run_one() returns; nothing here ever blocks (the timers are 1 h away).
            while (started < n && io.run_one() > 0) {
            }
            asleep = aio_bench::vm_rss_bytes();
            if (started != n) state.SkipWithError("not every sleeper started");
        }  // ~io_context destroys the pending waits and the coroutines they hold
        report(state, before, asleep, n);
    }
}

}  // namespace

// 1,000,000 is the scenario; 20,000 is compare.py --quick's smoke size.
BENCHMARK(BM_aio_memory)->Arg(1'000'000)->Arg(20'000)->Iterations(1)->UseRealTime();
BENCHMARK(BM_asio_memory)->Arg(1'000'000)->Arg(20'000)->Iterations(1)->UseRealTime();

BENCHMARK_MAIN();
