// asyncio's to_thread example: blocking calls run on worker threads while the loop
// goes on. Three blocking reads of one second each, gathered: about 1 second, not 3.
#include <aio/aio.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "seconds.hpp"

using namespace std::chrono_literals;

// A blocking call with no async API: it holds its thread for a second.
std::string blocking_io(int n) {
    std::this_thread::sleep_for(1s);
    return "file " + std::to_string(n) + " read";
}

aio::task<> main_task() {
    std::puts("started main");
    auto start = std::chrono::steady_clock::now();
    auto [a, b, c] =
        co_await aio::gather(aio::to_thread(blocking_io, 1), aio::to_thread(blocking_io, 2), aio::to_thread(blocking_io, 3));
    std::printf("%s, %s, %s\n", a.c_str(), b.c_str(), c.c_str());
    std::printf("three blocking calls took %s seconds\n", seconds_since(start).c_str());
}

int main() { aio::run(main_task()); }
