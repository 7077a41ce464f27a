#pragma once
// Shared helpers for the aio benchmarks: how figures are reported, the asio
// counterpart of aio::run, and the measurements the scenarios share (resident
// memory, percentiles).

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include <asio.hpp>

#include "proc_status.hpp"

namespace aio_bench {

// Reports `items_per_iteration` items per benchmark iteration: items_per_second,
// and the counter `name` = wall time per item (console: "12.3ns"; JSON: seconds).
// The benchmark must use UseRealTime(): Google Benchmark divides rate counters by
// the time it reports, and a loop that may block in epoll must be timed on the wall.
inline void report_items(benchmark::State& state, std::int64_t items_per_iteration, const char* name) {
    const auto items = static_cast<double>(state.iterations()) * static_cast<double>(items_per_iteration);
    state.SetItemsProcessed(static_cast<std::int64_t>(items));
    state.counters[name] = benchmark::Counter(items, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// asio's counterpart of aio::run(main): a fresh single-threaded io_context runs
// `main` to completion; returns its value or rethrows its exception. Concurrency
// hint 1 is asio's documented setting for an io_context run by one thread — the
// same contract as aio's loop.
template <class T>
T asio_run(asio::awaitable<T> main) {
    asio::io_context io(1);
    std::exception_ptr error;
    if constexpr (std::is_void_v<T>) {
        asio::co_spawn(io, std::move(main), [&](std::exception_ptr e) { error = e; });
        io.run();
        if (error) std::rethrow_exception(error);
    } else {
        std::optional<T> result;
        asio::co_spawn(io, std::move(main), [&](std::exception_ptr e, T value) {
            error = e;
            if (!e) result.emplace(std::move(value));
        });
        io.run();
        if (error) std::rethrow_exception(error);
        return std::move(*result);
    }
}

// The p-th percentile (0 <= p <= 100) by the nearest-rank method; 0 for no samples.
inline double percentile(std::vector<double> samples, double p) {
    if (samples.empty()) return 0.0;
    std::sort(samples.begin(), samples.end());
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
    return samples[std::clamp<std::size_t>(rank, 1, samples.size()) - 1];
}

// Oversleep statistics in microseconds, as the counters median_us and p99_us
// (plus max_us, for the curious).
inline void report_oversleep(benchmark::State& state, const std::vector<double>& oversleep_us) {
    state.counters["median_us"] = percentile(oversleep_us, 50);
    state.counters["p99_us"] = percentile(oversleep_us, 99);
    state.counters["max_us"] = percentile(oversleep_us, 100);
    state.counters["samples"] = static_cast<double>(oversleep_us.size());
}

}  // namespace aio_bench
