#pragma once
// The RAII guard that lock::scoped() and semaphore::scoped() return: it owns one
// acquisition and releases it when it goes out of scope (asyncio's `async with`).
//
// A primitive keeps its live guards in an intrusive list (guard_registry, three
// pointers a guard), so that destroying the primitive — a bug while a task still holds or waits
// on it, see sync_waiter_queue.hpp — disowns them instead of leaving them to release dead
// memory when the task that holds them is cancelled and unwinds.

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
    intrusive_list<release_guard<Primitive>, &release_guard<Primitive>::links_> live_;
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

    void link() noexcept { primitive_->guards_.live_.push_back(this); }
    // Takes `other`'s place in the list.
    void take(release_guard& other) noexcept {
        primitive_ = std::exchange(other.primitive_, nullptr);
        if (primitive_) primitive_->guards_.live_.replace(&other, this);
    }
    Primitive* disown() noexcept {
        Primitive* p = std::exchange(primitive_, nullptr);
        if (p) p->guards_.live_.unlink(this);
        return p;
    }

    list_links<release_guard> links_;  // in the primitive's guard_registry
    Primitive* primitive_ = nullptr;
};

template <class Primitive>
guard_registry<Primitive>::~guard_registry() {
    while (release_guard<Primitive>* g = live_.pop_front()) g->primitive_ = nullptr;
}

}  // namespace aio::detail
