#pragma once
// A child process inside the loop: its pidfd, registered with the loop's poller from the
// spawn until the child is reaped (asyncio's PidfdChildWatcher, without a global SIGCHLD
// handler or a thread). The kernel makes a pidfd readable once its process has exited;
// the watch's step, queued by that readiness (rule 4), reaps the child through the
// pidfd (waitid P_PIDFD, so never another process that took its pid), records the return
// code (asyncio's: the exit status, or minus the signal that killed it) and sets
// `exited`, which wakes every task in process::wait() through the ready queue.
//
// Lifetime: one reference for the process handle, one for each wait() in progress.
// When the last goes before the child has exited, the watch owns itself and stays
// registered until it reaps the child: a process handle dropped while the loop runs
// never leaves a zombie. A closing loop kills (SIGKILL) each child still running that
// it watches and reaps it before it returns: the wait is short, as the kernel tears a
// killed process down at once (unless it is stuck in an uninterruptible sleep).

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <utility>

#include "../event.hpp"
#include "io_node.hpp"
#include "loop_core.hpp"
#include "spawn.hpp"

namespace aio::detail {

class child_watch final : io_node, io_owner {
    static constexpr int pidfd_idtype = 3;  // P_PIDFD (<linux/wait.h>; glibc names it only from 2.36)

public:
    // Watches `pid` (through `pidfd`, taken) on `loop`; one reference, the caller's. If
    // the loop cannot watch it, the child is killed and reaped, and the error thrown.
    static child_watch* start(loop_core& loop, pid_t pid, unique_fd pidfd) {
        auto* c = new child_watch(loop, pid, std::move(pidfd));
        try {
            loop.add_io(c->pidfd_.get(), c, io_readable);
        } catch (...) {
            c->kill_and_reap();
            delete c;
            throw;
        }
        c->registered_ = true;
        loop.io_owners.push_back(c);
        return c;
    }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ != 0) return;
        if (registered_) {  // still running: reaped in the background
            orphaned_ = true;
            return;
        }
        delete this;
    }

    pid_t pid() const noexcept { return pid_; }
    const std::optional<int>& returncode() const noexcept { return returncode_; }
    event& exited() noexcept { return exited_; }
    bool reaped() const noexcept { return returncode_.has_value(); }

    // Sends `sig` to the child: 0, or errno (ESRCH once it has been reaped). A child that
    // has exited but is not reaped yet takes the signal without effect.
    int send_signal(int sig) const noexcept {
        if (!pidfd_) return ESRCH;
        if (pidfd_send_signal(pidfd_.get(), sig) == 0) return 0;
        return errno;
    }

private:
    child_watch(loop_core& loop, pid_t pid, unique_fd pidfd) : loop_(&loop), pid_(pid), pidfd_(std::move(pidfd)) {
        run = step;
        loop_closing = on_loop_closing;
    }
    ~child_watch() {
        if (registered_) unregister();
        if (links.prev) loop_->io_owners.unlink(this);
    }

    static void step(ready_item* item) noexcept {
        auto& c = static_cast<child_watch&>(static_cast<io_node&>(*item));
        c.events = 0;
        if (!c.registered_) return;
        if (!c.reap(WNOHANG)) return;  // not yet (a spurious report): still watched
        c.finish();
        if (c.orphaned_) delete &c;
    }

    // Reaps through the pidfd (waitid P_PIDFD, Linux 5.4; by pid on 5.3): true once the
    // child is reaped and its return code recorded. By the pidfd, not the pid: a child
    // that someone else reaped first, and whose pid a new child has taken since, must not
    // make this watch wait for (and take the status of) the new one.
    bool reap(int options) noexcept {
        siginfo_t info{};
        for (;;) {
            if (::waitid(static_cast<idtype_t>(pidfd_idtype), static_cast<id_t>(pidfd_.get()), &info, WEXITED | options) == 0)
                break;
            if (errno == EINTR) continue;
            if (errno == EINVAL) return reap_by_pid(options);  // Linux 5.3: pidfds, but no P_PIDFD yet
            // ECHILD: someone else reaped it (SIGCHLD ignored, a waitpid(-1) of the
            // program's own); asyncio reports 255 then.
            returncode_ = 255;
            return true;
        }
        if (info.si_pid == 0) return false;  // WNOHANG, and it has not exited yet
        if (info.si_code == CLD_EXITED) returncode_ = info.si_status;
        else if (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED) returncode_ = -info.si_status;
        else returncode_ = 255;
        return true;
    }

    bool reap_by_pid(int options) noexcept {
        int status = 0;
        for (;;) {
            const pid_t r = ::waitpid(pid_, &status, options);
            if (r == pid_) break;
            if (r == 0) return false;
            if (errno == EINTR) continue;
            returncode_ = 255;  // ECHILD, as above
            return true;
        }
        if (WIFEXITED(status)) returncode_ = WEXITSTATUS(status);
        else if (WIFSIGNALED(status)) returncode_ = -WTERMSIG(status);
        else returncode_ = 255;
        return true;
    }

    void unregister() noexcept {
        loop_->remove_io(pidfd_.get(), this);
        registered_ = false;
    }

    // Reaped: the pidfd goes, and the waiters are woken.
    void finish() noexcept {
        unregister();
        pidfd_.reset();
        exited_.set();
    }

    void kill_and_reap() noexcept {
        pidfd_send_signal(pidfd_.get(), SIGKILL);
        reap(0);
    }

    static void on_loop_closing(io_owner* owner) noexcept {
        auto& c = static_cast<child_watch&>(*owner);
        if (c.registered_) {
            if (!c.reap(WNOHANG)) c.kill_and_reap();
            c.unregister();
            c.pidfd_.reset();
        }
        c.loop_ = nullptr;  // the watch may outlive its loop (a process handle kept after aio::run)
        if (c.orphaned_) delete &c;
    }

    loop_core* loop_;
    pid_t pid_;
    unique_fd pidfd_;
    std::optional<int> returncode_;
    event exited_;
    std::uint32_t refs_ = 1;
    bool registered_ = false;
    bool orphaned_ = false;
};

// A reference to a watch (the process handle and every wait() hold one).
class child_ref {
public:
    child_ref() noexcept = default;
    explicit child_ref(child_watch* c) noexcept : c_(c) {}  // adopts a reference
    child_ref(const child_ref& other) noexcept : c_(other.c_) {
        if (c_) c_->add_ref();
    }
    child_ref(child_ref&& other) noexcept : c_(std::exchange(other.c_, nullptr)) {}
    child_ref& operator=(child_ref other) noexcept {
        std::swap(c_, other.c_);
        return *this;
    }
    ~child_ref() {
        if (c_) c_->release();
    }
    child_watch* operator->() const noexcept { return c_; }
    child_watch& operator*() const noexcept { return *c_; }
    explicit operator bool() const noexcept { return c_ != nullptr; }

private:
    child_watch* c_ = nullptr;
};

}  // namespace aio::detail
