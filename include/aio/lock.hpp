#pragma once
// aio::lock: asyncio.Lock — a fair (FIFO) mutual-exclusion lock for tasks.
//
//   aio::lock l;
//   co_await l.acquire();  ...  l.release();
//   {
//       auto guard = co_await l.scoped();   // aio::lock::guard: releases at scope exit
//       ...                                 // (asyncio's `async with l:`)
//   }
//
// Resumption: acquire() on a free lock with nobody queued takes it at once, without
// suspending. Otherwise the task queues. release() hands the lock to the oldest
// queued task by waking it through the loop (rule 4); the lock is taken by that task
// when it runs. Until then it still counts as queued, so a task that calls acquire()
// right after release() queues behind it, as in asyncio: strict FIFO, no barging.
//
// Cancellation: a queued task is woken and gets aio::cancelled_error from acquire().
// One that was woken and then cancelled before it ran gets cancelled_error too, and
// passes the lock on to the next queued task: the lock never has two holders and a
// release() is never lost. (asyncio keeps a cancelled waiter in its queue until its
// task runs, so a release() meanwhile wakes nobody and the next task is woken one
// iteration later, by the cancelled one; aio drops the cancelled waiter at once and
// release() wakes the next task directly.)
//
// Misuse: release() of a lock that is not locked throws aio::runtime_error
// (asyncio's RuntimeError). The lock is not owned by a task: any task may release it,
// as in asyncio. Waiting allocates nothing. The lock must outlive the tasks waiting
// on it.

#include <coroutine>

#include "detail/release_guard.hpp"
#include "detail/sync_waiter_queue.hpp"
#include "errors.hpp"

namespace aio {

class lock {
public:
    // Owns one acquisition; releases it on destruction (or earlier, by release()).
    using guard = detail::release_guard<lock>;

    lock() noexcept = default;
    lock(const lock&) = delete;
    lock& operator=(const lock&) = delete;

    bool locked() const noexcept { return locked_; }

    // Throws aio::runtime_error if the lock is not locked.
    void release() {
        waiters_.check_thread("aio::lock::release()");
        if (!locked_) throw aio::runtime_error("aio::lock::release(): the lock is not acquired");
        locked_ = false;
        wake_up_first();
    }

    class [[nodiscard]] acquire_awaiter {
    public:
        explicit acquire_awaiter(lock& l) noexcept : lock_(l) {}
        bool await_ready() noexcept {
            if (lock_.locked_ || !lock_.waiters_.empty()) return false;
            lock_.locked_ = true;
            return true;
        }
        void await_suspend(std::coroutine_handle<> h) { node_.suspend(lock_.waiters_, h, "aio::lock::acquire()"); }
        void await_resume() {
            if (node_.current() == detail::sync_waiter::state::idle) return;  // taken in await_ready
            if (node_.resume() == detail::sync_waiter::outcome::woken) {
                lock_.locked_ = true;
                return;
            }
            // Cancelled: if a wake-up was ours (abandoned), or the lock is free anyway,
            // the next queued task must run — unless the lock is gone (orphaned).
            if (!node_.orphaned() && !lock_.locked_) lock_.wake_up_first();
            node_.throw_cancellation();
        }

    protected:
        lock& lock_;

    private:
        detail::sync_waiter node_;
    };

    class [[nodiscard]] scoped_awaiter : public acquire_awaiter {
    public:
        explicit scoped_awaiter(lock& l) noexcept : acquire_awaiter(l) {}
        guard await_resume() {
            acquire_awaiter::await_resume();
            return guard(lock_);
        }
    };

    // co_await l.acquire(): returns once the task holds the lock.
    acquire_awaiter acquire() noexcept { return acquire_awaiter(*this); }
    // co_await l.scoped(): acquire(), returning a guard that releases the lock.
    scoped_awaiter scoped() noexcept { return scoped_awaiter(*this); }

private:
    // asyncio's _wake_up_first: wakes the oldest queued task, unless it has been woken
    // already (its wake-up is pending: it will take the lock, or pass it on).
    void wake_up_first() noexcept {
        if (!waiters_.head_woken()) waiters_.wake_first();
    }

    template <class>
    friend class detail::release_guard;

    detail::guard_registry<lock> guards_;  // disowned if the lock is destroyed under them
    detail::sync_waiter_queue waiters_;
    bool locked_ = false;
};

}  // namespace aio
