#pragma once
// The loop's timers: a min-heap ordered by (deadline, arming order).
//
// The heap holds the deadlines by value, so sifting compares without touching the
// timers themselves; each timer records its heap position so that cancelling it
// removes it at once (cancelled timers never pile up in the heap).

#include <cstddef>
#include <cstdint>
#include <new>

namespace aio::detail {

// Embedded at offset 0 of every timer (a sleep's node, a call_later callback).
struct timer_node {
    static constexpr std::uint32_t idle = ~std::uint32_t{0};
    std::uint32_t heap_index = idle;  // a position in the heap, or a state above the heap's range
    std::uint32_t seq = 0;            // arming order, for ties
};

// `NodeOf` maps an entry's tagged word to the timer_node that records its position.
//
// Layout: an 8-ary heap whose deadlines sit in an array of their own, the root at
// index 7 of a 64-byte aligned block, so that the eight children of any entry share
// one cache line and a pop touches one line of deadlines per level (five levels at
// 100,000 timers). The tagged words live in a parallel array, read only on a move.
template <class NodeOf>
class basic_timer_heap {
public:
    // `tagged` says which timer this is; pop() returns it as it was pushed.
    struct entry {
        std::int64_t deadline;
        std::uintptr_t tagged;
    };

    basic_timer_heap() = default;
    basic_timer_heap(const basic_timer_heap&) = delete;
    basic_timer_heap& operator=(const basic_timer_heap&) = delete;
    ~basic_timer_heap() { release(); }

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }
    std::int64_t top_deadline() const noexcept { return deadlines_[offset]; }

    void push(std::int64_t deadline, std::uintptr_t tagged) {
        if (size_ == capacity_) grow();
        node_of(tagged)->seq = next_seq_++;
        sift_up(size_++, {deadline, tagged});
    }

    // Removes the earliest timer; its node is left idle.
    entry pop() noexcept {
        entry top = get(0);
        node_of(top.tagged)->heap_index = timer_node::idle;
        if (--size_ > 0) sift_down(0, get(size_));
        return top;
    }

    void remove(timer_node* node) noexcept {
        std::size_t i = node->heap_index;
        node->heap_index = timer_node::idle;
        if (i == --size_) return;
        entry last = get(size_);
        if (i > 0 && before(last, get((i - 1) / arity))) sift_up(i, last);
        else sift_down(i, last);
    }

    template <class F>
    void clear(F&& on_entry) noexcept {
        for (std::size_t i = 0; i < size_; ++i) {
            entry e = get(i);
            node_of(e.tagged)->heap_index = timer_node::idle;
            on_entry(e);
        }
        size_ = 0;
    }

private:
    static constexpr std::size_t arity = 8;
    static constexpr std::size_t offset = arity - 1;  // children of i: 8i+1..8i+8, at 8(i+1)..8(i+1)+7
    static constexpr std::size_t line = 64;

    static timer_node* node_of(std::uintptr_t tagged) noexcept { return NodeOf{}(tagged); }

    entry get(std::size_t i) const noexcept { return {deadlines_[i + offset], tagged_[i + offset]}; }

    void place(std::size_t i, const entry& e) noexcept {
        deadlines_[i + offset] = e.deadline;
        tagged_[i + offset] = e.tagged;
        node_of(e.tagged)->heap_index = static_cast<std::uint32_t>(i);
    }

    // Arming order breaks ties; the sequence numbers wrap, so compare their distance.
    static bool before(const entry& a, const entry& b) noexcept {
        if (a.deadline != b.deadline) return a.deadline < b.deadline;
        return static_cast<std::int32_t>(node_of(a.tagged)->seq - node_of(b.tagged)->seq) < 0;
    }

    void sift_up(std::size_t i, entry e) noexcept {
        while (i > 0) {
            std::size_t parent = (i - 1) / arity;
            if (!before(e, get(parent))) break;
            place(i, get(parent));
            i = parent;
        }
        place(i, e);
    }

    void sift_down(std::size_t i, entry e) noexcept {
        for (;;) {
            std::size_t first = i * arity + 1;
            if (first >= size_) break;
            std::size_t end = first + arity < size_ ? first + arity : size_;
            // The next level is a cache miss away at this size: fetch the
            // grandchildren's lines while comparing the children.
            for (std::size_t c = first; c < end && c * arity + 1 < size_; ++c)
                __builtin_prefetch(&deadlines_[c * arity + 1 + offset]);
            // The smallest child, without branching on the (unpredictable) order of the
            // deadlines; equal deadlines are rare and fall back to arming order.
            std::size_t best = first;
            std::int64_t best_deadline = deadlines_[first + offset];
            for (std::size_t c = first + 1; c < end; ++c) {
                const std::int64_t d = deadlines_[c + offset];
                bool smaller = d < best_deadline;
                if (d == best_deadline) [[unlikely]]
                    smaller = before(get(c), get(best));
                best = smaller ? c : best;
                best_deadline = smaller ? d : best_deadline;
            }
            entry child = get(best);
            if (!before(child, e)) break;
            place(i, child);
            i = best;
        }
        place(i, e);
    }

    void grow() {
        std::size_t capacity = capacity_ ? capacity_ * 2 : 64;
        auto* deadlines = allocate<std::int64_t>(capacity + offset);
        std::uintptr_t* tagged;
        try {
            tagged = allocate<std::uintptr_t>(capacity + offset);
        } catch (...) {
            ::operator delete(deadlines, std::align_val_t{line});
            throw;
        }
        for (std::size_t i = offset; i < size_ + offset; ++i) {
            deadlines[i] = deadlines_[i];
            tagged[i] = tagged_[i];
        }
        release();
        deadlines_ = deadlines;
        tagged_ = tagged;
        capacity_ = capacity;
    }

    template <class T>
    static T* allocate(std::size_t n) {
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{line}));
    }
    void release() noexcept {
        ::operator delete(deadlines_, std::align_val_t{line});
        ::operator delete(tagged_, std::align_val_t{line});
    }

    std::int64_t* deadlines_ = nullptr;
    std::uintptr_t* tagged_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
    std::uint32_t next_seq_ = 0;
};

}  // namespace aio::detail
