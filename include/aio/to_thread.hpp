#pragma once
// aio::to_thread: asyncio.to_thread — run blocking code off the loop.
//
//   std::string text = co_await aio::to_thread(read_whole_file, path);
//
// f(args...) runs on the running loop's default executor (a thread pool of at most
// min(32, cores + 4) workers, started on first use; see event_loop::default_executor);
// the awaiting task gets its value or its exception, through the ready queue.
// Arguments are copied (or moved) into the job: pass std::ref for a reference, and
// keep what it refers to alive until the job has run. Cancelling the awaiting task ends
// the await at once: a job not yet started never runs; a running one runs on to its
// end on its worker, and its result is dropped. Like asyncio's to_thread, it is a lazy task: the job is submitted when the
// task first runs (awaited, gathered or spawned).
//
// Unlike asyncio's, the function does not see the calling task's context variables:
// aio has none.

#include <type_traits>
#include <utility>

#include "detail/loop_core.hpp"
#include "event_loop.hpp"
#include "task.hpp"

namespace aio {

template <class F, class... A>
    requires std::is_invocable_v<F, A...>
task<detail::executor_result_t<F, A...>> to_thread(F f, A... args) {
    detail::loop_core& loop = *detail::running_loop_or_throw("aio::to_thread()");
    detail::executor_awaiter<detail::executor_result_t<F, A...>> result("aio::to_thread()", loop, loop.owner().default_executor(),
                                                                        std::move(f), std::move(args)...);
    co_return co_await std::move(result);
}

}  // namespace aio
