// A producer thread feeding the loop: it hands each item to the loop with
// call_soon_threadsafe, which puts it on an aio::queue that a task consumes. The
// queue belongs to the loop; only call_soon_threadsafe may be used from the producer.
#include <aio/aio.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>

using namespace std::chrono_literals;

aio::task<> main_task() {
    aio::event_loop& loop = aio::get_running_loop();
    aio::queue<std::optional<int>> items;
    // The token keeps the loop alive while the producer may still call into it: the
    // consumer waiting on an empty queue is not a deadlock.
    std::thread producer([&loop, &items, alive = loop.keep_alive()] {
        for (int i = 1; i <= 5; ++i) {
            std::this_thread::sleep_for(10ms);  // the item takes a while to make
            loop.call_soon_threadsafe([&items, i] { items.put_nowait(i * i); });
        }
        loop.call_soon_threadsafe([&items] { items.put_nowait(std::nullopt); });  // done
    });
    int total = 0;
    while (std::optional<int> item = co_await items.get()) {
        std::printf("consumed %d\n", *item);
        total += *item;
    }
    producer.join();
    std::printf("total %d\n", total);
}

int main() { aio::run(main_task()); }
