#pragma once
// A call_soon_threadsafe callback: made on the calling thread, posted through the
// loop's inbox, run (or, when the loop closes first, dropped) on the loop's thread.
// Its memory comes from the caller's slabs and goes back to the loop thread's block
// cache, or from there to its slab (block_cache.hpp: allocate_for_remote).

#include <cstddef>
#include <exception>
#include <utility>

#include "block_cache.hpp"
#include "inbox.hpp"
#include "loop_core.hpp"

namespace aio::detail {

template <class F>
struct posted_call final : inbox_node {
    static void* operator new(std::size_t size) { return allocate_remote_block(size); }
    static void operator delete(void* p, std::size_t size) noexcept { deallocate_block(p, size); }

    template <class G>
    posted_call(loop_core& l, G&& g) : loop(l), fn(std::forward<G>(g)) {
        run = [](ready_item* item) noexcept {
            auto* self = static_cast<posted_call*>(static_cast<inbox_node*>(item));
            try {
                self->fn();
            } catch (...) {
                self->loop.report({"Exception in callback", std::current_exception(), {}});
            }
            delete self;
        };
        discard = [](ready_item* item) noexcept { delete static_cast<posted_call*>(static_cast<inbox_node*>(item)); };
    }

    loop_core& loop;
    F fn;
};

}  // namespace aio::detail
