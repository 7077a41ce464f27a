#pragma once
// The multiplexer seam: the loop proper (detail/loop_core.hpp) blocks in, and learns
// of I/O readiness from, one `poller`, and nothing else in aio touches it. Replacing
// epoll (io_uring, kqueue) is a new file and a new `using` line here, not an edit of
// the loop.
//
// What a poller provides (epoll_poller.hpp is the model):
//
//   add(fd, node, interest)     registers `fd`; its readiness is reported with `node`
//   modify(fd, node, interest)  changes what is watched
//   remove(fd)                  unregisters; no event for it is reported afterwards
//   wait(deadline, block, sink) blocks until `deadline` (an absolute time on the
//                               steady clock, in nanoseconds, or no_deadline), an
//                               I/O event or a wake(); with `block` false it only
//                               polls. It calls sink(node, events) for each ready
//                               registration.
//   wake()                      ends a wait, from any thread
//   waker()                     a value whose call does what wake() does and is
//                               async-signal-safe (for signal handlers)
//   running_guard               while it lives, the thread asks the kernel for exact
//                               timer wake-ups
//   registrations()             how many descriptors are registered
//
// Interest and events are io_readable / io_writable (plus io_edge in an interest for
// edge-triggered notification); events may also carry io_error (an error or hang-up,
// reported with both readable and writable so that every waiter looks) and io_hangup
// (the peer will send no more: an edge-triggered reader reads on to the end).

#include "epoll_poller.hpp"

namespace aio::detail {
using poller = epoll_poller;
}  // namespace aio::detail
