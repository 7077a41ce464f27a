#pragma once
// aio::concurrent_future<T>: asyncio's concurrent.futures.Future — a result that one
// thread sets and any thread reads, waits for or cancels. run_coroutine_threadsafe
// returns one; aio::wrap_future awaits one from a task without blocking its loop.
//
// Copies share one state (as references to a Python object do); every member may be
// called from any thread. std::future cannot be cancelled and has no callbacks, which
// is why aio has its own.
//
//   auto f = aio::run_coroutine_threadsafe(fetch(url), loop);  // loop runs on another thread
//   std::string page = f.result(5s);                            // or aio::timeout_error
//
// Done callbacks run on the thread that completes (or cancels) the future, or at once
// on the calling thread when it is done already, in the order they were added.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/loop_core.hpp"
#include "errors.hpp"

namespace aio {

template <class T>
class concurrent_future;

namespace detail {

template <class T>
struct future_state {
    using value_type = std::conditional_t<std::is_void_v<T>, bool, T>;
    enum class status { pending, cancelled, finished };

    mutable std::mutex mutex;
    std::condition_variable done_cv;
    status state = status::pending;
    std::optional<value_type> value;
    std::exception_ptr error;
    bool value_taken = false;
    std::vector<std::function<void()>> callbacks;
    // Asked to cancel what produces the result (run_coroutine_threadsafe: the task,
    // through its loop's inbox); called once, outside the lock.
    std::function<void()> on_cancel;
    // The loop that completes it, if one does: a blocking wait on that loop's own
    // thread could never end.
    const loop_core* completing_loop = nullptr;
    // That loop's thread only: the task producing the result, while it runs.
    task_state* runner = nullptr;

    // The outcome of a done future, with `mutex` held: its exception or
    // aio::cancelled_error is thrown; a value moved out by take() is
    // aio::invalid_state_error.
    void check_locked() const {
        if (state == status::cancelled) throw cancelled_error();
        if (error) std::rethrow_exception(error);
        if (value_taken)
            throw invalid_state_error("the value of this aio::concurrent_future was moved out (by aio::wrap_future)");
    }
    // The value, copied (wrap_future of a future others may read too).
    T copy() {
        std::lock_guard lock(mutex);
        check_locked();
        if constexpr (!std::is_void_v<T>) return *value;
    }
    // The value, moved out (once): wrap_future's, on the awaiting loop's thread.
    T take() {
        std::lock_guard lock(mutex);
        check_locked();
        value_taken = true;
        if constexpr (!std::is_void_v<T>) return std::move(*value);
    }
    bool cancel_requested() const {
        std::lock_guard lock(mutex);
        return state == status::cancelled;
    }

    // The producer's side. False when the future was done already (cancelled first).
    template <class... V>
    bool set_value(V&&... v) {
        return complete([&] { value.emplace(std::forward<V>(v)...); });
    }
    bool set_error(std::exception_ptr e) {
        return complete([&] { error = std::move(e); });
    }

    bool cancel() {
        std::function<void()> cancel_source;
        std::vector<std::function<void()>> run;
        {
            std::lock_guard lock(mutex);
            if (state == status::finished) return false;
            if (state == status::cancelled) return true;
            state = status::cancelled;
            cancel_source = std::move(on_cancel);
            run.swap(callbacks);
        }
        done_cv.notify_all();
        if (cancel_source) cancel_source();
        for (auto& f : run) f();
        return true;
    }

    template <class Set>
    bool complete(Set&& set) {
        std::vector<std::function<void()>> run;
        {
            std::lock_guard lock(mutex);
            if (state != status::pending) return false;
            set();
            state = status::finished;
            on_cancel = nullptr;
            run.swap(callbacks);
        }
        done_cv.notify_all();
        for (auto& f : run) f();
        return true;
    }

    void add_callback(std::function<void()> f) {
        {
            std::lock_guard lock(mutex);
            if (state == status::pending) {
                callbacks.push_back(std::move(f));
                return;
            }
        }
        f();
    }
};

template <class T>
struct future_access;

}  // namespace detail

template <class T>
class concurrent_future {
public:
    using value_type = T;
    using result_type = std::conditional_t<std::is_void_v<T>, void, std::add_lvalue_reference_t<const T>>;

    // A pending future that nothing completes yet (see set_result / set_exception).
    concurrent_future() : state_(std::make_shared<detail::future_state<T>>()) {}
    // Copies share the state. A move copies too, so that no future is ever empty.
    concurrent_future(const concurrent_future&) = default;
    concurrent_future& operator=(const concurrent_future&) = default;

    bool done() const {
        std::lock_guard lock(state_->mutex);
        return state_->state != status::pending;
    }
    bool cancelled() const {
        std::lock_guard lock(state_->mutex);
        return state_->state == status::cancelled;
    }

    // Cancels the future unless it is done: true if it is cancelled now. Whatever
    // produces the result is told (run_coroutine_threadsafe's task is cancelled on its
    // loop); waiters wake with aio::cancelled_error.
    bool cancel() { return state_->cancel(); }

    // Waits for the result: a reference to the value, which lives as long as the future
    // (a copy of it) does; or the exception it ended with, or aio::cancelled_error. On
    // the thread of the loop that must complete it, waiting would never end:
    // aio::runtime_error instead (co_await aio::wrap_future(f) there).
    result_type result() {
        std::unique_lock lock(state_->mutex);
        wait(lock, nullptr);
        return value_locked();
    }
    // The same, waiting at most `timeout`: aio::timeout_error after it.
    template <class Rep, class Period>
    result_type result(std::chrono::duration<Rep, Period> timeout) {
        std::unique_lock lock(state_->mutex);
        const auto deadline = deadline_after(timeout);
        wait(lock, &deadline);
        return value_locked();
    }

    // Waits as result() does; the exception the future ended with, or null after a
    // value. Cancelled: aio::cancelled_error is thrown.
    std::exception_ptr exception() {
        std::unique_lock lock(state_->mutex);
        wait(lock, nullptr);
        return exception_locked();
    }
    template <class Rep, class Period>
    std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) {
        std::unique_lock lock(state_->mutex);
        const auto deadline = deadline_after(timeout);
        wait(lock, &deadline);
        return exception_locked();
    }

    // f(future) once the future is done: on the thread that completes or cancels it,
    // or now, on this thread, if it is done already. An exception from f is dropped,
    // as concurrent.futures logs and drops it.
    template <class F>
        requires std::is_invocable_v<std::decay_t<F>&, concurrent_future&>
    void add_done_callback(F&& f) {
        // The callback must not own the state it is stored in (a future that never
        // completes would keep itself alive): it holds a weak pointer, alive whenever
        // it is called, since whoever completes the future holds the state.
        state_->add_callback([weak = std::weak_ptr(state_), fn = std::forward<F>(f)]() mutable {
            std::shared_ptr<detail::future_state<T>> s = weak.lock();
            if (!s) return;
            concurrent_future self(std::move(s));
            try {
                fn(self);
            } catch (...) {
            }
        });
    }

    // The producer's side, for a future made with the default constructor: false when
    // the future is done already (it was cancelled, or set before).
    template <class... V>
        requires(std::is_void_v<T> ? sizeof...(V) == 0 : std::is_constructible_v<T, V&&...>)
    bool set_result(V&&... v) {
        if constexpr (std::is_void_v<T>) return state_->set_value(true);
        else return state_->set_value(std::forward<V>(v)...);
    }
    bool set_exception(std::exception_ptr e) { return state_->set_error(std::move(e)); }

private:
    using status = typename detail::future_state<T>::status;
    friend struct detail::future_access<T>;

    explicit concurrent_future(std::shared_ptr<detail::future_state<T>> s) noexcept : state_(std::move(s)) {}

    void wait(std::unique_lock<std::mutex>& lock, const std::chrono::steady_clock::time_point* deadline) {
        auto& s = *state_;
        if (s.state != status::pending) return;
        if (s.completing_loop && s.completing_loop == detail::running_loop)
            throw aio::runtime_error(
                "aio::concurrent_future: a blocking wait on the thread of the event loop that must complete the "
                "future would never end; co_await aio::wrap_future(future) there instead");
        auto ready = [&] { return s.state != status::pending; };
        if (!deadline) s.done_cv.wait(lock, ready);
        else if (!s.done_cv.wait_until(lock, *deadline, ready)) throw timeout_error();
    }

    result_type value_locked() const {
        state_->check_locked();
        if constexpr (!std::is_void_v<T>) return *state_->value;
    }

    // now + timeout on the steady clock, saturated (a timeout of hours::max() waits
    // as good as forever rather than overflowing into the past).
    template <class Rep, class Period>
    static std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) {
        using clock = std::chrono::steady_clock;
        const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch()).count();
        const std::int64_t at = detail::deadline_after(now, detail::saturating_ns(timeout));
        return clock::time_point(std::chrono::duration_cast<clock::duration>(std::chrono::nanoseconds(at)));
    }

    std::exception_ptr exception_locked() const {
        if (state_->state == status::cancelled) throw cancelled_error();
        return state_->error;
    }

    std::shared_ptr<detail::future_state<T>> state_;
};

namespace detail {
template <class T>
struct future_access {
    static const std::shared_ptr<future_state<T>>& state(const concurrent_future<T>& f) noexcept { return f.state_; }
    static concurrent_future<T> make(std::shared_ptr<future_state<T>> s) noexcept { return concurrent_future<T>(std::move(s)); }
};
}  // namespace detail

}  // namespace aio
