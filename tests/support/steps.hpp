#pragma once
// Small coroutines the scheduling tests share: a ticker that logs one line per loop
// iteration, values and failures that arrive after a number of iterations.

#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

#include "trace.hpp"

namespace aio_test {

struct boom : std::runtime_error {
    explicit boom(const std::string& what) : std::runtime_error(what) {}
};

// Logs tick0, tick1, ... yielding one loop iteration after each. With `block_first`,
// it blocks the thread after tick0, so that every short timer is due when the next
// iteration starts.
inline aio::task<> ticker(trace& log, int ticks, std::chrono::steady_clock::duration block_first = {}) {
    for (int i = 0; i < ticks; ++i) {
        log("tick" + std::to_string(i));
        if (i == 0 && block_first > block_first.zero()) std::this_thread::sleep_for(block_first);
        co_await aio::sleep(std::chrono::seconds(0));
    }
}

// `n`, after `yields` loop iterations.
inline aio::task<int> number(int n, int yields = 0) {
    for (int i = 0; i < yields; ++i) co_await aio::sleep(std::chrono::seconds(0));
    co_return n;
}

// Throws boom(what) after `yields` loop iterations.
inline aio::task<int> failing(std::string what, int yields = 0) {
    for (int i = 0; i < yields; ++i) co_await aio::sleep(std::chrono::seconds(0));
    throw boom(what);
}

// Awaits a task handle, swallowing its exception (asyncio's
// gather(..., return_exceptions=True) for one task).
template <class T>
aio::task<> settle(aio::task_handle<T> h) {
    try {
        co_await h;
    } catch (...) {
    }
}

// Python's spelling of a bool, for traces compared with CPython's output.
inline std::string yes_no(bool b) { return b ? "True" : "False"; }

}  // namespace aio_test
