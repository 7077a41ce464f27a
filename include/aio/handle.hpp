#pragma once
// aio::handle and aio::timer_handle: what call_soon / call_later / call_at return
// (asyncio's Handle and TimerHandle). Dropping a handle does not cancel the callback.

#include <chrono>
#include <utility>

#include "detail/callback_node.hpp"
#include "detail/loop_core.hpp"

namespace aio {

class handle {
public:
    handle() noexcept = default;
    handle(const handle& other) noexcept : node_(other.node_) {
        if (node_) node_->add_ref();
    }
    handle(handle&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
    handle& operator=(handle other) noexcept {
        std::swap(node_, other.node_);
        return *this;
    }
    ~handle() {
        if (node_) node_->release();
    }

    explicit operator bool() const noexcept { return node_ != nullptr; }

    // The callback will not run. A timer never fires, and its callable (with what it
    // captured) is destroyed before the loop's next iteration; a callback already in
    // the ready queue is skipped when its turn comes. No effect once it has run.
    void cancel() noexcept {
        if (node_) detail::loop_core::cancel(node_);
    }
    bool cancelled() const noexcept { return node_ && node_->cancelled; }

protected:
    friend class event_loop;
    explicit handle(detail::callback_node* node) noexcept : node_(node) { node_->add_ref(); }
    detail::callback_node* node_ = nullptr;
};

class timer_handle : public handle {
public:
    timer_handle() noexcept = default;

    // When the callback is due.
    std::chrono::steady_clock::time_point when() const noexcept {
        return std::chrono::steady_clock::time_point(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                std::chrono::nanoseconds(node_ ? node_->when : 0)));
    }

private:
    friend class event_loop;
    explicit timer_handle(detail::callback_node* node) noexcept : handle(node) {}
};

}  // namespace aio
