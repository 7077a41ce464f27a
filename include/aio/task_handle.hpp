#pragma once
// aio::task_handle<T> and aio::any_task_handle: shared references to a task that runs
// on its own (asyncio's Task object), as returned by aio::create_task.
//
// Handles are cheap to copy (a reference count in the task's frame). Dropping every
// handle does not stop the task: the loop owns it until it ends. The frame, and with
// it the result, lives until the task has ended and the last handle is gone.

#include <coroutine>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/callback_node.hpp"
#include "detail/done_step.hpp"
#include "detail/loop_core.hpp"
#include "detail/suspension.hpp"
#include "detail/task_state.hpp"
#include "detail/thread_check.hpp"
#include "errors.hpp"
#include "task.hpp"

namespace aio {

namespace detail {
struct handle_access;

}  // namespace detail

// What every handle can do, whatever the task's result type.
class any_task_handle {
public:
    any_task_handle() noexcept = default;
    any_task_handle(const any_task_handle& other) noexcept : state_(other.state_) {
        if (state_) {
            detail::assert_loop_thread(state_->loop(), "copying an aio::task_handle");
            state_->add_ref();
        }
    }
    any_task_handle(any_task_handle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
    any_task_handle& operator=(any_task_handle other) noexcept {
        std::swap(state_, other.state_);
        return *this;
    }
    ~any_task_handle() {
        if (state_) {
            detail::assert_loop_thread(state_->loop(), "dropping an aio::task_handle");
            state_->release();
        }
    }

    explicit operator bool() const noexcept { return state_ != nullptr; }
    friend bool operator==(const any_task_handle& a, const any_task_handle& b) noexcept {
        return a.state_ == b.state_;
    }

    bool done() const { return state().done(); }
    bool cancelled() const { return state().status() == detail::task_status::cancelled; }

    // Requests cancellation (API rule 8): the task gets aio::cancelled_error at the
    // co_await where it is suspended — what it awaits is cancelled too. Returns false
    // if the task has already ended. A non-empty `message` becomes the error's what(),
    // in this task and in those its cancellation reaches (asyncio's cancel(msg)).
    bool cancel(const std::string& message = {}) { return state().cancel(message.empty() ? nullptr : &message); }

    // How many cancel() requests are pending on the task (asyncio's cancelling()).
    int cancelling() const { return state().cancelling(); }

    // Takes back one cancel() request and returns how many remain (asyncio's
    // uncancel()). When none remain, a cancellation not yet delivered is dropped. For
    // code that cancels a task itself and handles it, such as a time limit that
    // turns its own cancellation into aio::timeout_error.
    int uncancel() { return state().uncancel(); }

    std::string name() const { return state().name(); }
    void set_name(std::string name) { state().set_name(std::move(name)); }

    // The exception the task ended with, or null if it returned normally. Throws
    // aio::invalid_state_error while the task runs and aio::cancelled_error if it was
    // cancelled. Marks the exception as retrieved.
    std::exception_ptr exception() const {
        detail::task_state& t = finished_state("exception");
        if (t.status() == detail::task_status::cancelled) t.rethrow_error();
        t.mark_retrieved();
        return t.status() == detail::task_status::error ? t.error() : nullptr;
    }

protected:
    explicit any_task_handle(detail::task_state* state) noexcept : state_(state) {
        if (state_) state_->add_ref();
    }

    detail::task_state& state() const {
        if (!state_) throw invalid_state_error("empty aio task handle");
        return *state_;
    }
    detail::task_state& finished_state(const char* what) const {
        detail::task_state& t = state();
        if (!t.done()) throw invalid_state_error(std::string(what) + "() called on a task that has not finished");
        return t;
    }

    detail::task_state* state_ = nullptr;

    friend struct detail::handle_access;
};

namespace detail {
// Lets the library's own awaiters reach the state behind a handle.
struct handle_access {
    static task_state* state(const any_task_handle& h) noexcept { return h.state_; }
    static any_task_handle adopt(task_state* t) noexcept { return any_task_handle(t); }
};

// The result of a finished task: its value, or its exception rethrown. A move-only
// value is moved out when `take` is true, once.
template <class T>
decltype(auto) task_result(task_state& t, bool take) {
    if (t.has_error()) t.rethrow_error();
    if constexpr (std::is_void_v<T>) {
        return;
    } else {
        auto& p = static_cast<promise<T>&>(t);
        if (t.value_taken()) throw invalid_state_error("the task's move-only result was already moved out");
        if constexpr (std::is_copy_constructible_v<T>) {
            if (!take) return T(p.value());
        }
        t.mark_value_taken();
        return T(std::move(p.value()));
    }
}
}  // namespace detail

template <class T = void>
class task_handle : public any_task_handle {
public:
    using value_type = T;

    task_handle() noexcept = default;

    // The task's value (a reference valid while a handle exists); rethrows the task's
    // exception; throws aio::invalid_state_error while the task runs.
    decltype(auto) result() const {
        detail::task_state& t = finished_state("result");
        if (t.has_error()) t.rethrow_error();
        if constexpr (std::is_void_v<T>) return;
        else {
            if (t.value_taken()) throw invalid_state_error("the task's move-only result was already moved out");
            return static_cast<const T&>(static_cast<detail::promise<T>&>(t).value());
        }
    }

    // Calls f(handle) once the task has ended — always through the loop, never inline,
    // even when it has already ended (API rule 4). Allocates the callback. An
    // exception from f goes to the loop's exception handler.
    template <class F>
    void add_done_callback(F f);

    // co_await h: waits for the task and returns its value (a copy; `co_await
    // std::move(h)` moves a move-only value out) or rethrows its exception. Resumes
    // through the loop when the task ends (rule 4); a task that has ended already
    // returns at once. Cancelling the awaiting task cancels the awaited one.
    class awaiter;
    awaiter operator co_await() const& { return awaiter(state_, false); }
    awaiter operator co_await() && { return awaiter(state_, true); }

private:
    friend class event_loop;
    friend struct detail::handle_access;
    explicit task_handle(detail::task_state* state) noexcept : any_task_handle(state) {}
};

namespace detail {

// A done callback waits in the task's waiter list like any awaiter, holding a handle
// so the task outlives it.
template <class T, class F>
struct done_callback final : done_step {
    done_callback(task_handle<T> h, F f) : handle(std::move(h)), fn(std::move(f)) {
        run = [](ready_item* item) noexcept {
            auto* self = static_cast<done_callback*>(item);
            try {
                self->fn(std::as_const(self->handle));
            } catch (...) {
                task_state* t = handle_access::state(self->handle);
                if (scheduler* loop = t->loop()) core_of(loop)->report({"Exception in done callback", std::current_exception(), {}});
            }
            delete self;
        };
        discard = [](ready_item* item) noexcept { delete static_cast<done_callback*>(item); };
    }
    task_handle<T> handle;
    F fn;
};

}  // namespace detail

template <class T>
template <class F>
void task_handle<T>::add_done_callback(F f) {
    static_assert(std::is_invocable_v<F&, const task_handle<T>&>,
                  "a done callback is called as f(const aio::task_handle<T>&)");
    detail::task_state& t = state();
    detail::loop_core* loop = detail::core_of(t.loop());
    if (!loop) throw aio::runtime_error("add_done_callback() on a task whose event loop is closed");
    auto node = std::make_unique<detail::done_callback<T, F>>(*this, std::move(f));
    node->watch(*loop, t);
    node.release();  // the step deletes itself when it has run (or the loop discards it)
}

template <class T>
class task_handle<T>::awaiter : public detail::cancel_hook {
public:
    // The awaited handle (the co_await operand) outlives the awaiter; once the task
    // has ended and woken us, the reference it hands over keeps the result alive too.
    awaiter(detail::task_state* target, bool take) : target_(target), take_(take) {
        if (!target_) throw invalid_state_error("co_await on an empty aio::task_handle");
        cancel = [](detail::cancel_hook* hook) noexcept { return static_cast<awaiter*>(hook)->target_->cancel(); };
        awaited_task = target_;
    }
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;
    ~awaiter() {
        if (link_.linked()) target_->waiters().unlink(&link_);
        else if (link_.holds_ref()) target_->release();
    }

    bool await_ready() const noexcept { return target_->done(); }

    void await_suspend(std::coroutine_handle<> h) {
        detail::task_state& self = detail::suspending_task("an aio::task_handle");
        if (&self == target_) throw aio::runtime_error("a task cannot await itself");
        if (self.loop() != target_->loop()) throw aio::runtime_error("a task cannot await a task of another event loop");
        self_ = &self;
        link_.entry = detail::entry_of(&self, detail::tag_task);
        target_->waiters().push_back(&link_);
        detail::suspend(self, h, *this);
    }

    T await_resume() {
        detail::resumed(self_);
        // Move a value out only when no other handle can read it afterwards.
        const std::uint32_t ours = link_.holds_ref() ? 2 : 1;  // the operand, and the handed-over one
        return detail::task_result<T>(*target_, take_ && target_->handle_count() <= ours);
    }

private:
    detail::task_state* target_;
    detail::task_state* self_ = nullptr;
    detail::waiter link_;
    bool take_;
};

}  // namespace aio
