#pragma once
// The loop's multiplexer: one epoll instance that every wake-up source plugs into.
//
// A timerfd carries the next timer deadline (absolute CLOCK_MONOTONIC, nanosecond
// resolution, and unlike epoll's millisecond timeout it is not rounded or subject to
// the default timer slack); an eventfd is the cross-thread wake-up. I/O readiness
// registers on the same epoll set, so one epoll_wait covers all three.

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "../errors.hpp"

namespace aio::detail {

class epoll_poller {
public:
    epoll_poller() {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd_ < 0) fail("epoll_create1");
        timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (timer_fd_ < 0) fail("timerfd_create");
        wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_fd_ < 0) fail("eventfd");
        watch(timer_fd_);
        watch(wake_fd_);
    }
    ~epoll_poller() { release(); }
    epoll_poller(const epoll_poller&) = delete;
    epoll_poller& operator=(const epoll_poller&) = delete;

    // True while something outside the ready queue and the timers can wake the loop
    // (registered I/O, a pending cross-thread call). Nothing registers yet.
    bool can_wake() const noexcept { return io_interest_ > 0; }

    // Waits until `deadline` (steady-clock nanoseconds; no_deadline waits for I/O or a
    // wake-up only) or returns at once when `block` is false.
    static constexpr std::int64_t no_deadline = -1;
    void wait(std::int64_t deadline, bool block) {
        if (block && deadline != no_deadline) {
            if (deadline != armed_ || expired_) arm(deadline);  // re-arming also clears an expiry
        } else if (expired_) {
            drain(timer_fd_);
            expired_ = false;
        }
        epoll_event events[16];
        int n;
        do n = ::epoll_wait(epoll_fd_, events, 16, block ? -1 : 0);
        while (n < 0 && errno == EINTR);
        if (n < 0) throw aio::runtime_error(std::string("aio event loop: epoll_wait failed: ") + std::strerror(errno));
        for (int i = 0; i < n; ++i) {
            if (events[i].data.fd == timer_fd_) {
                // A one-shot timerfd disarms itself when it fires. It stays readable
                // until read or re-armed; the next wait re-arms it, which saves a read.
                armed_ = no_deadline;
                expired_ = true;
            } else if (events[i].data.fd == wake_fd_) {
                drain(wake_fd_);
            }
        }
    }

    // The eventfd that wake() writes to (a signal handler writes to it directly).
    int wake_fd() const noexcept { return wake_fd_; }

    // Safe from any thread.
    void wake() noexcept {
        std::uint64_t one = 1;
        [[maybe_unused]] auto r = ::write(wake_fd_, &one, sizeof one);
    }

private:
    static void drain(int fd) noexcept {
        std::uint64_t count;
        [[maybe_unused]] auto r = ::read(fd, &count, sizeof count);
    }

    void watch(int fd) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl");
    }

    void arm(std::int64_t deadline) {
        itimerspec spec{};
        // A zero it_value would disarm the timer: a deadline at or before the clock's
        // epoch is already due, so one nanosecond fires just as soon.
        if (deadline <= 0) deadline = 1;
        spec.it_value.tv_sec = static_cast<time_t>(deadline / 1'000'000'000);
        spec.it_value.tv_nsec = static_cast<long>(deadline % 1'000'000'000);
        if (::timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr) < 0)
            throw aio::runtime_error(std::string("aio event loop: timerfd_settime failed: ") + std::strerror(errno));
        armed_ = deadline;
        expired_ = false;
    }

    // Construction failed half-way: close what was opened, then report.
    [[noreturn]] void fail(const char* what) {
        int err = errno;
        release();
        throw aio::runtime_error(std::string("aio event loop: ") + what + " failed: " + std::strerror(err));
    }

    void release() noexcept {
        for (int* fd : {&wake_fd_, &timer_fd_, &epoll_fd_})
            if (*fd >= 0) {
                ::close(*fd);
                *fd = -1;
            }
    }

    int epoll_fd_ = -1;
    int timer_fd_ = -1;
    int wake_fd_ = -1;
    std::int64_t armed_ = no_deadline;
    bool expired_ = false;
    int io_interest_ = 0;
};

}  // namespace aio::detail
