#pragma once
// The one suspension protocol: how an awaitable suspends the running task on
// something cancellable, and how a cancellation reaches it.
//
//   await_suspend(h):  register the wait (link a waiter, arm a timer, ...) so that
//                      the hook can undo it, then call
//                          task_ = &detail::suspend_on(h, *this, "what");
//                      It records where the task resumes and what it waits on, and
//                      delivers a cancel() that came while the task was running by
//                      calling the hook at once (asyncio's task cancels the future it
//                      then yields).
//   the cancel hook:   cancel(hook) undoes the registration and wakes the task
//                      (returns true), or returns false when the wake-up is already
//                      queued; the task then keeps the cancellation for its
//                      resumption. Whoever wakes the task (the hook, or the event it
//                      waited for) calls loop.schedule(task), which clears the hook.
//   await_resume():    call detail::resumed(task_) first: it throws the cancellation
//                      that arrived after the wake-up. Then return the result, or
//                      throw cancelled_error if the hook ran.
//   destruction:       an awaitable destroyed while a task is still suspended on it
//                      (only while its loop closes, or a primitive destroyed under
//                      its waiters) calls detail::forget_hook(task_, *this), so that
//                      a later cancel() does not follow a dangling hook.
//
// Sleeps follow the same protocol with the loop's own timer hook (suspend_on_sleep).

#include <coroutine>
#include <cstdint>

#include "cancel_hook.hpp"
#include "cancellation.hpp"
#include "loop_core.hpp"
#include "task_state.hpp"

namespace aio::detail {

inline std::uintptr_t hook_word(cancel_hook& hook) noexcept { return reinterpret_cast<std::uintptr_t>(&hook); }

// Suspends the running task on `hook`; `what` names the awaitable in the error when
// no aio task is running. Returns the task.
inline task_state& suspend_on(std::coroutine_handle<> h, cancel_hook& hook, const char* what) {
    task_state& t = suspending_task(what);
    t.run_.resume = h;
    t.run_.awaiting = hook_word(hook);
    if (t.must_cancel_) [[unlikely]]
        if (cancel_walk().from_hook(&hook)) t.must_cancel_ = false;
    return t;
}

// For the first step of await_resume: a cancel() that came after the task was woken.
inline void resumed(task_state* t) { throw_if_cancel_pending(t); }

// The awaitable behind `hook` is going away while `t` may still be suspended on it.
inline void forget_hook(task_state* t, cancel_hook& hook) noexcept {
    if (t && t->run_.awaiting == hook_word(hook)) t->run_.awaiting = 0;
}

}  // namespace aio::detail
