#pragma once
// What the fresh-process programs (cold_aio.cpp, cold_asio.cpp, cold_reference.cpp)
// share: the command line, the measured phase, and the one JSON line each prints.
// bench/cold_start.py runs them, each once per process; bench/python/cold_asyncio.py
// is asyncio's side and prints the same fields.
//
//     cold_<impl> SCENARIO N
//
//   gather N             gather a std::vector of N lazy tasks, task i returning i
//   sleep_gather N       N tasks sleeping 1 h, all at once, through a gather
//   sleep_create_task N  the same through create_task (or its peer)
//   distinct_sleeps N    N tasks gathered, task i sleeping distinct_delay_us(i, n) µs
//
// The measured phase runs inside the program's main coroutine, from before the first
// task is created to after the last result is collected (gather, distinct_sleeps) or
// to the moment every task is asleep (the sleeping scenarios; how they end is not
// measured: each program tears them down its cheapest correct way).

#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "proc_status.hpp"

namespace cold {

enum class scenario { gather, sleep_gather, sleep_create_task, distinct_sleeps };

struct options {
    scenario what;
    const char* name;
    std::int64_t n;

    bool sleeping() const noexcept { return what == scenario::sleep_gather || what == scenario::sleep_create_task; }
};

// A permutation of 0..n-1 (7919 is prime and n is not a multiple of it): the timer
// queue holds n distinct deadlines, not armed in the order they fall due.
inline std::int64_t distinct_delay_us(std::int64_t i, std::int64_t n) { return i * 7919 % n; }

// Prints the usage and exits with status 2 unless argv is `SCENARIO N`.
inline options parse_command_line(int argc, char** argv) {
    struct named {
        const char* name;
        scenario what;
    };
    static constexpr named scenarios[] = {{"gather", scenario::gather},
                                          {"sleep_gather", scenario::sleep_gather},
                                          {"sleep_create_task", scenario::sleep_create_task},
                                          {"distinct_sleeps", scenario::distinct_sleeps}};
    if (argc == 3) {
        char* end = nullptr;
        const long long n = std::strtoll(argv[2], &end, 10);
        // Task i returns i as an int.
        const bool n_ok = *argv[2] && !*end && n > 0 && n <= std::numeric_limits<int>::max();
        for (const named& s : scenarios) {
            if (n_ok && std::strcmp(argv[1], s.name) == 0 && (s.what != scenario::distinct_sleeps || n % 7919 != 0))
                return {s.what, s.name, n};
        }
    }
    std::fprintf(stderr, "usage: %s gather|sleep_gather|sleep_create_task|distinct_sleeps N\n", argc ? argv[0] : "cold");
    std::exit(2);
}

// The measured phase: wall time on steady_clock and minor page faults; for the
// sleeping scenarios also VmRSS before it and at its end, outside the timing.
class measurement {
public:
    explicit measurement(const options& o) : options_(o) {}

    void start() {
        if (options_.sleeping()) rss_before_ = aio_bench::vm_rss_bytes();
        faults_ = minor_faults();
        start_ = std::chrono::steady_clock::now();
    }
    void stop() {
        elapsed_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count();
        faults_ = minor_faults() - faults_;
        if (options_.sleeping()) {
            rss_asleep_ = aio_bench::vm_rss_bytes();
            peak_asleep_ = aio_bench::vm_hwm_bytes();
        }
    }

    // gather, distinct_sleeps: the sum of the results; sleeping: how many tasks are asleep.
    std::int64_t checksum = 0;

    // Prints the JSON line, after the program has torn everything down (so that
    // VmHWM is the peak of the whole run), and returns the exit status: 1 if a
    // check failed.
    int report(const char* impl) const {
        const std::int64_t n = options_.n;
        const bool sleeping = options_.sleeping();
        const std::int64_t expected = sleeping ? n : n * (n - 1) / 2;
        // distinct_sleeps: the phase cannot end before the longest sleep has; what it
        // takes beyond that is the loop's overhead.
        const std::int64_t longest_ns = options_.what == scenario::distinct_sleeps ? (n - 1) * 1000 : 0;
        bool ok = checksum == expected && elapsed_ns_ >= longest_ns;
        std::printf("{\"impl\": \"%s\", \"scenario\": \"%s\", \"n\": %lld, \"ns_per_task\": %.2f, \"elapsed_ns\": %lld",
                    impl, options_.name, static_cast<long long>(n),
                    static_cast<double>(elapsed_ns_ - longest_ns) / static_cast<double>(n),
                    static_cast<long long>(elapsed_ns_));
        if (longest_ns) std::printf(", \"longest_delay_ns\": %lld", static_cast<long long>(longest_ns));
        if (sleeping) {
            ok = ok && rss_before_ >= 0 && rss_asleep_ >= 0;
            // peak_rss_asleep_bytes: the peak up to then; peak_rss_bytes adds the teardown.
            std::printf(", \"bytes_per_task\": %.1f, \"rss_before_bytes\": %lld, \"rss_asleep_bytes\": %lld, "
                        "\"peak_rss_asleep_bytes\": %lld",
                        static_cast<double>(rss_asleep_ - rss_before_) / static_cast<double>(n),
                        static_cast<long long>(rss_before_), static_cast<long long>(rss_asleep_),
                        static_cast<long long>(peak_asleep_));
        }
        std::printf(", \"minflt_phase\": %ld, \"peak_rss_bytes\": %lld, \"checksum\": %lld, \"expected_checksum\": %lld, "
                    "\"ok\": %s}\n",
                    faults_, static_cast<long long>(aio_bench::vm_hwm_bytes()), static_cast<long long>(checksum),
                    static_cast<long long>(expected), ok ? "true" : "false");
        return ok ? 0 : 1;
    }

private:
    static long minor_faults() {
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
        return usage.ru_minflt;
    }

    options options_;
    std::chrono::steady_clock::time_point start_;
    std::int64_t elapsed_ns_ = 0;
    long faults_ = 0;
    std::int64_t rss_before_ = -1;
    std::int64_t rss_asleep_ = -1;
    std::int64_t peak_asleep_ = -1;
};

}  // namespace cold
