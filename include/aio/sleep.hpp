#pragma once
// co_await aio::sleep(d): asyncio.sleep.
//
// Resumption: d <= 0 appends the task to the ready queue at once (it yields exactly
// one loop iteration). Otherwise a timer is armed; when it is due the loop queues the
// timer's callback, which wakes the task — two iterations, as in asyncio (rule 6).
// Cancellation removes the timer from the heap at once and wakes the task, which gets
// aio::cancelled_error from this co_await. Sleeping allocates nothing: the timer lives
// in the awaiter, inside the sleeping task's frame.

#include <chrono>
#include <coroutine>
#include <cstdint>

#include "detail/loop_core.hpp"
#include "detail/sleep_node.hpp"
#include "errors.hpp"

namespace aio {

class [[nodiscard]] sleep_awaitable {
public:
    explicit sleep_awaitable(std::chrono::nanoseconds delay) noexcept { node_.delay = delay.count(); }
    sleep_awaitable(const sleep_awaitable&) = delete;
    sleep_awaitable& operator=(const sleep_awaitable&) = delete;
    ~sleep_awaitable() {
        if (node_.armed()) node_.task->loop_->timers.remove(&node_.timer);
    }

    bool await_ready() const noexcept { return false; }

    void await_suspend(std::coroutine_handle<> h) {
        detail::task_state& t = detail::suspending_task("aio::sleep()");
        detail::loop_core& loop = *detail::running_loop;
        const std::int64_t delay = node_.delay;
        if (delay <= 0) {
            node_.task = &t;
            t.run_.resume = h;
            loop.schedule(t);
            return;
        }
        const std::int64_t deadline = detail::steady_now_ns() + delay;
        node_.task = &t;
        t.run_.resume = h;
        if (t.must_cancel_) {  // cancelled while running: this sleep is cancelled at once
            t.must_cancel_ = false;
            node_.timer.heap_index = detail::sleep_node::cancelled;
            loop.schedule(t);
            return;
        }
        loop.timers.push(deadline, reinterpret_cast<std::uintptr_t>(&node_) | detail::timer_is_sleep);
        t.run_.awaiting = reinterpret_cast<std::uintptr_t>(&node_) | detail::awaiting_sleep;
    }

    void await_resume() {
        if (node_.timer.heap_index == detail::sleep_node::cancelled) throw cancelled_error();
        detail::throw_if_cancel_pending(node_.task);
    }

private:
    detail::sleep_node node_;
};

// Suspends the calling task for `delay` (any std::chrono::duration; rounded up to
// nanoseconds). Must be awaited inside a task run by an aio event loop.
template <class Rep, class Period>
sleep_awaitable sleep(std::chrono::duration<Rep, Period> delay) noexcept {
    return sleep_awaitable(std::chrono::ceil<std::chrono::nanoseconds>(delay));
}

}  // namespace aio
