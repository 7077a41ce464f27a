// The seed's countasync.py: three count() coroutines gathered — about 1 second.
#include <aio/aio.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>

using namespace std::chrono_literals;

aio::task<> count() {
    std::puts("One");
    co_await aio::sleep(1s);
    std::puts("Two");
}

aio::task<> main_task() { co_await aio::gather(count(), count(), count()); }

int main(int, char** argv) {
    auto start = std::chrono::steady_clock::now();
    aio::run(main_task());
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::printf("%s executed in %0.2f seconds.\n", std::filesystem::path(argv[0]).filename().c_str(), elapsed.count());
}
