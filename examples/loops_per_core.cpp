// One loop per core: a loop runs on one thread, so a program that needs every core
// runs one loop per core. Worker loops run on threads of their own; the main loop
// hands each a share of the work with aio::run_on and adds up the results — first
// with one worker loop doing all of it, then with every core's loop doing a share.
#include <aio/aio.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

constexpr int total_tasks = 2'000'000;
constexpr int batch = 10'000;

aio::task<std::uint64_t> child(int i) { co_return static_cast<std::uint64_t>(i) % 1000; }

// Tasks share, share + shares, share + 2 * shares, ... gathered a batch at a time.
aio::task<std::uint64_t> share_of_work(int share, int shares) {
    std::uint64_t sum = 0;
    std::vector<aio::task<std::uint64_t>> tasks;
    for (int i = share; i < total_tasks;) {
        tasks.clear();
        for (; i < total_tasks && static_cast<int>(tasks.size()) < batch; i += shares) tasks.push_back(child(i));
        for (std::uint64_t r : co_await aio::gather(std::move(tasks))) sum += r;
    }
    co_return sum;
}

aio::task<> main_task(std::vector<std::unique_ptr<aio::event_loop>>& workers) {
    const int n = static_cast<int>(workers.size());
    auto start = std::chrono::steady_clock::now();
    std::uint64_t one = co_await aio::run_on(*workers[0], share_of_work(0, 1));
    std::chrono::duration<double> one_loop = std::chrono::steady_clock::now() - start;

    start = std::chrono::steady_clock::now();
    std::vector<aio::task<std::uint64_t>> shares;
    for (int i = 0; i < n; ++i) shares.push_back(aio::run_on(*workers[static_cast<std::size_t>(i)], share_of_work(i, n)));
    std::uint64_t all = 0;
    for (std::uint64_t part : co_await aio::gather(std::move(shares))) all += part;
    std::chrono::duration<double> n_loops = std::chrono::steady_clock::now() - start;

    std::printf("loops: %d\n", n);
    std::printf("sum with one loop: %llu\n", static_cast<unsigned long long>(one));
    std::printf("sum with %d loops: %llu\n", n, static_cast<unsigned long long>(all));
    std::printf("speed-up: %.2fx\n", one_loop.count() / n_loops.count());
}

int main() {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    std::vector<std::unique_ptr<aio::event_loop>> workers;
    std::vector<std::thread> threads;
    for (int i = 0; i < cores; ++i) {
        workers.push_back(std::make_unique<aio::event_loop>());
        threads.emplace_back([&loop = *workers.back()] { loop.run_forever(); });
    }
    aio::run(main_task(workers));
    for (auto& loop : workers) loop->call_soon_threadsafe([&l = *loop] { l.stop(); });
    for (auto& t : threads) t.join();
}
