#pragma once
// co_await aio::wait_for(awaitable, timeout): asyncio.wait_for.
//
// Awaits `a` for at most `timeout`. When time runs out, the work is cancelled and
// awaited to its end — its cleanup, awaits in it included — and then
// aio::timeout_error is thrown; if the work catches the cancellation and returns a
// value anyway, that value is returned. The work runs inside the calling task (a
// timeout scope around it, see timeout.hpp), so cancelling the caller cancels it too.
//
// A timeout <= 0 follows asyncio's special case (CPython 3.11-3.13): the work is
// wrapped in a task (a lazy task, or any other awaitable; a task handle is used as it
// is); a task that has already ended gives its result; otherwise it is cancelled and
// waited for through a private wait (_cancel_and_wait), and its end decides: a value
// is returned, its cancellation becomes aio::timeout_error, any other exception is
// rethrown. A lazy task is thus cancelled before its first step and never runs its
// body; the caller resumes three loop iterations later, as in asyncio (the task's step,
// its done callback, the caller's wake-up). Cancelling the caller meanwhile stops only
// the private wait: the caller gets aio::cancelled_error at once and the work, already
// cancelled, ends on its own.

#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "awaitable.hpp"
#include "detail/await_now.hpp"
#include "detail/awaitable.hpp"
#include "detail/shield.hpp"
#include "event_loop.hpp"
#include "errors.hpp"
#include "task.hpp"
#include "task_handle.hpp"
#include "timeout.hpp"

namespace aio {

namespace detail {
template <class A>
inline constexpr bool is_task_handle_v = false;
template <class T>
inline constexpr bool is_task_handle_v<task_handle<T>> = true;
}  // namespace detail

namespace detail {
// The task that wait_for(a, <= 0) cancels and waits for (asyncio's ensure_future).
template <class R, class S>
task<R> wait_for_wrapped(S a) {
    co_return co_await static_cast<S&&>(a);
}

template <class R, class S>
task<R> wait_for_stored(S a, std::int64_t timeout_ns) {
    using A = std::remove_cvref_t<S>;
    if (timeout_ns <= 0) {
        task_handle<R> h;
        if constexpr (is_task_handle_v<A>) h = a;
        else if constexpr (std::is_same_v<A, task<R>>) h = get_running_loop().create_task(static_cast<S&&>(a));
        // Cancelled before its first step, the wrapper never touches `a`: it may be held
        // by reference.
        else h = get_running_loop().create_task(wait_for_wrapped<R, S>(static_cast<S&&>(a)));
        if (!h.done()) {
            h.cancel();
            co_await shield_awaitable<R, true>(h);  // throws only the caller's own cancellation
            try {
                co_return co_await std::move(h);
            } catch (const cancelled_error&) {
            }
            throw timeout_error();
        }
        co_return co_await std::move(h);
    }
    auto limit = aio::timeout(std::chrono::nanoseconds(timeout_ns));
    co_return co_await limit.run(static_cast<S&&>(a));
}
}  // namespace detail

// `a` is kept by value if it can be moved (a lazy task, a handle, a gather not yet
// awaited): the result is a task, which may be stored or handed to create_task.
// Otherwise (an event's wait(), a queue's get()) it is kept by reference and the
// result must be awaited at once, in the same expression: it is awaitable only as an
// rvalue (detail::await_now), so a stored one does not compile.
template <class A, class Rep, class Period>
    requires awaitable<A>
auto wait_for(A&& a, std::chrono::duration<Rep, Period> timeout) {
    using R = await_result_t<A>;
    using S = detail::stored_awaitable_t<A>;
    if constexpr (std::is_reference_v<S>)
        return detail::await_now<R>(detail::wait_for_stored<R, S>(std::forward<A>(a), detail::saturating_ns(timeout)));
    else
        return detail::wait_for_stored<R, S>(std::forward<A>(a), detail::saturating_ns(timeout));
}

}  // namespace aio
