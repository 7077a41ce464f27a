#pragma once
// aio::wait_readable(fd) / aio::wait_writable(fd): wait until a descriptor of the
// program's own is ready, as a selector would report it (level-triggered).
//
//   co_await aio::wait_readable(fd);   // then recv() will not block
//
// Resumption: the task suspends until the running loop's poller reports `fd` ready in
// that direction (or in error, or hung up: the next system call on it says which), and
// is then woken through the ready queue (rule 4). Every task waiting on the same
// descriptor and direction is woken together; each makes its own system call.
//
// Cancellation: the wait is unlinked at once, and the descriptor unregistered when
// nothing else waits on it; the task gets aio::cancelled_error. Nothing was read or
// written, so there is nothing to lose.
//
// Errors: aio::os_error, without suspending, when the kernel cannot watch `fd` (EBADF:
// not open; EPERM: a regular file, which is always ready). The descriptor is
// registered only while someone waits (see detail/fd_registry.hpp). Waiting allocates
// nothing beyond the descriptor's entry in the loop's table.

#include <coroutine>
#include <cstdint>

#include "../detail/cancel_hook.hpp"
#include "../detail/fd_registry.hpp"
#include "../detail/suspension.hpp"

namespace aio {

class [[nodiscard]] readiness_awaitable : private detail::cancel_hook, private detail::fd_waiter {
public:
    readiness_awaitable(int fd, std::uint32_t direction, const char* what) noexcept
        : fd_(fd), direction_(direction), what_(what) {
        cancel = on_cancel;
        wake = on_wake;
    }
    readiness_awaitable(readiness_awaitable&& other) noexcept
        : readiness_awaitable(other.fd_, other.direction_, other.what_) {}
    readiness_awaitable(const readiness_awaitable&) = delete;
    readiness_awaitable& operator=(const readiness_awaitable&) = delete;
    // Destroyed while waiting (its loop closing): unlinked, so nothing follows it.
    ~readiness_awaitable() {
        if (linked()) {
            loop_->fds.forget(*this);
            detail::forget_hook(task_, *this);
        }
    }

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        detail::task_state& t = detail::suspending_task(what_);
        loop_ = detail::running_loop;
        loop_->fds.wait(fd_, direction_, *this);  // throws before anything is linked
        task_ = &t;
        detail::suspend(t, h, *this);
    }
    void await_resume() { detail::resumed(task_, hook_ran_); }

private:
    static void on_wake(detail::fd_waiter* w) noexcept {
        auto& self = static_cast<readiness_awaitable&>(*w);
        self.loop_->schedule(*self.task_);
    }
    static bool on_cancel(detail::cancel_hook* hook) noexcept {
        auto& self = static_cast<readiness_awaitable&>(*hook);
        if (!self.linked()) return false;  // woken already: the wake-up is queued
        self.loop_->fds.forget(self);
        self.hook_ran_ = true;
        self.loop_->schedule(*self.task_);
        return true;
    }

    int fd_;
    std::uint32_t direction_;
    const char* what_;
    detail::loop_core* loop_ = nullptr;
    detail::task_state* task_ = nullptr;
    bool hook_ran_ = false;
};

// Until `fd` is readable (data, a connection to accept, EOF, an error).
inline readiness_awaitable wait_readable(int fd) noexcept {
    return readiness_awaitable(fd, detail::io_readable, "aio::wait_readable()");
}

// Until `fd` is writable (room in its send buffer, a connect that has ended, an error).
inline readiness_awaitable wait_writable(int fd) noexcept {
    return readiness_awaitable(fd, detail::io_writable, "aio::wait_writable()");
}

}  // namespace aio
