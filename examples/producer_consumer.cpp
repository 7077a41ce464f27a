// Producers and consumers around a bounded queue: two producers queue work items
// (each one a number of seconds of work), three consumers take them and sleep to
// simulate the work, and main waits with join() until every item is done — about
// 0.75 s. The asyncio original (the work is fixed rather than random, and the
// durations are far enough apart that the output is always the same):
//
//     import asyncio
//
//     WORK = {"producer-a": [0.31, 0.12, 0.47, 0.08], "producer-b": [0.22, 0.39, 0.15, 0.27]}
//
//     async def producer(name, queue):
//         for i, seconds in enumerate(WORK[name]):
//             item = f"{name[-1]}{i}"
//             await queue.put((item, seconds))
//             print(f"{name} queued {item} ({seconds:.2f} s), {queue.qsize()} waiting")
//         print(f"{name} done")
//
//     async def consumer(name, queue):
//         while True:
//             item, seconds = await queue.get()
//             await asyncio.sleep(seconds)
//             queue.task_done()
//             print(f"{name} finished {item} after {seconds:.2f} s")
//
//     async def main():
//         queue = asyncio.Queue(maxsize=3)
//         consumers = [asyncio.create_task(consumer(f"consumer-{i}", queue)) for i in range(3)]
//         producers = [asyncio.create_task(producer(name, queue)) for name in WORK]
//         await asyncio.gather(*producers)
//         await queue.join()
//         for c in consumers:
//             c.cancel()
//         await asyncio.gather(*consumers, return_exceptions=True)
//         total = sum(sum(v) for v in WORK.values())
//         print("====")
//         print(f"all {sum(len(v) for v in WORK.values())} items done; "
//               f"{total:.2f} s of work shared by 3 consumers")
//
//     asyncio.run(main())
//
// CPython 3.11 prints the lines of expected/producer_consumer.txt.
#include <aio/aio.hpp>
#include <aio/queue.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

struct work_item {
    std::string name;
    std::chrono::milliseconds duration;
};

struct producer_plan {
    std::string name;
    std::vector<std::chrono::milliseconds> work;
};

const std::vector<producer_plan> plans = {
    {"producer-a", {310ms, 120ms, 470ms, 80ms}},
    {"producer-b", {220ms, 390ms, 150ms, 270ms}},
};

double seconds(std::chrono::milliseconds d) { return std::chrono::duration<double>(d).count(); }

aio::task<> producer(const producer_plan& plan, aio::queue<work_item>& queue) {
    for (std::size_t i = 0; i < plan.work.size(); ++i) {
        std::string item = plan.name.back() + std::to_string(i);
        // A named local: g++ 12 miscompiles a braced aggregate temporary inside co_await.
        work_item work{item, plan.work[i]};
        co_await queue.put(std::move(work));
        std::printf("%s queued %s (%.2f s), %zu waiting\n", plan.name.c_str(), item.c_str(), seconds(plan.work[i]),
                    queue.qsize());
    }
    std::printf("%s done\n", plan.name.c_str());
}

aio::task<> consumer(std::string name, aio::queue<work_item>& queue) {
    for (;;) {
        work_item item = co_await queue.get();
        co_await aio::sleep(item.duration);
        queue.task_done();
        std::printf("%s finished %s after %.2f s\n", name.c_str(), item.name.c_str(), seconds(item.duration));
    }
}

aio::task<> main_task() {
    aio::queue<work_item> queue(3);
    std::vector<aio::task_handle<void>> consumers;
    for (int i = 0; i < 3; ++i) consumers.push_back(aio::create_task(consumer("consumer-" + std::to_string(i), queue)));
    std::vector<aio::task_handle<void>> producers;
    for (const producer_plan& plan : plans) producers.push_back(aio::create_task(producer(plan, queue)));
    for (auto& p : producers) co_await p;
    co_await queue.join();
    for (auto& c : consumers) c.cancel();
    for (auto& c : consumers) {
        try {
            co_await c;
        } catch (const aio::cancelled_error&) {
        }
    }
    std::chrono::milliseconds total{0};
    std::size_t items = 0;
    for (const producer_plan& plan : plans) {
        for (auto d : plan.work) total += d;
        items += plan.work.size();
    }
    std::printf("====\n");
    std::printf("all %zu items done; %.2f s of work shared by 3 consumers\n", items, seconds(total));
}

int main() { aio::run(main_task()); }
