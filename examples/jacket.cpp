// The seed's chained coroutines: get_temperature's value feeds wear_jacket — about 2 s.
#include <aio/aio.hpp>

#include <chrono>
#include <cstdio>
#include <random>

using namespace std::chrono_literals;

aio::task<int> get_temperature() {
    std::printf("[get_temperature] Obtaining temperature from our amaizing towers!\n");
    co_await aio::sleep(1s);
    std::random_device seed;
    co_return std::uniform_int_distribution<int>(10, 40)(seed);
}

aio::task<bool> wear_jacket(int temperature) {
    std::printf("[wear_jacket] Calculating if you should wear a jacket!\n");
    co_await aio::sleep(1s);
    co_return temperature < 20;
}

aio::task<> main_task() {
    std::printf("[main] Starting program\n");
    int temperature = co_await get_temperature();
    bool should_wear_jacket = co_await wear_jacket(temperature);
    const char* msg = should_wear_jacket ? "Wear a jacket!" : "Don't wear a jacket!";
    std::printf("Temperature: %d %s\n", temperature, msg);
}

int main() { aio::run(main_task()); }
