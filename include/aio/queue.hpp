#pragma once
// aio::queue<T>, aio::lifo_queue<T>, aio::priority_queue<T>: asyncio's Queue,
// LifoQueue and PriorityQueue (Python 3.13, shutdown included), for coordinating
// producer and consumer tasks on one event loop.
//
//   aio::queue<job> q(10);                // maxsize 10; 0 (the default): unbounded
//   co_await q.put(std::move(j));          // waits while the queue is full
//   job next = co_await q.get();           // waits while it is empty
//   q.task_done();                         // one per item got, once it is handled
//   co_await q.join();                     // waits until every item put is done
//
// Order: queue is FIFO, lifo_queue LIFO, priority_queue gives the smallest item
// first by `Compare` (std::less: heapq's order); equal items come out in the order
// they were put (asyncio's heap does not promise this).
//
// Resumption: waiting getters and putters wait in FIFO order. A put wakes the oldest
// getter, a get the oldest putter, task_done() (the last one) every join(); the
// woken task is appended to the ready queue (rule 4), never resumed inside the call.
// As in asyncio, the woken task looks at the queue again when its turn comes: if
// another task took the item (or the free slot) meanwhile, it waits again at the
// back of the line. Awaiting a queue that has what it needs does not suspend.
//
// Cancellation: a waiting task that is cancelled leaves the line and gets
// aio::cancelled_error; nothing is taken or stored. One already woken, cancelled
// before its turn, gets aio::cancelled_error and wakes the next waiter in its
// place: no item and no free slot is lost. An item given to put() that is cancelled
// is destroyed with the awaiter, not stored.
//
// Lifetime and threads: a queue belongs to the loop its tasks run on (one thread).
// Waiting allocates nothing: each waiter lives in its awaiter. The queue must
// outlive the tasks waiting on it; one destroyed under them lets them go (they stay
// suspended until cancelled; one already woken gets aio::runtime_error). Items are
// moved, never copied: move-only types such as std::unique_ptr work (see the
// README for a g++ 12 bug with braced temporaries inside co_await).

#include <cstddef>
#include <functional>
#include <utility>

#include "detail/queue.hpp"
#include "errors.hpp"
#include "queue_errors.hpp"

namespace aio {

// The tag of shutdown(aio::immediate): asyncio's shutdown(immediate=True).
struct immediate_t {
    explicit immediate_t() = default;
};
inline constexpr immediate_t immediate{};

// The members of queue, lifo_queue and priority_queue, which differ only in the order
// items come out in (`Storage`).
template <class T, class Storage>
class basic_queue : private detail::queue_core {
public:
    using value_type = T;

    // maxsize 0 (the default): unbounded.
    explicit basic_queue(std::size_t maxsize = 0) noexcept : queue_core(maxsize) {}

    // co_await put(item): stores the item; waits while full().
    detail::put_awaiter<basic_queue> put(T item) { return detail::put_awaiter<basic_queue>(*this, std::move(item)); }
    // co_await get() -> T: removes the next item (moved out); waits while empty().
    detail::get_awaiter<basic_queue> get() noexcept { return detail::get_awaiter<basic_queue>(*this); }
    // co_await join(): returns once every item put has been marked task_done().
    detail::join_awaiter<basic_queue> join() noexcept { return detail::join_awaiter<basic_queue>(*this); }

    // Stores the item, or throws aio::queue_full (aio::queue_shutdown once shut down).
    void put_nowait(T item) {
        check_thread("aio queue put_nowait()");
        check_put();
        storage_.push(std::move(item));
        item_added();
    }
    // Removes the next item, or throws aio::queue_empty (aio::queue_shutdown once shut
    // down and empty).
    T get_nowait() {
        check_thread("aio queue get_nowait()");
        check_get();
        T item = storage_.pop();
        item_removed();
        return item;
    }

    // One item got has been handled; more calls than items put throw
    // aio::invalid_state_error (asyncio's ValueError).
    using queue_core::task_done;

    // Puts now throw aio::queue_shutdown; gets do too once the queue is empty — at
    // once if `immediate`, which drops the items left (counting each as done, which
    // may end join()). Every waiting put() and get() wakes to look again.
    void shutdown(bool immediate = false) {
        check_thread("aio queue shutdown()");
        std::size_t drained = 0;
        if (immediate) {
            drained = storage_.items.size();
            storage_.items.clear();
        }
        shut_down(drained);
    }
    // shutdown(aio::immediate): reads better than shutdown(true).
    void shutdown(immediate_t) { shutdown(true); }

    using queue_core::empty;    // no item
    using queue_core::full;     // maxsize() items (never, if unbounded)
    using queue_core::maxsize;
    using queue_core::qsize;    // how many items

private:
    friend class detail::get_awaiter<basic_queue>;
    friend class detail::put_awaiter<basic_queue>;
    friend class detail::join_awaiter<basic_queue>;

    Storage storage_;
};


// First in, first out (asyncio.Queue).
template <class T>
class queue : public basic_queue<T, detail::fifo_storage<T>> {
public:
    using basic_queue<T, detail::fifo_storage<T>>::basic_queue;
};

// Last in, first out (asyncio.LifoQueue).
template <class T>
class lifo_queue : public basic_queue<T, detail::lifo_storage<T>> {
public:
    using basic_queue<T, detail::lifo_storage<T>>::basic_queue;
};

// Smallest first by Compare, ties in put order (asyncio.PriorityQueue). Typically
// holds std::pair<priority, data>.
template <class T, class Compare = std::less<T>>
class priority_queue : public basic_queue<T, detail::heap_storage<T, Compare>> {
public:
    using basic_queue<T, detail::heap_storage<T, Compare>>::basic_queue;
};

}  // namespace aio
