// The subprocess benchmark's aio side (bench/subprocess_compare.py): starts and reaps
// N children of PROGRAM, at most K in flight (a semaphore, as the asyncio peer does),
// each created with create_subprocess_exec and waited for with wait().
//
//   subprocess_aio [--children N] [--in-flight K] [--program PATH]
//
// Prints one line: {"children": N, "seconds": S, "per_child_us": U}.
#include <aio/gather.hpp>
#include <aio/run.hpp>
#include <aio/semaphore.hpp>
#include <aio/subprocess.hpp>
#include <aio/task.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

aio::task<int> one(aio::semaphore& slots, const std::string& program) {
    auto slot = co_await slots.scoped();
    aio::process p = co_await aio::create_subprocess_exec(program);
    co_return co_await p.wait();
}

aio::task<int> all(int children, int in_flight, std::string program) {
    aio::semaphore slots(in_flight);
    std::vector<aio::task<int>> runs;
    runs.reserve(static_cast<std::size_t>(children));
    for (int i = 0; i < children; ++i) runs.push_back(one(slots, program));
    const std::vector<int> codes = co_await aio::gather(std::move(runs));
    int failed = 0;
    for (int c : codes) failed += c != 0;
    co_return failed;
}

}  // namespace

int main(int argc, char** argv) {
    int children = 1000, in_flight = 64;
    std::string program = "/bin/true";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--children")) children = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--in-flight")) in_flight = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--program")) program = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: %s [--children N] [--in-flight K] [--program PATH]\n", argv[0]);
            return 2;
        }
    }
    const auto start = std::chrono::steady_clock::now();
    const int failed = aio::run(all(children, in_flight, program));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"children\": %d, \"seconds\": %.6f, \"per_child_us\": %.2f}\n", children, seconds, seconds * 1e6 / children);
    if (failed != 0) {
        std::fprintf(stderr, "subprocess_aio: %d children did not exit 0\n", failed);
        return 1;
    }
    return 0;
}
