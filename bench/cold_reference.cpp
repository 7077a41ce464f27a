// The bare reference loop's side of the fresh-process benchmarks (reference_loop.hpp):
// one scenario, once, in a process of its own (bench/cold_start.py runs it; the
// scenarios and the JSON line it prints are in cold_support.hpp). The same programs
// as cold_aio.cpp, written against reference:: instead of aio::.
//
//   gather, distinct_sleeps: reference::gather of a std::vector of task<int>;
//   sleep_gather: the main task spawns a task that gathers the N sleepers, then
//       sleeps 0 until every sleeper has armed its timer;
//   sleep_create_task: reference::spawn of each sleeper, then the same.
// The sleeping scenarios end when main does: the loop's destructor destroys the
// spawned frames (and with a gather's, its children), without resuming them.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

#include "cold_support.hpp"
#include "reference_loop.hpp"

namespace {

using namespace std::chrono_literals;

reference::task<int> child(int i) { co_return i; }

reference::task<int> distinct_sleeper(int i, std::int64_t n) {
    co_await reference::sleep(std::chrono::microseconds(cold::distinct_delay_us(i, n)));
    co_return i;
}

// `asleep` outlives the loop: the sleepers' frames are destroyed with it.
reference::task<int> sleeper(int i, std::int64_t& asleep) {
    ++asleep;
    co_await reference::sleep(1h);
    co_return i;
}

template <class Make>
reference::task<> gather_main(cold::measurement& m, std::int64_t n, Make make) {
    m.start();
    std::vector<reference::task<int>> children;
    children.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) children.push_back(make(i));
    std::vector<int> results = co_await reference::gather(std::move(children));
    m.stop();
    for (int r : results) m.checksum += r;
}

reference::task<std::vector<int>> gather_sleepers(std::int64_t n, std::int64_t& asleep) {
    std::vector<reference::task<int>> sleepers;
    sleepers.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) sleepers.push_back(sleeper(i, asleep));
    co_return co_await reference::gather(std::move(sleepers));
}

reference::task<> sleep_main(cold::measurement& m, std::int64_t n, std::int64_t& asleep, bool through_gather) {
    m.start();
    if (through_gather) {
        reference::spawn(gather_sleepers(n, asleep));
    } else {
        for (int i = 0; i < n; ++i) reference::spawn(sleeper(i, asleep));
    }
    while (asleep < n) co_await reference::sleep(0s);
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
            reference::run(gather_main(m, options.n, [](int i) { return child(i); }));
            break;
        case cold::scenario::distinct_sleeps:
            reference::run(gather_main(m, options.n, [n = options.n](int i) { return distinct_sleeper(i, n); }));
            break;
        case cold::scenario::sleep_gather:
        case cold::scenario::sleep_create_task:
            reference::run(sleep_main(m, options.n, asleep, options.what == cold::scenario::sleep_gather));
            break;
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "cold_reference: %s\n", e.what());
        return 1;
    }
    return m.report("reference");
}
