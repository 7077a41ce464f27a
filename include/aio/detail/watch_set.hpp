#pragma once
// The machinery shared by aio::wait and aio::as_completed: done callbacks on a set of
// tasks, and an optional deadline.
//
// Each watched task gets a slot that waits in the task's waiter list like a done
// callback added with add_done_callback: when the task ends, the slot is appended to
// the ready queue (rule 4) and runs the owner's `on_done` there, one iteration later
// — as asyncio's callbacks do. A task that has ended already has its slot queued at
// once (asyncio's add_done_callback on a finished future schedules the callback).
//
// The deadline is a call_later-style timer: when it is due, the loop moves it to the
// ready queue (rule 6) and it runs the owner's `on_timeout`. Stopping the set
// cancels it, so it never runs after that.
//
// Allocation: one block for all the slots, and the timer's node. Nothing holds a
// reference to a task: the owner keeps the handles, and so the tasks, alive for as
// long as the set exists.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../task_handle.hpp"
#include "callback_node.hpp"
#include "done_step.hpp"
#include "loop_core.hpp"
#include "ready_queue.hpp"
#include "task_state.hpp"

namespace aio::detail {

class watch_set;

struct watch_slot : done_step {
    watch_set* owner = nullptr;
    task_state* task = nullptr;         // kept alive by the owner's handle
    watch_slot* next_done = nullptr;    // free for the owner: as_completed's FIFO of ended tasks
};

class watch_set {
public:
    using done_fn = void (*)(watch_set&, watch_slot&) noexcept;
    using timeout_fn = void (*)(watch_set&) noexcept;

    watch_set(loop_core& loop, done_fn on_done, timeout_fn on_timeout) noexcept
        : loop_(&loop), on_done_(on_done), on_timeout_(on_timeout) {}
    watch_set(const watch_set&) = delete;
    watch_set& operator=(const watch_set&) = delete;
    ~watch_set() { stop(); }

    // Checks the handles (none empty; each task of this loop unless it has ended):
    // throws `what`-named errors before anything is watched.
    template <class Handle>
    void check(const std::vector<Handle>& handles, const char* what) const {
        for (const Handle& h : handles) {
            task_state* t = handle_access::state(h);
            if (!t) throw invalid_state_error(std::string(what) + " of an empty task handle");
            if (!t->done() && t->loop() != loop_)
                throw aio::runtime_error(std::string(what) + " of a task of another event loop");
        }
    }

    // Starts watching each handle's task, in order. The handles must stay alive (and
    // in place) until stop() or the set's destruction.
    template <class Handle>
    void watch(const std::vector<Handle>& handles) {
        slots_ = std::make_unique<watch_slot[]>(handles.size());
        count_ = handles.size();
        for (std::size_t i = 0; i < count_; ++i) {
            watch_slot& s = slots_[i];
            s.owner = this;
            s.task = handle_access::state(handles[i]);
            s.run = [](ready_item* item) noexcept {
                auto& slot = static_cast<watch_slot&>(*item);
                slot.owner->on_done_(*slot.owner, slot);
            };
            s.watch(*loop_, *s.task);
        }
    }

    // Arms the deadline `delay_ns` from now (<= 0: due at the next iteration).
    void arm(std::int64_t delay_ns) {
        disarm();
        callback_node* node = loop_->make_callback([this] { on_timeout_(*this); });
        loop_->arm(node, deadline_after(loop_->now(), delay_ns));
        node->add_ref();
        timer_ = node;
    }

    // Cancels the deadline, whether it is still in the timer queue or already due.
    void disarm() noexcept {
        if (!timer_) return;
        loop_core::cancel(timer_);
        std::exchange(timer_, nullptr)->release();
    }

    // Stops watching one slot's task: its callback will not run.
    void forget(watch_slot& s) noexcept {
        if (s.task) s.unwatch(*loop_, *s.task);
    }

    // Stops everything: no callback of the set runs after this.
    void stop() noexcept {
        for (std::size_t i = 0; i < count_; ++i) forget(slots_[i]);
        disarm();
    }

    std::size_t size() const noexcept { return count_; }
    watch_slot& slot(std::size_t i) noexcept { return slots_[i]; }
    std::size_t index_of(const watch_slot& s) const noexcept { return static_cast<std::size_t>(&s - slots_.get()); }
    loop_core& loop() const noexcept { return *loop_; }

private:
    loop_core* loop_;
    done_fn on_done_;
    timeout_fn on_timeout_;
    std::unique_ptr<watch_slot[]> slots_;
    std::size_t count_ = 0;
    callback_node* timer_ = nullptr;  // the deadline, while armed
};

}  // namespace aio::detail
