#pragma once
// What a loop's signal_registry (signals.hpp) does with its loop: adding and removing
// handlers, queueing the signals found pending, and the step that runs a callback.

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

#include "loop_core.hpp"
#include "signals.hpp"

namespace aio::detail {

inline void signal_registry::add(int sig, callback_node* node, bool fallback) {
    signal_entry* e = find(sig);
    if (!e) {
        try {
            entries_.reserve(entries_.size() + 1);
            e = new signal_entry(sig);
        } catch (...) {
            let_go(node);
            throw;
        }
        e->run = step;
        try {
            claim(sig, fallback);
        } catch (...) {
            delete e;
            let_go(node);
            throw;
        }
        entries_.push_back(e);  // room reserved: cannot throw
    }
    signal_slot& s = signal_slots[sig];
    if (fallback) {
        if (callback_node* old = std::exchange(e->fallback, node)) let_go(old);
        if (!e->handler) {
            s.deliveries.store(0);
            s.repeat_is_fatal.store(true);
        }
        return;
    }
    // The program's handler takes every delivery, the second Ctrl-C included. While it
    // is set, the signal counts as something that can wake the loop: a task waiting for
    // it is not a deadlock.
    s.repeat_is_fatal.store(false);
    if (callback_node* old = std::exchange(e->handler, node)) let_go(old);
    else ++handlers_;
}

inline bool signal_registry::remove(int sig, bool fallback) noexcept {
    signal_entry* e = find(sig);
    if (!e) return false;
    callback_node* old = std::exchange(fallback ? e->fallback : e->handler, nullptr);
    if (!old) return false;
    let_go(old);
    if (!fallback) --handlers_;
    if (e->handler) return true;
    if (e->fallback) {  // aio::run's Ctrl-C is in force again, counting afresh
        signal_slot& s = signal_slots[sig];
        s.deliveries.store(0);
        s.repeat_is_fatal.store(true);
        return true;
    }
    release_slot(*e);
    loop_.withdraw(e);
    std::erase(entries_, e);
    if (e->in_step) e->removed = true;
    else delete e;
    return true;
}

inline void signal_registry::clear(bool loop_alive) noexcept {
    while (!entries_.empty()) {
        signal_entry* e = entries_.back();
        entries_.pop_back();
        release_slot(*e);  // first: from here on no OS handler reaches this loop
        if (callback_node* node = std::exchange(e->handler, nullptr)) {
            let_go(node);
            --handlers_;
        }
        if (callback_node* node = std::exchange(e->fallback, nullptr)) let_go(node);
        if (loop_alive) loop_.withdraw(e);
        if (e->in_step) e->removed = true;
        else delete e;
    }
}

inline void signal_registry::take_pending() {
    loop_.ready.reserve(entries_.size());
    // Cleared before the slots are read: a delivery that the reads below miss has set
    // it again, and is taken in the next iteration.
    pending.store(false);
    for (signal_entry* e : entries_)
        if (signal_slots[e->sig].pending.exchange(false) && e->queued_at == not_queued) loop_.push(e);
}

// A signal was delivered: the handler in force now runs (the program's, else the
// fallback). An exception from it goes to the loop's exception handler.
inline void signal_registry::step(ready_item* item) noexcept {
    auto& e = static_cast<signal_entry&>(*item);
    loop_core& loop = *running_loop;
    signal_registry& self = loop.signals;
    callback_node* node = e.handler ? e.handler : e.fallback;
    if (!node) return;
    node->add_ref();  // the callback may remove or replace itself
    e.in_step = true;
    callback_node* outer = std::exchange(self.invoking_, node);
    try {
        node->ops->invoke(node);
    } catch (...) {
        loop.report({"Exception in callback (the handler of " + signal_name(e.sig) + ")", std::current_exception(), {}});
    }
    self.invoking_ = outer;
    if (node->cancelled) node->dispose();
    node->release();
    e.in_step = false;
    if (e.removed) delete &e;
}

}  // namespace aio::detail
