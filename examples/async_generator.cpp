// Async generators: the seed's `async def g(x): yield x`, and a ticker that yields a
// number every 100 ms, consumed with `async for` (begin/end) and with anext() (next),
// stopping early. The asyncio original:
//
//     import asyncio
//     import time
//
//     async def g(x):
//         yield x
//
//     async def ticker(delay, to):
//         """Yield numbers from 0 to `to` every `delay` seconds."""
//         for i in range(to):
//             yield i
//             await asyncio.sleep(delay)
//
//     async def main():
//         async for x in g(42):
//             print(f"g yielded {x}")
//
//         start = time.perf_counter()
//         async for i in ticker(0.1, 5):
//             print(f"tick {i}")
//         print(f"elapsed: {time.perf_counter() - start:.1f} s")
//
//         ticks = ticker(0.1, 10)
//         while (i := await anext(ticks, None)) is not None:
//             print(f"tick {i}")
//             if i == 2:
//                 break
//         print("stopped early")
//
//     asyncio.run(main())
//
// CPython 3.11 prints the lines of expected/async_generator.txt (the elapsed time
// within a few milliseconds). In aio, `async for x in gen` is a for loop over an
// awaitable iterator, and anext(gen, None) is gen.next(), which returns an empty
// std::optional at the end. A generator abandoned early is destroyed when it goes
// out of scope, its frame and locals with it.
#include <aio/aio.hpp>
#include <aio/async_generator.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

aio::async_generator<int> g(int x) { co_yield x; }

// Yields numbers from 0 to `to` every `delay`.
aio::async_generator<int> ticker(std::chrono::milliseconds delay, int to) {
    for (int i = 0; i < to; ++i) {
        co_yield i;
        co_await aio::sleep(delay);
    }
}

aio::task<> main_task() {
    auto gen = g(42);
    for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it) std::printf("g yielded %d\n", *it);

    auto start = std::chrono::steady_clock::now();
    auto five = ticker(100ms, 5);
    for (auto it = co_await five.begin(); it != five.end(); co_await ++it) std::printf("tick %d\n", *it);
    std::printf("elapsed: %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());

    auto ticks = ticker(100ms, 10);
    while (auto i = co_await ticks.next()) {
        std::printf("tick %d\n", *i);
        if (*i == 2) break;
    }
    std::printf("stopped early\n");
}

int main() { aio::run(main_task()); }
