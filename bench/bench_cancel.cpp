// Cancelling N = 100,000 sleeping tasks — asyncio's
//     tasks = [asyncio.create_task(asyncio.sleep(3600)) ...]; await asyncio.sleep(0)
//     for t in tasks: t.cancel()
//     await asyncio.gather(*tasks, return_exceptions=True)
// what a server pays to shut down N idle connections.
//
// Two benchmarks per side, identical but for the cancellation, so that their
// difference is what cancelling costs:
//   cancel_sleepers: spawn the N tasks, run until every one has started and armed
//       a timer of 1 hour, cancel every one, run until every one has ended, tear
//       the loop down — the whole cycle;
//   spawn_sleepers:  the same without the cancellation: once every task is asleep,
//       the loop is torn down, which destroys the sleeping frames without resuming
//       them (no exception, no trip through the scheduler).
// Both are reported per task (counter per_task); cancel_sleepers − spawn_sleepers
// is the cost of one cancel() + the task's wake-up + its cancellation exception
// unwinding the frame + the task's end, less that of destroying a suspended frame
// (which the teardown of spawn_sleepers pays instead). Timing the cancellation
// alone with PauseTiming/ResumeTiming around the spawn phase is not an option: the
// phases are inside one loop run, and Google Benchmark's pause/resume costs
// microseconds and disturbs what it brackets.
//
//   aio:  the main task creates the N tasks (aio::create_task, the handles kept in
//         a vector reserved once per iteration), each doing
//         co_await aio::sleep(1h), and sleeps 0 once, so that each has run its
//         first step and armed its timer. cancel_sleepers: the main task calls
//         cancel() on every handle — asyncio's task.cancel(): the sleeper gets
//         aio::cancelled_error at its co_await, which unwinds its frame and ends
//         the task as cancelled — then sleeps 0 until every handle is done() (no
//         gather: its per-task bookkeeping is not part of cancelling; asyncio's
//         version gathers, its idiomatic form). Then run_until_complete returns
//         and the loop is destroyed (spawn_sleepers: which destroys the N pending
//         frames).
//   asio: N co_spawn'd coroutines, each awaiting a steady_timer of 1 hour that is a
//         local of the coroutine (as in bench_memory); each co_spawn gets its own
//         asio::cancellation_signal through asio::bind_cancellation_slot (the
//         signals in an array allocated once per iteration). io_context::run_one()
//         until all have started. cancel_sleepers: signal.emit(terminal) for each —
//         asio's per-operation cancellation, its counterpart of task.cancel(): it
//         reaches whatever the coroutine awaits (here the timer's wait), which
//         completes with operation_aborted; use_awaitable throws that as
//         asio::system_error in the coroutine, unwinding its frame, and the
//         co_spawn completion handler counts the end; io_context::run() returns
//         when all have ended. Then the io_context is destroyed (spawn_sleepers:
//         which destroys the pending waits and the coroutines they hold).
//         The alternative, timer.cancel() on each timer, needs the timers kept
//         outside the coroutines and cancels the wait rather than the task; the
//         cancellation slot is what cancels a coroutine without knowing what it
//         awaits, as task.cancel() does.
// Both sides throw one exception per cancelled task, as asyncio raises one
// CancelledError in each.

#include <aio/aio.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

#include "support.hpp"

namespace {

using namespace std::chrono_literals;

// ---- aio

aio::task<> aio_sleeper() { co_await aio::sleep(1h); }

aio::task<> aio_main(std::vector<aio::task_handle<>>& handles, std::int64_t n, bool cancel) {
    for (std::int64_t i = 0; i < n; ++i) handles.push_back(aio::create_task(aio_sleeper()));
    co_await aio::sleep(0s);  // every sleeper has run its first step and armed its timer
    if (!cancel) co_return;
    for (auto& h : handles) h.cancel();
    for (auto& h : handles) {
        while (!h.done()) co_await aio::sleep(0s);
    }
}

void aio_cycle(benchmark::State& state, bool cancel) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        std::int64_t wrong = 0;
        {
            std::vector<aio::task_handle<>> handles;
            handles.reserve(static_cast<std::size_t>(n));
            aio::event_loop loop;
            loop.run_until_complete(aio_main(handles, n, cancel));
            for (auto& h : handles) wrong += cancel ? !h.cancelled() : h.done();
            handles.clear();
        }  // ~event_loop: spawn_sleepers' tasks are still pending; their frames go here
        if (wrong != 0) {
            state.SkipWithError(cancel ? "not every sleeper ended cancelled" : "a sleeper ended");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_task");
}

void BM_aio_cancel_sleepers(benchmark::State& state) { aio_cycle(state, true); }
void BM_aio_spawn_sleepers(benchmark::State& state) { aio_cycle(state, false); }

// ---- asio

asio::awaitable<void> asio_sleeper(std::int64_t& started) {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1h);
    ++started;
    co_await timer.async_wait(asio::use_awaitable);
}

void asio_cycle(benchmark::State& state, bool cancel) {
    const std::int64_t n = state.range(0);
    for (auto _ : state) {
        std::int64_t started = 0;
        std::int64_t ended = 0;
        {
            std::unique_ptr<asio::cancellation_signal[]> signals(new asio::cancellation_signal[static_cast<std::size_t>(n)]);
            asio::io_context io(1);
            for (std::int64_t i = 0; i < n; ++i) {
                asio::co_spawn(io, asio_sleeper(started),
                               asio::bind_cancellation_slot(signals[static_cast<std::size_t>(i)].slot(),
                                                            [&ended](std::exception_ptr) { ++ended; }));
            }
            // A handler that bumps `started` also arms that coroutine's wait before
            // run_one() returns; nothing here ever blocks (the timers are 1 h away).
            while (started < n && io.run_one() > 0) {
            }
            if (cancel) {
                for (std::int64_t i = 0; i < n; ++i) signals[static_cast<std::size_t>(i)].emit(asio::cancellation_type::terminal);
                io.run();
            }
        }  // ~io_context: spawn_sleepers' waits are still pending; they and their coroutines go here
        if (started != n || ended != (cancel ? n : 0)) {
            state.SkipWithError(started != n ? "not every sleeper started"
                                : cancel     ? "not every sleeper ended"
                                             : "a sleeper ended");
            break;
        }
    }
    aio_bench::report_items(state, n, "per_task");
}

void BM_asio_cancel_sleepers(benchmark::State& state) { asio_cycle(state, true); }
void BM_asio_spawn_sleepers(benchmark::State& state) { asio_cycle(state, false); }

}  // namespace

BENCHMARK(BM_aio_cancel_sleepers)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_cancel_sleepers)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_aio_spawn_sleepers)->Arg(100'000)->UseRealTime();
BENCHMARK(BM_asio_spawn_sleepers)->Arg(100'000)->UseRealTime();

BENCHMARK_MAIN();
