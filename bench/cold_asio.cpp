// Standalone asio's side of the fresh-process benchmarks: one scenario, once, in a
// process of its own (bench/cold_start.py runs it; the scenarios and the JSON line it
// prints are in cold_support.hpp). C++20 coroutines (asio::awaitable) on a
// single-threaded io_context.
//
// asio has no gather: its idiom for joining N coroutines, as in bench_gather.cpp, is
// N co_spawns whose completion handlers count down, the last one cancelling a timer
// the parent waits on; here each handler also files its child's result in a slot,
// as a gather does (join_all). A sleep is a steady_timer local to the coroutine
// (bench_memory.cpp), a yield a post.
//
//   gather, distinct_sleeps: the main coroutine awaits join_all of the N children;
//   sleep_gather: it co_spawns a join_all of the N sleepers, then yields until every
//       sleeper waits on its timer;
//   sleep_create_task: it co_spawns each sleeper (detached), then the same.
// The sleeping scenarios end when the main coroutine does: the io_context is stopped
// and destroyed, which destroys the pending waits and the coroutines they hold.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

#include <asio.hpp>

#include "cold_support.hpp"

namespace {

using namespace std::chrono_literals;

asio::awaitable<int> child(int i) { co_return i; }

asio::awaitable<int> distinct_sleeper(int i, std::int64_t n) {
    asio::steady_timer timer(co_await asio::this_coro::executor,
                             std::chrono::microseconds(cold::distinct_delay_us(i, n)));
    co_await timer.async_wait(asio::use_awaitable);
    co_return i;
}

// `asleep` outlives the io_context: the sleepers' frames are destroyed with it.
asio::awaitable<int> sleeper(int i, std::int64_t& asleep) {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1h);
    ++asleep;
    co_await timer.async_wait(asio::use_awaitable);
    co_return i;
}

// The results of make(0) ... make(n - 1), run concurrently, in order; the first
// exception is rethrown once all have ended.
template <class Make>
asio::awaitable<std::vector<int>> join_all(std::int64_t n, Make make) {
    auto ex = co_await asio::this_coro::executor;
    std::vector<int> results(static_cast<std::size_t>(n));
    asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
    std::int64_t left = n;
    std::exception_ptr first_error;
    for (int i = 0; i < n; ++i) {
        asio::co_spawn(ex, make(i), [&, i](std::exception_ptr e, int value) {
            if (e && !first_error) first_error = e;
            results[static_cast<std::size_t>(i)] = value;
            if (--left == 0) all_done.cancel();
        });
    }
    if (left > 0) {
        asio::error_code ignored;  // operation_aborted: the join fired
        co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    if (first_error) std::rethrow_exception(first_error);
    co_return results;
}

template <class Make>
asio::awaitable<void> gather_main(cold::measurement& m, std::int64_t n, Make make) {
    m.start();
    std::vector<int> results = co_await join_all(n, make);
    m.stop();
    for (int r : results) m.checksum += r;
}

asio::awaitable<void> sleep_main(cold::measurement& m, std::int64_t n, std::int64_t& asleep, bool through_gather) {
    auto ex = co_await asio::this_coro::executor;
    m.start();
    if (through_gather) {
        asio::co_spawn(ex, join_all(n, [&asleep](int i) { return sleeper(i, asleep); }), asio::detached);
    } else {
        for (int i = 0; i < n; ++i) asio::co_spawn(ex, sleeper(i, asleep), asio::detached);
    }
    while (asleep < n) co_await asio::post(ex, asio::use_awaitable);
    m.stop();
    m.checksum = asleep;
}

// Runs `main` on a fresh io_context until main ends — not until the io_context runs
// out of work: the sleepers' timers are an hour away. Rethrows main's exception.
void run(asio::awaitable<void> main) {
    std::exception_ptr error;
    {
        asio::io_context io(1);  // one thread: asio's documented hint, aio's contract
        asio::co_spawn(io, std::move(main), [&](std::exception_ptr e) {
            error = e;
            io.stop();
        });
        io.run();
    }  // ~io_context: what still waits is destroyed here
    if (error) std::rethrow_exception(error);
}

}  // namespace

int main(int argc, char** argv) {
    const cold::options options = cold::parse_command_line(argc, argv);
    cold::measurement m(options);
    std::int64_t asleep = 0;
    try {
        switch (options.what) {
        case cold::scenario::gather:
            run(gather_main(m, options.n, [](int i) { return child(i); }));
            break;
        case cold::scenario::distinct_sleeps:
            run(gather_main(m, options.n, [n = options.n](int i) { return distinct_sleeper(i, n); }));
            break;
        case cold::scenario::sleep_gather:
        case cold::scenario::sleep_create_task:
            run(sleep_main(m, options.n, asleep, options.what == cold::scenario::sleep_gather));
            break;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cold_asio: %s\n", e.what());
        return 1;
    }
    return m.report("asio");
}
