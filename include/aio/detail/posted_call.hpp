#pragma once
// A call_soon_threadsafe callback: made on the calling thread, posted through the
// loop's inbox, run (or, when the loop closes first, dropped) on the loop's thread.
// Its memory comes from the caller's slabs and goes back to the loop thread's block
// cache, or from there to its slab (block_cache.hpp: allocate_for_remote).

#include <cstddef>
#include <exception>
#include <new>
#include <utility>

#include "block_cache.hpp"
#include "inbox.hpp"
#include "loop_core.hpp"

namespace aio::detail {

template <class F>
struct posted_call final : inbox_node {
    static void* operator new(std::size_t size) { return allocate_remote_block(size); }
    static void operator delete(void* p, std::size_t size) noexcept { deallocate_block(p, size); }
    // For a call that must not throw (a future's cancel()): null without memory.
    static void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
        try {
            return allocate_remote_block(size);
        } catch (...) {
            return nullptr;
        }
    }
    static void operator delete(void* p, const std::nothrow_t&) noexcept { deallocate_block(p, sizeof(posted_call)); }

    // `l` is only used on its own thread, when the call runs: it may be gone by the time
    // the call is made (the post is then refused).
    template <class G>
    posted_call(loop_core* l, G&& g) : loop(l), fn(std::forward<G>(g)) {
        run = [](ready_item* item) noexcept {
            auto* self = static_cast<posted_call*>(static_cast<inbox_node*>(item));
            try {
                self->fn();
            } catch (...) {
                self->loop->report({"Exception in callback", std::current_exception(), {}});
            }
            delete self;
        };
        discard = [](ready_item* item) noexcept { delete static_cast<posted_call*>(static_cast<inbox_node*>(item)); };
    }

    loop_core* loop;
    F fn;
};

}  // namespace aio::detail
