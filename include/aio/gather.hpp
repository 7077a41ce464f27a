#pragma once
// co_await aio::gather(...): asyncio.gather.
//
//   auto [a, b] = co_await aio::gather(fetch(1), fetch(2));        // std::tuple<A, B>
//   std::vector<int> all = co_await aio::gather(std::move(tasks));  // any sized range of tasks or handles
//   auto slots = co_await aio::gather(aio::return_exceptions, f(), g());  // aio::outcome<T> each
//
// Children are lazy tasks (moved in), task handles (shared) or gathers (moved in:
// asyncio's gather(gather(a, b), c); the inner result, a tuple or a vector, is one
// value, and cancelling the outer gather cancels the inner's children). Calling gather
// wraps the lazy ones, and each inner gather, into tasks at once, in argument order;
// they start when the caller yields.
// Results come in argument order; a void child contributes std::monostate.
//
// Resumption: the awaiting task is woken through the ready queue once every child's
// done step has run (rule 7), or as soon as one child fails: that first exception is
// rethrown from the co_await and the other children keep running (their later errors
// count as retrieved). With aio::return_exceptions every slot holds the value or the
// exception instead, and the gather waits for all.
//
// Cancellation: cancelling the awaiting task cancels every child; the co_await then
// throws aio::cancelled_error. A cancelled child counts as a failure (its slot holds
// aio::cancelled_error under return_exceptions).
//
// A gather is awaited once, by one task: a second co_await — while the first waits,
// or after it — throws aio::invalid_state_error. It may be moved (its children follow)
// until it is awaited. Like any awaitable, it must outlive
// the task suspended on it.
//
// Allocation: the lazy children's frames; a range also allocates its slots.

#include <vector>

#include "detail/gather.hpp"
#include "event_loop.hpp"
#include "outcome.hpp"
#include "return_exceptions.hpp"
#include "task.hpp"
#include "task_handle.hpp"

namespace aio {

template <class... A>
    requires(detail::gatherable<A> && ...)
auto gather(A&&... children) {
    return detail::gather_awaitable<false, detail::gather_value_t<A>...>(
        *detail::running_loop_or_throw("aio::gather()"), std::forward<A>(children)...);
}

template <class... A>
    requires(detail::gatherable<A> && ...)
auto gather(return_exceptions_t, A&&... children) {
    return detail::gather_awaitable<true, detail::gather_value_t<A>...>(
        *detail::running_loop_or_throw("aio::gather()"), std::forward<A>(children)...);
}

// A range (a std::vector, a std::span, ...) of lazy tasks, moved from, or of task
// handles: a std::vector of the results, in the range's order.
template <class R>
    requires detail::gatherable_range<R>
auto gather(R&& children) {
    return detail::gather_range_awaitable<false, detail::gather_range_value_t<R>>(
        *detail::running_loop_or_throw("aio::gather()"), std::forward<R>(children));
}

template <class R>
    requires detail::gatherable_range<R>
auto gather(return_exceptions_t, R&& children) {
    return detail::gather_range_awaitable<true, detail::gather_range_value_t<R>>(
        *detail::running_loop_or_throw("aio::gather()"), std::forward<R>(children));
}

}  // namespace aio
