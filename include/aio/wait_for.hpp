#pragma once
// co_await aio::wait_for(awaitable, timeout): asyncio.wait_for.
//
// Awaits `a` for at most `timeout`. When time runs out, the work is cancelled and
// awaited to its end — its cleanup, awaits in it included — and then
// aio::timeout_error is thrown; if the work catches the cancellation and returns a
// value anyway, that value is returned. The work runs inside the calling task (a
// timeout scope around it, see timeout.hpp), so cancelling the caller cancels it too.
//
// A timeout <= 0 does not start anything: a task handle that has already ended gives
// its result; one still running is cancelled and awaited, and gives aio::timeout_error
// if it ends cancelled; any other awaitable (a lazy task, say) gives
// aio::timeout_error without running — as asyncio, which wraps it in a task that is
// cancelled before its first step.

#include <chrono>
#include <cstdint>
#include <utility>

#include "awaitable.hpp"
#include "detail/awaitable.hpp"
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
template <class R, class S>
task<R> wait_for_stored(S a, std::int64_t timeout_ns) {
    using A = std::remove_cvref_t<S>;
    if (timeout_ns <= 0) {
        if constexpr (is_task_handle_v<A>) {
            if (!a.done()) {
                a.cancel();
                // Its end, whatever it is, comes first. A cancellation means the time
                // limit won — unless the caller itself was cancelled meanwhile.
                task_state* self = current_task_state();
                const int requests = self ? self->cancels_ : 0;
                try {
                    co_return co_await static_cast<S&&>(a);
                } catch (const cancelled_error&) {
                    if (!a.cancelled() || (self && self->cancels_ > requests)) throw;
                }
                throw timeout_error();
            }
            co_return co_await static_cast<S&&>(a);
        } else {
            throw timeout_error();
        }
    }
    auto limit = aio::timeout(std::chrono::nanoseconds(timeout_ns));
    co_return co_await limit.run(static_cast<S&&>(a));
}
}  // namespace detail

// `a` is kept by value if it can be moved, by reference otherwise (a gather): in that
// case co_await the result at once.
template <class A, class Rep, class Period>
    requires awaitable<A>
task<await_result_t<A>> wait_for(A&& a, std::chrono::duration<Rep, Period> timeout) {
    return detail::wait_for_stored<await_result_t<A>, detail::stored_awaitable_t<A>>(
        std::forward<A>(a), detail::saturating_ns(timeout));
}

}  // namespace aio
