#pragma once
// The awaiter `co_await a` uses, found the way the language finds it (for the
// aio::awaitable concept, awaitable.hpp), and how a wrapper keeps an awaitable.

#include <type_traits>
#include <utility>

namespace aio::detail {

// Only for unevaluated contexts (decltype).
template <class A>
decltype(auto) awaiter_of(A&& a) {
    if constexpr (requires { std::forward<A>(a).operator co_await(); })
        return std::forward<A>(a).operator co_await();
    else if constexpr (requires { operator co_await(std::forward<A>(a)); })
        return operator co_await(std::forward<A>(a));
    else
        return static_cast<A&&>(a);
}

// How a coroutine that awaits `a` later (wait_for, a timeout scope) keeps it: by value
// when it can be moved (a lazy task, a task handle, a sleep, a gather not yet awaited),
// so that the coroutine may be awaited after the statement that made it; by reference
// otherwise (an event's wait(), a queue's get(): awaiters that waiters point into),
// valid while the argument lives — for a temporary, the full expression, so such a
// coroutine must be awaited at once (detail::await_now makes that a compile error).
template <class A>
using stored_awaitable_t = std::conditional_t<std::is_move_constructible_v<std::remove_cvref_t<A>>, std::remove_cvref_t<A>, A&&>;

}  // namespace aio::detail
