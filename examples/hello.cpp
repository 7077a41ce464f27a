// The smallest aio program.
#include <aio/aio.hpp>

#include <chrono>
#include <cstdio>

aio::task<> main_task() {
    std::puts("Hello ...");
    co_await aio::sleep(std::chrono::seconds(1));
    std::puts("... World!");
}

int main() { aio::run(main_task()); }
