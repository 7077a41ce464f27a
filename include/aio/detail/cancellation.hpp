#pragma once
// Cancellation: how cancel() reaches what a task awaits (API rule 8), and how a
// pending cancellation is delivered when the task resumes.
//
// cancel() without recursion. A task awaiting a task passes the cancellation down,
// and a task awaiting a gather passes it to every child, depth first and in order, as
// asyncio's recursive cancel() does. The walk follows a chain of awaited tasks in a
// loop (Floyd's two pointers stop a cycle of tasks that await each other), and keeps
// the groups it is inside on a stack linked through the groups themselves: it
// allocates nothing however deep the nesting. Where it comes back into a group it is
// inside, the tasks await each other in a cycle (a deadlock): they all stay marked.

#include <string>

#include "../errors.hpp"
#include "cancel_hook.hpp"
#include "loop_core.hpp"
#include "scheduler.hpp"
#include "task_state.hpp"

namespace aio::detail {

class cancel_walk {
public:
    // `message`: cancel(msg)'s message, given to every task the walk reaches.
    explicit cancel_walk(const std::string* message = nullptr) noexcept : message_(message) {}

    // Cancels `t`, which has not ended, and what it awaits.
    void from_task(task_state* t) noexcept {
        chain(t);
        drain();
    }
    // Cancels what `hook`, on which `t` has just suspended, stands for; true when the
    // cancellation was delivered.
    bool from_hook(task_state& t, cancel_hook* hook) noexcept {
        if (!enter(hook)) return false;
        t.cancel_fixed_ = true;
        drain();
        return true;
    }

private:
    // From `t` down the chain of tasks awaiting tasks, to what the last one awaits.
    void chain(task_state* t) noexcept {
        task_state* slow = t;
        for (bool advance_slow = false;; advance_slow = !advance_slow) {
            if (t->cancels_ < (1u << 12) - 1) ++t->cancels_;
            // The message goes with the first cancellation that reaches what the task
            // awaits; a later cancel() that finds it already cancelled only marks the
            // task (asyncio: the awaited future keeps the message it was cancelled with).
            if (scheduler* loop = t->loop(); loop && !t->cancel_fixed_ && (message_ || !loop->cancel_messages.empty()))
                [[unlikely]]
                loop->note_cancel_message(*t, message_);
            const std::uintptr_t a = t->run_.awaiting;
            if (a == 0) break;
            if (a & awaiting_sleep) {
                if (core_of(t->loop_)->cancel_sleep(*t)) {
                    t->cancel_fixed_ = true;
                    return;
                }
                break;
            }
            auto* hook = reinterpret_cast<cancel_hook*>(a);
            task_state* next = hook->awaited_task;
            if (!next) {
                if (enter(hook)) {
                    t->cancel_fixed_ = true;
                    return;
                }
                break;
            }
            if (next->done()) break;  // it has ended: its wake-up is already queued
            if (advance_slow) slow = reinterpret_cast<cancel_hook*>(slow->run_.awaiting)->awaited_task;
            t = next;
            if (t == slow) break;  // a cycle
        }
        t->must_cancel_ = true;  // delivered at its next resumption
    }

    // Cancels a hook; a group that takes the cancellation is pushed, its children to
    // be visited by drain().
    bool enter(cancel_hook* hook) noexcept {
        cancel_group* g = hook->awaited_group;
        if (!g) return hook->cancel(hook);
        if (g->walking || !hook->cancel(hook)) return false;
        g->walking = true;
        g->walk_next = 0;
        g->walk_parent = top_;
        top_ = g;
        return true;
    }

    void drain() noexcept {
        while (cancel_group* g = top_) {
            if (g->walk_next == g->children) {
                g->walking = false;
                top_ = g->walk_parent;
                continue;
            }
            task_state* child = g->child(*g, g->walk_next++);
            if (child && !child->done()) chain(child);
        }
    }

    cancel_group* top_ = nullptr;
    const std::string* message_;
};

inline bool task_state::cancel(const std::string* message) noexcept {
    if (done()) return false;
    cancel_walk(message).from_task(this);
    return true;
}

inline void task_state::rethrow_error() {
    retrieved_ = true;
    if (status() == task_status::cancelled) {
        std::exception_ptr first = error_;
        try {
            error_ = std::make_exception_ptr(cancelled_error());
        } catch (...) {
        }
        std::rethrow_exception(std::move(first));
    }
    std::rethrow_exception(error_);
}

// The task running now, if an aio task is running on this thread.
inline task_state* current_task_state() noexcept {
    return running_loop ? running_loop->current : nullptr;
}

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_not_in_task(const char* what) {
    throw aio::runtime_error(std::string(what) + " must be awaited inside a task run by an aio event loop");
}

// For an awaiter about to suspend: the running task, or a clear error.
inline task_state& suspending_task(const char* what) {
    task_state* t = current_task_state();
    if (!t) [[unlikely]]
        throw_not_in_task(what);
    return *t;
}

// Throws `t`'s cancellation. Out of line, as are the other throws on an awaiter's
// path: the checks before them stay small enough to inline into every await_resume.
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_cancellation_of(task_state* t) { throw cancellation_of(t); }

[[gnu::cold, gnu::noinline]] inline void throw_pending_cancellation(task_state* t) {
    t->must_cancel_ = false;
    throw_cancellation_of(t);
}

// Delivers a cancel() that arrived while the task was ready to run (asyncio's
// _must_cancel): the awaiter that resumes throws instead of returning.
inline void throw_if_cancel_pending(task_state* t) {
    if (t && t->must_cancel_) [[unlikely]]
        throw_pending_cancellation(t);
}

}  // namespace aio::detail
