// Rate limiting with a semaphore: ten simulated requests, at most three in flight at
// once (about 1 s). Each request holds a unit of the semaphore while it runs; the
// others queue in order and start as units come back. The durations are chosen so
// that no two requests end at the same moment, which keeps the output deterministic.
// The asyncio original:
//
//     import asyncio
//
//     async def request(limit, number, duration):
//         async with limit:
//             print(f"request {number} starts ({duration} s)")
//             await asyncio.sleep(duration)
//             print(f"request {number} ends")
//
//     async def main():
//         limit = asyncio.Semaphore(3)
//         durations = [0.1, 0.6, 0.4, 0.1, 0.1, 0.6, 0.1, 0.2, 0.2, 0.3]
//         await asyncio.gather(*(request(limit, n, d) for n, d in enumerate(durations, 1)))
//         print("all requests done")
//
//     asyncio.run(main())
//
// It prints the lines of expected/rate_limit.txt. `async with limit:` is
// `auto guard = co_await limit.scoped();`, which gives the unit back at scope exit.
#include <aio/gather.hpp>
#include <aio/run.hpp>
#include <aio/semaphore.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>

#include <chrono>
#include <cstdio>
#include <vector>

#include "seconds.hpp"

aio::task<> request(aio::semaphore& limit, int number, double duration) {
    auto guard = co_await limit.scoped();
    std::printf("request %d starts (%s s)\n", number, python_float(duration).c_str());
    co_await aio::sleep(std::chrono::duration<double>(duration));
    std::printf("request %d ends\n", number);
}

aio::task<> main_task() {
    aio::semaphore limit(3);
    const std::vector<double> durations{0.1, 0.6, 0.4, 0.1, 0.1, 0.6, 0.1, 0.2, 0.2, 0.3};
    std::vector<aio::task<>> requests;
    for (std::size_t n = 0; n < durations.size(); ++n)
        requests.push_back(request(limit, static_cast<int>(n + 1), durations[n]));
    co_await aio::gather(std::move(requests));
    std::printf("all requests done\n");
}

int main() { aio::run(main_task()); }
