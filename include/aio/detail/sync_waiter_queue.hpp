#pragma once
// The one fair FIFO waiter queue behind every synchronisation primitive (event, lock,
// semaphore, condition; barrier through condition): sync_waiter_queue and its nodes,
// sync_waiter. (A task's own waiters, woken when it ends, are detail/waiter.hpp's;
// aio::queue's getters and putters are queue_item_waiter, in detail/queue.hpp.)
//
// asyncio's primitives keep a deque of futures, one per waiting task. A future is
// pending (the task waits), done (the task was woken and its wake-up is queued) or
// cancelled; it stays in the deque until its task runs again and removes it. Here a
// `sync_waiter` node, living in the awaiter inside the suspended task's frame, plays
// that future: suspending allocates nothing.
//
//   waiting    linked, not yet woken (a pending future)
//   woken      still linked: its wake-up is queued and the task has not resumed (a
//              done future). It still counts as a waiter, so that a newcomer queues
//              behind it, as in asyncio.
//   cancelled  unlinked at once by its cancel hook, and the task is woken to get
//              aio::cancelled_error (asyncio keeps a cancelled future until its task
//              runs, but every primitive skips it: unlinking early changes nothing
//              that can be observed, and a later release wakes the next waiter at once)
//
// Wake-ups follow rule 4: waking a node appends its task to the ready queue; nothing
// resumes inline. Woken nodes always precede the waiting ones (a wake takes the
// oldest waiting node, newcomers go to the back), so `first_waiting_` marks where
// the waiting part starts and every wake is O(1).
//
// The race every primitive must get right — a woken waiter is cancelled before its
// task runs — is settled in one place: sync_waiter::resume() reports it as
// `abandoned` (the cancellation arrived after the wake-up; the task gets
// cancelled_error), and the primitive then hands on what the wake-up gave it (the
// lock, a semaphore unit, a notification). A cancellation that reaches a woken node
// cannot withdraw the wake-up (the hook returns false and the task keeps its pending
// cancellation), so a wake-up is never lost and never delivered twice.
//
// Lifetime: a primitive must outlive the tasks waiting on it; destroying it while
// tasks wait is a bug. The queue then detaches its waiters rather than leave dangling
// pointers: each node is unlinked and marked orphaned, but keeps its cancel hook,
// which now works on the node alone (it wakes its task through the task's own loop).
// The tasks stay suspended until cancelled — by hand, or by aio::run's shutdown — and
// then get aio::cancelled_error; the primitives' awaiters see orphaned() and touch
// nothing of the dead primitive on the way out. (A node already woken when the
// primitive went still resumes into it: that is the bug itself.)

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <string>

#include "../errors.hpp"
#include "intrusive_list.hpp"
#include "loop_core.hpp"
#include "suspension.hpp"
#include "task_state.hpp"
#include "thread_check.hpp"

namespace aio::detail {

class sync_waiter_queue;

class sync_waiter : public cancel_hook {
public:
    enum class state : std::uint8_t { idle, waiting, woken, cancelled };
    // What became of the wait, as seen by the task once it resumes.
    enum class outcome : std::uint8_t {
        woken,      // woken, and not cancelled since: the wake-up's gift is the task's
        abandoned,  // woken, then cancelled before the task ran: hand the gift on
        cancelled,  // cancelled while waiting: nothing was given
    };

    sync_waiter() noexcept { cancel = on_cancel; }
    sync_waiter(const sync_waiter&) = delete;
    sync_waiter& operator=(const sync_waiter&) = delete;
    inline ~sync_waiter();

    // Suspends the running task on `q` (await_suspend). A cancel() that came while the
    // task was running cancels this wait at once, as asyncio's task does with the
    // future it then yields. Throws aio::runtime_error outside a task, or when the
    // queue is in use by another loop's tasks.
    inline void suspend(sync_waiter_queue& q, std::coroutine_handle<> h, const char* what);

    // In await_resume: unlinks the node and says what happened. Unless woken, the
    // caller passes on what the wake-up gave (if anything), then throw_cancellation().
    inline outcome resume() noexcept;
    // Throws the task's cancellation (one cancellation, one error).
    inline void throw_cancellation() const;
    task_state* task() const noexcept { return task_; }
    state current() const noexcept { return state_; }
    // The queue was destroyed while the task was suspended here: after resume(), the
    // awaiter must not touch its primitive.
    bool orphaned() const noexcept { return orphaned_; }

private:
    friend class sync_waiter_queue;
    static inline bool on_cancel(cancel_hook* hook) noexcept;

    list_links<sync_waiter> links_;
    sync_waiter_queue* queue_ = nullptr;  // while linked
    task_state* task_ = nullptr;
    state state_ = state::idle;
    bool orphaned_ = false;
};

class sync_waiter_queue {
public:
    sync_waiter_queue() noexcept = default;
    sync_waiter_queue(const sync_waiter_queue&) = delete;
    sync_waiter_queue& operator=(const sync_waiter_queue&) = delete;
    ~sync_waiter_queue() {
        while (sync_waiter* w = line_.front()) {
            unlink(w);
            w->orphaned_ = true;  // a waiting one stays cancellable: see on_cancel
        }
    }

    // No waiter at all, waiting or woken (asyncio: no future that is not cancelled).
    bool empty() const noexcept { return line_.empty(); }
    // Someone waits and has not been woken yet.
    bool has_waiting() const noexcept { return first_waiting_ != nullptr; }
    // The oldest waiter has been woken and has not resumed yet.
    bool head_woken() const noexcept { return !line_.empty() && line_.front() != first_waiting_; }

    // Wakes the oldest waiting node (asyncio: set_result on the first future that is
    // not done); false when none waits.
    bool wake_first() noexcept {
        sync_waiter* w = first_waiting_;
        if (!w) return false;
        first_waiting_ = line_.next(w);
        w->state_ = sync_waiter::state::woken;
        loop_->schedule(*w->task_);
        return true;
    }

    // Wakes up to `n` waiting nodes, oldest first; returns how many.
    std::size_t wake(std::size_t n) noexcept {
        std::size_t woken = 0;
        while (woken < n && wake_first()) ++woken;
        return woken;
    }
    std::size_t wake_all() noexcept { return wake(static_cast<std::size_t>(-1)); }

    // Thread ownership (thread_check.hpp): the waiting tasks' loop must not be running
    // on another thread.
    void check_thread(const char* what) const { check_loop_thread(loop_, what); }
    void assert_thread(const char* what) const noexcept { assert_loop_thread(loop_, what); }

private:
    friend class sync_waiter;

    void push(sync_waiter* w) noexcept {
        line_.push_back(w);
        if (!first_waiting_) first_waiting_ = w;
        w->queue_ = this;
    }
    void unlink(sync_waiter* w) noexcept {
        if (first_waiting_ == w) first_waiting_ = line_.next(w);
        line_.unlink(w);
        w->queue_ = nullptr;
        if (line_.empty()) loop_ = nullptr;
    }

    intrusive_list<sync_waiter, &sync_waiter::links_> line_;  // woken nodes first, then waiting ones
    sync_waiter* first_waiting_ = nullptr;  // the first node not yet woken; woken ones precede it
    loop_core* loop_ = nullptr;              // the loop of the waiting tasks, while any wait
};

inline sync_waiter::~sync_waiter() {
    // Only when the frame is destroyed while suspended here (its loop is closing).
    if (queue_) queue_->unlink(this);
}

inline void sync_waiter::suspend(sync_waiter_queue& q, std::coroutine_handle<> h, const char* what) {
    task_state& self = suspending_task(what);
    if (q.loop_ && q.loop_ != running_loop)
        throw aio::runtime_error(std::string(what) + " is in use by tasks of another event loop");
    q.loop_ = running_loop;
    task_ = &self;
    state_ = state::waiting;
    q.push(this);
    detail::suspend(self, h, *this);
}

inline sync_waiter::outcome sync_waiter::resume() noexcept {
    if (queue_) queue_->unlink(this);
    const state s = state_;
    state_ = state::idle;
    if (s == state::cancelled) return outcome::cancelled;
    return cancel_pending(task_) ? outcome::abandoned : outcome::woken;
}

inline void sync_waiter::throw_cancellation() const { resumed(task_, true); }

// Only a waiting node can be cancelled: its task is woken to get cancelled_error. A
// woken one keeps its wake-up (false: cancel() marks the task, and resume() reports
// `abandoned`).
inline bool sync_waiter::on_cancel(cancel_hook* hook) noexcept {
    auto& w = static_cast<sync_waiter&>(*hook);
    if (w.state_ != state::waiting) return false;
    loop_core* loop;
    if (sync_waiter_queue* q = w.queue_) {
        loop = q->loop_;
        q->unlink(&w);
    } else {  // orphaned: the node is all that is left
        loop = core_of(w.task_->loop());
        if (!loop) return false;
    }
    w.state_ = state::cancelled;
    loop->schedule(*w.task_);
    return true;
}

}  // namespace aio::detail
