#pragma once
// co_await aio::shield(x): asyncio.shield — awaits a task without letting the
// awaiting task's cancellation reach it.
//
//   auto h = aio::create_task(save(record));
//   int n = co_await aio::shield(h);            // or aio::shield(save(record))
//
// `x` is an aio::task_handle<T>, or a lazy aio::task<T> that shield() schedules at
// once on the running loop (asyncio's ensure_future; it starts when the caller
// yields). The co_await returns the task's value or rethrows its exception; if the
// task was cancelled itself, it throws a bare aio::cancelled_error (without the
// task's cancel(msg) message: asyncio's shield cancels its outer future with none).
//
// Cancellation: cancelling the awaiting task does not cancel the shielded one. The
// awaiting task is woken through the loop (rule 4) and gets aio::cancelled_error at
// once; the shielded task keeps running, and its handle still gives its result.
//
// Resumption, as in asyncio: when the task ends, the shield's done step runs through
// the ready queue and wakes the awaiting task (rule 4) — one iteration later than
// awaiting the handle directly. A task that had ended when shield() was called (or
// whose done step has run by the time of the co_await) returns at once, without
// suspending.
//
// The shield holds a handle to the task, so the task's result outlives it. It is
// awaited once, by one task: a second co_await throws aio::invalid_state_error, as
// does shield() of an empty handle. Like any awaitable, it must outlive the task
// suspended on it. Allocation: none beyond the lazy task's frame.

#include <string>

#include "detail/loop_core.hpp"
#include "detail/shield.hpp"
#include "event_loop.hpp"
#include "task.hpp"
#include "task_handle.hpp"

namespace aio {

template <class T>
detail::shield_awaitable<T> shield(task_handle<T> inner) {
    return detail::shield_awaitable<T>(std::move(inner));
}

// Throws aio::runtime_error when no loop runs.
template <class T>
detail::shield_awaitable<T> shield(task<T>&& inner) {
    detail::running_loop_or_throw("aio::shield() of a lazy task");
    return detail::shield_awaitable<T>(get_running_loop().create_task(std::move(inner)));
}

}  // namespace aio
