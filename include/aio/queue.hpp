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
// Members (all three queues):
//   co_await put(T item)     stores the item; waits while full()
//   co_await get() -> T      removes the next item (moved out); waits while empty()
//   put_nowait(T item)       stores it or throws aio::queue_full
//   get_nowait() -> T        removes one or throws aio::queue_empty
//   qsize(), empty(), full(), maxsize()
//   task_done()              one item handled; more calls than items put throw
//                            aio::invalid_state_error (asyncio's ValueError: the
//                            queue's count does not allow it)
//   co_await join()          returns once every item put has been marked task_done()
//   shutdown(immediate = false), shutdown(aio::immediate)
//                            puts now throw aio::queue_shutdown; gets do too once the
//                            queue is empty — at once if `immediate`, which drops the
//                            items left (counting each as done, which may end join()).
//                            Every waiting put() and get() wakes to look again.
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
// moved, never copied: move-only types such as std::unique_ptr work. (g++ 12
// miscompiles a braced aggregate temporary inside co_await, as in
// `co_await q.put(job{name, 3})`: build the item in a named variable first.)

#include <cstddef>
#include <functional>

#include "detail/queue.hpp"
#include "errors.hpp"
#include "queue_errors.hpp"

namespace aio {

// First in, first out (asyncio.Queue).
template <class T>
class queue : public detail::basic_queue<T, detail::fifo_storage<T>> {
public:
    using detail::basic_queue<T, detail::fifo_storage<T>>::basic_queue;
};

// Last in, first out (asyncio.LifoQueue).
template <class T>
class lifo_queue : public detail::basic_queue<T, detail::lifo_storage<T>> {
public:
    using detail::basic_queue<T, detail::lifo_storage<T>>::basic_queue;
};

// Smallest first by Compare, ties in put order (asyncio.PriorityQueue). Typically
// holds std::pair<priority, data>.
template <class T, class Compare = std::less<T>>
class priority_queue : public detail::basic_queue<T, detail::heap_storage<T, Compare>> {
public:
    using detail::basic_queue<T, detail::heap_storage<T, Compare>>::basic_queue;
};

}  // namespace aio
