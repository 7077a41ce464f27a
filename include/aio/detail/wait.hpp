#pragma once
// The machinery behind aio::wait (see wait.hpp for the contract).
//
// asyncio's _wait: a done callback on every task and, with a timeout, a timer; the
// first callback that meets the condition (or the timer) completes a private future
// that the awaiting task waits on. Here that future is the awaitable itself, and the
// callbacks are the slots of a watch_set.

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../task_handle.hpp"
#include "../wait_result.hpp"
#include "loop_core.hpp"
#include "suspension.hpp"
#include "task_state.hpp"
#include "watch_set.hpp"

namespace aio::detail {

template <class Handle>
class [[nodiscard]] wait_awaitable : cancel_hook, watch_set {
public:
    wait_awaitable(loop_core& loop, std::vector<Handle>&& handles, return_when when,
                   std::optional<std::int64_t> timeout_ns)
        : watch_set(loop, on_done, on_timeout),
          handles_(std::move(handles)),
          timeout_ns_(timeout_ns),
          remaining_(handles_.size()),
          when_(when) {
        if (handles_.empty()) throw invalid_state_error("aio::wait() of an empty set of tasks");
        check(handles_, "aio::wait()");
        cancel = on_cancel;
    }
    wait_awaitable(const wait_awaitable&) = delete;
    wait_awaitable& operator=(const wait_awaitable&) = delete;
    ~wait_awaitable() {
        stop();  // before the handles go: the slots point into their tasks
        // Only a task other than the one that called aio::wait() can still be
        // suspended here (or any task while its loop closes): it must not keep a
        // dangling hook that cancel() would follow. It stays suspended.
        if (state_ == state::waiting && awaiting_ && !loop().closed) forget_hook(awaiting_, *this);
    }

    // Always suspends, even when every task has ended: the done callbacks run
    // through the loop first, as in asyncio.
    bool await_ready() const {
        if (state_ != state::created) [[unlikely]]
            throw invalid_state_error("an aio::wait() can be awaited only once");
        return false;
    }

    void await_suspend(std::coroutine_handle<> h) {
        task_state& t = suspending_task("aio::wait()");
        watch(handles_);
        if (timeout_ns_) {
            try {
                arm(*timeout_ns_);
            } catch (...) {
                stop();
                throw;
            }
        }
        awaiting_ = &t;
        state_ = state::waiting;
        detail::suspend(t, h, *this);
    }

    wait_result<Handle> await_resume() {
        stop();  // asyncio's `finally`: the callbacks and the timer go
        const bool cancelled = state_ == state::cancelled;
        state_ = state::consumed;
        resumed(awaiting_, cancelled);
        // The done ones stay in handles_ (moved up in order); the others move out.
        wait_result<Handle> result;
        std::size_t kept = 0;
        for (Handle& h : handles_) {
            if (handle_access::state(h)->done()) {
                if (&handles_[kept] != &h) handles_[kept] = std::move(h);
                ++kept;
            } else {
                result.pending.push_back(std::move(h));
            }
        }
        handles_.resize(kept);
        result.done = std::move(handles_);
        return result;
    }

private:
    enum class state : std::uint8_t {
        created,    // not awaited yet: nothing is watched
        waiting,    // a task is suspended here
        completed,  // the condition or the timeout was met: the task's wake-up is queued
        cancelled,  // the awaiting task was cancelled: its wake-up is queued
        consumed,   // the task has resumed
    };

    static wait_awaitable& self(watch_set& w) noexcept { return static_cast<wait_awaitable&>(w); }

    void complete() noexcept {
        if (state_ != state::waiting) return;
        state_ = state::completed;
        disarm();
        loop().schedule(*awaiting_);
    }

    // asyncio's _on_completion. It goes on counting after the wait completed, until
    // the awaiting task resumes and removes the callbacks; with first_exception it
    // marks each exception it looks at as retrieved, as f.exception() does.
    static void on_done(watch_set& w, watch_slot& slot) noexcept {
        wait_awaitable& a = self(w);
        task_state& t = *slot.task;
        --a.remaining_;
        bool met = a.remaining_ == 0 || a.when_ == return_when::first_completed;
        if (!met && a.when_ == return_when::first_exception && t.status() != task_status::cancelled) {
            t.mark_retrieved();
            met = t.status() == task_status::error;
        }
        if (met) a.complete();
    }

    static void on_timeout(watch_set& w) noexcept { self(w).complete(); }

    // Cancelling the awaiting task cancels only the wait (asyncio cancels its private
    // future): the tasks waited on carry on. Too late once the wait has completed —
    // the task then gets cancelled_error when it resumes.
    static bool on_cancel(cancel_hook* hook) noexcept {
        auto& a = *static_cast<wait_awaitable*>(hook);
        if (a.state_ != state::waiting) return false;
        a.state_ = state::cancelled;
        a.disarm();
        a.loop().schedule(*a.awaiting_);
        return true;
    }

    std::vector<Handle> handles_;
    std::optional<std::int64_t> timeout_ns_;
    std::size_t remaining_;
    task_state* awaiting_ = nullptr;
    return_when when_;
    state state_ = state::created;
};

}  // namespace aio::detail
