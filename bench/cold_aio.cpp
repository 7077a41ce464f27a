// aio's side of the fresh-process benchmarks: one scenario, once, in a process of its
// own (bench/cold_start.py runs it; the scenarios and the JSON line it prints are in
// cold_support.hpp).
//
//   gather, distinct_sleeps: aio::gather(std::move(tasks)) of a std::vector of
//       aio::task<int>, inside aio::run;
//   sleep_gather: the main task creates a task that gathers the N sleepers, then
//       sleeps 0 until every sleeper has armed its timer;
//   sleep_create_task: aio::create_task of each sleeper (the handles dropped: the loop
//       owns the tasks), then the same.
// The sleeping scenarios run on an aio::event_loop of their own rather than under
// aio::run, whose shutdown would cancel the million sleepers (an exception each,
// seconds in all); the loop's destructor destroys their frames without resuming them.

#include <aio/aio.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

#include "cold_support.hpp"

namespace {

using namespace std::chrono_literals;

aio::task<int> child(int i) { co_return i; }

aio::task<int> distinct_sleeper(int i, std::int64_t n) {
    co_await aio::sleep(std::chrono::microseconds(cold::distinct_delay_us(i, n)));
    co_return i;
}

// `asleep` outlives the loop: the sleepers' frames are destroyed with it.
aio::task<int> sleeper(int i, std::int64_t& asleep) {
    ++asleep;
    co_await aio::sleep(1h);
    co_return i;
}

template <class Make>
aio::task<> gather_main(cold::measurement& m, std::int64_t n, Make make) {
    m.start();
    std::vector<aio::task<int>> children;
    children.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) children.push_back(make(i));
    std::vector<int> results = co_await aio::gather(std::move(children));
    m.stop();
    for (int r : results) m.checksum += r;
}

aio::task<std::vector<int>> gather_sleepers(std::int64_t n, std::int64_t& asleep) {
    std::vector<aio::task<int>> sleepers;
    sleepers.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) sleepers.push_back(sleeper(i, asleep));
    co_return co_await aio::gather(std::move(sleepers));
}

aio::task<> sleep_main(cold::measurement& m, std::int64_t n, std::int64_t& asleep, bool through_gather) {
    m.start();
    if (through_gather) {
        (void)aio::create_task(gather_sleepers(n, asleep));
    } else {
        for (int i = 0; i < n; ++i) (void)aio::create_task(sleeper(i, asleep));
    }
    while (asleep < n) co_await aio::sleep(0s);
    m.stop();
    m.checksum = asleep;
}

}  // namespace

int main(int argc, char** argv) {
    const cold::options options = cold::parse_command_line(argc, argv);
    cold::measurement m(options);
    std::int64_t asleep = 0;
    try {
        switch (options.what) {
        case cold::scenario::gather:
            aio::run(gather_main(m, options.n, [](int i) { return child(i); }));
            break;
        case cold::scenario::distinct_sleeps:
            aio::run(gather_main(m, options.n, [n = options.n](int i) { return distinct_sleeper(i, n); }));
            break;
        case cold::scenario::sleep_gather:
        case cold::scenario::sleep_create_task: {
            aio::event_loop loop;
            loop.run_until_complete(
                sleep_main(m, options.n, asleep, options.what == cold::scenario::sleep_gather));
            break;
        }  // ~event_loop: the sleeping frames go here
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cold_aio: %s\n", e.what());
        return 1;
    } catch (...) {
        std::fprintf(stderr, "cold_aio: an exception that is not a std::exception\n");
        return 1;
    }
    return m.report("aio");
}
