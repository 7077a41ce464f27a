// The seed's create_task: two greets awaited one after the other (about 3 s), then
// started together as tasks, one of them named (about 2 s).
#include <aio/aio.hpp>

#include <chrono>
#include <cstdio>
#include <string>

#include "seconds.hpp"

aio::task<> greet_async(std::chrono::seconds wait, std::string name) {
    std::printf("[async] Hello\n");
    co_await aio::sleep(wait);
    std::printf("[async] %s\n", name.c_str());
}

aio::task<> main_sequential() {
    auto s = std::chrono::steady_clock::now();
    co_await greet_async(std::chrono::seconds(1), "Juan");
    co_await greet_async(std::chrono::seconds(2), "Sebastian");
    std::printf("[main] finished in %s\n", seconds_since(s).c_str());
}

aio::task<> main_create_task() {
    auto s = std::chrono::steady_clock::now();
    auto task1 = aio::create_task(greet_async(std::chrono::seconds(1), "Juan"));
    auto task2 = aio::create_task(greet_async(std::chrono::seconds(2), "Sebastian"), "greetSebastian");

    // Wait until both tasks are completed (should take around 2 seconds.)
    co_await task1;
    co_await task2;

    std::printf("[main_create_task] finished in %s\n", seconds_since(s).c_str());
}

aio::task<> notebook() {
    co_await main_sequential();
    co_await main_create_task();
}

int main() { aio::run(notebook()); }
