#pragma once
// How a task's frame dies. A spawned task's frame outlives its last step for as long
// as a handle refers to it (the result stays readable); it is destroyed when the loop
// has let go of it (after its last step) and the last handle is gone, whichever
// comes second. Frames that close() destroys while handles remain become zombies
// (zombie.hpp).

#include <cstddef>

#include "block_cache.hpp"
#include "exception_report.hpp"
#include "loop_core.hpp"
#include "task_state.hpp"
#include "zombie.hpp"

namespace aio::detail {

// Destroys a finished task's frame, reporting an error nobody retrieved. Destroying a
// frame can drop the last handle to another finished task (a chain of a hundred
// thousand tasks each holding the previous one's handle, say): those wait in a list
// instead of recursing.
inline void destroy_finished(task_state& t) noexcept {
    struct destruction {
        task_state* waiting = nullptr;
        bool active = false;
    };
    thread_local destruction d;
    if (t.loop_) {
        t.loop_->finished.unlink(&t);
        core_of(t.loop_)->report_unretrieved(t);
    } else if (t.status() == task_status::error && !t.retrieved_) {
        print_exception_context({"Task exception was never retrieved", t.error(), t.name()});
    }
    if (d.active) {  // the task lists' links are free now: chain the waiting ones through them
        t.tasks_.next = d.waiting;
        d.waiting = &t;
        return;
    }
    d.active = true;
    t.frame().destroy();
    while (task_state* next = d.waiting) {
        d.waiting = next->tasks_.next;
        next->frame().destroy();
    }
    d.active = false;
}

inline void task_state::release() noexcept {
    if (this == zombie_being_destroyed) [[unlikely]] {  // a handle among its frame's parameters
        --zombie_handover::current().refs;
        return;
    }
    if (--refs_ != 0 || !finished_) return;
    if (!zombie_) return destroy_finished(*this);
    if (frame_size_ == 0) return;  // its frame is being destroyed right now
    void* frame = reinterpret_cast<char*>(this) - frame_offset_;
    const std::size_t size = frame_size_;
    this->~task_state();
    deallocate_block_out_of_line(frame, size);
}

}  // namespace aio::detail
