#pragma once
// aio::wrap_future: await, from a task, a result that another thread produces —
// asyncio's wrap_future — without blocking the loop.
//
//   aio::concurrent_future<int> f = ...;          // completed on some other thread
//   int n = co_await aio::wrap_future(f);
//
// For an aio::concurrent_future, the future's done callback posts back to the loop,
// which resumes the task through its ready queue (rule 4); the task then copies the
// value, or moves it out when the future is an rvalue or its value cannot be copied
// (later readers then get aio::invalid_state_error). Cancelling the awaiting task cancels the
// future (and so, for run_coroutine_threadsafe's, the task behind it), as asyncio
// chains them.
//
// A std::future has no callback: a worker of the loop's default executor waits for it
// (get()) and posts the result back. It cannot be cancelled: a cancelled await leaves
// that worker waiting until the future is ready.

#include <future>
#include <memory>
#include <utility>

#include "concurrent_future.hpp"
#include "detail/executor_call.hpp"
#include "detail/loop_core.hpp"
#include "errors.hpp"
#include "event_loop.hpp"
#include "executor.hpp"
#include "task.hpp"

namespace aio {

namespace detail {
// An executor that runs its job when the future is done, on the thread that completes
// it (or at once): the job only reads the result of a done future.
template <class T>
struct when_done {
    future_state<T>& state;
    void submit(job j) {
        auto held = std::make_shared<job>(std::move(j));
        state.add_callback([held] { std::move(*held)(); });
    }
};
}  // namespace detail

namespace detail {
template <class T, bool Move>
task<T> await_future(concurrent_future<T> f) {
    loop_core& loop = *running_loop_or_throw("aio::wrap_future()");
    future_state<T>& state = *future_access<T>::state(f);
    when_done<T> on_done{state};
    try {
        // The job only says that the future is done (it runs inside the future's done
        // callback, on whichever thread completes it): the value is read here, on the
        // loop's thread, and only by an awaiter that is still there to receive it.
        executor_awaiter<void> done("aio::wrap_future()", loop, on_done, [] {});
        co_await std::move(done);
    } catch (const cancelled_error&) {
        f.cancel();  // cancelling the await cancels the future, as asyncio chains them
        throw;
    }
    // The future's exception, or aio::cancelled_error if it was cancelled, or the value.
    if constexpr (Move || !std::is_copy_constructible_v<T>) co_return state.take();
    else co_return state.copy();
}
}  // namespace detail

// A future others may read too: the task gets a copy of the value (a move-only value
// is moved out).
template <class T>
task<T> wrap_future(const concurrent_future<T>& f) {
    return detail::await_future<T, false>(f);
}
// A future handed over (run_on's): the value is moved out, once.
template <class T>
task<T> wrap_future(concurrent_future<T>&& f) {
    return detail::await_future<T, true>(std::move(f));
}

template <class T>
task<T> wrap_future(std::future<T> f) {
    detail::loop_core& loop = *detail::running_loop_or_throw("aio::wrap_future()");
    if (!f.valid()) throw invalid_state_error("aio::wrap_future() of a std::future with no shared state");
    // Named, not a temporary of the co_await expression: g++ 12 destroys a lambda's
    // init-captures there twice.
    detail::executor_awaiter<T> result("aio::wrap_future()", loop, loop.owner().default_executor(),
                                       [g = std::move(f)]() mutable { return g.get(); });
    co_return co_await std::move(result);
}

}  // namespace aio
