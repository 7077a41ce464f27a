#pragma once
// The timer a sleeping task waits on; it lives inside the sleep's awaiter, in the
// sleeping task's frame, so sleeping allocates nothing.

#include <cstdint>

#include "task_state.hpp"
#include "timer_heap.hpp"

namespace aio::detail {

struct sleep_node {
    // States above any heap position; while armed, heap_index is the position.
    static constexpr std::uint32_t queued = timer_node::idle - 1;     // fired, its wake-up queued
    static constexpr std::uint32_t cancelled = timer_node::idle - 2;  // cancel() reached it
    static constexpr std::uint32_t fired = timer_node::idle - 3;      // woke its task
    static constexpr std::uint32_t first_state = fired;

    bool armed() const noexcept { return timer.heap_index < first_state; }

    timer_node timer;  // first: the timer heap reaches the node through its address
    union {
        std::int64_t delay;  // before suspending, in nanoseconds
        task_state* task;    // once suspended
    };
};

// Low bit of a timer-heap entry: which kind of node it points to.
enum : std::uintptr_t { timer_is_callback = 0, timer_is_sleep = 1 };

}  // namespace aio::detail
