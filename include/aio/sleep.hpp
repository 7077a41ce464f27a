#pragma once
// co_await aio::sleep(d): asyncio.sleep.
//
// Resumption: d <= 0 appends the task to the ready queue at once (it yields exactly
// one loop iteration). Otherwise a timer is armed; when it is due the loop queues the
// timer's callback, which wakes the task — two iterations, as in asyncio (rule 6).
// Cancellation removes the timer from the loop at once and wakes the task, which gets
// aio::cancelled_error from this co_await. Sleeping allocates nothing: the timer lives
// in the awaiter, inside the sleeping task's frame.

#include <chrono>
#include <coroutine>
#include <cstdint>

#include "detail/sleep_node.hpp"
#include "detail/suspension.hpp"
#include "errors.hpp"

namespace aio {

class [[nodiscard]] sleep_awaitable {
public:
    explicit sleep_awaitable(std::int64_t delay_ns) noexcept : node_(delay_ns) {}
    // Movable until it is awaited (into wait_for or a timeout scope, say); once it
    // waits, its timer lives in it and it stays where it is.
    sleep_awaitable(sleep_awaitable&& other) noexcept : node_(other.node_.delay) {}
    sleep_awaitable(const sleep_awaitable&) = delete;
    sleep_awaitable& operator=(const sleep_awaitable&) = delete;
    // A frame is destroyed while it sleeps only when its loop closes, and the loop
    // disarms every sleep before it destroys any frame: nothing to undo here.
    ~sleep_awaitable() = default;

    bool await_ready() const noexcept { return false; }

    void await_suspend(std::coroutine_handle<> h) {
        detail::suspend_sleeping(detail::suspending_task("aio::sleep()"), h, node_, node_.delay);
    }

    void await_resume() {
        // A cancel() that came after the timer was cancelled adds no second error.
        detail::resumed(detail::current_task_state(), node_.timer.slot == detail::sleep_node::cancelled);
    }

private:
    detail::sleep_node node_;
};

// Suspends the calling task for `delay` (any std::chrono::duration; rounded up to
// nanoseconds, and saturated: a delay past the clock's range never fires). Must be
// awaited inside a task run by an aio event loop.
template <class Rep, class Period>
sleep_awaitable sleep(std::chrono::duration<Rep, Period> delay) noexcept {
    return sleep_awaitable(detail::saturating_ns(delay));
}

}  // namespace aio
