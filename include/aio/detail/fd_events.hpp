#pragma once
// What the fd_registry (fd_registry.hpp) does: registering what is waited for, and
// the step an event runs.

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <string>

#include "../os_error.hpp"
#include "fd_registry.hpp"
#include "loop_core.hpp"

namespace aio::detail {

inline fd_entry& fd_registry::entry(int fd) {
    if (fd < 0) throw os_error(EBADF, "aio: cannot watch descriptor " + std::to_string(fd));
    const auto i = static_cast<std::size_t>(fd);
    if (i >= entries_.size()) {
        // The table grows to the highest descriptor: ask the kernel first whether this
        // one is open, so that a bad number costs an error, not gigabytes.
        if (::fcntl(fd, F_GETFD) < 0) throw_errno("aio: cannot watch descriptor " + std::to_string(fd));
        entries_.resize(std::max(i + 1, entries_.size() * 2), nullptr);
    }
    if (!entries_[i]) {
        auto* e = new fd_entry(fd);
        e->run = step;
        entries_[i] = e;
        ++count_;
    }
    return *entries_[i];
}

// Asks the poller to watch `interest` as well as what it watches now.
inline void fd_registry::watch(fd_entry& e, std::uint32_t interest) {
    const std::uint32_t wanted = e.registered | interest;
    if (wanted == e.registered) return;
    if (e.registered == 0) {
        loop_.add_io(e.fd, &e, wanted);
    } else if (const int err = loop_.modify_io(e.fd, &e, wanted); err == ENOENT) {
        // The descriptor was closed (and its number perhaps reused) while it was
        // registered: epoll dropped it. Register what is open under it now.
        loop_.remove_io(e.fd, &e);
        e.registered = 0;
        loop_.add_io(e.fd, &e, wanted);
    } else if (err != 0) {
        throw_os_error(err, "aio: cannot watch descriptor " + std::to_string(e.fd));
    }
    e.registered = wanted;
}

// Brings the registration down to what is still wanted, and frees an entry nobody
// wants. A change the kernel refuses means the descriptor is gone: whoever still
// waits on it is woken, to find out from their own system call.
inline void fd_registry::settle(fd_entry& e) noexcept {
    const std::uint32_t wanted = e.wanted();
    if (wanted != e.registered) {
        if (wanted == 0 || loop_.modify_io(e.fd, &e, wanted) != 0) {
            if (e.registered != 0) loop_.remove_io(e.fd, &e);
            e.registered = 0;
            for (fd_waiter_list* list : {&e.readers, &e.writers})
                while (fd_waiter* w = list->pop_front()) w->wake(w);
        } else {
            e.registered = wanted;
        }
    }
    if (e.wanted() == 0 && !e.in_step) free_entry(e);
}

inline void fd_registry::free_entry(fd_entry& e) noexcept {
    if (e.registered != 0) loop_.remove_io(e.fd, &e);
    else loop_.withdraw(&e);
    entries_[static_cast<std::size_t>(e.fd)] = nullptr;
    --count_;
    delete &e;
}

inline void fd_registry::wait(int fd, std::uint32_t direction, fd_waiter& w) {
    fd_entry& e = entry(fd);
    try {
        watch(e, direction);
    } catch (...) {
        if (e.wanted() == 0 && !e.in_step) free_entry(e);  // a running step frees it after
        throw;
    }
    w.entry = &e;
    w.direction = direction;
    (direction == io_readable ? e.readers : e.writers).push_back(&w);
}

inline void fd_registry::forget(fd_waiter& w) noexcept {
    if (!w.linked()) return;
    fd_entry& e = *w.entry;
    (w.direction == io_readable ? e.readers : e.writers).unlink(&w);
    w.entry = nullptr;
    settle(e);
}

inline void fd_registry::set_callback(int fd, std::uint32_t direction, callback_node* node) {
    fd_entry* e;
    try {
        e = &entry(fd);
        watch(*e, direction);
    } catch (...) {
        if (fd_entry* f = find(fd); f && f->wanted() == 0 && !f->in_step) free_entry(*f);  // a running step frees it after
        let_go(node);
        throw;
    }
    callback_node*& slot = direction == io_readable ? e->on_readable : e->on_writable;
    if (callback_node* old = std::exchange(slot, node)) let_go(old);
}

inline bool fd_registry::remove_callback(int fd, std::uint32_t direction) noexcept {
    fd_entry* e = find(fd);
    if (!e) return false;
    callback_node*& slot = direction == io_readable ? e->on_readable : e->on_writable;
    callback_node* old = std::exchange(slot, nullptr);
    if (!old) return false;
    let_go(old);
    settle(*e);
    return true;
}

// A callback is dropped: its callable goes now, unless it is the one running (a
// callback that removes itself), which goes once it returns.
inline void fd_registry::let_go(callback_node* node) noexcept {
    node->cancelled = true;
    if (node != invoking_) node->dispose();
    node->release();
}

inline void fd_registry::clear() noexcept {
    for (fd_entry* e : entries_) {
        if (!e) continue;
        for (fd_waiter_list* list : {&e->readers, &e->writers})
            while (fd_waiter* w = list->pop_front()) w->entry = nullptr;
        for (callback_node** slot : {&e->on_readable, &e->on_writable})
            if (callback_node* node = std::exchange(*slot, nullptr)) let_go(node);
        e->in_step = false;
        free_entry(*e);
    }
    entries_.clear();
}

// An event: every task waiting in a direction that is ready is woken (each then makes
// its own system call, and waits again if another took what was there), then that
// direction's callback runs. An error or hang-up counts as both directions.
inline void fd_registry::step(ready_item* item) noexcept {
    auto& e = static_cast<fd_entry&>(*item);
    loop_core& loop = *running_loop;
    fd_registry& self = loop.fds;
    const std::uint32_t events = std::exchange(e.events, 0);
    e.in_step = true;
    for (std::uint32_t direction : {io_readable, io_writable}) {
        if ((events & direction) == 0) continue;
        fd_waiter_list& list = direction == io_readable ? e.readers : e.writers;
        while (fd_waiter* w = list.pop_front()) {
            w->entry = nullptr;
            w->wake(w);
        }
        callback_node* node = direction == io_readable ? e.on_readable : e.on_writable;
        if (!node) continue;
        node->add_ref();  // the callback may remove itself, or replace itself
        self.invoking_ = node;
        try {
            node->ops->invoke(node);
        } catch (...) {
            loop.report({"Exception in callback", std::current_exception(), {}});
        }
        self.invoking_ = nullptr;
        if (node->cancelled) node->dispose();
        node->release();
    }
    e.in_step = false;
    self.settle(e);
}

}  // namespace aio::detail
