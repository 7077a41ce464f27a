#pragma once
// The Linux poller (see poller.hpp for the interface the loop relies on): one epoll
// instance that every wake-up source plugs into.
//
// A timerfd carries the next timer deadline (absolute CLOCK_MONOTONIC, nanosecond
// resolution, and unlike epoll's millisecond timeout it is not rounded); an eventfd
// is the cross-thread and signal wake-up.
//
// A registration is named to the kernel by a token, not by its node's address: a slot
// in the poller's table and that slot's generation. Removing a registration frees the
// slot and bumps its generation, so an event the kernel still reports under the old
// token finds a stale generation and is dropped. That happens when a program closes a
// descriptor that is still registered while a duplicate keeps the file open (a forked
// child, dup()): epoll then goes on reporting the file under the old registration, and
// a node address would by then name freed or reused memory.

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../errors.hpp"
#include "../os_error.hpp"
#include "io_node.hpp"

namespace aio::detail {

class epoll_poller {
public:
    static constexpr std::int64_t no_deadline = -1;
    // The event buffer grows with the registrations, up to this many events a wait.
    static constexpr std::size_t max_events = 1024;

    epoll_poller() {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd_ < 0) fail("epoll_create1");
        timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (timer_fd_ < 0) fail("timerfd_create");
        wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (wake_fd_ < 0) fail("eventfd");
        for (int* fd : {&timer_fd_, &wake_fd_}) {
            epoll_event ev{};
            // The eventfd is edge-triggered: every write is an edge (the kernel wakes
            // the poller on each), so it never needs reading — one system call fewer
            // on every wake-up. Its count only grows, by one a wake-up: 2^64 is far.
            ev.events = fd == &wake_fd_ ? EPOLLIN | EPOLLET : EPOLLIN;
            ev.data.u64 = fd == &wake_fd_ ? wake_token : timer_token;
            if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, *fd, &ev) < 0) fail("epoll_ctl");
        }
        events_.resize(16);
    }
    ~epoll_poller() { release(); }
    epoll_poller(const epoll_poller&) = delete;
    epoll_poller& operator=(const epoll_poller&) = delete;

    // --- registrations

    // Registers `fd`, reported with `node` (which gets a fresh token). Throws aio::os_error
    // when the kernel refuses (EBADF: not open; EPERM: a regular file, which epoll
    // cannot watch; EEXIST: registered already).
    void add(int fd, io_node* node, std::uint32_t interest) {
        const std::size_t wanted = std::min(max_events, registrations_ + 3);
        if (events_.size() < wanted) events_.resize(std::max(wanted, events_.size() * 2));
        const std::uint32_t slot = take_slot(node);
        node->token = token_of(slot);
        if (control(EPOLL_CTL_ADD, fd, node->token, interest) != 0) {
            const int err = errno;
            free_slot(slot);
            node->token = 0;
            detail::throw_os_error(err, "aio event loop: cannot watch descriptor " + std::to_string(fd));
        }
        ++registrations_;
    }
    // Changes what is watched; returns errno when the kernel refuses (ENOENT: the
    // descriptor was closed, or closed and reused, since it was added).
    int modify(int fd, io_node* node, std::uint32_t interest) noexcept {
        return control(EPOLL_CTL_MOD, fd, node->token, interest) == 0 ? 0 : errno;
    }
    // Unregisters `fd` (closed already, it has left epoll by itself); no event of this
    // registration is reported after this, even one the kernel has queued.
    void remove(int fd, io_node* node) noexcept {
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
        free_slot(static_cast<std::uint32_t>(node->token));
        node->token = 0;
        --registrations_;
    }
    std::size_t registrations() const noexcept { return registrations_; }

    // --- waiting

    // Blocks until `deadline` (steady-clock nanoseconds; no_deadline: until I/O or a
    // wake-up), or only polls when `block` is false; calls sink(node, events), which
    // must not throw, for each registration reported ready, after reserve(n) has made
    // room for as many as one wait can report (before the wait: an edge-triggered
    // event, once read, must not be lost to an allocation failure).
    template <class Reserve, class Sink>
    void wait(std::int64_t deadline, bool block, Reserve&& reserve, Sink&& sink) {
        if (registrations_ != 0) reserve(std::min(events_.size(), registrations_));
        if (block && deadline != no_deadline) {
            if (deadline != armed_ || expired_) arm(deadline);  // re-arming also clears an expiry
        } else if (expired_) {
            drain(timer_fd_);
            expired_ = false;
        }
        int n;
        do n = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), block ? -1 : 0);
        while (n < 0 && errno == EINTR);
        if (n < 0) throw aio::runtime_error(std::string("aio event loop: epoll_wait failed: ") + std::strerror(errno));
        for (int i = 0; i < n; ++i) {
            const std::uint64_t token = events_[i].data.u64;
            if (token == timer_token) {
                // A one-shot timerfd disarms itself when it fires. It stays readable
                // until read or re-armed; the next wait re-arms it, which saves a read.
                armed_ = no_deadline;
                expired_ = true;
            } else if (token == wake_token) {
                // Woken: what woke it (a post, a signal) is looked at by the loop.
            } else if (io_node* node = node_of(token)) {
                // The sink only queues the node: no user code runs inside this loop.
                sink(node, events_of(events_[i].events));
            }
        }
    }
    // Ends a wait in progress, or the next one. Safe from any thread.
    void wake() noexcept { waker()(); }

    // What a signal handler calls to end a wait: async-signal-safe.
    struct signal_waker {
        int fd = -1;
        void operator()() const noexcept {
            const std::uint64_t one = 1;
            [[maybe_unused]] auto r = ::write(fd, &one, sizeof one);
        }
    };
    signal_waker waker() const noexcept { return {wake_fd_}; }
    // The eventfd wake() writes (for a mailbox's duplicate of it).
    int wake_fd() const noexcept { return wake_fd_; }

    // While a loop runs, its thread asks for timer wake-ups without the kernel's
    // default 50 µs slack (the one-shot timerfd is subject to it on recent kernels);
    // the thread's own setting is restored afterwards.
    class running_guard {
    public:
        running_guard() noexcept : slack_(::prctl(PR_GET_TIMERSLACK)) {
            if (slack_ > 1) ::prctl(PR_SET_TIMERSLACK, 1UL);
        }
        ~running_guard() {
            if (slack_ > 1) ::prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(slack_));
        }
        running_guard(const running_guard&) = delete;
        running_guard& operator=(const running_guard&) = delete;

    private:
        int slack_;
    };

private:
    static std::uint32_t events_of(std::uint32_t e) noexcept {
        std::uint32_t r = 0;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLPRI)) r |= io_readable;
        if (e & EPOLLOUT) r |= io_writable;
        if (e & (EPOLLERR | EPOLLHUP)) r |= io_error | io_readable | io_writable;
        if (e & (EPOLLRDHUP | EPOLLHUP)) r |= io_hangup;
        return r;
    }

    int control(int op, int fd, std::uint64_t token, std::uint32_t interest) noexcept {
        epoll_event ev{};
        if (interest & io_readable) ev.events |= EPOLLIN | EPOLLRDHUP;
        if (interest & io_writable) ev.events |= EPOLLOUT;
        if (interest & io_edge) ev.events |= EPOLLET;
        ev.data.u64 = token;
        return ::epoll_ctl(epoll_fd_, op, fd, &ev);
    }

    // --- the table of registrations: a token is (generation << 32) | slot
    static constexpr std::uint64_t timer_token = ~std::uint64_t{0};
    static constexpr std::uint64_t wake_token = ~std::uint64_t{0} - 1;
    static constexpr std::uint32_t none = ~std::uint32_t{0};

    struct registration {
        io_node* node = nullptr;     // null while the slot is free
        std::uint32_t generation = 0;
        std::uint32_t next_free;  // while free: the next free slot, or none
    };

    std::uint64_t token_of(std::uint32_t slot) const noexcept {
        return (std::uint64_t{table_[slot].generation} << 32) | slot;
    }
    io_node* node_of(std::uint64_t token) const noexcept {
        const auto slot = static_cast<std::uint32_t>(token);
        if (slot >= table_.size()) return nullptr;
        const registration& r = table_[slot];
        return r.generation == static_cast<std::uint32_t>(token >> 32) ? r.node : nullptr;
    }
    std::uint32_t take_slot(io_node* node) {
        if (free_ == none) {
            table_.push_back({nullptr, 0, none});
            free_ = static_cast<std::uint32_t>(table_.size() - 1);
        }
        const std::uint32_t slot = free_;
        free_ = table_[slot].next_free;
        table_[slot].node = node;
        return slot;
    }
    void free_slot(std::uint32_t slot) noexcept {
        registration& r = table_[slot];
        r.node = nullptr;
        ++r.generation;
        r.next_free = free_;
        free_ = slot;
    }

    static void drain(int fd) noexcept {
        std::uint64_t count;
        [[maybe_unused]] auto r = ::read(fd, &count, sizeof count);
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
    std::size_t registrations_ = 0;
    std::vector<epoll_event> events_;
    std::vector<registration> table_;
    std::uint32_t free_ = none;  // the first free slot; each names the next
};

}  // namespace aio::detail
