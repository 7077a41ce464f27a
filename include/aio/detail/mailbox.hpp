#pragma once
// What other threads hold to reach a loop: its inbox and a way to wake it, reference
// counted so that it outlives the loop for whoever still holds it.
//
// A worker finishing a job, or a thread calling into the loop, may do so at any time,
// also while the loop closes or after it is gone. It posts through the mailbox, never
// the loop: once the loop has closed, the inbox refuses the post (the poster keeps its
// node and frees it), and the wake-up goes to the mailbox's own descriptor — a
// duplicate of the loop's eventfd, so writing it wakes the loop while the loop lives
// and harms nothing after. The loop holds one reference; each in-flight job, each
// run_coroutine_threadsafe future not yet done and each keep-alive token holds one more.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>

#include "../errors.hpp"
#include "block_cache.hpp"
#include "inbox.hpp"

namespace aio::detail {

class mailbox {
public:
    // Takes one reference (the caller's). `wake_fd` is the loop's eventfd.
    static mailbox* create(int wake_fd) {
        const int fd = ::fcntl(wake_fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            throw aio::runtime_error(std::string("aio event loop: dup of the wake-up eventfd failed: ") +
                                     std::strerror(errno));
        // From the block cache, not malloc: a loop made and closed over and over (a
        // benchmark, a test) would otherwise leave this small block at the top of the
        // heap each time, and glibc trims and regrows the heap around it, page faults
        // and all, on every loop.
        void* memory;
        try {
            memory = allocate_block(sizeof(mailbox));
        } catch (...) {
            ::close(fd);
            throw;
        }
        return ::new (memory) mailbox(fd);
    }
    mailbox(const mailbox&) = delete;
    mailbox& operator=(const mailbox&) = delete;

    // Any thread.
    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
        this->~mailbox();
        deallocate_block(this, sizeof(mailbox));  // on whichever thread let go last
    }

    // Any thread: queues `node` for the loop and wakes it if it may be asleep. False
    // when the loop has closed: the node is still the caller's.
    bool post(inbox_node* node) noexcept {
        const inbox::posted r = box.post(node);
        if (r == inbox::posted::queued_wake) wake();
        return r != inbox::posted::refused;
    }

    void wake() const noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto r = ::write(fd_, &one, sizeof one);
    }

    bool closed() const noexcept { return box.closed(); }

    // Any thread: a promise to post later, which keeps the loop from reporting a
    // deadlock meanwhile. Letting go wakes the loop, so that it looks again.
    void hold() noexcept { holds_.fetch_add(1, std::memory_order_relaxed); }
    void unhold() noexcept {
        holds_.fetch_sub(1, std::memory_order_release);
        wake();
    }
    bool held() const noexcept { return holds_.load(std::memory_order_acquire) != 0; }

    inbox box;

private:
    explicit mailbox(int fd) noexcept : fd_(fd) {}
    ~mailbox() { ::close(fd_); }

    std::atomic<std::uint32_t> refs_{1};
    std::atomic<std::size_t> holds_{0};
    int fd_;
};

}  // namespace aio::detail
