#pragma once
// The timer a sleeping task waits on; it lives inside the sleep's awaiter, in the
// sleeping task's frame, so sleeping allocates nothing.

#include <cstdint>

#include "task_state.hpp"
#include "timer_queue.hpp"

namespace aio::detail {

// The queue entry of an armed sleep points at the sleeping task, and the task's
// `awaiting` field at this node: the node itself is only eight bytes.
struct sleep_node {
    // States above any slot of the timer queue; while armed, the slot is where it is filed.
    static constexpr std::uint32_t queued = timer_node::idle - 1;     // fired, its wake-up queued
    static constexpr std::uint32_t cancelled = timer_node::idle - 2;  // cancel() reached it
    static constexpr std::uint32_t fired = timer_node::idle - 3;      // woke its task
    static constexpr std::uint32_t first_state = fired;

    explicit sleep_node(std::int64_t delay_ns) noexcept : delay(delay_ns) {}

    bool armed() const noexcept { return timer.slot < first_state; }

    union {
        std::int64_t delay;  // before suspending, in nanoseconds
        timer_node timer;    // once suspended
    };
};

inline sleep_node* sleep_node_of(const task_state& t) noexcept {
    return reinterpret_cast<sleep_node*>(t.run_.awaiting & ~std::uintptr_t{1});
}

// Low bit of a timer-queue entry: a callback_node, or a task asleep.
enum : std::uintptr_t { timer_is_callback = 0, timer_is_sleep = 1 };

}  // namespace aio::detail
