#pragma once
// The loop's scheduling core, which tasks themselves need: the ready queue (API
// rules 1 and 4), the loop's lists of tasks, and what a task does when it ends. It
// knows nothing of time, the poller or threads, so that <aio/task.hpp> stays light;
// loop_core.hpp builds the running loop on it.

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <unordered_map>

#include "../errors.hpp"
#include "ready_queue.hpp"
#include "task_state.hpp"

namespace aio::detail {

class scheduler {
public:
    scheduler() noexcept = default;
    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    // --- scheduling (rule 4: a wake-up appends, nothing resumes inline)

    void schedule(task_state& t) {
        t.run_.awaiting = 0;
        ready.push(entry_of(&t, tag_task));
    }
    void push(ready_item* item) { item->queued_at = ready.push(entry_of(item, tag_item)); }
    void wake(std::uintptr_t entry) {
        if ((entry & tag_mask) == tag_task) schedule(*pointer_of<task_state>(entry));
        else push(pointer_of<ready_item>(entry));
    }
    void withdraw(ready_item* item) noexcept {
        if (item->queued_at == not_queued) return;
        ready.withdraw(item->queued_at, entry_of(item, tag_item));
        item->queued_at = not_queued;
    }

    // `to` takes `from`'s place in the ready queue (an object that moves while its item
    // is queued).
    void requeue_in_place(ready_item* from, ready_item* to) noexcept {
        to->queued_at = not_queued;
        if (from->queued_at == not_queued) return;
        if (ready.replace(from->queued_at, entry_of(from, tag_item), entry_of(to, tag_item))) to->queued_at = from->queued_at;
        from->queued_at = not_queued;
    }

    void check_open() const {
        if (closed) throw aio::runtime_error("Event loop is closed");
    }

    // True while this loop runs on a thread other than the calling one (what the
    // thread-ownership checks of thread_check.hpp look for). Any thread may ask.
    bool running_elsewhere() const noexcept {
        const std::thread::id runner = running_thread_.load(std::memory_order_relaxed);
        return runner != std::thread::id() && runner != std::this_thread::get_id();
    }

    // The task's coroutine reached its final suspend point (or was cancelled before
    // it started): wake its waiters in the order they came.
    void finish(task_state& t) noexcept {
        pending.unlink(&t);
        if (!cancel_messages.empty()) [[unlikely]]
            note_cancel_message(t, nullptr);
        while (waiter* w = t.waiters_.pop_front()) {
            const std::uintptr_t kind = w->entry & tag_mask;
            if (kind == tag_notify) {
                auto* n = pointer_of<done_notifier>(w->entry);
                n->notify(n, w);
                continue;
            }
            if (kind == tag_task) {  // an awaiting task will read the result
                t.add_ref();
                w->entry |= waiter::holds_reference;
            }
            wake(w->entry & ~waiter::holds_reference);
        }
    }

    // --- cancel(msg)'s messages

    // Records cancel(msg)'s message for `t`; a cancel() without one forgets it, as in
    // asyncio. The cancel walk does not call it for a task whose cancellation has
    // already reached what it awaits (task_state::cancel_fixed_): that message stays. The message is best effort: without memory for it, it is dropped.
    // A hash map: cancel("shutdown") of a gather reaches each of its children.
    void note_cancel_message(const task_state& t, const std::string* message) noexcept {
        if (!message || message->empty()) {
            cancel_messages.erase(&t);
            return;
        }
        try {
            cancel_messages.insert_or_assign(&t, *message);
        } catch (...) {
        }
    }
    // The message of the cancellation delivered to `t` (empty: none).
    std::string cancel_message(const task_state& t) const {
        auto it = cancel_messages.find(&t);
        return it == cancel_messages.end() ? std::string() : it->second;
    }

    ready_queue ready;
    task_list pending;   // in creation order: all_tasks(), shutdown
    task_list finished;  // done, still referenced by a handle
    task_state* current = nullptr;
    // The messages of pending cancel(msg) requests, by task (usually none).
    std::unordered_map<const task_state*, std::string> cancel_messages;
    // Atomic (relaxed reads cost a plain load) so that another thread may ask is_closed().
    std::atomic<bool> closed{false};

protected:
    ~scheduler() = default;

    // The thread running the loop; no thread while it does not run.
    std::atomic<std::thread::id> running_thread_{};
};

// The error a cancellation raises in task `t`: aio::cancelled_error, carrying the
// message of the cancel(msg) that caused it, if any.
inline cancelled_error cancellation_of(const task_state* t) {
    scheduler* loop = t ? t->loop() : nullptr;
    if (!loop || loop->cancel_messages.empty()) return cancelled_error();
    return cancelled_error(loop->cancel_message(*t));
}

}  // namespace aio::detail
