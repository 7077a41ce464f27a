#pragma once
// The loop's inbox: how other threads hand work to a loop (call_soon_threadsafe and
// the executor's results are built on it).
//
// Any thread posts a node; the loop thread drains the inbox right after each poll,
// appending the nodes to its ready queue in the order each posting thread posted
// them, so they run in that same iteration (asyncio's call_soon_threadsafe appends to
// the ready queue before the iteration takes its snapshot of it).
//
// The inbox is a lock-free stack (a compare-and-swap per post); draining takes it
// whole with one exchange and reverses it. The loop reads the stack's head once per
// iteration — a plain load, no read-modify-write — and touches nothing else while no
// other thread posts.
//
// Waking is coalesced: a poster wakes the loop (one write to the poller's eventfd)
// only when the loop said it is about to sleep and no other poster has woken it since.
// A thousand posts while the loop is busy cost no write at all. The protocol is
// Dekker's: the loop publishes `sleeping` and then checks the stack; a poster
// publishes its node and then checks `sleeping` (both sequentially consistent), so at
// least one of them sees the other and no post is left sleeping.
//
// Closing is one exchange too: close() swaps the stack for a marker that every later
// post sees in its compare-and-swap, so a node is either taken by close() (which
// discards it) or refused (its poster keeps it): none is left behind in a closed inbox.

#include <atomic>
#include <cstddef>

#include "ready_queue.hpp"

namespace aio::detail {

struct inbox_node : ready_item {
    inbox_node* next_posted = nullptr;
};

class inbox {
public:
    inbox() noexcept = default;
    inbox(const inbox&) = delete;
    inbox& operator=(const inbox&) = delete;

    enum class posted { queued, queued_wake, refused };

    // Any thread. queued_wake: the caller must wake the loop (it may be asleep);
    // refused: the inbox is closed and the node is still the caller's.
    posted post(inbox_node* node) noexcept {
        inbox_node* head = head_.load(std::memory_order_relaxed);
        do {
            if (head == closed_marker()) [[unlikely]]
                return posted::refused;
            node->next_posted = head;
        } while (!head_.compare_exchange_weak(head, node, std::memory_order_seq_cst, std::memory_order_relaxed));
        const bool wake = sleeping_.load(std::memory_order_seq_cst) && sleeping_.exchange(false, std::memory_order_acq_rel);
        return wake ? posted::queued_wake : posted::queued;
    }

    // Any thread: whether close() has run.
    bool closed() const noexcept { return head_.load(std::memory_order_acquire) == closed_marker(); }

    // --- the loop thread

    // A plain load: whether drain() has anything to take.
    bool empty() const noexcept { return head_.load(std::memory_order_relaxed) == nullptr && !kept_; }

    // Before blocking: false when something was posted meanwhile (then do not block).
    bool prepare_to_sleep() noexcept {
        if (kept_) return false;
        sleeping_.store(true, std::memory_order_seq_cst);
        if (head_.load(std::memory_order_seq_cst) == nullptr) return true;
        sleeping_.store(false, std::memory_order_relaxed);
        return false;
    }
    // After blocking (woken or not).
    void woke() noexcept { sleeping_.store(false, std::memory_order_relaxed); }

    // Hands every posted node to `sink` (noexcept), oldest first per posting thread,
    // after `reserve(n)` has made room for all n of them. If reserve throws, the nodes
    // are kept, in order, for the next drain.
    template <class Reserve, class Sink>
    void drain(Reserve&& reserve, Sink&& sink) {
        if (head_.load(std::memory_order_relaxed) == closed_marker()) return;
        take(head_.exchange(nullptr, std::memory_order_acquire), reserve, sink);
    }

    // Refuses every later post and hands what was posted (and kept) to `discard`,
    // oldest first. Idempotent.
    template <class Discard>
    void close(Discard&& discard) noexcept {
        inbox_node* stack = head_.exchange(closed_marker(), std::memory_order_acq_rel);
        if (stack == closed_marker()) return;
        take(stack, [](std::size_t) noexcept {}, discard);
    }

private:
    static inbox_node* closed_marker() noexcept { return reinterpret_cast<inbox_node*>(alignof(inbox_node)); }

    template <class Reserve, class Sink>
    void take(inbox_node* stack, Reserve&& reserve, Sink&& sink) {
        inbox_node* fifo = nullptr;
        std::size_t n = kept_count_;
        while (stack) {  // reverse: the stack holds the newest first
            inbox_node* next = stack->next_posted;
            stack->next_posted = fifo;
            fifo = stack;
            stack = next;
            ++n;
        }
        if (kept_) {  // older than anything just taken
            kept_tail_->next_posted = fifo;
            fifo = kept_;
        }
        if (!fifo) return;
        try {
            reserve(n);
        } catch (...) {
            kept_ = fifo;
            kept_count_ = n;
            for (kept_tail_ = fifo; kept_tail_->next_posted;) kept_tail_ = kept_tail_->next_posted;
            throw;
        }
        kept_ = kept_tail_ = nullptr;
        kept_count_ = 0;
        while (fifo) {
            inbox_node* next = fifo->next_posted;
            fifo->next_posted = nullptr;
            sink(fifo);
            fifo = next;
        }
    }

    std::atomic<inbox_node*> head_{nullptr};
    std::atomic<bool> sleeping_{false};
    // Nodes drained when the ready queue could not grow: the loop thread's alone.
    inbox_node* kept_ = nullptr;
    inbox_node* kept_tail_ = nullptr;
    std::size_t kept_count_ = 0;
};

}  // namespace aio::detail
