// Time limits: a slow operation abandoned after a deadline (wait_for), a fast one
// that finishes in time, a timeout scope whose deadline is moved out of the way
// (reschedule), and one that expires — about 4 s. The asyncio original:
//
//     import asyncio
//     import time
//
//     async def slow_operation():
//         print("slow operation started")
//         try:
//             await asyncio.sleep(2)
//         except asyncio.CancelledError:
//             print("slow operation cancelled")
//             raise
//         print("slow operation finished")
//         return 42
//
//     async def fast_operation():
//         print("fast operation started")
//         await asyncio.sleep(0.5)
//         print("fast operation finished")
//         return 7
//
//     async def main():
//         start = time.perf_counter()
//         try:
//             result = await asyncio.wait_for(slow_operation(), timeout=1.0)
//             print(f"result: {result}")
//         except TimeoutError:
//             print("timed out after 1 second, the slow operation was cancelled")
//         print(f"elapsed: {time.perf_counter() - start:.1f} s")
//
//         result = await asyncio.wait_for(fast_operation(), timeout=1.0)
//         print(f"fast operation in time, result: {result}")
//
//         start = time.perf_counter()
//         try:
//             async with asyncio.timeout(1.0) as scope:
//                 print(f"deadline set: {scope.when() is not None}")
//                 scope.reschedule(asyncio.get_running_loop().time() + 3.0)
//                 print("deadline moved 3 seconds ahead")
//                 result = await slow_operation()
//                 print(f"result: {result}")
//         except TimeoutError:
//             print("timed out")
//         print(f"scope expired: {scope.expired()}")
//         print(f"elapsed: {time.perf_counter() - start:.1f} s")
//
//         start = time.perf_counter()
//         try:
//             async with asyncio.timeout(0.5) as scope:
//                 await slow_operation()
//         except TimeoutError:
//             print("timed out after 0.5 seconds")
//         print(f"scope expired: {scope.expired()}")
//         print(f"elapsed: {time.perf_counter() - start:.1f} s")
//
//     asyncio.run(main())
//
// CPython 3.11 prints the lines of expected/timeout.txt (the elapsed times within a
// few milliseconds). 3.11's wait_for runs slow_operation() in a task of its own and
// 3.12's runs it inline under asyncio.timeout(), as aio does; for this program the
// two print the same lines in the same order: on the deadline, both cancel the
// operation, wait for its end (its "cancelled" line) and only then raise
// TimeoutError.
//
// In aio an `async with` block is a coroutine run by the scope: co_await
// scope.run(body(scope)); the block's code is body().
#include <aio/aio.hpp>

#include <chrono>
#include <cstdio>

using namespace std::chrono_literals;

aio::task<int> slow_operation() {
    std::printf("slow operation started\n");
    try {
        co_await aio::sleep(2s);
    } catch (const aio::cancelled_error&) {
        std::printf("slow operation cancelled\n");
        throw;
    }
    std::printf("slow operation finished\n");
    co_return 42;
}

aio::task<int> fast_operation() {
    std::printf("fast operation started\n");
    co_await aio::sleep(500ms);
    std::printf("fast operation finished\n");
    co_return 7;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The body of `async with asyncio.timeout(1.0) as scope:`.
aio::task<> rescheduled(aio::timeout_scope& scope) {
    std::printf("deadline set: %s\n", scope.when() ? "True" : "False");
    scope.reschedule(aio::get_running_loop().time() + 3s);
    std::printf("deadline moved 3 seconds ahead\n");
    int result = co_await slow_operation();
    std::printf("result: %d\n", result);
}

aio::task<> main_task() {
    auto start = std::chrono::steady_clock::now();
    try {
        int result = co_await aio::wait_for(slow_operation(), 1s);
        std::printf("result: %d\n", result);
    } catch (const aio::timeout_error&) {
        std::printf("timed out after 1 second, the slow operation was cancelled\n");
    }
    std::printf("elapsed: %.1f s\n", seconds_since(start));

    int result = co_await aio::wait_for(fast_operation(), 1s);
    std::printf("fast operation in time, result: %d\n", result);

    start = std::chrono::steady_clock::now();
    auto scope = aio::timeout(1s);
    try {
        co_await scope.run(rescheduled(scope));
    } catch (const aio::timeout_error&) {
        std::printf("timed out\n");
    }
    std::printf("scope expired: %s\n", scope.expired() ? "True" : "False");
    std::printf("elapsed: %.1f s\n", seconds_since(start));

    start = std::chrono::steady_clock::now();
    auto short_scope = aio::timeout(500ms);
    try {
        co_await short_scope.run(slow_operation());
    } catch (const aio::timeout_error&) {
        std::printf("timed out after 0.5 seconds\n");
    }
    std::printf("scope expired: %s\n", short_scope.expired() ? "True" : "False");
    std::printf("elapsed: %.1f s\n", seconds_since(start));
}

int main() { aio::run(main_task()); }
