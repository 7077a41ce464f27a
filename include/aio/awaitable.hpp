#pragma once
// aio::awaitable: what `co_await` accepts inside an aio task — a lazy task, a task
// handle, a sleep, a gather, a primitive's wait — and aio::await_result_t, the value
// `co_await std::move(a)` produces. Templates that take any awaitable (wait_for,
// timeout scopes) are constrained with it.
//
//   template <aio::awaitable A> aio::task<aio::await_result_t<A>> twice(A a);

#include <type_traits>
#include <utility>

#include "detail/awaitable.hpp"

namespace aio {

// `A` has an awaiter (its operator co_await's result, or itself) with await_ready()
// and await_resume().
template <class A>
concept awaitable = requires(std::remove_reference_t<decltype(detail::awaiter_of(std::declval<A>()))>& w) {
    { w.await_ready() };
    w.await_resume();
};

// The result of `co_await std::move(a)`, as a value type.
template <class A>
using await_result_t = std::remove_cvref_t<
    decltype(std::declval<std::remove_reference_t<decltype(detail::awaiter_of(std::declval<A>()))>&>().await_resume())>;

}  // namespace aio
