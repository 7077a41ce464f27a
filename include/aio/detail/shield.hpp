#pragma once
// The machinery behind aio::shield (see shield.hpp for the contract).
//
// asyncio's shield puts an outer future between the awaiting task and the inner one:
// a done callback on the inner task completes the outer future, and cancelling the
// awaiting task cancels only the outer future. Here the awaitable is that outer
// future, and its done callback is a ready_item waiting in the inner task's waiter
// list.

#include <coroutine>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../errors.hpp"
#include "../task_handle.hpp"
#include "done_step.hpp"
#include "loop_core.hpp"
#include "ready_queue.hpp"
#include "suspension.hpp"
#include "task_state.hpp"

namespace aio::detail {

// WaitOnly: the co_await only waits for the inner task's end and reads nothing from it
// (asyncio's `await waiter` in _cancel_and_wait, which wait_for uses): it throws only
// the awaiting task's own cancellation.
template <class T, bool WaitOnly = false>
class [[nodiscard]] shield_awaitable : cancel_hook, done_step {
public:
    explicit shield_awaitable(task_handle<T> inner) : inner_(std::move(inner)) {
        task_state* t = handle_access::state(inner_);
        if (!t) throw invalid_state_error("aio::shield() of an empty task handle");
        cancel = on_cancel;  // what it awaits is not a task: cancel() stops here
        if (t->done()) {     // asyncio's shortcut: shield() of a finished task is that task
            state_ = state::completed;
            passthrough_ = true;
            return;
        }
        loop_ = core_of(t->loop());
        run = on_inner_done;
        watch(*loop_, *t);
    }
    shield_awaitable(const shield_awaitable&) = delete;
    shield_awaitable& operator=(const shield_awaitable&) = delete;
    ~shield_awaitable() {
        // Before inner_ goes: the callback points into the inner task.
        if (loop_) unwatch(*loop_, inner());
        // A task other than the one that called shield() may still be suspended here
        // (or any task while its loop closes): it must not keep a dangling hook that
        // cancel() would follow. It stays suspended.
        if (awaiting_ && state_ == state::pending && !loop_->closed) forget_hook(awaiting_, *this);
    }

    bool await_ready() const {
        if (awaiting_ || state_ == state::consumed) [[unlikely]]
            throw invalid_state_error("an aio::shield() can be awaited only once");
        return state_ == state::completed;
    }

    void await_suspend(std::coroutine_handle<> h) {
        task_state& self = suspending_task("aio::shield()");
        if (&self == &inner()) throw aio::runtime_error("a task cannot await a shield of itself");
        if (self.loop() != loop_) throw aio::runtime_error("a task cannot await a shield of a task of another event loop");
        awaiting_ = &self;
        detail::suspend(self, h, *this);
    }

    std::conditional_t<WaitOnly, void, T> await_resume() {
        const bool cancelled = state_ == state::cancelled;
        state_ = state::consumed;
        resumed(awaiting_, cancelled);
        if constexpr (WaitOnly) return;
        // The inner task's value (moved out if the shield holds the only handle), or its
        // exception. If it was cancelled itself, a bare cancelled_error: asyncio's
        // callback cancels the outer future without the inner task's message (and does
        // not retrieve the inner task's exception) — unless the task had ended when
        // shield() was called, which then hands out the task itself.
        else {
            task_state& t = inner();
            if (t.status() == task_status::cancelled && !passthrough_) throw cancelled_error();
            return task_result<T>(t, t.handle_count() == 1);
        }
    }

private:
    enum class state : std::uint8_t {
        pending,    // the inner task runs, or its done callback is queued
        completed,  // the inner task has ended and the callback has run (or it had ended already)
        cancelled,  // the awaiting task was cancelled first: its wake-up is queued
        consumed,   // the awaiting task has resumed
    };

    task_state& inner() const noexcept { return *handle_access::state(inner_); }

    // asyncio's _inner_done_callback, run through the ready queue after the inner task
    // ends: it wakes the awaiting task, if one waits yet (rule 4).
    static void on_inner_done(ready_item* item) noexcept {
        auto& s = static_cast<shield_awaitable&>(*item);
        s.state_ = state::completed;
        if (s.awaiting_) s.loop_->schedule(*s.awaiting_);
    }

    // The awaiting task is cancelled: only the shield is. The inner task's callback is
    // removed (if the inner task has ended already, its exception counts as retrieved,
    // as in asyncio) and the awaiting task is woken to get cancelled_error. Too late
    // once the callback has run: the task then gets cancelled_error when it resumes.
    static bool on_cancel(cancel_hook* hook) noexcept {
        auto& s = static_cast<shield_awaitable&>(*hook);
        if (s.state_ != state::pending) return false;
        s.state_ = state::cancelled;
        task_state& t = s.inner();
        if (!s.link.linked()) t.mark_retrieved();  // it has ended: its done step is queued
        s.unwatch(*s.loop_, t);
        s.loop_->schedule(*s.awaiting_);
        return true;
    }

    task_handle<T> inner_;
    loop_core* loop_ = nullptr;  // the inner task's, while it had not ended
    task_state* awaiting_ = nullptr;
    state state_ = state::pending;
    bool passthrough_ = false;  // the inner task had ended when shield() was called
};

}  // namespace aio::detail
