#pragma once
// A callback scheduled with call_soon / call_later / call_at, or a task's done
// callback: heap-allocated, shared by the loop and the user's handle.

#include <cstddef>
#include <cstdint>
#include <utility>

#include "block_cache.hpp"
#include "ready_queue.hpp"
#include "timer_queue.hpp"

namespace aio::detail {

class loop_core;

struct callback_node {
    timer_node timer;  // first: the timer queue reaches the node through its address
    ready_item item;
    void (*invoke)(callback_node*) = nullptr;  // may throw; the loop reports it
    void (*destroy)(callback_node*) noexcept = nullptr;
    loop_core* loop = nullptr;  // null once the loop has closed
    std::int64_t when = 0;      // deadline, for timers
    std::uint32_t refs = 1;
    bool cancelled = false;

    static callback_node* from_item(ready_item* item) noexcept {
        return reinterpret_cast<callback_node*>(reinterpret_cast<char*>(item) - offsetof(callback_node, item));
    }
    bool armed() const noexcept { return timer.slot != timer_node::idle; }
    void add_ref() noexcept { ++refs; }
    void release() noexcept {
        if (--refs == 0) destroy(this);
    }
};

template <class F>
struct callback_impl final : callback_node {
    static void* operator new(std::size_t size) { return allocate_block(size); }
    static void operator delete(void* p, std::size_t size) noexcept { deallocate_block(p, size); }

    template <class G>
    explicit callback_impl(G&& g) : fn(std::forward<G>(g)) {
        invoke = [](callback_node* n) { static_cast<callback_impl*>(n)->fn(); };
        destroy = [](callback_node* n) noexcept { delete static_cast<callback_impl*>(n); };
    }
    F fn;
};

}  // namespace aio::detail
