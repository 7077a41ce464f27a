// The seed's greet: three blocking greets (about 3 s), then the same three as
// coroutines gathered (about 1 s). The async greet prints "[sync]" for the name, as
// the original does.
#include <aio/aio.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "seconds.hpp"

using namespace std::chrono_literals;

void greet(const std::string& name) {
    std::printf("[sync] Hello\n");
    std::this_thread::sleep_for(1s);
    std::printf("[sync] %s\n", name.c_str());
}

aio::task<> greet_async(std::string name) {  // by value: the coroutine outlives the caller's argument
    std::printf("[async] Hello\n");
    co_await aio::sleep(1s);
    std::printf("[sync] %s\n", name.c_str());
}

aio::task<> main_task() {
    co_await aio::gather(greet_async("Juan"), greet_async("Sebastian"), greet_async("Andres"));
}

int main() {
    auto s = std::chrono::steady_clock::now();
    greet("Juan");
    greet("Sebastian");
    greet("Andres");
    std::printf("Sync executed in: %s\n", seconds_since(s).c_str());

    s = std::chrono::steady_clock::now();
    aio::run(main_task());
    std::printf("Async executed in: %s\n", seconds_since(s).c_str());
}
