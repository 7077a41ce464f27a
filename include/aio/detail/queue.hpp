#pragma once
// The machinery behind aio::queue, aio::lifo_queue and aio::priority_queue (see
// queue.hpp for the contract), after asyncio's queues.py (Python 3.13).
//
// asyncio parks each waiting getter or putter on a future in a deque. Here the
// future is a queue_item_waiter living in the awaiter, linked into one of the queue's
// intrusive FIFO lists: waiting allocates nothing, and a waiter that goes away
// unlinks itself.
//
// Waking follows asyncio exactly. A put wakes the oldest getter (a get the oldest
// putter) by queueing the waiter's ready_item where asyncio queues the task's
// wake-up (rule 4). When that item's turn comes, the queue is looked at again, as the
// woken coroutine does in asyncio's `while self.empty():` loop: if another task took
// the item meanwhile, the waiter goes to the back of the line and the task stays
// suspended; otherwise the task's step runs right there. A woken waiter whose task
// is cancelled before its turn passes the wake-up on to the next waiter, so no item
// (or free slot) is lost.

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../queue_errors.hpp"
#include "intrusive_list.hpp"
#include "loop_core.hpp"
#include "ready_queue.hpp"
#include "suspension.hpp"
#include "task_state.hpp"
#include "thread_check.hpp"

namespace aio::detail {

class queue_core;
class queue_item_waiter;

enum class waiter_kind : std::uint8_t { getter, putter, joiner };

struct queue_item_waiter_line;

// A task suspended on a queue: asyncio's getter or putter future, or join()'s wait
// on the queue's `_finished` event.
//
//   idle --(suspends)--> waiting --(put, get, task_done, shutdown)--> woken
//   woken --(its turn)--> the task resumes (idle again), or, if the item or slot was
//                         taken meanwhile, waiting again at the back of the line
//   waiting --(cancel)--> cancelled: the task is scheduled to get cancelled_error
//   woken --(cancel)--> stays woken; at its turn the task resumes, wakes the next
//                       waiter in its place and gets cancelled_error
class queue_item_waiter : cancel_hook, ready_item {
public:
    enum class state : std::uint8_t { idle, waiting, woken, cancelled };

    queue_item_waiter(queue_core& q, waiter_kind kind) noexcept : queue_(&q), kind_(kind) {}
    queue_item_waiter(const queue_item_waiter&) = delete;
    queue_item_waiter& operator=(const queue_item_waiter&) = delete;
    inline ~queue_item_waiter();

protected:
    // await_suspend: the running task waits at the back of the line.
    inline void wait(std::coroutine_handle<> h, const char* what);
    // await_resume: throws cancelled_error if the task was cancelled while it waited;
    // a woken waiter cancelled before its turn first wakes the next one in its place.
    void end_wait() {
        if (state_ != state::idle) [[unlikely]]
            end_suspended_wait();  // it did suspend: see how it was woken
    }

    queue_core* queue_;  // null once the queue is destroyed

private:
    friend class queue_core;
    friend struct queue_item_waiter_line;

    inline void end_suspended_wait();
    static bool on_cancel(cancel_hook* hook) noexcept;
    static void on_turn(ready_item* item) noexcept;

    list_links<queue_item_waiter> links_;
    queue_item_waiter_line* list_ = nullptr;  // the list it is linked into, if any
    task_state* task_ = nullptr;
    loop_core* loop_ = nullptr;
    waiter_kind kind_;
    state state_ = state::idle;
};

// A FIFO line of waiters, the oldest first, that each waiter knows it is in.
struct queue_item_waiter_line {
    intrusive_list<queue_item_waiter, &queue_item_waiter::links_> line;

    queue_item_waiter* head() const noexcept { return line.front(); }
    void push_back(queue_item_waiter* w) noexcept {
        w->list_ = this;
        line.push_back(w);
    }
    void remove(queue_item_waiter* w) noexcept {
        line.unlink(w);
        w->list_ = nullptr;
    }
};

inline queue_item_waiter::~queue_item_waiter() {
    // The frame of a suspended task is destroyed (its loop closes): leave nothing
    // behind that points here.
    if (list_) list_->remove(this);
    if (loop_) loop_->withdraw(this);
}

// What every queue shares whatever its item type: sizes, counts, the waiter lists.
class queue_core {
public:
    explicit queue_core(std::size_t maxsize) noexcept : maxsize_(maxsize) {}
    queue_core(const queue_core&) = delete;
    queue_core& operator=(const queue_core&) = delete;
    // A queue destroyed while tasks wait on it lets go of them: they stay suspended
    // (until cancelled, or until their loop closes), and one already woken gets
    // aio::runtime_error when it resumes.
    ~queue_core() {
        for (queue_item_waiter_line* l : {&getters_, &putters_, &joiners_, &woken_})
            while (queue_item_waiter* w = l->head()) {
                l->remove(w);
                w->queue_ = nullptr;
            }
    }

    std::size_t qsize() const noexcept { return size_; }
    std::size_t maxsize() const noexcept { return maxsize_; }
    bool empty() const noexcept { return size_ == 0; }
    bool full() const noexcept { return maxsize_ > 0 && size_ >= maxsize_; }

    void task_done() {
        check_thread("aio queue task_done()");
        if (unfinished_ == 0) throw invalid_state_error("aio queue: task_done() called too many times");
        if (--unfinished_ == 0) wake_all(joiners_);
    }

    // Thread ownership (thread_check.hpp): the loop of the waiting tasks, if any, must
    // not be running on another thread.
    void check_thread(const char* what) const {
        for (const queue_item_waiter_line* l : {&getters_, &putters_, &joiners_, &woken_})
            if (queue_item_waiter* w = l->head()) check_loop_thread(w->loop_, what);
    }

protected:
    bool is_shut_down() const noexcept { return shut_down_; }
    std::size_t unfinished_tasks() const noexcept { return unfinished_; }

    void check_put() const {
        if (shut_down_) throw queue_shutdown();
        if (full()) throw queue_full();
    }
    void item_added() {
        ++size_;
        ++unfinished_;
        wake_next(getters_);
    }
    void check_get() const {
        if (size_ == 0) {
            if (shut_down_) throw queue_shutdown();
            throw queue_empty();
        }
    }
    void item_removed() {
        --size_;
        wake_next(putters_);
    }
    // After the storage has dropped `drained` items (shutdown(immediate=true)).
    void shut_down(std::size_t drained) {
        shut_down_ = true;
        if (drained > 0) {
            size_ -= drained;
            unfinished_ -= std::min(unfinished_, drained);
            if (unfinished_ == 0) wake_all(joiners_);
        }
        // Every waiting getter and putter looks at the queue again and raises
        // queue_shutdown (a getter still gets the items left, unless immediate).
        wake_all(getters_);
        wake_all(putters_);
    }

private:
    friend class queue_item_waiter;

    queue_item_waiter_line& list_of(waiter_kind kind) noexcept {
        return kind == waiter_kind::getter ? getters_ : kind == waiter_kind::putter ? putters_ : joiners_;
    }

    // What the woken waiter's coroutine would find at its turn: still nothing to do.
    bool must_wait_again(waiter_kind kind) const noexcept {
        if (shut_down_) return false;
        if (kind == waiter_kind::getter) return size_ == 0;
        if (kind == waiter_kind::putter) return full();
        return false;  // join() returns once woken, as asyncio's Event.wait() does
    }

    // asyncio's _wakeup_next: the oldest waiter's task resumes at its turn (rule 4).
    void wake(queue_item_waiter* w) {
        w->list_->remove(w);
        woken_.push_back(w);
        w->state_ = queue_item_waiter::state::woken;
        w->loop_->push(w);
    }
    void wake_next(queue_item_waiter_line& l) {
        if (queue_item_waiter* w = l.head()) wake(w);
    }
    void wake_all(queue_item_waiter_line& l) {
        while (queue_item_waiter* w = l.head()) wake(w);
    }

    // A woken waiter whose task was cancelled before its turn: the one behind it gets
    // the item or the free slot it leaves (asyncio's put() and get() `except:` path).
    void pass_turn_on(waiter_kind kind) {
        if (kind == waiter_kind::getter && size_ > 0) wake_next(getters_);
        if (kind == waiter_kind::putter && !full()) wake_next(putters_);
    }

    queue_item_waiter_line getters_;
    queue_item_waiter_line putters_;
    queue_item_waiter_line joiners_;
    queue_item_waiter_line woken_;  // woken, their turn not come yet
    std::size_t maxsize_;
    std::size_t size_ = 0;
    std::size_t unfinished_ = 0;  // items put and not yet marked task_done()
    bool shut_down_ = false;
};

inline void queue_item_waiter::wait(std::coroutine_handle<> h, const char* what) {
    task_state& self = suspending_task(what);
    task_ = &self;
    loop_ = core_of(self.loop());
    cancel = on_cancel;
    run = on_turn;
    queue_->list_of(kind_).push_back(this);
    state_ = state::waiting;
    detail::suspend(self, h, *this);
}

inline void queue_item_waiter::end_suspended_wait() {
    const state s = std::exchange(state_, state::idle);
    if (s == state::woken && cancel_pending(task_)) {
        if (queue_) queue_->pass_turn_on(kind_);  // our turn goes to the next in line
    }
    resumed(task_, s == state::cancelled);
    if (s != state::idle && !queue_)
        throw aio::runtime_error("an aio queue was destroyed while a task waited on it");
}

// Waiting: unlink and wake the task to get cancelled_error. Once woken it is too
// late: cancel() marks the task, and end_wait() delivers the error.
inline bool queue_item_waiter::on_cancel(cancel_hook* hook) noexcept {
    auto& w = static_cast<queue_item_waiter&>(*hook);
    if (w.state_ != state::waiting) return false;
    if (w.list_) w.list_->remove(&w);
    w.state_ = state::cancelled;
    w.loop_->schedule(*w.task_);
    return true;
}

// The woken waiter's turn in the ready queue: asyncio's woken coroutine re-checks
// the queue in its `while` loop. If another task took the item (or the free slot)
// meanwhile, wait again at the back of the line; otherwise resume the task now.
inline void queue_item_waiter::on_turn(ready_item* item) noexcept {
    auto& w = static_cast<queue_item_waiter&>(*item);
    if (w.list_) w.list_->remove(&w);
    if (w.queue_ && !cancel_pending(w.task_) && w.queue_->must_wait_again(w.kind_)) {
        w.queue_->list_of(w.kind_).push_back(&w);
        w.state_ = state::waiting;
        return;
    }
    w.loop_->run_step(*w.task_);
}

// --- the awaiters returned by get(), put() and join()

// co_await q.get(): an item at once if there is one; otherwise waits for a put.
template <class Queue>
class [[nodiscard]] get_awaiter : queue_item_waiter {
public:
    explicit get_awaiter(Queue& q) noexcept : queue_item_waiter(q, waiter_kind::getter), q_(q) {}

    // asyncio's get() does not suspend while the queue has items, or once it is shut
    // down and empty (it raises at once).
    bool await_ready() const noexcept { return !q_.empty() || q_.is_shut_down(); }
    void await_suspend(std::coroutine_handle<> h) { wait(h, "aio queue get()"); }
    typename Queue::value_type await_resume() {
        end_wait();
        return q_.get_nowait();
    }

private:
    Queue& q_;
};

// co_await q.put(x): stores x at once if there is room; otherwise waits for a get.
template <class Queue>
class [[nodiscard]] put_awaiter : queue_item_waiter {
public:
    put_awaiter(Queue& q, typename Queue::value_type item)
        : queue_item_waiter(q, waiter_kind::putter), q_(q), item_(std::move(item)) {}

    bool await_ready() const noexcept { return !q_.full() || q_.is_shut_down(); }
    void await_suspend(std::coroutine_handle<> h) { wait(h, "aio queue put()"); }
    void await_resume() {
        end_wait();
        q_.put_nowait(std::move(item_));
    }

private:
    Queue& q_;
    typename Queue::value_type item_;
};

// co_await q.join(): returns once every item put has been marked task_done().
template <class Queue>
class [[nodiscard]] join_awaiter : queue_item_waiter {
public:
    explicit join_awaiter(Queue& q) noexcept : queue_item_waiter(q, waiter_kind::joiner), q_(q) {}

    bool await_ready() const noexcept { return q_.unfinished_tasks() == 0; }
    void await_suspend(std::coroutine_handle<> h) { wait(h, "aio queue join()"); }
    void await_resume() { end_wait(); }

private:
    Queue& q_;
};

// --- storage: the order items come out in

template <class T>
struct fifo_storage {
    std::deque<T> items;
    void push(T&& item) { items.push_back(std::move(item)); }
    T pop() {
        T item = std::move(items.front());
        items.pop_front();
        return item;
    }
};

template <class T>
struct lifo_storage {
    std::vector<T> items;
    void push(T&& item) { items.push_back(std::move(item)); }
    T pop() {
        T item = std::move(items.back());
        items.pop_back();
        return item;
    }
};

// A binary heap, smallest first (heapq's order). Each item carries the number of its
// put, so that equal items come out in the order they were put: stable, for one
// extra word per item.
template <class T, class Compare>
struct heap_storage {
    struct entry {
        T value;
        std::uint64_t seq;
    };
    // std::push_heap keeps the greatest element by this order at the front: the one
    // that no other entry should come before.
    struct comes_after {
        Compare less;
        bool operator()(const entry& a, const entry& b) const {
            if (less(b.value, a.value)) return true;
            if (less(a.value, b.value)) return false;
            return a.seq > b.seq;
        }
    };
    std::vector<entry> items;
    comes_after order{};
    std::uint64_t next_seq = 0;

    void push(T&& item) {
        items.push_back(entry{std::move(item), next_seq});
        ++next_seq;
        std::push_heap(items.begin(), items.end(), order);
    }
    T pop() {
        std::pop_heap(items.begin(), items.end(), order);
        T item = std::move(items.back().value);
        items.pop_back();
        return item;
    }
};

}  // namespace aio::detail
