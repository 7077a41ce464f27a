#pragma once
// aio::barrier: asyncio.Barrier — `parties` tasks wait until all of them have
// arrived, then all go on together; the barrier can then be used again.
//
//   aio::barrier b(3);
//   std::size_t index = co_await b.wait();   // 0, 1, 2 in arrival order
//   co_await b.abort();                      // or b.reset()
//
// A barrier cycles through asyncio's states: filling (tasks arrive and wait),
// draining (the last party has arrived: the waiting tasks leave wait()), resetting
// (reset() while tasks wait: they leave with aio::broken_barrier_error) and broken
// (abort(): every wait() throws aio::broken_barrier_error until reset()). A task that
// calls wait() while the barrier drains or resets waits for the next cycle.
//
// Resumption follows asyncio, which builds the barrier on a condition: each wait()
// holds the barrier's condition lock while it runs, and the last party to arrive
// wakes the others with notify_all() (rule 4); they then re-acquire the lock one
// after the other, in arrival order.
//
// Cancellation: a task cancelled in wait() leaves (cancelled_error) after
// re-acquiring the lock, as a condition wait does; it no longer counts among the
// arrived parties.
//
// wait(), reset() and abort() are aio::task coroutines, as they are coroutines in
// asyncio (they take the condition's lock): co_await them. Their frames come from the
// loop thread's block cache. The barrier must outlive the tasks using it.

#include <cstddef>
#include <stdexcept>

#include "condition.hpp"
#include "errors.hpp"
#include "task.hpp"

namespace aio {

class barrier {
public:
    // Throws std::invalid_argument if `parties` is 0 (asyncio's ValueError).
    explicit barrier(std::size_t parties) : parties_(parties) {
        if (parties == 0) throw std::invalid_argument("aio::barrier: parties must be > 0");
    }
    barrier(const barrier&) = delete;
    barrier& operator=(const barrier&) = delete;

    // co_await b.wait(): returns this task's arrival index in the cycle (0 for the
    // first, parties() - 1 for the last). Throws aio::broken_barrier_error if the
    // barrier is broken, or aborted or reset while the task waits.
    task<std::size_t> wait() {
        auto guard = co_await cond_.scoped();
        // Set when the barrier is destroyed while this task waits (a bug; the task then
        // leaves cancelled, touching nothing of it: see sync_waiter_queue.hpp).
        bool orphaned = false;
        // Wait while the barrier drains or resets (asyncio's _block).
        co_await cond_.wait_until([this] { return state_ != state::draining && state_ != state::resetting; }, orphaned);
        if (state_ == state::broken) throw broken_barrier_error("Barrier aborted");
        const std::size_t index = count_++;
        // On the way out, normally or not (asyncio's `finally`), with the lock held.
        struct leave {
            barrier& b;
            const bool& orphaned;
            ~leave() {
                if (!orphaned) b.exit();
            }
        } on_exit{*this, orphaned};
        if (index + 1 == parties_) {
            state_ = state::draining;  // release the waiting parties
            cond_.notify_all();
        } else {
            co_await cond_.wait_until([this] { return state_ != state::filling; }, orphaned);
            if (state_ == state::broken || state_ == state::resetting)
                throw broken_barrier_error("Abort or reset of barrier");
        }
        co_return index;
    }

    // Back to the empty, filling state; tasks waiting now get broken_barrier_error.
    task<> reset() {
        auto guard = co_await cond_.scoped();
        if (count_ > 0) state_ = state::resetting;
        else state_ = state::filling;
        cond_.notify_all();
    }

    // Breaks the barrier: waiting tasks and later wait() calls get broken_barrier_error.
    task<> abort() {
        auto guard = co_await cond_.scoped();
        state_ = state::broken;
        cond_.notify_all();
    }

    std::size_t parties() const noexcept { return parties_; }
    // How many tasks wait for the barrier to fill.
    std::size_t n_waiting() const noexcept { return state_ == state::filling ? count_ : 0; }
    bool broken() const noexcept { return state_ == state::broken; }

private:
    enum class state : unsigned char { filling, draining, resetting, broken };

    // asyncio's _exit: the last task out of a draining or resetting barrier opens the
    // next cycle, and wakes the tasks that wait for it.
    void exit() noexcept {
        --count_;
        if (count_ == 0) {
            if (state_ == state::resetting || state_ == state::draining) state_ = state::filling;
            cond_.notify_all();  // the lock is held: does not throw
        }
    }

    condition cond_;
    std::size_t parties_;
    std::size_t count_ = 0;
    state state_ = state::filling;
};

}  // namespace aio
