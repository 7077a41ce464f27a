#pragma once
// aio::semaphore and aio::bounded_semaphore: asyncio.Semaphore and
// asyncio.BoundedSemaphore — a counter of free units that tasks acquire and release,
// with fair (FIFO) waiting.
//
//   aio::semaphore slots(3);
//   {
//       auto guard = co_await slots.scoped();   // aio::semaphore::guard: releases at
//       ...                                     // scope exit (`async with slots:`)
//   }
//   co_await slots.acquire();  ...  slots.release();
//
// Resumption, as in CPython 3.12: acquire() takes a unit at once, without suspending,
// when one is free and nobody is queued (locked() is false); otherwise the task
// queues, even if a unit is free, so that the tasks queued first are served first.
// release() adds a unit and, if a task is queued, gives it to the oldest one by
// waking it through the loop (rule 4). A woken task, when it runs, wakes as many more
// queued tasks as there are free units.
//
// Cancellation: a queued task is woken and gets aio::cancelled_error from acquire().
// One that was given a unit and cancelled before it ran gets cancelled_error too, and
// gives the unit back, which goes to the next queued task: no unit is lost and none
// is given twice.
//
// Errors: a negative initial value throws std::invalid_argument (asyncio's
// ValueError, for an argument). Releasing a bounded_semaphore above its initial value
// throws aio::runtime_error: asyncio raises ValueError there, and aio's nearest error
// for "released too many times" is the one aio::lock::release() throws. A plain
// semaphore may be released any number of times. Waiting allocates nothing; the
// semaphore must outlive the tasks waiting on it.

#include <coroutine>
#include <cstddef>
#include <stdexcept>

#include "detail/release_guard.hpp"
#include "detail/sync_waiter_queue.hpp"
#include "errors.hpp"

namespace aio {

class semaphore {
public:
    // Owns one unit; releases it on destruction (or earlier, by release()).
    using guard = detail::release_guard<semaphore>;

    // Throws std::invalid_argument if `value` is negative.
    explicit semaphore(std::ptrdiff_t value = 1) : value_(checked(value)) {}
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;

    // True when acquire() would suspend: no unit is free, or tasks are queued.
    bool locked() const noexcept { return value_ == 0 || !waiters_.empty(); }

    // Adds a unit and wakes the oldest queued task, if any. A bounded_semaphore throws
    // aio::runtime_error instead when it would go above its initial value.
    void release() {
        waiters_.check_thread("aio::semaphore::release()");
        if (bound_ >= 0 && value_ >= bound_)
            throw aio::runtime_error("aio::bounded_semaphore::release(): released too many times");
        ++value_;
        wake_up_next();
    }

    class [[nodiscard]] acquire_awaiter {
    public:
        explicit acquire_awaiter(semaphore& s) noexcept : sem_(s) {}
        bool await_ready() noexcept {
            if (sem_.locked()) return false;
            --sem_.value_;
            return true;
        }
        void await_suspend(std::coroutine_handle<> h) { node_.suspend(sem_.waiters_, h, "aio::semaphore::acquire()"); }
        void await_resume() {
            if (node_.current() == detail::sync_waiter::state::idle) return;  // taken in await_ready
            const auto outcome = node_.resume();
            if (outcome != detail::sync_waiter::outcome::woken && node_.orphaned())
                node_.throw_cancellation();  // the semaphore is gone: nothing to give back
            // Woken, then cancelled: the unit the wake-up gave us goes back.
            if (outcome == detail::sync_waiter::outcome::abandoned) ++sem_.value_;
            // Tasks that queued behind us while units were free are served now.
            while (sem_.value_ > 0 && sem_.wake_up_next()) {
            }
            if (outcome != detail::sync_waiter::outcome::woken) node_.throw_cancellation();
        }

    protected:
        semaphore& sem_;

    private:
        detail::sync_waiter node_;
    };

    class [[nodiscard]] scoped_awaiter : public acquire_awaiter {
    public:
        explicit scoped_awaiter(semaphore& s) noexcept : acquire_awaiter(s) {}
        guard await_resume() {
            acquire_awaiter::await_resume();
            return guard(sem_);
        }
    };

    // co_await s.acquire(): returns once the task holds a unit.
    acquire_awaiter acquire() noexcept { return acquire_awaiter(*this); }
    // co_await s.scoped(): acquire(), returning a guard that releases the unit.
    scoped_awaiter scoped() noexcept { return scoped_awaiter(*this); }

protected:
    semaphore(std::ptrdiff_t value, bool bounded) : value_(checked(value)), bound_(bounded ? value : -1) {}

private:
    static std::ptrdiff_t checked(std::ptrdiff_t value) {
        if (value < 0) throw std::invalid_argument("aio::semaphore: the initial value must be >= 0");
        return value;
    }

    // asyncio's _wake_up_next: gives a unit to the oldest task not yet woken.
    bool wake_up_next() noexcept {
        if (!waiters_.has_waiting()) return false;
        --value_;
        waiters_.wake_first();
        return true;
    }

    template <class>
    friend class detail::release_guard;

    detail::guard_registry<semaphore> guards_;  // disowned if the semaphore is destroyed under them
    detail::sync_waiter_queue waiters_;
    std::ptrdiff_t value_;
    std::ptrdiff_t bound_ = -1;  // a bounded_semaphore's initial value
};

// A semaphore that refuses to be released above its initial value (a release without
// a matching acquire is a bug): release() then throws aio::runtime_error.
class bounded_semaphore : public semaphore {
public:
    explicit bounded_semaphore(std::ptrdiff_t value = 1) : semaphore(value, true) {}
};

}  // namespace aio
