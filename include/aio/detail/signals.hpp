#pragma once
// Signals (asyncio's add_signal_handler): a process-wide table from signal number to
// the loop that handles it, the one OS handler every handled signal shares, and each
// loop's registry of its own signals.
//
// The OS handler does only async-signal-safe things: it marks the signal pending in
// the table, marks the owning loop as having a signal pending, and writes to that
// loop's wake-up eventfd (poller::signal_waker), which ends a wait the loop may be
// blocked in. The loop, once per iteration, looks at its mark (one relaxed load) and,
// when it is set, queues the entry of each of its signals found pending; the entry's
// step then calls the program's callback, through the ready queue, on the loop's
// thread — never inside the OS handler. A signal delivered several times before the
// loop looks runs the callback once (the flag coalesces, as the kernel itself does
// with a standard signal that is already pending); a delivery after the loop has
// cleared the flag always runs it once more.
//
// The table is the one piece of process-wide mutable state in aio: signal
// dispositions belong to the process, not to a loop. A mutex orders registrations
// (the handler never takes it). The handler reaches a loop's registry only through
// the table, between an increment and a decrement of the slot's in_handler count; a
// removal clears the slot and then waits for that count to fall to zero, so that no
// handler can still be touching a registry (or writing to an eventfd) that is going
// away, whichever thread the signal was delivered to.
//
// The loop-side steps (queueing, running a callback) are in signal_events.hpp.

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "../errors.hpp"
#include "../os_error.hpp"
#include "callback_node.hpp"
#include "poller.hpp"
#include "ready_queue.hpp"

namespace aio {
template <class T>
class task;
}

namespace aio::detail {

template <class R>
inline constexpr bool is_task_type_v = false;
template <class T>
inline constexpr bool is_task_type_v<task<T>> = true;

// What add_signal_handler takes: a callable with no arguments. One that returns a task
// would make a coroutine nobody runs (asyncio: "coroutines cannot be used with
// add_signal_handler()"): a compile error here.
template <class F>
concept signal_callback = std::is_invocable_v<std::decay_t<F>&> &&
                          !is_task_type_v<std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>&>>>;

class loop_core;
class signal_registry;

// One per signal number, process-wide. Every member is a lock-free atomic, which is
// what a signal handler may touch.
struct signal_slot {
    std::atomic<signal_registry*> owner{nullptr};  // the registry handling it; null: none
    std::atomic<bool> pending{false};              // delivered, not yet queued by its loop
    std::atomic<int> in_handler{0};                // OS handlers inside the slot now
    // aio::run's Ctrl-C: a second delivery takes the default action at once.
    std::atomic<bool> repeat_is_fatal{false};
    std::atomic<int> deliveries{0};  // since repeat_is_fatal was last set
};
static_assert(std::atomic<signal_registry*>::is_always_lock_free && std::atomic<bool>::is_always_lock_free &&
                  std::atomic<int>::is_always_lock_free,
              "aio: signal handlers need lock-free atomics");

inline signal_slot signal_slots[NSIG];
inline std::mutex signal_table_mutex;  // add and remove; never the OS handler

// "SIGTERM" (or "signal 40" for one without a name).
inline std::string signal_name(int sig) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
#endif
    return "signal " + std::to_string(sig);
}

// asyncio's _check_signal: a signal number the kernel knows of (ValueError there).
inline void check_signal_number(int sig, const char* what) {
    if (sig < 1 || sig >= NSIG)
        throw std::invalid_argument(std::string(what) + ": sig " + std::to_string(sig) + " out of range(1, " +
                                    std::to_string(NSIG) + ")");
}

// What the loop keeps for one signal it handles: queued as a ready_item when the
// signal is pending.
struct signal_entry : ready_item {
    explicit signal_entry(int signal_number) noexcept : sig(signal_number) {}

    int sig;
    callback_node* handler = nullptr;   // add_signal_handler's (one reference)
    callback_node* fallback = nullptr;  // aio::run's Ctrl-C: in force while no handler is
    bool in_step = false;               // its step is running: freed after, not during
    bool removed = false;               // removed during its step: the step frees it
};

class signal_registry {
public:
    signal_registry(loop_core& loop, poller::signal_waker waker) noexcept : loop_(loop), waker_(waker) {}
    // The loop's owner clears it before the loop goes (event_loop::close and its
    // destructor); this is the last resort, which puts the defaults back.
    ~signal_registry() { clear(false); }
    signal_registry(const signal_registry&) = delete;
    signal_registry& operator=(const signal_registry&) = delete;

    // Makes `node` (one reference, the registry's from now on, let go of if this
    // throws) the callback for `sig`, replacing this loop's previous one. A `fallback`
    // is aio::run's Ctrl-C: it gives way to a handler the program adds, and comes back
    // when that handler is removed; a second delivery while it is in force ends the
    // process. Throws aio::runtime_error when another loop handles `sig` or the
    // kernel will not let it be caught (SIGKILL, SIGSTOP: EINVAL), aio::os_error for
    // another refusal. `sig` is checked already.
    void add(int sig, callback_node* node, bool fallback = false);
    // Removes `sig`'s handler (or fallback); false when there was none. Once neither is
    // left, the signal gets its default action back (SIG_DFL) and its slot is free for
    // another loop; a delivery not yet run is dropped.
    bool remove(int sig, bool fallback = false) noexcept;
    // Every signal goes, defaults restored (the loop is closing).
    void clear() noexcept { clear(true); }

    // The loop, after waking, when pending is set: queues the entry of each of its
    // signals delivered since it last looked.
    void take_pending();

    bool handles(int sig) const noexcept { return find(sig) != nullptr; }
    // A handler the program added counts as something that can wake the loop (a task
    // waiting for SIGTERM is not deadlocked); aio::run's Ctrl-C does not. It does not
    // hold a manual clock back: simulated time still jumps to the next timer.
    bool can_wake() const noexcept { return handlers_ != 0; }

    // The OS handler's wake-up of the loop: async-signal-safe.
    void wake() const noexcept { waker_(); }

    // Set by the OS handler, cleared by the loop (take_pending).
    std::atomic<bool> pending{false};

private:
    signal_entry* find(int sig) const noexcept {
        for (signal_entry* e : entries_)
            if (e->sig == sig) return e;
        return nullptr;
    }
    void claim(int sig, bool fallback);
    void release_slot(signal_entry& e) noexcept;
    void let_go(callback_node* node) noexcept;
    void clear(bool loop_alive) noexcept;
    static void step(ready_item* item) noexcept;

    loop_core& loop_;
    poller::signal_waker waker_;
    std::vector<signal_entry*> entries_;  // the signals this loop handles (a few)
    callback_node* invoking_ = nullptr;   // the callback running now: disposed of after, not inside
    std::size_t handlers_ = 0;            // entries with a handler of the program's
};

// The OS handler's work, for every signal the table holds.
inline void aio_signal_handler_body(int sig) noexcept {
    signal_slot& s = signal_slots[sig];
    s.in_handler.fetch_add(1);
    if (s.repeat_is_fatal.load() && s.deliveries.fetch_add(1) > 0) {
        // A second Ctrl-C before the first has been dealt with: the default action now.
        // The signal is blocked while its handler runs; raised here, it is delivered,
        // with SIG_DFL, as the handler returns.
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        ::sigaction(sig, &dfl, nullptr);
        s.in_handler.fetch_sub(1);
        ::raise(sig);
        return;
    }
    if (signal_registry* r = s.owner.load()) {
        s.pending.store(true);
        r->pending.store(true);
        r->wake();
    }
    s.in_handler.fetch_sub(1);
}

extern "C" inline void aio_signal_handler(int sig) {
    const int saved = errno;  // the wake-up's write() must not clobber the interrupted code's errno
    aio_signal_handler_body(sig);
    errno = saved;
}

// Puts `sig` in `this` registry's hands: claims its slot (refused if another loop holds
// it) and installs the OS handler. The slot is ready before the handler goes in, so a
// delivery at once finds where to go.
inline void signal_registry::claim(int sig, bool fallback) {
    std::lock_guard lock(signal_table_mutex);
    signal_slot& s = signal_slots[sig];
    if (s.owner.load() != nullptr)
        throw aio::runtime_error("aio::event_loop::add_signal_handler(): " + signal_name(sig) + " (" +
                                 std::to_string(sig) +
                                 ") is handled by another event loop; remove it there first (one loop a signal)");
    s.pending.store(false);
    s.deliveries.store(0);
    s.repeat_is_fatal.store(fallback);
    s.owner.store(this);
    struct sigaction ours {};
    ours.sa_handler = aio_signal_handler;
    sigemptyset(&ours.sa_mask);
    ours.sa_flags = SA_RESTART;  // asyncio's siginterrupt(sig, False)
    if (::sigaction(sig, &ours, nullptr) != 0) {
        const int err = errno;
        s.owner.store(nullptr);
        s.repeat_is_fatal.store(false);
        const std::string what = "aio::event_loop::add_signal_handler(): sig " + std::to_string(sig) + " (" +
                                 signal_name(sig) + ")";
        if (err == EINVAL) throw aio::runtime_error(what + " cannot be caught: " + ::strerror(err));
        detail::throw_os_error(err, what + ": sigaction");
    }
}

// `e`'s signal is left to its default action, and its slot to whichever loop wants it.
inline void signal_registry::release_slot(signal_entry& e) noexcept {
    std::lock_guard lock(signal_table_mutex);
    signal_slot& s = signal_slots[e.sig];
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(e.sig, &dfl, nullptr);  // cannot fail for a signal that was caught
    s.owner.store(nullptr);
    s.repeat_is_fatal.store(false);
    // A handler that read the owner before it was cleared may still be writing to
    // this loop: wait for it (it never blocks, so this is a few instructions at most).
    while (s.in_handler.load() != 0) std::this_thread::yield();
    s.pending.store(false);
}

// A callback is dropped: its callable goes now, unless it is the one running (a
// handler that removes or replaces itself), which goes once it returns.
inline void signal_registry::let_go(callback_node* node) noexcept {
    node->cancelled = true;
    if (node != invoking_) node->dispose();
    node->release();
}

}  // namespace aio::detail
