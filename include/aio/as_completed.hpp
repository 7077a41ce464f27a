#pragma once
// aio::as_completed(handles): asyncio.as_completed — the tasks' results in the order
// the tasks end.
//
//   auto ac = aio::as_completed(std::move(handles));          // or (handles, 5s)
//   for (std::size_t i = 0; i < ac.size(); ++i) {
//       int v = co_await ac.next();   // the next task to end: its value, or its exception rethrown
//   }
//   // equally: while (!ac.done()) { int v = co_await ac.next(); ... }
//
// `handles` is a std::vector of aio::task_handle<T>, or of lazy aio::task<T> that
// as_completed() schedules at once on the running loop, in order (asyncio's
// ensure_future). as_completed() starts watching the tasks right away and returns an
// aio::as_completed_results<T>:
//   size()          how many results it gives: one per handle (a handle given twice
//                   counts twice; asyncio would drop the duplicate);
//   done()          true once every result has been taken;
//   co_await next() the next result, in completion order.
//
// next() gives each task's value (moved out when the task has no other handle) or
// rethrows its exception (aio::cancelled_error for a cancelled task); either way that
// result has been taken. After the timeout, if any, every next() that finds no result
// of a task that ended in time throws aio::timeout_error. Calling next() once done()
// holds throws aio::invalid_state_error.
//
// Resumption, as in asyncio: a task's end runs as_completed's done step through the
// ready queue, which records the result and wakes a task waiting in next() (rule 4).
// A next() that finds a result recorded (or the timeout passed) returns at once,
// without suspending. One task at a time may wait in next(): a second one gets
// aio::invalid_state_error.
//
// Cancellation: cancelling the task waiting in next() throws aio::cancelled_error
// from that next() and takes no result; the tasks keep running (as in asyncio, where
// only the waiting queue getter is cancelled). Nothing as_completed does cancels them.
//
// Lifetime: the object holds the handles, so the tasks' results, until it is
// destroyed; destroying it stops watching the tasks. It cannot be moved or copied,
// and must outlive a task suspended in its next(). Allocation: one block for the
// watching of all the tasks (plus the lazy tasks' frames).

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "detail/loop_core.hpp"
#include "detail/suspension.hpp"
#include "detail/task_state.hpp"
#include "detail/watch_set.hpp"
#include "errors.hpp"
#include "event_loop.hpp"
#include "task.hpp"
#include "task_handle.hpp"

namespace aio {

template <class T>
class [[nodiscard]] as_completed_results : detail::watch_set {
public:
    // Use aio::as_completed().
    as_completed_results(detail::loop_core& loop, std::vector<task_handle<T>>&& handles,
                         std::optional<std::int64_t> timeout_ns)
        : watch_set(loop, on_done, on_timeout), handles_(std::move(handles)) {
        check(handles_, "aio::as_completed()");
        watch(handles_);
        if (timeout_ns && !handles_.empty()) {
            try {
                arm(*timeout_ns);
            } catch (...) {
                stop();
                throw;
            }
        }
    }
    as_completed_results(const as_completed_results&) = delete;
    as_completed_results& operator=(const as_completed_results&) = delete;
    ~as_completed_results() {
        stop();  // before the handles go: the slots point into their tasks
        if (waiting_) waiting_->forget();
    }

    std::size_t size() const noexcept { return handles_.size(); }
    bool done() const noexcept { return taken_ == handles_.size(); }

    class next_awaiter;
    next_awaiter next() { return next_awaiter(*this); }

private:
    static as_completed_results& self(watch_set& w) noexcept { return static_cast<as_completed_results&>(w); }

    // The done step of one task: its result joins the queue of results to take.
    static void on_done(watch_set& w, detail::watch_slot& slot) noexcept {
        as_completed_results& ac = self(w);
        slot.next_done = nullptr;
        (ac.last_ ? ac.last_->next_done : ac.first_) = &slot;
        ac.last_ = &slot;
        if (++ac.recorded_ == ac.size()) ac.disarm();
        ac.wake();
    }

    // The time is up: the tasks that have not ended are no longer watched, and each
    // next() that finds no recorded result throws aio::timeout_error.
    static void on_timeout(watch_set& w) noexcept {
        as_completed_results& ac = self(w);
        ac.timed_out_ = true;
        ac.stop();
        ac.wake();
    }

    void wake() noexcept {
        if (waiting_) waiting_->wake();
    }

    void check_next() const {
        if (done()) throw invalid_state_error("aio::as_completed(): every result has been taken already");
        if (waiting_) throw invalid_state_error("aio::as_completed(): another task is waiting in next()");
    }
    bool has_next() const noexcept { return first_ || timed_out_; }

    decltype(auto) take() {
        ++taken_;
        detail::watch_slot* slot = first_;
        if (!slot) throw timeout_error("aio::as_completed() timed out");
        first_ = slot->next_done;
        if (!first_) last_ = nullptr;
        detail::task_state& t = *slot->task;
        return detail::task_result<T>(t, t.handle_count() == 1);
    }

    std::vector<task_handle<T>> handles_;
    detail::watch_slot* first_ = nullptr;  // the recorded results not taken yet, oldest first
    detail::watch_slot* last_ = nullptr;
    std::size_t recorded_ = 0;
    std::size_t taken_ = 0;
    next_awaiter* waiting_ = nullptr;
    bool timed_out_ = false;
};

// co_await ac.next(): see above. Resumed through the ready queue when a result is
// recorded or the time is up; cancelling the waiting task wakes it the same way.
template <class T>
class [[nodiscard]] as_completed_results<T>::next_awaiter : detail::cancel_hook {
public:
    explicit next_awaiter(as_completed_results& ac) noexcept : ac_(&ac) { cancel = on_cancel; }
    next_awaiter(const next_awaiter&) = delete;
    next_awaiter& operator=(const next_awaiter&) = delete;
    ~next_awaiter() {
        if (ac_ && ac_->waiting_ == this) ac_->waiting_ = nullptr;
    }

    bool await_ready() const {
        ac_->check_next();
        return ac_->has_next();
    }

    void await_suspend(std::coroutine_handle<> h) {
        detail::task_state& t = detail::suspending_task("aio::as_completed()'s next()");
        if (t.loop() != &ac_->loop())
            throw aio::runtime_error("aio::as_completed()'s next() awaited on another event loop");
        self_ = &t;
        ac_->waiting_ = this;
        detail::suspend(t, h, *this);
    }

    T await_resume() {
        if (ac_->waiting_ == this) ac_->waiting_ = nullptr;
        detail::resumed(self_, cancelled_);
        return ac_->take();
    }

private:
    friend class as_completed_results;

    void wake() noexcept {
        if (woken_) return;
        woken_ = true;
        ac_->loop().schedule(*self_);
    }

    // The results object is going while a task (not the one that owns it, or any task
    // while its loop closes) is suspended here: the task can never resume now, and
    // must not keep a dangling hook that cancel() would follow. It stays suspended.
    void forget() noexcept {
        if (!woken_ && !ac_->loop().closed) detail::forget_hook(self_, *this);
        ac_ = nullptr;
    }

    static bool on_cancel(detail::cancel_hook* hook) noexcept {
        auto& a = *static_cast<next_awaiter*>(hook);
        if (a.woken_) return false;  // too late: cancelled_error when it resumes
        a.cancelled_ = true;
        a.wake();
        return true;
    }

    as_completed_results* ac_;
    detail::task_state* self_ = nullptr;
    bool woken_ = false;
    bool cancelled_ = false;
};

template <class T>
as_completed_results<T> as_completed(std::vector<task_handle<T>> handles) {
    return {*detail::running_loop_or_throw("aio::as_completed()"), std::move(handles), std::nullopt};
}

template <class T, class Rep, class Period>
as_completed_results<T> as_completed(std::vector<task_handle<T>> handles, std::chrono::duration<Rep, Period> timeout) {
    return {*detail::running_loop_or_throw("aio::as_completed()"), std::move(handles), detail::saturating_ns(timeout)};
}

namespace detail {
template <class T>
std::vector<task_handle<T>> spawn_all(std::vector<task<T>>&& tasks) {
    event_loop& loop = running_loop_or_throw("aio::as_completed()")->owner();
    std::vector<task_handle<T>> handles;
    handles.reserve(tasks.size());
    for (task<T>& t : tasks) handles.push_back(loop.create_task(std::move(t)));
    return handles;
}
}  // namespace detail

template <class T>
as_completed_results<T> as_completed(std::vector<task<T>> tasks) {
    return as_completed(detail::spawn_all(std::move(tasks)));
}

template <class T, class Rep, class Period>
as_completed_results<T> as_completed(std::vector<task<T>> tasks, std::chrono::duration<Rep, Period> timeout) {
    return as_completed(detail::spawn_all(std::move(tasks)), timeout);
}

}  // namespace aio
