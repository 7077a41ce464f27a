#pragma once
// The loop's timers: a 4-ary min-heap ordered by (deadline, arming order).
//
// Entries hold the deadline by value, so sifting compares without touching the
// timers themselves; each timer records its heap position so that cancelling it
// removes it at once (cancelled timers never pile up in the heap).

#include <cstdint>
#include <vector>

namespace aio::detail {

// Embedded at offset 0 of every timer (a sleep's node, a call_later callback).
struct timer_node {
    static constexpr std::uint32_t idle = ~std::uint32_t{0};
    std::uint32_t heap_index = idle;  // a position in the heap, or a state above the heap's range
    std::uint32_t seq = 0;            // arming order, for ties
};

// `NodeOf` maps an entry's tagged word to the timer_node that records its position.
template <class NodeOf>
class basic_timer_heap {
public:
    // `tagged` says which timer this is; pop() returns it as it was pushed.
    struct entry {
        std::int64_t deadline;
        std::uintptr_t tagged;
    };

    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }
    std::int64_t top_deadline() const noexcept { return heap_.front().deadline; }

    void push(std::int64_t deadline, std::uintptr_t tagged) {
        timer_node* node = node_of(tagged);
        node->seq = next_seq_++;
        heap_.push_back({deadline, tagged});
        sift_up(heap_.size() - 1);
    }

    // Removes the earliest timer; its node is left idle.
    entry pop() noexcept {
        entry top = heap_.front();
        node_of(top.tagged)->heap_index = timer_node::idle;
        entry last = heap_.back();
        heap_.pop_back();
        if (!heap_.empty()) {
            heap_.front() = last;
            sift_down(0);
        }
        return top;
    }

    void remove(timer_node* node) noexcept {
        std::size_t i = node->heap_index;
        node->heap_index = timer_node::idle;
        entry last = heap_.back();
        heap_.pop_back();
        if (i == heap_.size()) return;
        heap_[i] = last;
        if (i > 0 && before(heap_[i], heap_[(i - 1) / arity])) sift_up(i);
        else sift_down(i);
    }

    template <class F>
    void clear(F&& on_entry) noexcept {
        for (entry& e : heap_) {
            node_of(e.tagged)->heap_index = timer_node::idle;
            on_entry(e);
        }
        heap_.clear();
    }

private:
    static timer_node* node_of(std::uintptr_t tagged) noexcept { return NodeOf{}(tagged); }

    static constexpr std::size_t arity = 4;

    // Arming order breaks ties; the sequence numbers wrap, so compare their distance.
    static bool before(const entry& a, const entry& b) noexcept {
        if (a.deadline != b.deadline) return a.deadline < b.deadline;
        return static_cast<std::int32_t>(node_of(a.tagged)->seq - node_of(b.tagged)->seq) < 0;
    }

    void place(std::size_t i, const entry& e) noexcept {
        heap_[i] = e;
        node_of(e.tagged)->heap_index = static_cast<std::uint32_t>(i);
    }

    void sift_up(std::size_t i) noexcept {
        entry e = heap_[i];
        while (i > 0) {
            std::size_t parent = (i - 1) / arity;
            if (!before(e, heap_[parent])) break;
            place(i, heap_[parent]);
            i = parent;
        }
        place(i, e);
    }

    void sift_down(std::size_t i) noexcept {
        entry e = heap_[i];
        const std::size_t n = heap_.size();
        for (;;) {
            std::size_t first = i * arity + 1;
            if (first >= n) break;
            std::size_t best = first;
            std::size_t end = first + arity < n ? first + arity : n;
            for (std::size_t c = first + 1; c < end; ++c)
                if (before(heap_[c], heap_[best])) best = c;
            if (!before(heap_[best], e)) break;
            place(i, heap_[best]);
            i = best;
        }
        place(i, e);
    }

    std::vector<entry> heap_;
    std::uint32_t next_seq_ = 0;
};

}  // namespace aio::detail
