#pragma once
// aio::run(main()): asyncio.run — the entry point of an aio program.

#include <exception>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/interrupt.hpp"
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
        for (task_state* t = loop.pending.front(); t; t = loop.pending.next(t)) tasks.push_back(handle_access::adopt(t));
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
            t.mark_retrieved();
            loop.report({"unhandled exception during aio::run() shutdown", t.error(), t.name()});
        }
    }
}
}  // namespace detail

// Runs `main` on a fresh event loop and returns its value or rethrows its exception.
// When main ends, the tasks still pending are cancelled and run until they have
// finished (their errors go to the exception handler), the default executor is shut
// down (shutdown_default_executor: its running jobs get 300 s before they are
// reported, and are then waited for all the same), then the loop is closed.
// Throws aio::runtime_error when called while a loop runs on this thread.
//
// Ctrl-C: on the main thread, while SIGINT has its default action, the first SIGINT
// cancels the main task; once everything has unwound, run() throws
// aio::keyboard_interrupt (or returns main's value, if main caught the cancellation
// and returned one). A second SIGINT before then ends the process at once. A handler
// the program adds with add_signal_handler(SIGINT, f) replaces this one for as long as
// it is set (asyncio's Runner handler gives way the same way).
template <class T>
T run(task<T> main) {
    if (detail::running_loop) throw aio::runtime_error("aio::run() cannot be called from a running event loop");
    event_loop loop;
    detail::loop_core& core = detail::loop_access::core(loop);
    detail::sigint_scope sigint(core);
    // Ends the program's tasks and closes the loop, on every way out.
    auto shut_down = [&](bool quietly) {
        sigint.target(nullptr);
        try {
            detail::cancel_all_tasks(core);
            loop.run_until_complete(loop.shutdown_default_executor());
        } catch (...) {
            if (!quietly) {
                loop.close();
                throw;
            }
        }
        loop.close();
    };
    task_handle<T> h = loop.create_task(std::move(main));
    detail::task_state& t = *detail::handle_access::state(h);
    sigint.target(&t);
    try {
        detail::run_until_done(core, t);
    } catch (...) {
        shut_down(true);  // main's exception is the one to report
        throw;
    }
    if (t.has_error()) {
        t.mark_retrieved();
        const bool interrupted =
            t.status() == detail::task_status::cancelled && sigint.interrupted() && t.uncancel() == 0;
        std::exception_ptr error = t.error();
        shut_down(true);
        if (interrupted) throw keyboard_interrupt();
        std::rethrow_exception(error);
    }
    if constexpr (std::is_void_v<T>) {
        shut_down(false);
    } else {
        T result = detail::task_result<T>(t, true);
        shut_down(false);
        return result;
    }
}

}  // namespace aio
