#pragma once
// call_soon, call_later and call_at on the loop: the lifecycle of a callback_node
// (see callback_node.hpp) from its making to its disposal.

#include <exception>
#include <type_traits>
#include <utility>

#include "callback_node.hpp"
#include "loop_core.hpp"

namespace aio::detail {

// A node for `f`, holding the loop's reference.
template <class F>
callback_node* loop_core::make_callback(F&& f) {
    auto* node = new callback_impl<std::decay_t<F>>(std::forward<F>(f));
    node->loop = this;
    node->item.run = run_callback;
    node->item.discard = discard_callback;
    return node;
}

// Files a fresh node as a timer due at `when`; lets go of it if that fails.
inline void loop_core::arm(callback_node* node, std::int64_t when) {
    node->when = when;
    try {
        timers.push(when, reinterpret_cast<std::uintptr_t>(node) | timer_is_callback);
    } catch (...) {
        node->release();
        throw;
    }
    node->in_timers = true;
}

// The callback will not run. A timer's entry is left to the timer queue and its
// callable destroyed by the loop before its next iteration: not here, where the
// caller may be a method of an object that only the callable keeps alive. A
// callback already in the ready queue is skipped when its turn comes. No effect
// once it has run.
inline void loop_core::cancel(callback_node* node) noexcept {
    if (node->cancelled) return;
    node->cancelled = true;
    if (!node->in_timers) return;
    loop_core& loop = *node->loop;  // set while in_timers
    if (loop.closed) return;        // closing: its timers are being let go of
    loop.timers.cancelled_untracked();  // may sweep it: the caller holds a reference
    if (!node->ops->dispose) return;    // nothing to destroy
    node->add_ref();
    try {
        loop.disposals.push_back(node);
    } catch (...) {
        node->release();  // without memory, the callable goes with the node
    }
}

// Destroys the callables of the timers cancelled since the last time.
inline void loop_core::dispose_cancelled() noexcept {
    while (!disposals.empty()) {  // a destructor may cancel more
        callback_node* node = disposals.back();
        disposals.pop_back();
        node->dispose();
        node->release();
    }
}

inline void loop_core::run_callback(ready_item* item) noexcept {
    auto* node = callback_node::from_item(item);
    if (node->in_timers) {
        node->in_timers = false;
        node->loop->timers.landed(node->cancelled);
    }
    if (!node->cancelled) {
        try {
            node->ops->invoke(node);
        } catch (...) {
            node->loop->report({"Exception in callback", std::current_exception(), {}});
        }
    }
    // It will never run again: what it captured goes now, even if a handle lives on
    // (a callable holding its own handle would otherwise keep itself alive).
    node->dispose();
    node->release();
}

// The loop closed with the node still queued: the loop lets go of it.
inline void loop_core::discard_callback(ready_item* item) noexcept {
    auto* node = callback_node::from_item(item);
    node->loop = nullptr;
    node->in_timers = false;
    node->dispose();
    node->release();
}

}  // namespace aio::detail
