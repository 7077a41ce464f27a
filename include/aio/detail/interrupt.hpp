#pragma once
// Ctrl-C during aio::run, as asyncio.run handles it: the first SIGINT cancels the main
// task, so that the program unwinds through its own cleanup; run() then throws
// aio::keyboard_interrupt. A second SIGINT before that has finished takes the
// default action at once (the process ends), as a second Ctrl-C would.
//
// The handler only does what is async-signal-safe: it counts, sets a flag and wakes
// the loop through its poller's signal waker (which ends a wait it may be blocked in).
// The loop reads the flag once per iteration and cancels the main task itself.

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>

#include "poller.hpp"

namespace aio::detail {

class loop_core;

inline volatile std::sig_atomic_t sigint_pending = 0;  // set by the handler, cleared by the loop
inline volatile std::sig_atomic_t sigint_count = 0;    // SIGINTs since the handler went in
inline poller::signal_waker sigint_waker;

extern "C" inline void aio_sigint_handler(int) {
    sigint_count = sigint_count + 1;
    if (sigint_count > 1) {
        ::signal(SIGINT, SIG_DFL);
        ::raise(SIGINT);
        return;
    }
    sigint_pending = 1;
    sigint_waker();
}

// For the duration of one aio::run on the main thread, and only if SIGINT still has
// its default action (a program or a test framework with its own handler keeps it).
class sigint_scope {
public:
    explicit sigint_scope(poller::signal_waker waker) noexcept {
        if (::syscall(SYS_gettid) != ::getpid()) return;
        struct sigaction current {};
        if (::sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
        sigint_waker = waker;
        sigint_count = 0;
        sigint_pending = 0;
        struct sigaction ours {};
        ours.sa_handler = aio_sigint_handler;
        sigemptyset(&ours.sa_mask);
        ours.sa_flags = SA_RESTART;
        installed_ = ::sigaction(SIGINT, &ours, &previous_) == 0;
    }
    ~sigint_scope() {
        if (!installed_) return;
        ::sigaction(SIGINT, &previous_, nullptr);
        sigint_pending = 0;
        sigint_waker = {};
    }
    sigint_scope(const sigint_scope&) = delete;
    sigint_scope& operator=(const sigint_scope&) = delete;

    bool installed() const noexcept { return installed_; }
    bool interrupted() const noexcept { return installed_ && sigint_count > 0; }

private:
    struct sigaction previous_ {};
    bool installed_ = false;
};

}  // namespace aio::detail
