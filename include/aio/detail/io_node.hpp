#pragma once
// What a descriptor registered with the loop's poller is reported as: a ready-queue
// item that the loop appends to the ready queue when the poller reports the descriptor
// ready (API rule 4), with what was reported accumulated in `events` until its step
// runs.

#include <cstdint>

#include "intrusive_list.hpp"
#include "ready_queue.hpp"

namespace aio::detail {

enum : std::uint32_t {
    io_readable = 1,
    io_writable = 2,
    io_error = 4,  // an error or a hang-up
    io_edge = 8,   // in an interest: report edges (a change to ready), not levels
    io_hangup = 16,  // in events: the peer has shut down its sending side (or both)
};

struct io_node : ready_item {
    std::uint32_t events = 0;  // reported since the node's step last ran
    std::uint64_t token = 0;   // the poller's name for the registration (see epoll_poller.hpp)
};

// What owns a registration of its own (a stream's transport, a server) and must let
// go of it when the loop closes: linked into the loop's `io_owners` while it lives.
struct io_owner {
    list_links<io_owner> links;
    void (*loop_closing)(io_owner*) noexcept = nullptr;  // may unlink and free the owner
};
using io_owner_list = intrusive_list<io_owner, &io_owner::links>;

}  // namespace aio::detail
