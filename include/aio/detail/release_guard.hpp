#pragma once
// The RAII guard that lock::scoped() and semaphore::scoped() return: it owns one
// acquisition and releases it when it goes out of scope (asyncio's `async with`).

#include <utility>

namespace aio::detail {

template <class Primitive>
class [[nodiscard]] release_guard {
public:
    release_guard() noexcept = default;
    explicit release_guard(Primitive& p) noexcept : primitive_(&p) {}
    release_guard(release_guard&& other) noexcept : primitive_(std::exchange(other.primitive_, nullptr)) {}
    release_guard& operator=(release_guard&& other) noexcept {
        if (this != &other) {
            reset();
            primitive_ = std::exchange(other.primitive_, nullptr);
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
        if (Primitive* p = std::exchange(primitive_, nullptr)) p->release();
    }

private:
    void reset() noexcept {
        if (Primitive* p = std::exchange(primitive_, nullptr)) p->release();
    }

    Primitive* primitive_ = nullptr;
};

}  // namespace aio::detail
