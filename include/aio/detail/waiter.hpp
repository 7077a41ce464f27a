#pragma once
// A task's waiters: what is woken, oldest first, when the task ends.
//
// A waiter is either a task awaiting this one (it is scheduled) or a done step, a
// ready-queue item that runs in the next iteration (gather's, wait's, a done
// callback: asyncio's add_done_callback). Both follow rule 4: nothing resumes inline.

#include <cstdint>

#include "intrusive_list.hpp"
#include "ready_queue.hpp"

namespace aio::detail {

// When the task finishes, the waiter's `entry` (a tagged ready-queue entry) is
// appended to the ready queue.
//
// A waiter holds no reference to the task while it waits: the loop owns a pending
// task, and tasks that wait on each other must not keep each other alive (close()
// could not free a deadlocked pair). When the task finishes, it hands each waiting
// task a reference (marked in `entry`) that keeps the result readable until the
// awaiter is gone.
struct waiter {
    static constexpr std::uintptr_t holds_reference = 4;

    list_links<waiter> links;
    std::uintptr_t entry = 0;

    bool linked() const noexcept { return links.prev != nullptr; }
    bool holds_ref() const noexcept { return (entry & holds_reference) != 0; }
};

using waiter_list = intrusive_list<waiter, &waiter::links>;

}  // namespace aio::detail
