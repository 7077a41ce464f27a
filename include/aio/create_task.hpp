#pragma once
// aio::create_task, aio::current_task, aio::all_tasks: asyncio's module functions
// for tasks, on the running loop.

#include <string>
#include <vector>

#include "detail/loop_core.hpp"
#include "event_loop.hpp"
#include "task.hpp"
#include "task_handle.hpp"

namespace aio {

// Schedules `t` on the running loop (at the back of the ready queue: it starts once the
// caller yields) and returns a handle to it. Throws aio::runtime_error when no loop runs.
template <class T>
task_handle<T> create_task(task<T> t, std::string name = {}) {
    return get_running_loop().create_task(std::move(t), std::move(name));
}

// The task running now; an empty handle outside a task.
inline any_task_handle current_task() {
    return detail::handle_access::adopt(detail::current_task_state());
}

// The running loop's pending tasks, in creation order. Throws aio::runtime_error when
// no loop runs.
inline std::vector<any_task_handle> all_tasks() {
    get_running_loop();
    std::vector<any_task_handle> tasks;
    tasks.reserve(detail::running_loop->pending.size);
    for (detail::task_state* t = detail::running_loop->pending.front(); t; t = detail::running_loop->pending.next(t))
        tasks.push_back(detail::handle_access::adopt(t));
    return tasks;
}

}  // namespace aio
