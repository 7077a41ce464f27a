#pragma once
// A done step: something the loop runs once a task has ended (asyncio's
// add_done_callback) — gather's and wait's per-child steps, a task group's, a done
// callback, run_until_complete's stop. It is a ready-queue item linked into the
// task's waiters; when the task ends it is appended to the ready queue (rule 4). For
// a task that has already ended it is queued at once, as asyncio schedules a callback
// added to a finished future.

#include "ready_queue.hpp"
#include "scheduler.hpp"
#include "task_state.hpp"
#include "waiter.hpp"

namespace aio::detail {

struct done_step : ready_item {
    waiter link;

    // `run` (set by the owner) runs on `loop` once `t` has ended.
    void watch(scheduler& loop, task_state& t) {
        if (t.done()) {
            loop.push(this);
            return;
        }
        link.entry = entry_of(static_cast<ready_item*>(this), tag_item);
        t.waiters().push_back(&link);
    }

    // Undoes watch() (the step will not run); true unless the step had run already or
    // was never watched.
    bool unwatch(scheduler& loop, task_state& t) noexcept {
        if (link.linked()) {
            t.waiters().unlink(&link);
            return true;
        }
        if (queued_at == not_queued) return false;
        loop.withdraw(this);
        return true;
    }
};

}  // namespace aio::detail
