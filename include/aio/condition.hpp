#pragma once
// aio::condition: asyncio.Condition — tasks wait, holding a lock, until another task
// notifies them.
//
//   aio::condition cv;                       // its own aio::lock; or aio::condition cv(l)
//   {
//       auto guard = co_await cv.scoped();   // hold the lock (`async with cv:`)
//       co_await cv.wait_for([&] { return !items.empty(); });
//       ...
//   }
//   // elsewhere, holding the lock: cv.notify(); or cv.notify_all();
//
// wait() releases the lock, waits for a notification and re-acquires the lock before
// it returns — also when the task is cancelled: cancelled_error is thrown only once
// the lock is held again (the cancellations that arrive while it re-acquires are
// absorbed into that one error). wait_for(pred) waits until pred() is true (checked
// first, then after each wake-up, always with the lock held) and returns pred()'s
// last value.
//
// Resumption: notify(n) wakes the n oldest waiting tasks through the loop (rule 4);
// each then re-acquires the lock in turn (FIFO, see aio::lock). notify_all() wakes
// every waiting task. notify() does not release the lock: its caller should.
//
// Cancellation: a notification is never lost to a cancelled waiter. A waiter that
// leaves wait() with an error — cancelled after it was notified, or while it
// re-acquired the lock — passes one notification on to the next waiting task
// (CPython 3.13's fix; 3.12 can lose it). The next task may then see a spurious
// wake-up, which condition variables allow: wait in a loop, or use wait_for().
//
// Misuse: wait() and notify() without the lock held throw aio::runtime_error
// (asyncio's RuntimeError). Allocation: wait() and wait_for() are aio::task
// coroutines (their frames come from the loop thread's block cache); the wait itself
// allocates nothing. The condition (and a lock given to it) must outlive the tasks
// using it.

#include <coroutine>
#include <cstddef>
#include <exception>
#include <type_traits>
#include <utility>

#include "detail/sync_waiter_queue.hpp"
#include "errors.hpp"
#include "lock.hpp"
#include "task.hpp"

namespace aio {

class condition {
public:
    // A condition with a lock of its own.
    condition() noexcept : lock_(&own_lock_) {}
    // A condition over `l`, which may be shared by several conditions.
    explicit condition(aio::lock& l) noexcept : lock_(&l) {}
    condition(const condition&) = delete;
    condition& operator=(const condition&) = delete;

    // The lock's interface (asyncio's Condition forwards these too).
    bool locked() const noexcept { return lock_->locked(); }
    aio::lock::acquire_awaiter acquire() noexcept { return lock_->acquire(); }
    aio::lock::scoped_awaiter scoped() noexcept { return lock_->scoped(); }
    void release() { lock_->release(); }

    // co_await cv.wait(): see above. Throws aio::runtime_error if the lock is not held.
    task<> wait() { return wait(nullptr); }

    // co_await cv.wait_for(pred): waits until pred() is true; returns its value.
    template <class Predicate>
    task<std::decay_t<std::invoke_result_t<Predicate&>>> wait_for(Predicate predicate) {
        auto result = predicate();
        while (!result) {
            co_await wait();
            result = predicate();
        }
        co_return result;
    }

    // Wakes up to `n` waiting tasks, oldest first. Throws aio::runtime_error if the
    // lock is not held.
    void notify(std::size_t n = 1) {
        waiters_.check_thread("aio::condition::notify()");
        if (!lock_->locked()) throw aio::runtime_error("aio::condition::notify(): the lock is not acquired");
        waiters_.wake(n);
    }
    void notify_all() { notify(static_cast<std::size_t>(-1)); }

private:
    friend class barrier;

    // wait(), telling `orphaned` (if given) when the condition was destroyed while the
    // task waited: the cancellation that ends such a wait is rethrown at once, touching
    // nothing of the dead condition (nor its lock), and so must the caller (barrier).
    task<> wait(bool* orphaned) {
        if (!lock_->locked()) throw aio::runtime_error("aio::condition::wait(): the lock is not acquired");
        lock_->release();
        std::exception_ptr error;
        bool gone = false;
        try {
            co_await notified_awaiter(*this, gone);
        } catch (const cancelled_error&) {
            if (gone) {
                if (orphaned) *orphaned = true;
                throw;
            }
            error = std::current_exception();
        }
        // Re-acquire the lock whatever happened; a cancellation meanwhile is kept
        // for later (the last one is thrown).
        for (;;) {
            try {
                co_await lock_->acquire();
                break;
            } catch (const cancelled_error&) {
                error = std::current_exception();
            }
        }
        if (error) {
            // This task may have used up a notification: hand one on.
            waiters_.wake(1);
            std::rethrow_exception(error);
        }
    }

    // wait_for(pred) for a barrier, which must know whether the condition is gone.
    template <class Predicate>
    task<> wait_until(Predicate predicate, bool& orphaned) {
        while (!predicate()) co_await wait(&orphaned);
    }

    // The wait for a notification proper (asyncio's `await fut`). `orphaned` is set when
    // the condition was destroyed while the task waited.
    class notified_awaiter {
    public:
        notified_awaiter(condition& c, bool& orphaned) noexcept : cond_(c), orphaned_(orphaned) {}
        bool await_ready() const noexcept { return false; }
        void await_suspend(std::coroutine_handle<> h) { node_.suspend(cond_.waiters_, h, "aio::condition::wait()"); }
        void await_resume() {
            if (node_.resume() != detail::sync_waiter::outcome::woken) {
                orphaned_ = node_.orphaned();
                node_.throw_cancellation();
            }
        }

    private:
        condition& cond_;
        bool& orphaned_;
        detail::sync_waiter node_;
    };

    aio::lock own_lock_;
    aio::lock* lock_;
    detail::sync_waiter_queue waiters_;
};

}  // namespace aio
