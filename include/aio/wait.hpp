#pragma once
// co_await aio::wait(handles, ...): asyncio.wait.
//
//   auto [done, pending] = co_await aio::wait(handles);                        // all_completed
//   auto [done, pending] = co_await aio::wait(handles, aio::first_completed);
//   auto [done, pending] = co_await aio::wait(handles, aio::first_exception, 5s);
//   auto [done, pending] = co_await aio::wait(handles, 100ms);                 // all_completed or the time limit
//
// `handles` is a std::vector of aio::task_handle<T> or of aio::any_task_handle; the
// result is an aio::wait_result of the same handle type: `done` holds the handles
// whose task has ended, `pending` the others, each in the order given. (asyncio
// returns two sets; a handle given twice appears twice here.) Build the vector before
// the co_await: GCC 12 rejects a braced list such as std::vector{a, b} inside a
// co_await expression.
//
// When it returns: aio::first_completed — once any task has ended;
// aio::first_exception — once any task has failed with an exception (a cancelled
// task does not count), or when all have ended; aio::all_completed (the default) —
// when every task has ended. With a timeout (any std::chrono::duration), it returns
// when that runs out too, with the unfinished tasks in `pending`: a timeout is not an
// error, and nothing is cancelled.
//
// Resumption, as in asyncio: the co_await always suspends, even when every task has
// ended already. Each task's end runs wait's done step through the ready queue, and
// the step that meets the condition wakes the awaiting task (rule 4) — two iterations
// after the task ended. A timeout's timer, once due, wakes it the same way (rule 6).
//
// Cancellation: cancelling the awaiting task cancels only the wait — the co_await
// throws aio::cancelled_error — and the tasks waited on keep running (asyncio cancels
// wait's private future, not the tasks). Use the handles to cancel them.
//
// Errors: an empty vector throws aio::invalid_state_error (asyncio raises ValueError,
// which aio has no type for), as does an empty handle or a second co_await of the same
// aio::wait(); a task of another loop, or no running loop, gives aio::runtime_error.
// The tasks' own exceptions are not rethrown: read them from the handles in `done`.
//
// Lifetime: the awaitable holds the handles (so the tasks) until the co_await
// returns them. Allocation: one block for the callbacks of all the tasks, plus the
// `pending` vector (`done` reuses the vector passed in).

#include <chrono>
#include <concepts>
#include <optional>
#include <vector>

#include "detail/loop_core.hpp"
#include "detail/wait.hpp"
#include "task_handle.hpp"
#include "wait_result.hpp"

namespace aio {

template <class Handle>
    requires std::derived_from<Handle, any_task_handle>
detail::wait_awaitable<Handle> wait(std::vector<Handle> handles, return_when when = all_completed) {
    return {*detail::running_loop_or_throw("aio::wait()"), std::move(handles), when, std::nullopt};
}

template <class Handle, class Rep, class Period>
    requires std::derived_from<Handle, any_task_handle>
detail::wait_awaitable<Handle> wait(std::vector<Handle> handles, return_when when,
                                    std::chrono::duration<Rep, Period> timeout) {
    return {*detail::running_loop_or_throw("aio::wait()"), std::move(handles), when, detail::saturating_ns(timeout)};
}

template <class Handle, class Rep, class Period>
    requires std::derived_from<Handle, any_task_handle>
detail::wait_awaitable<Handle> wait(std::vector<Handle> handles, std::chrono::duration<Rep, Period> timeout,
                                    return_when when = all_completed) {
    return {*detail::running_loop_or_throw("aio::wait()"), std::move(handles), when, detail::saturating_ns(timeout)};
}

}  // namespace aio
