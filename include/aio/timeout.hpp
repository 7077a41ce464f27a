#pragma once
// aio::timeout(delay) and aio::timeout_at(when): asyncio.timeout, as a scope around
// one awaitable.
//
//     auto limit = aio::timeout(2s);
//     std::string page = co_await limit.run(fetch(url));  // aio::timeout_error after 2 s
//
// While the awaitable runs, a timer is armed for the deadline. When it fires, the task
// running the scope is cancelled — and with it what that task awaits (rule 8) — and
// once the awaitable has ended, cleanup included, the scope turns that cancellation
// back into aio::timeout_error. Only the scope whose timer fired converts: it takes
// its own cancel() request back (uncancel) and converts only when no other request is
// left, so an outer scope's expiry, or a cancel() from outside, still reaches the
// code around it as aio::cancelled_error. Work that catches the cancellation and
// returns a value anyway is not an error: run() returns that value.
//
// A scope is used once, by one task, and must outlive its run() (make it a local and
// co_await run() at once). Its states, as in asyncio:
//
//     created --run()--> entered --timer fires--> expiring --run() ends--> expired
//                           |
//                           +----------run() ends-------------------------> exited
//
// reschedule() is allowed only while entered; entering twice, or rescheduling in any
// other state, throws aio::runtime_error.

#include <chrono>
#include <concepts>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "awaitable.hpp"
#include "detail/await_now.hpp"
#include "detail/awaitable.hpp"
#include "detail/loop_core.hpp"
#include "errors.hpp"
#include "event_loop.hpp"
#include "handle.hpp"
#include "task.hpp"

namespace aio {

class timeout_scope {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    enum class state { created, entered, expiring, expired, exited };

    // No deadline (nullopt): the scope never expires unless rescheduled.
    explicit timeout_scope(std::optional<time_point> when) noexcept : when_(when) {}
    timeout_scope(const timeout_scope&) = delete;
    timeout_scope& operator=(const timeout_scope&) = delete;
    ~timeout_scope() { timer_.cancel(); }

    std::optional<time_point> when() const noexcept { return when_; }
    state current_state() const noexcept { return state_; }
    // True once the deadline has passed while the scope was entered.
    bool expired() const noexcept { return state_ == state::expiring || state_ == state::expired; }

    // Moves the deadline (nullopt: none). A deadline already passed expires the scope
    // in the next loop iteration.
    void reschedule(std::optional<time_point> when) {
        if (state_ != state::entered) {
            if (state_ == state::created) throw aio::runtime_error("aio::timeout: reschedule() before the scope is entered");
            throw aio::runtime_error(std::string("aio::timeout: cannot reschedule a scope that has ") +
                                     (state_ == state::exited ? "exited" : "expired"));
        }
        when_ = when;
        timer_.cancel();
        timer_ = handle();
        if (!when) return;
        event_loop& loop = get_running_loop();
        if (*when <= loop.time()) timer_ = loop.call_soon([this] { on_timeout(); });
        else timer_ = loop.call_at(*when, [this] { on_timeout(); });
    }

    // Awaits `a` under the deadline and returns its result; aio::timeout_error if the
    // deadline passed and the cancellation it caused ended the work.
    // `a` is kept by value if it can be moved, by reference otherwise (see
    // detail::stored_awaitable_t). Either way the result refers to this scope: it is
    // awaitable only as an rvalue (detail::await_now), so co_await run() at once.
    template <class A>
        requires awaitable<A>
    detail::await_now<await_result_t<A>> run(A&& a) {
        return detail::await_now<await_result_t<A>>(
            run_stored<await_result_t<A>, detail::stored_awaitable_t<A>>(std::forward<A>(a)));
    }

    // Runs a block of statements under the deadline (asyncio's `async with
    // asyncio.timeout(d):` block) without a helper coroutine: `body` is called as
    // body(scope) and returns an aio::task<T>, as task_group::run's body does.
    //
    //     co_await aio::timeout(2s).run([&](aio::timeout_scope& scope) -> aio::task<> {
    //         co_await step_one();
    //         scope.reschedule(std::nullopt);  // the scope is at hand
    //         co_await step_two();
    //     });
    //
    // The body is kept in run()'s frame until its task has ended (capturing by
    // reference is safe; see task_group.hpp about GCC 12 and by-value captures).
    template <class F>
        requires(std::invocable<F&, timeout_scope&> && !awaitable<F>)
    auto run(F body) {
        using body_task = std::invoke_result_t<F&, timeout_scope&>;
        static_assert(std::is_same_v<body_task, task<typename body_task::value_type>>,
                      "the body of aio::timeout_scope::run() is called as body(aio::timeout_scope&) and must "
                      "return an aio::task<T>");
        using R = typename body_task::value_type;
        return detail::await_now<R>(run_body<R, F>(std::move(body)));
    }

private:
    template <class R, class F>
    task<R> run_body(F body) {
        co_return co_await run_stored<R, task<R>>(std::invoke(body, *this));
    }

    template <class R, class S>
    task<R> run_stored(S a) {
        enter();
        // Whatever ends this frame (the loop closing included) disarms the timer: it
        // refers to this scope and to the task running it.
        struct disarm {
            timeout_scope& scope;
            ~disarm() {
                scope.timer_.cancel();
                scope.timer_ = handle();
            }
        } guard{*this};
        std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> result;
        std::exception_ptr error;
        bool cancelled = false;
        try {
            if constexpr (std::is_void_v<R>) {
                co_await static_cast<S&&>(a);
                result.emplace(true);
            } else {
                result.emplace(co_await static_cast<S&&>(a));
            }
        } catch (const cancelled_error&) {
            error = std::current_exception();
            cancelled = true;
        } catch (...) {
            error = std::current_exception();
        }
        if (leave(cancelled)) throw timeout_error();
        if (error) std::rethrow_exception(error);
        if constexpr (!std::is_void_v<R>) co_return std::move(*result);
    }

    void enter() {
        if (state_ != state::created) throw aio::runtime_error("aio::timeout: the scope has already been entered");
        task_ = detail::current_task_state();
        if (!task_) throw aio::runtime_error("aio::timeout: must be used inside a task");
        state_ = state::entered;
        cancelling_ = task_->cancelling();
        reschedule(when_);
    }

    void on_timeout() noexcept {
        timer_ = handle();
        state_ = state::expiring;
        task_->cancel();
    }

    // The scope ends (run()'s guard disarms the timer); true when its own expiry is
    // what ended the work.
    bool leave(bool cancelled) noexcept {
        if (state_ == state::expiring) {
            state_ = state::expired;
            return task_->uncancel() <= cancelling_ && cancelled;
        }
        if (state_ == state::entered) state_ = state::exited;
        return false;
    }

    std::optional<time_point> when_;
    state state_ = state::created;
    handle timer_;
    detail::task_state* task_ = nullptr;  // the task running the scope, while it is entered
    int cancelling_ = 0;                  // its cancel() requests when the scope was entered
};

// A scope that expires `delay` from now (asyncio.timeout).
template <class Rep, class Period>
timeout_scope timeout(std::chrono::duration<Rep, Period> delay) {
    const std::int64_t when = detail::deadline_after(detail::loop_now(), detail::saturating_ns(delay));
    return timeout_scope(timeout_scope::time_point(std::chrono::nanoseconds(when)));
}

// A scope that expires at `when` (asyncio.timeout_at); nullopt: never.
inline timeout_scope timeout_at(std::optional<timeout_scope::time_point> when) { return timeout_scope(when); }

}  // namespace aio
