#pragma once
// The RAII guard that lock::scoped() and semaphore::scoped() return: it owns one
// acquisition and releases it when it goes out of scope (asyncio's `async with`).
//
// A primitive keeps its live guards in a list (guard_registry, three pointers a
// guard), so that destroying the primitive — a bug while a task still holds or waits
// on it, see sync_waiter_queue.hpp — disowns them instead of leaving them to release dead
// memory when the task that holds them is cancelled and unwinds.

#include <utility>

namespace aio::detail {

template <class Primitive>
class release_guard;

// A primitive's live guards; on its destruction they own nothing any more.
template <class Primitive>
class guard_registry {
public:
    guard_registry() noexcept = default;
    guard_registry(const guard_registry&) = delete;
    guard_registry& operator=(const guard_registry&) = delete;
    ~guard_registry() {
        while (release_guard<Primitive>* g = head_) {
            head_ = g->next_;
            g->primitive_ = nullptr;
            g->prev_ = g->next_ = nullptr;
        }
    }

private:
    friend class release_guard<Primitive>;
    release_guard<Primitive>* head_ = nullptr;
};

template <class Primitive>
class [[nodiscard]] release_guard {
public:
    release_guard() noexcept = default;
    explicit release_guard(Primitive& p) noexcept : primitive_(&p) { link(); }
    release_guard(release_guard&& other) noexcept { take(other); }
    release_guard& operator=(release_guard&& other) noexcept {
        if (this != &other) {
            reset();
            take(other);
        }
        return *this;
    }
    // Releases what the guard still owns. It owns an acquisition, so release() does not
    // throw (unless the program released it behind the guard's back: that terminates).
    ~release_guard() { reset(); }

    bool owns() const noexcept { return primitive_ != nullptr; }
    explicit operator bool() const noexcept { return owns(); }

    // Releases now, before the scope ends.
    void release() {
        if (Primitive* p = disown()) p->release();
    }

private:
    friend class guard_registry<Primitive>;

    void reset() noexcept {
        if (Primitive* p = disown()) p->release();
    }

    void link() noexcept {
        release_guard*& head = primitive_->guards_.head_;
        next_ = head;
        if (head) head->prev_ = this;
        head = this;
    }
    // Takes `other`'s place in the list.
    void take(release_guard& other) noexcept {
        primitive_ = std::exchange(other.primitive_, nullptr);
        prev_ = std::exchange(other.prev_, nullptr);
        next_ = std::exchange(other.next_, nullptr);
        if (!primitive_) return;
        (prev_ ? prev_->next_ : primitive_->guards_.head_) = this;
        if (next_) next_->prev_ = this;
    }
    Primitive* disown() noexcept {
        Primitive* p = std::exchange(primitive_, nullptr);
        if (!p) return nullptr;
        (prev_ ? prev_->next_ : p->guards_.head_) = next_;
        if (next_) next_->prev_ = prev_;
        prev_ = next_ = nullptr;
        return p;
    }

    Primitive* primitive_ = nullptr;
    release_guard* prev_ = nullptr;
    release_guard* next_ = nullptr;
};

}  // namespace aio::detail
