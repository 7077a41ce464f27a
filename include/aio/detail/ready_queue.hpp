#pragma once
// The loop's FIFO of work to run: a growable ring of tagged words.

#include <cstddef>
#include <cstdint>
#include <memory>

namespace aio::detail {

// An entry is a pointer whose two low bits say what it points to.
enum : std::uintptr_t {
    tag_item = 0,   // a ready_item: call item->run(item)
    tag_task = 1,   // a task_state: run the task's next step
    tag_sleep = 2,  // a task_state whose sleep timer fired: wake the task
    tag_mask = 3,
};

inline constexpr std::uint64_t not_queued = ~std::uint64_t{0};

// A callback-like unit of work. It records where it sits in the queue so that its
// owner can withdraw it (a frame that dies while its item is queued must not leave a
// dangling entry behind).
struct ready_item {
    void (*run)(ready_item*) noexcept = nullptr;      // takes the item out of the queue's hands
    void (*discard)(ready_item*) noexcept = nullptr;  // the loop closed before it ran (may be null)
    std::uint64_t queued_at = not_queued;
};

template <class T>
std::uintptr_t entry_of(T* p, std::uintptr_t tag) noexcept {
    return reinterpret_cast<std::uintptr_t>(p) | tag;
}
template <class T>
T* pointer_of(std::uintptr_t entry) noexcept {
    return reinterpret_cast<T*>(entry & ~tag_mask);
}

// Positions are absolute (they only grow), so a position handed out stays valid until
// the entry is popped, even across a resize.
class ready_queue {
public:
    bool empty() const noexcept { return head_ == tail_; }
    std::size_t size() const noexcept { return static_cast<std::size_t>(tail_ - head_); }

    // Inlined wherever a task is woken (GCC stops inlining it once it has enough
    // callers, which costs a call on every wake-up); growing stays out of line.
    [[gnu::always_inline]] std::uint64_t push(std::uintptr_t entry) {
        if (tail_ - head_ == capacity_) [[unlikely]]
            grow(capacity_ + 1);
        slots_[tail_ & (capacity_ - 1)] = entry;
        return tail_++;
    }

    // Room for `n` more entries: pushing them will not throw.
    void reserve(std::size_t n) {
        if (capacity_ - size() < n) grow(size() + n);
    }

    std::uintptr_t front() const noexcept { return slots_[head_ & (capacity_ - 1)]; }
    // The entry `k` places behind the front (k < size()).
    std::uintptr_t peek(std::size_t k) const noexcept { return slots_[(head_ + k) & (capacity_ - 1)]; }

    // Pops the oldest entry; 0 means the entry was withdrawn.
    std::uintptr_t pop() noexcept { return slots_[head_++ & (capacity_ - 1)]; }

    // Blanks the entry at `position` if it is still queued there.
    void withdraw(std::uint64_t position, std::uintptr_t entry) noexcept {
        if (position >= head_ && position < tail_ && slots_[position & (capacity_ - 1)] == entry)
            slots_[position & (capacity_ - 1)] = 0;
    }

    // Puts `replacement` in the place of the entry at `position`, if it is still
    // queued there; false if not.
    bool replace(std::uint64_t position, std::uintptr_t entry, std::uintptr_t replacement) noexcept {
        if (position < head_ || position >= tail_ || slots_[position & (capacity_ - 1)] != entry) return false;
        slots_[position & (capacity_ - 1)] = replacement;
        return true;
    }

private:
    [[gnu::noinline]] void grow(std::size_t at_least) {
        std::size_t capacity = capacity_ ? capacity_ * 2 : 64;
        while (capacity < at_least) capacity *= 2;
        auto slots = std::make_unique_for_overwrite<std::uintptr_t[]>(capacity);
        for (std::uint64_t i = head_; i != tail_; ++i) slots[i & (capacity - 1)] = slots_[i & (capacity_ - 1)];
        slots_ = std::move(slots);
        capacity_ = capacity;
    }

    std::unique_ptr<std::uintptr_t[]> slots_;
    std::size_t capacity_ = 0;
    std::uint64_t head_ = 0;
    std::uint64_t tail_ = 0;
};

}  // namespace aio::detail
