#pragma once
// A task's waiters: what is woken, oldest first, when the task ends.
//
// A waiter is a task awaiting this one (it is scheduled), a done step, a ready-queue
// item that runs in the next iteration (wait's, a task group's, a done callback:
// asyncio's add_done_callback), or a done notifier (gather's per-child bookkeeping),
// told at once. All follow rule 4: nothing resumes inline.

#include <cstdint>

#include "intrusive_list.hpp"
#include "ready_queue.hpp"

namespace aio::detail {

// When the task finishes, the waiter's `entry` (a tagged ready-queue entry) is
// appended to the ready queue — unless it is tagged tag_notify, see done_notifier.
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

// A waiter whose entry is `entry_of(notifier, tag_notify)` is not queued when its task
// ends: the notifier is called right away with the waiter (the task's end, as it
// happens). It may only keep count and queue a step of its own; whatever anyone can
// observe must still happen in that step (rules 4 and 7). gather uses it so that a
// child costs a waiter and a pointer, and the gather one step, not a step per child.
inline constexpr std::uintptr_t tag_notify = 3;

struct done_notifier {
    void (*notify)(done_notifier*, waiter*) noexcept = nullptr;
};

}  // namespace aio::detail
