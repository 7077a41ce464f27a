#pragma once
// Ctrl-C during aio::run, as asyncio.run handles it: the first SIGINT cancels the main
// task, so that the program unwinds through its own cleanup; run() then throws
// aio::keyboard_interrupt. A second SIGINT before that has finished takes the
// default action at once (the process ends), as a second Ctrl-C would.
//
// It is one signal handler of the loop's (signals.hpp), registered as a fallback: a
// handler the program adds for SIGINT with add_signal_handler replaces it (and gets
// every SIGINT, the second one included), and removing that handler brings this one
// back — as asyncio's remove_signal_handler(SIGINT) brings back the handler that
// raises KeyboardInterrupt. The cancellation runs on the loop's thread, through the
// ready queue, like any signal handler's callback.

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "loop_core.hpp"
#include "task_state.hpp"

namespace aio::detail {

// For the duration of one aio::run on the main thread, and only if SIGINT still has
// its default action (a program or a test framework with its own handler keeps it).
class sigint_scope {
public:
    explicit sigint_scope(loop_core& loop) noexcept : loop_(loop) {
        if (::syscall(SYS_gettid) != ::getpid()) return;
        struct sigaction current {};
        if (::sigaction(SIGINT, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
        try {
            loop.signals.add(SIGINT, loop.make_callback([this] { on_sigint(); }), true);
            installed_ = true;
        } catch (...) {
            // No memory, or another loop took SIGINT meanwhile: Ctrl-C keeps its default.
        }
    }
    ~sigint_scope() {
        if (installed_) loop_.signals.remove(SIGINT, true);  // nothing left to remove once the loop has closed
    }
    sigint_scope(const sigint_scope&) = delete;
    sigint_scope& operator=(const sigint_scope&) = delete;

    // The task the first Ctrl-C cancels; null: none any more (run is shutting down).
    void target(task_state* t) noexcept { target_ = t; }

    bool installed() const noexcept { return installed_; }
    // Whether a Ctrl-C cancelled the target.
    bool interrupted() const noexcept { return interrupted_; }

private:
    void on_sigint() noexcept {
        if (!target_ || target_->done()) return;
        interrupted_ = true;
        target_->cancel();
    }

    loop_core& loop_;
    task_state* target_ = nullptr;
    bool installed_ = false;
    bool interrupted_ = false;
};

}  // namespace aio::detail
