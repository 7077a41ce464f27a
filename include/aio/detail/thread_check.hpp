#pragma once
// Thread ownership, checked. A loop, its tasks, their handles and the primitives its
// tasks wait on belong to the thread that runs the loop, as asyncio's objects do:
// nothing in them is synchronised (a handle's reference count is a plain integer). Only
// the inbox (inbox.hpp) is for other threads.
//
// With AIO_DEBUG (on unless NDEBUG is defined; define AIO_DEBUG=0 or 1 to choose), the
// entry points check that no other thread is running the loop concerned: a relaxed
// atomic load and a compare. A call that can throw throws aio::runtime_error; a
// noexcept one (copying or dropping a handle) prints the error and aborts, since the
// data race it would start cannot be undone.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "../errors.hpp"
#include "scheduler.hpp"

#ifndef AIO_DEBUG
#ifdef NDEBUG
#define AIO_DEBUG 0
#else
#define AIO_DEBUG 1
#endif
#endif

namespace aio::detail {

inline std::string wrong_thread_message(const char* what) {
    return std::string(what) +
           " called from a thread other than the one running its event loop "
           "(aio objects belong to their loop's thread)";
}

// Throws when `loop` (may be null: nothing to check) runs on another thread.
inline void check_loop_thread([[maybe_unused]] const scheduler* loop, [[maybe_unused]] const char* what) {
#if AIO_DEBUG
    if (loop && loop->running_elsewhere()) [[unlikely]]
        throw aio::runtime_error(wrong_thread_message(what));
#endif
}

// The same for noexcept entry points: prints the error and aborts.
inline void assert_loop_thread([[maybe_unused]] const scheduler* loop, [[maybe_unused]] const char* what) noexcept {
#if AIO_DEBUG
    if (loop && loop->running_elsewhere()) [[unlikely]] {
        std::fprintf(stderr, "aio: %s called from a thread other than the one running its event loop "
                             "(aio objects belong to their loop's thread)\n", what);
        std::abort();
    }
#endif
}

}  // namespace aio::detail
