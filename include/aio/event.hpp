#pragma once
// aio::event: asyncio.Event — a flag that tasks wait for.
//
//   aio::event ready;
//   co_await ready.wait();   // in the waiting tasks
//   ready.set();             // anywhere on the loop's thread
//
// Resumption: wait() on a set event returns at once, without suspending. Otherwise
// the task waits until set(), which wakes every waiting task through the loop, in
// the order they started waiting (rule 4: each is appended to the ready queue; none
// runs inside set()). A clear() right after set() does not take the wake-ups back:
// the woken tasks still return from wait().
//
// Cancellation: a waiting task is woken and gets aio::cancelled_error from wait().
// One that was woken by set() and cancelled before it ran gets cancelled_error too
// (an event is not a resource: nothing is handed on).
//
// Waiting allocates nothing (the node lives in the awaiter). The event must outlive
// the tasks waiting on it. Single-threaded, like the loop.

#include <coroutine>

#include "detail/sync_waiter_queue.hpp"

namespace aio {

class event {
public:
    event() noexcept = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;

    bool is_set() const noexcept { return value_; }

    // Sets the flag and wakes every waiting task, oldest first. No effect if set.
    void set() noexcept {
        waiters_.assert_thread("aio::event::set()");
        if (value_) return;
        value_ = true;
        waiters_.wake_all();
    }

    // Resets the flag: later wait() calls suspend again.
    void clear() noexcept { value_ = false; }

    class [[nodiscard]] wait_awaiter {
    public:
        explicit wait_awaiter(event& e) noexcept : event_(e) {}
        bool await_ready() const noexcept { return event_.value_; }
        void await_suspend(std::coroutine_handle<> h) { node_.suspend(event_.waiters_, h, "aio::event::wait()"); }
        void await_resume() {
            if (node_.current() == detail::sync_waiter::state::idle) return;  // did not suspend
            if (node_.resume() != detail::sync_waiter::outcome::woken) node_.throw_cancellation();
        }

    private:
        event& event_;
        detail::sync_waiter node_;
    };

    // co_await e.wait(): returns once the event is set (at once if it is set now).
    wait_awaiter wait() noexcept { return wait_awaiter(*this); }

private:
    detail::sync_waiter_queue waiters_;
    bool value_ = false;
};

}  // namespace aio
