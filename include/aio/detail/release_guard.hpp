#pragma once
// The RAII guard that lock::scoped() and semaphore::scoped() return: it owns one
// acquisition and releases it when it goes out of scope (asyncio's `async with`).
//
// A primitive keeps its live guards in a registry (guard_registry), so that destroying
// the primitive — a bug while a task still holds or waits on it, see
// sync_waiter_queue.hpp — disowns them instead of leaving them to release dead memory
// when the task that holds them is cancelled and unwinds. A lock has one guard at a
// time, and so does a semaphore most of the time: the registry keeps one guard in a
// slot and only the others in an intrusive list, so that the common acquisition
// costs a compare and a store, not three list operations on the primitive's line.

#include <utility>

#include "intrusive_list.hpp"

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
    inline ~guard_registry();

private:
    friend class release_guard<Primitive>;
    using guard = release_guard<Primitive>;

    void add(guard* g) noexcept {
        if (!slot_) [[likely]] slot_ = g;
        else others_.push_back(g);
    }
    void remove(guard* g) noexcept {
        if (slot_ == g) [[likely]] slot_ = nullptr;
        else others_.unlink(g);
    }
    // `g`, not registered, takes the place of `old`.
    void replace(guard* old, guard* g) noexcept {
        if (slot_ == old) slot_ = g;
        else others_.replace(old, g);
    }

    guard* slot_ = nullptr;
    intrusive_list<guard, &guard::links_> others_;  // the live guards but the slot's
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

    void link() noexcept { primitive_->guards_.add(this); }
    // Takes `other`'s place in the list.
    void take(release_guard& other) noexcept {
        primitive_ = std::exchange(other.primitive_, nullptr);
        if (primitive_) primitive_->guards_.replace(&other, this);
    }
    Primitive* disown() noexcept {
        Primitive* p = std::exchange(primitive_, nullptr);
        if (p) p->guards_.remove(this);
        return p;
    }

    list_links<release_guard> links_;  // in the registry's list, unless in its slot
    Primitive* primitive_ = nullptr;
};

template <class Primitive>
guard_registry<Primitive>::~guard_registry() {
    if (slot_) slot_->primitive_ = nullptr;
    while (guard* g = others_.pop_front()) g->primitive_ = nullptr;
}

}  // namespace aio::detail
