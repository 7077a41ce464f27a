#pragma once
// A callback scheduled with call_soon / call_later / call_at: heap-allocated, shared
// by the loop and the user's handle.
//
// The loop's reference lives in the ready queue or the timer queue. A timer's entry
// is never touched between arming and firing (see timer_queue.hpp): cancelling it
// marks the node and leaves the entry to be skipped when it fires, or swept. The
// callable is destroyed as soon as it can no longer run and no user code can be
// inside it: after it ran, when the loop lets go of it, or, for a cancelled timer,
// at the loop's next iteration (asyncio's cancel() drops the callback at once; in
// C++ that could destroy the object whose method is cancelling).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "block_cache.hpp"
#include "ready_queue.hpp"

namespace aio::detail {

class loop_core;
struct callback_node;

// What a node does with its callable, one table per callable type.
struct callback_ops {
    void (*invoke)(callback_node*);            // may throw; the loop reports it
    void (*dispose)(callback_node*) noexcept;  // destroys the callable; null when that does nothing
    void (*free)(callback_node*) noexcept;     // frees the node (the callable is gone)
};

struct callback_node {
    ready_item item;  // first: a timer entry's tagged word is also the item's address
    const callback_ops* ops = nullptr;
    loop_core* loop = nullptr;  // null once the loop has closed
    std::int64_t when = 0;      // deadline, for timers
    std::uint32_t refs = 1;     // the loop's, until it lets go
    bool cancelled = false;
    bool in_timers = false;  // in the timer queue, or fired and not yet run
    bool disposed = false;   // the callable is gone

    static callback_node* from_item(ready_item* item) noexcept { return reinterpret_cast<callback_node*>(item); }
    void add_ref() noexcept { ++refs; }
    void release() noexcept {
        if (--refs != 0) return;
        dispose();
        ops->free(this);
    }
    void dispose() noexcept {
        if (disposed) return;
        disposed = true;
        if (ops->dispose) ops->dispose(this);
    }
};

template <class F>
struct callback_impl final : callback_node {
    static_assert(alignof(F) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__,
                  "aio: a callback over-aligned beyond operator new's default alignment is not supported");
    static void* operator new(std::size_t size) { return allocate_block(size); }
    static void operator delete(void* p, std::size_t size) noexcept { deallocate_block(p, size); }

    template <class G>
    explicit callback_impl(G&& g) {
        ::new (static_cast<void*>(std::addressof(fn))) F(std::forward<G>(g));
        ops = &table;
    }
    ~callback_impl() {}  // the callable is disposed of explicitly, before

    static constexpr callback_ops table = {
        [](callback_node* n) { static_cast<callback_impl*>(n)->fn(); },
        std::is_trivially_destructible_v<F> ? nullptr
                                            : +[](callback_node* n) noexcept { static_cast<callback_impl*>(n)->fn.~F(); },
        [](callback_node* n) noexcept { delete static_cast<callback_impl*>(n); },
    };

    union {
        F fn;
    };
};

}  // namespace aio::detail
