#pragma once
// Closing a loop (event_loop::close, and its destructor): what never ran is
// discarded, timers are let go of, and every task still pending ends cancelled, its
// frame destroyed now or, where handles still refer to it, left as a zombie.

#include <exception>
#include <vector>

#include "../errors.hpp"
#include "loop_core.hpp"
#include "task_state.hpp"

namespace aio::detail {

inline void loop_core::close() {
    if (running) throw aio::runtime_error("Cannot close a running event loop");
    if (closed) return;
    dispose_cancelled();
    closed = true;
    // Work that never ran, posted from other threads included; later posts are refused.
    auto discard = [](ready_item* item) noexcept {
        item->queued_at = not_queued;
        if (item->discard) item->discard(item);
    };
    close_mailbox(discard);
    while (!ready.empty()) {
        std::uintptr_t entry = ready.pop();
        if (entry && (entry & tag_mask) == tag_item) discard(pointer_of<ready_item>(entry));
    }
    // Timers left: callbacks are dropped; sleeps are disarmed before their frames go.
    timers.clear([](const timer_queue::entry& e) {
        if ((e.tagged & timer_is_sleep) == 0) discard_callback(reinterpret_cast<ready_item*>(e.tagged));
    });
    // Tasks still pending end cancelled; their frames are destroyed now, or when
    // the last handle to them goes if someone still holds one.
    std::vector<task_state*> doomed;
    doomed.reserve(pending.size);
    // One error for them all: it says the same to every reader, and copying it
    // allocates nothing.
    const std::exception_ptr closed_error = std::make_exception_ptr(cancelled_error("the event loop was closed"));
    for (task_state* t = pending.front(); t; t = pending.next(t)) doomed.push_back(t);
    for (task_state* t : doomed) {
        pending.unlink(t);
        while (waiter* w = t->waiters_.pop_front()) {  // done callbacks never run; awaiters are doomed too
            if ((w->entry & tag_mask) == tag_item) {
                auto* item = pointer_of<ready_item>(w->entry);
                if (item->discard) item->discard(item);
            }
        }
        t->set_error(closed_error, task_status::cancelled);
        t->retrieved_ = true;
        t->finished_ = true;
        finished.push_back(t);
        t->add_ref();
    }
    // Let go of those only the loop holds; their frames may hold the last handle to
    // others, so go round until nothing changes.
    for (bool progress = true; progress;) {
        progress = false;
        std::erase_if(doomed, [&](task_state* t) {
            if (t->refs_ != 1) return false;
            t->release();
            progress = true;
            return true;
        });
    }
    // The rest are held by handles: their own (a frame holding a handle to itself),
    // each other's, or the user's. Destroy their frames all the same; a task that a
    // handle still refers to lives on as a zombie (see zombie.hpp).
    for (task_state* t : doomed) {
        finished.unlink(t);
        --t->refs_;  // the loop's; someone else holds one
        t->zombie_ = 1;
        t->frame_size_ = 0;
        t->frame().destroy();
    }
    // Descriptors: what waited on them has gone with its frame; callbacks go now, and
    // transports and servers close theirs.
    while (io_owner* owner = io_owners.pop_front()) owner->loop_closing(owner);
    fds.clear();
    // What outlives the loop forgets it.
    for (task_state* t = finished.front(); t;) {
        task_state* next = finished.next(t);
        t->loop_ = nullptr;
        t->tasks_ = {};
        t = next;
    }
    finished = task_list{};
}

}  // namespace aio::detail
