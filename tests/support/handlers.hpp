#pragma once
// Coroutines that await something and handle one exception, for the handlers the
// tests would otherwise copy: log a cancellation and let it go on, or check that an
// await throws a given exception.
//
// Each is a lazy aio::task that awaits `a` inline in the awaiting task (no trip
// through the loop), so wrapping an await changes neither the order of events nor
// the task that a cancellation reaches. `a` is kept by reference when it is an lvalue
// (a task handle, a task that must be awaited only once), by value when it is a
// movable temporary (a sleep, a lazy task), by reference otherwise (a gather): in
// every case, co_await the helper in the statement that calls it. An awaitable that
// throws when it is made (aio::wait of an empty vector, aio::shield of an empty
// handle) throws before the helper runs: such a test keeps its try block.

#include <aio/awaitable.hpp>
#include <aio/errors.hpp>
#include <aio/task.hpp>

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "trace.hpp"

namespace aio_test {

namespace detail {
// How a helper's frame keeps its awaitable: see the top of this file.
template <class A>
inline constexpr bool kept_by_value_v =
    !std::is_lvalue_reference_v<A> && std::is_move_constructible_v<std::remove_cvref_t<A>>;
template <class A>
using kept_t = std::conditional_t<kept_by_value_v<A>, std::remove_cvref_t<A>, A&&>;

template <class R, class S, class F>
aio::task<R> on_cancel_kept(S a, F on_cancelled) {
    try {
        co_return co_await static_cast<S&&>(a);
    } catch (const aio::cancelled_error&) {
        on_cancelled();
        throw;
    }
}

template <class E, class S>
aio::task<std::optional<std::string>> thrown_what_kept(S a) {
    try {
        (void)co_await static_cast<S&&>(a);
    } catch (const E& e) {
        co_return std::string(e.what());
    }
    co_return std::nullopt;
}

template <class E, class S>
aio::task<bool> throws_kept(S a) {
    try {
        (void)co_await static_cast<S&&>(a);
    } catch (const E&) {
        co_return true;
    }
    co_return false;
}
}  // namespace detail

// co_await on_cancel(a, f): the result of co_await a; if that raises
// aio::cancelled_error, calls f() and rethrows it. f runs after the cancellation, so
// what it reads (a lock's state, a scope's expiry) is read then.
template <class A, class F>
    requires aio::awaitable<A>
aio::task<aio::await_result_t<A>> on_cancel(A&& a, F on_cancelled) {
    return detail::on_cancel_kept<aio::await_result_t<A>, detail::kept_t<A>>(std::forward<A>(a),
                                                                                     std::move(on_cancelled));
}

// co_await log_cancel(log, line, a): on_cancel that logs `line` (made before the await).
template <class A>
    requires aio::awaitable<A>
aio::task<aio::await_result_t<A>> log_cancel(trace& log, std::string line, A&& a) {
    return on_cancel(std::forward<A>(a), [&log, line = std::move(line)] { log(line); });
}

// co_await thrown_what<E>(a): the what() of the E that co_await a threw, or nullopt if
// it completed; any other exception goes on.
template <class E, class A>
    requires aio::awaitable<A>
aio::task<std::optional<std::string>> thrown_what(A&& a) {
    return detail::thrown_what_kept<E, detail::kept_t<A>>(std::forward<A>(a));
}

// co_await expect_throws<E>(a): true if co_await a threw E, false if it completed; any
// other exception goes on.
template <class E, class A>
    requires aio::awaitable<A>
aio::task<bool> expect_throws(A&& a) {
    return detail::throws_kept<E, detail::kept_t<A>>(std::forward<A>(a));
}

// A cancellation as Python prints its args: () for a bare one, ('m',) for cancel("m").
inline std::string cancel_args(const aio::cancelled_error& e) {
    const std::string what = e.what();
    return what == aio::cancelled_error().what() ? std::string("()") : "('" + what + "',)";
}

}  // namespace aio_test
