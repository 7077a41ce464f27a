// Exits 0 when aio runs a gather of two tasks and returns their results in order.
#include <aio/aio.hpp>

#include <chrono>
#include <cstdio>

aio::task<int> twice(int x) {
    co_await aio::sleep(std::chrono::milliseconds(1));
    co_return 2 * x;
}

aio::task<int> main_task() {
    auto [a, b] = co_await aio::gather(twice(1), twice(20));
    co_return a + b;
}

int main() {
    int answer = aio::run(main_task());
    std::printf("aio consumer: %d\n", answer);
    return answer == 42 ? 0 : 1;
}
