#pragma once
// aio::run(main()): asyncio.run — the entry point of an aio program.

#include <type_traits>
#include <utility>
#include <vector>

#include "detail/loop_core.hpp"
#include "errors.hpp"
#include "event_loop.hpp"
#include "task.hpp"
#include "task_handle.hpp"

namespace aio {

namespace detail {
// asyncio.run's shutdown: cancel every task still pending, in creation order, run the
// loop until they have all ended, then report the errors they ended with.
inline void cancel_all_tasks(loop_core& loop) {
    std::vector<any_task_handle> tasks;
    if (loop.pending.size != 0) {
        tasks.reserve(loop.pending.size);
        for (task_state* t = loop.pending.head; t; t = t->next_) tasks.push_back(handle_access::adopt(t));
        for (any_task_handle& h : tasks) h.cancel();
        std::size_t next = 0;
        loop.run_until([&] {
            while (next < tasks.size() && tasks[next].done()) ++next;
            return next == tasks.size();
        });
    }
    // What is queued now still runs: the done callbacks of the last tasks to end, say.
    // asyncio's shutdown keeps the loop turning a few iterations more (its gather of the
    // cancelled tasks, then shutdown_asyncgens); aio runs one, exactly what is queued.
    if (!loop.ready.empty()) loop.run_until([] { return true; });
    for (any_task_handle& h : tasks) {
        task_state& t = *handle_access::state(h);
        if (t.status() == task_status::error) {
            t.retrieved_ = true;
            loop.report({"unhandled exception during aio::run() shutdown", t.error(), t.name()});
        }
    }
}
}  // namespace detail

// Runs `main` on a fresh event loop and returns its value or rethrows its exception.
// When main ends, the tasks still pending are cancelled and run until they have
// finished (their errors go to the exception handler), then the loop is closed.
// Throws aio::runtime_error when called while a loop runs on this thread.
template <class T>
T run(task<T> main) {
    if (detail::running_loop) throw aio::runtime_error("aio::run() cannot be called from a running event loop");
    event_loop loop;
    detail::loop_core& core = detail::loop_access::core(loop);
    try {
        if constexpr (std::is_void_v<T>) {
            loop.run_until_complete(std::move(main));
            detail::cancel_all_tasks(core);
            loop.close();
        } else {
            T result = loop.run_until_complete(std::move(main));
            detail::cancel_all_tasks(core);
            loop.close();
            return result;
        }
    } catch (...) {
        try {
            detail::cancel_all_tasks(core);
        } catch (...) {  // main's exception is the one to report
        }
        loop.close();
        throw;
    }
}

}  // namespace aio
