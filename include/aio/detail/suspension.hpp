#pragma once
// The one suspension protocol: how an awaitable suspends the running task on
// something cancellable, and how a cancellation reaches it (API rules 4 and 8).
// Every awaitable that suspends a task follows it, with these calls:
//
//   await_suspend(h):
//       task_state& t = suspending_task("aio::thing()");  // the running task, or a clear error
//       ...register the wait (link a waiter, arm a timer) so that the hook can undo it...
//       suspend(t, h, *this);
//     suspend() records where the task resumes and what it waits on, and delivers a
//     cancel() that came while the task was running by calling the hook at once
//     (asyncio's task cancels the future it then yields).
//   the cancel hook (cancel_hook::cancel):
//     undoes the registration and wakes the task (returns true), or returns false
//     when the wake-up is already queued: the task then keeps the cancellation for
//     its resumption. Whoever wakes the task, the hook or the event it waited for,
//     calls loop.schedule(t), which clears the hook.
//   await_resume():
//       resumed(t, hook_ran);   // first: throws a cancellation, if one is due
//       return the result;
//     A cancellation that arrived after the wake-up is thrown here (asyncio's
//     _must_cancel), and so is the hook's when it ran. An awaitable whose wake-up
//     gave the task something (a lock, a queue's turn) asks cancel_pending(t) first
//     and passes the gift on before it calls resumed().
//   destruction:
//     an awaitable destroyed while a task may still be suspended on it (its loop
//     closing, or a primitive destroyed under its waiters) calls forget_hook(t, *this),
//     so that a later cancel() does not follow a dangling hook.
//
// Sleeps use the loop's own timer as their hook: suspend_sleeping().
//
// The README's "Writing an awaitable" shows the protocol in twenty lines.

#include <coroutine>
#include <cstdint>

#include "cancel_hook.hpp"
#include "cancellation.hpp"
#include "clock.hpp"
#include "loop_core.hpp"
#include "sleep_node.hpp"
#include "task_state.hpp"
#include "timer_queue.hpp"

namespace aio::detail {

inline std::uintptr_t hook_word(cancel_hook& hook) noexcept { return reinterpret_cast<std::uintptr_t>(&hook); }

// `t` (from suspending_task) suspends at `h` on `hook`, its wait already registered.
inline void suspend(task_state& t, std::coroutine_handle<> h, cancel_hook& hook) noexcept {
    t.run_.resume = h;
    t.run_.awaiting = hook_word(hook);
    if (t.must_cancel_) [[unlikely]]
        if (cancel_walk().from_hook(t, &hook)) t.must_cancel_ = false;
}

// True when a cancellation is due at `t`'s resumption (for awaitables that must pass
// on what their wake-up gave before resumed() throws).
inline bool cancel_pending(const task_state* t) noexcept { return t && t->must_cancel_; }

// The first step of await_resume: throws the cancellation due at `t`, if any, then the
// hook's (`hook_ran`). One cancellation gives one error.
inline void resumed(task_state* t, bool hook_ran = false) {
    throw_if_cancel_pending(t);
    if (hook_ran) [[unlikely]]
        throw_cancellation_of(t);
}

// The awaitable behind `hook` is going away while `t` may still be suspended on it.
inline void forget_hook(task_state* t, cancel_hook& hook) noexcept {
    if (t && t->run_.awaiting == hook_word(hook)) t->run_.awaiting = 0;
}

// A sleep: `t` suspends at `h` for `delay` ns on the loop's timer, which the cancel
// walk removes itself (awaiting_sleep). A zero or negative delay yields one iteration
// (asyncio's sleep(0)); a cancellation due now cancels the sleep at once.
inline void suspend_sleeping(task_state& t, std::coroutine_handle<> h, sleep_node& node, std::int64_t delay) {
    loop_core& loop = *running_loop;  // `t` is its running task
    t.run_.resume = h;
    if (delay <= 0) {
        node.timer = {sleep_node::fired, 0};
        loop.schedule(t);
    } else if (t.must_cancel_) [[unlikely]] {
        t.must_cancel_ = false;
        t.cancel_fixed_ = true;
        node.timer = {sleep_node::cancelled, 0};
        loop.schedule(t);
    } else {
        node.timer = {};
        t.run_.awaiting = reinterpret_cast<std::uintptr_t>(&node) | awaiting_sleep;
        try {
            loop.timers.push(deadline_after(loop.now(), delay), reinterpret_cast<std::uintptr_t>(&t) | timer_is_sleep);
        } catch (...) {
            t.run_.awaiting = 0;
            throw;
        }
    }
}

}  // namespace aio::detail
