#pragma once
// The loop's table of descriptors watched on asyncio's terms, level-triggered:
// add_reader / add_writer callbacks, aio::wait_readable / wait_writable, and the
// sock_* calls, which wait through those.
//
// One entry a descriptor. It is registered with the poller while something waits on
// it (a task in wait_readable, a reader callback) and unregistered as soon as nothing
// does, as asyncio's selector loop does: a program may close a descriptor of its own
// and open another under the same number, and a registration kept for nobody would
// then stand for the wrong file. An event runs the entry's step through the ready
// queue (API rule 4), which wakes every task waiting in that direction and calls that
// direction's callback; a descriptor that stays ready is reported again in the next
// iteration, as a level-triggered selector reports it.
//
// Where the pieces are: the waits, aio/net/readiness.hpp; the callbacks,
// event_loop::add_reader; what an event does, fd_events.hpp.

#include <cstdint>
#include <vector>

#include "callback_node.hpp"
#include "intrusive_list.hpp"
#include "io_node.hpp"

namespace aio::detail {

class loop_core;
struct fd_entry;

// A task waiting for a descriptor to become ready; `wake` schedules it.
struct fd_waiter {
    list_links<fd_waiter> links;
    fd_entry* entry = nullptr;  // while linked
    std::uint32_t direction = 0;
    void (*wake)(fd_waiter*) noexcept = nullptr;

    bool linked() const noexcept { return links.prev != nullptr; }
};
using fd_waiter_list = intrusive_list<fd_waiter, &fd_waiter::links>;

struct fd_entry : io_node {
    explicit fd_entry(int descriptor) noexcept : fd(descriptor) {}

    int fd;
    std::uint32_t registered = 0;  // what the poller watches: io_readable | io_writable
    fd_waiter_list readers;
    fd_waiter_list writers;
    callback_node* on_readable = nullptr;  // add_reader's callback (one reference)
    callback_node* on_writable = nullptr;
    bool in_step = false;  // its step is running: it is freed after, not during

    std::uint32_t wanted() const noexcept {
        return (!readers.empty() || on_readable ? io_readable : 0u) | (!writers.empty() || on_writable ? io_writable : 0u);
    }
};

class fd_registry {
public:
    explicit fd_registry(loop_core& loop) noexcept : loop_(loop) {}
    fd_registry(const fd_registry&) = delete;
    fd_registry& operator=(const fd_registry&) = delete;
    ~fd_registry() { clear(); }

    // Links `w` to wait until `fd` is ready in `direction` (io_readable or
    // io_writable). Throws aio::os_error, with nothing linked, when the kernel cannot
    // watch `fd` (not open, a regular file).
    void wait(int fd, std::uint32_t direction, fd_waiter& w);
    // Unlinks a waiting `w`: it will not be woken.
    void forget(fd_waiter& w) noexcept;

    // Makes `node` (one reference, the registry's from now on) `fd`'s callback in
    // `direction`, replacing the one there.
    void set_callback(int fd, std::uint32_t direction, callback_node* node);
    // Removes `fd`'s callback in `direction`; false when it had none.
    bool remove_callback(int fd, std::uint32_t direction) noexcept;

    // The loop is closing: every registration goes, callbacks with it. Waiters have
    // gone with their frames already.
    void clear() noexcept;

    // How many descriptors are registered or have an entry (for tests).
    std::size_t size() const noexcept { return count_; }

private:
    fd_entry* find(int fd) const noexcept {
        const auto i = static_cast<std::size_t>(fd);
        return fd >= 0 && i < entries_.size() ? entries_[i] : nullptr;
    }
    fd_entry& entry(int fd);
    void watch(fd_entry& e, std::uint32_t interest);
    void settle(fd_entry& e) noexcept;
    void free_entry(fd_entry& e) noexcept;
    void let_go(callback_node* node) noexcept;
    static void step(ready_item* item) noexcept;

    loop_core& loop_;
    std::vector<fd_entry*> entries_;  // by descriptor
    std::size_t count_ = 0;
    callback_node* invoking_ = nullptr;  // the callback running now: disposed of after, not inside
};

}  // namespace aio::detail
