#pragma once
// What a suspended task is waiting on, so that cancel() can reach it (API rule 8).
// Every awaitable that suspends a task names one of these while the task waits (see
// suspension.hpp); cancellation.hpp's walk follows them.

#include <cstddef>
#include <cstdint>

namespace aio::detail {

class task_state;

// A group of tasks awaited together (gather). cancel() visits the children itself,
// one after the other and depth first, as asyncio's recursive cancel() does, but it
// keeps its place in each group here rather than on the stack: groups may nest a
// hundred thousand deep, or await each other in a cycle.
struct cancel_group {
    task_state* (*child)(const cancel_group&, std::size_t) noexcept = nullptr;  // the i-th; may be null
    std::size_t children = 0;
    // The walk's bookkeeping, meaningful only while `walking`.
    cancel_group* walk_parent = nullptr;  // the group the walk returns to after this one
    std::size_t walk_next = 0;            // the next child to visit
    bool walking = false;                 // on the walk's path: reaching it again is a cycle
};

// `cancel` returns true when the cancellation was delivered: the waiter will be woken
// (and get cancelled_error); false when it is too late (the wake-up is already
// queued), and the task then keeps the cancellation for its next resumption.
struct cancel_hook {
    bool (*cancel)(cancel_hook*) noexcept = nullptr;
    // Set when what is awaited is another task: cancel() follows such chains itself,
    // without recursion (a chain may be long, or a cycle of deadlocked tasks).
    task_state* awaited_task = nullptr;
    // Set when what is awaited is a group: `cancel` then only says whether the
    // cancellation reaches the group (and marks it cancelled); cancel() itself goes on
    // to cancel each child.
    cancel_group* awaited_group = nullptr;
};

// The low bit of a task's `awaiting` word: a cancel_hook*, or a sleep (whose timer the
// loop removes itself).
enum : std::uintptr_t { awaiting_hook = 0, awaiting_sleep = 1 };

}  // namespace aio::detail
