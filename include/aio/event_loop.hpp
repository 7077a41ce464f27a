#pragma once
// aio::event_loop: asyncio's event loop — one thread, a FIFO ready queue, a timer
// queue and an epoll multiplexer (see detail/loop_core.hpp for the iteration).
//
// Most programs never touch it: aio::run creates one, runs the main task and closes
// it. aio::get_running_loop() reaches the loop from inside a task.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include "detail/callback_node.hpp"
#include "detail/done_step.hpp"
#include "detail/executor_call.hpp"
#include "detail/loop_core.hpp"
#include "detail/posted_call.hpp"
#include "detail/thread_check.hpp"
#include "errors.hpp"
#include "exception_context.hpp"
#include "executor.hpp"
#include "handle.hpp"
#include "net/detail/sock_calls.hpp"
#include "net/socket.hpp"
#include "net/socket_address.hpp"
#include "sleep.hpp"
#include "task.hpp"
#include "task_handle.hpp"
#include "thread_pool.hpp"

namespace aio {

namespace detail {
struct loop_access;
}

class event_loop {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    using exception_handler = std::function<void(event_loop&, const exception_context&)>;

    event_loop() = default;
    // A loop on a manual clock: time() reads `clock`, which moves only when advanced,
    // or when the loop, with nothing to run but timers, jumps it to the next one. For
    // tests and simulations; the clock must outlive the loop.
    explicit event_loop(detail::manual_clock& clock) : core_(*this, &clock) {}
    // Closes the loop if it is still open (see close()).
    ~event_loop() { release_default_executor(); }
    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    // Runs `main` as a task until it ends; returns its value or rethrows its
    // exception. Throws aio::runtime_error if this or another loop is already running
    // on this thread, if the loop is closed, or if the loop stops first.
    template <class T>
    T run_until_complete(task<T> main);

    // Runs until stop() is called. With nothing to run, it waits — as asyncio's does —
    // for a timer, I/O or a call from another thread.
    void run_forever() { core_.run_forever(); }

    // The loop finishes the iteration it is in, then run_forever() returns.
    void stop() noexcept {
        detail::assert_loop_thread(&core_, "aio::event_loop::stop() (from another thread: "
                                           "call_soon_threadsafe([&] { loop.stop(); }))");
        core_.stopping = true;
    }

    // Cancels what never ran and destroys the frame of every task still pending (or
    // leaves it to the last handle that refers to it). Throws while running.
    //
    // The default executor goes first: close() waits for the jobs it is running (a
    // worker must not outlive the pool it belongs to; asyncio's close() does not wait,
    // and its interpreter joins the workers at exit instead). aio::run has already
    // done that through shutdown_default_executor(), with a time limit.
    void close() {
        if (core_.running) throw aio::runtime_error("Cannot close a running event loop");
        release_default_executor();
        core_.close();
        core_.signals.clear();  // as asyncio's close(): every signal handler goes, defaults restored
    }

    bool is_running() const noexcept { return core_.running; }
    bool is_closed() const noexcept { return core_.closed; }
    time_point time() const noexcept {
        return time_point(std::chrono::duration_cast<clock::duration>(std::chrono::nanoseconds(core_.now())));
    }

    // Schedules f() at the back of the ready queue. Allocates the callback.
    template <class F>
        requires std::is_invocable_v<std::decay_t<F>&>
    handle call_soon(F&& f) {
        detail::check_loop_thread(&core_, "aio::event_loop::call_soon()");
        core_.check_open();
        auto* node = core_.make_callback(std::forward<F>(f));
        try {
            core_.push(&node->item);
        } catch (...) {
            node->release();
            throw;
        }
        return handle(node);
    }

    // Schedules f() for `delay` from now (a delay <= 0 means the next iteration's
    // timer check). Cancelling the handle disarms the timer.
    template <class Rep, class Period, class F>
        requires std::is_invocable_v<std::decay_t<F>&>
    timer_handle call_later(std::chrono::duration<Rep, Period> delay, F&& f) {
        const std::int64_t when = detail::deadline_after(core_.now(), detail::saturating_ns(delay));
        return call_at(time_point(std::chrono::nanoseconds(when)), std::forward<F>(f));
    }

    template <class F>
        requires std::is_invocable_v<std::decay_t<F>&>
    timer_handle call_at(time_point when, F&& f) {
        detail::check_loop_thread(&core_, "aio::event_loop::call_later()/call_at()");
        core_.check_open();
        auto* node = core_.make_callback(std::forward<F>(f));
        core_.arm(node, std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count());
        return timer_handle(node);
    }

    // --- descriptors of the program's own (asyncio's add_reader / add_writer)
    //
    // f() runs in every iteration in which `fd` is readable (writable), through the
    // ready queue, until removed: the descriptor is watched level-triggered, as a
    // selector watches it. One callback a descriptor and direction: adding another
    // replaces it. An exception from f goes to the exception handler. The descriptor
    // must stay open while watched; close it after remove_reader/remove_writer.
    // Throws aio::os_error when the kernel cannot watch it (not open, a regular file).
    template <class F>
        requires std::is_invocable_v<std::decay_t<F>&>
    void add_reader(int fd, F&& f) {
        add_fd_callback(fd, detail::io_readable, std::forward<F>(f), "aio::event_loop::add_reader()");
    }
    template <class F>
        requires std::is_invocable_v<std::decay_t<F>&>
    void add_writer(int fd, F&& f) {
        add_fd_callback(fd, detail::io_writable, std::forward<F>(f), "aio::event_loop::add_writer()");
    }
    // False when `fd` had no such callback. A callback may remove itself.
    bool remove_reader(int fd) {
        detail::check_loop_thread(&core_, "aio::event_loop::remove_reader()");
        return core_.fds.remove_callback(fd, detail::io_readable);
    }
    bool remove_writer(int fd) {
        detail::check_loop_thread(&core_, "aio::event_loop::remove_writer()");
        return core_.fds.remove_callback(fd, detail::io_writable);
    }

    // --- signals (asyncio's add_signal_handler / remove_signal_handler)
    //
    // f() runs on this loop's thread, through the ready queue, after `sig` is delivered
    // to the process (to any of its threads) — never inside the OS signal handler, so
    // it may do anything a callback may. Deliveries that come before it has run run it
    // once; a delivery after it has started runs it again. Adding a handler for a
    // signal this loop handles replaces it; one that another loop handles throws
    // aio::runtime_error (one loop a signal, process-wide; any thread's loop may
    // handle signals). While a handler is set, the signal can wake the loop: a task
    // waiting for it is not reported as a deadlock. Allocates the callback.
    // Throws std::invalid_argument for a number outside [1, NSIG), aio::runtime_error
    // for a signal that cannot be caught (SIGKILL, SIGSTOP) and on a closed loop. The
    // loop's close() removes every handler it has.
    template <class F>
        requires detail::signal_callback<F>
    void add_signal_handler(int sig, F&& f) {
        detail::check_loop_thread(&core_, "aio::event_loop::add_signal_handler()");
        detail::check_signal_number(sig, "aio::event_loop::add_signal_handler()");
        core_.check_open();
        core_.signals.add(sig, core_.make_callback(std::forward<F>(f)));
    }
    // Removes the handler and gives `sig` its default action back (SIG_DFL; for SIGINT
    // inside aio::run, run's Ctrl-C handling); false when this loop had no handler for
    // it. A delivery whose callback has not run yet is dropped. A handler may remove
    // itself. Throws std::invalid_argument for a number outside [1, NSIG).
    bool remove_signal_handler(int sig) {
        detail::check_loop_thread(&core_, "aio::event_loop::remove_signal_handler()");
        detail::check_signal_number(sig, "aio::event_loop::remove_signal_handler()");
        return core_.signals.remove(sig);
    }

    // --- sockets (asyncio's sock_* calls), awaited in a task of this loop
    //
    // Each tries its system call first and waits only when the kernel says it would
    // block (aio::wait_readable / wait_writable), so data already there costs one
    // system call and no trip through the loop. Failures throw aio::os_error (or a
    // connection_error for refused, reset, aborted, broken pipe).
    //
    // Cancel safety: a cancellation lands only while the call waits, before anything
    // is read or accepted: a cancelled sock_recv / sock_recv_into has consumed nothing,
    // a cancelled sock_accept has taken no connection. A cancelled sock_sendall (and
    // sock_sendfile) may have sent a part, as asyncio's may; a cancelled sock_connect
    // leaves the socket to be closed.

    // Up to `n` bytes, as soon as any are there; empty at EOF.
    task<std::string> sock_recv(int fd, std::size_t n) {
        detail::check_loop_thread(&core_, "aio::event_loop::sock_recv()");
        return detail::sock_recv(fd, n);
    }
    // Into `buffer` (which must outlive the call): how many bytes; 0 at EOF.
    task<std::size_t> sock_recv_into(int fd, std::span<std::byte> buffer) {
        detail::check_loop_thread(&core_, "aio::event_loop::sock_recv_into()");
        return detail::sock_recv_into(fd, buffer);
    }
    task<std::size_t> sock_recv_into(int fd, std::span<char> buffer) { return sock_recv_into(fd, std::as_writable_bytes(buffer)); }
    // All of `data` (which must outlive the call). MSG_NOSIGNAL: a peer that has gone
    // is an aio::broken_pipe_error or connection_reset_error, never SIGPIPE.
    task<> sock_sendall(int fd, std::string_view data) {
        detail::check_loop_thread(&core_, "aio::event_loop::sock_sendall()");
        return detail::sock_sendall(fd, data);
    }
    // Connects a non-blocking socket (std::invalid_argument for a blocking one).
    task<> sock_connect(int fd, const socket_address& address) {
        detail::check_loop_thread(&core_, "aio::event_loop::sock_connect()");
        return detail::sock_connect(fd, address);
    }
    // The next connection of a non-blocking listening socket, non-blocking and
    // close-on-exec, with the peer's address. A connection reset before it was
    // accepted is skipped.
    task<std::pair<socket, socket_address>> sock_accept(int fd) {
        detail::check_loop_thread(&core_, "aio::event_loop::sock_accept()");
        return detail::sock_accept(fd);
    }
    // `count` bytes of `file` from `offset` (nullopt: to its end) through sendfile(2),
    // or read and sent where sendfile cannot (asyncio's fallback); how many were sent.
    // The file's position is left after them.
    task<std::size_t> sock_sendfile(int fd, int file, std::uint64_t offset = 0,
                                    std::optional<std::size_t> count = std::nullopt) {
        detail::check_loop_thread(&core_, "aio::event_loop::sock_sendfile()");
        return detail::sock_sendfile(fd, file, offset, count);
    }

    // Datagrams (asyncio's sock_recvfrom / sock_recvfrom_into / sock_sendto): one a
    // call, with the sender's address; a datagram longer than the room is cut to it.
    // A cancelled receive has taken no datagram; a cancelled sock_sendto sent none.
    task<std::pair<std::string, socket_address>> sock_recvfrom(int fd, std::size_t bufsize) {
        detail::check_loop_thread(&core_, "aio::event_loop::sock_recvfrom()");
        return detail::sock_recvfrom(fd, bufsize);
    }
    // Into the first `nbytes` of `buffer` (0: all of it; more than its size:
    // std::invalid_argument). The buffer must outlive the call.
    task<std::pair<std::size_t, socket_address>> sock_recvfrom_into(int fd, std::span<std::byte> buffer, std::size_t nbytes = 0) {
        detail::check_loop_thread(&core_, "aio::event_loop::sock_recvfrom_into()");
        return detail::sock_recvfrom_into(fd, buffer, nbytes);
    }
    task<std::pair<std::size_t, socket_address>> sock_recvfrom_into(int fd, std::span<char> buffer, std::size_t nbytes = 0) {
        return sock_recvfrom_into(fd, std::as_writable_bytes(buffer), nbytes);
    }
    // `data` (which must outlive the call) as one datagram to `to`; its size.
    task<std::size_t> sock_sendto(int fd, std::string_view data, const socket_address& to) {
        detail::check_loop_thread(&core_, "aio::event_loop::sock_sendto()");
        return detail::sock_sendto(fd, data, to);
    }

    // Wraps `t` in a task scheduled at the back of the ready queue: it starts once the
    // caller yields. Tasks are named "Task-N" in creation order unless named.
    template <class T>
    task_handle<T> create_task(task<T> t, std::string name = {}) {
        detail::check_loop_thread(&core_, "aio::event_loop::create_task()");
        auto& p = t.detach_for_spawn();
        core_.spawn(p, std::move(name));
        t.release();
        return task_handle<T>(&p);
    }

    // --- other threads

    // Any thread: f() runs on the loop's thread, in the iteration after it arrives,
    // after whatever the same thread posted before (asyncio's call_soon_threadsafe).
    // From the loop's own thread it is call_soon. A loop asleep in its poller is woken;
    // posts that arrive while it is busy cost no wake-up. Throws aio::runtime_error once
    // the loop is closed. An exception from f goes to the exception handler. Unlike
    // asyncio's, it returns no handle: a handle would be shared by two threads.
    template <class F>
        requires std::is_invocable_v<std::decay_t<F>&>
    void call_soon_threadsafe(F&& f) {
        if (detail::running_loop == &core_) {  // from the loop's own thread: call_soon, in order with it
            call_soon(std::forward<F>(f));
            return;
        }
        auto* node = new detail::posted_call<std::decay_t<F>>(&core_, std::forward<F>(f));
        if (!core_.post(node)) {
            delete node;
            throw aio::runtime_error("Event loop is closed");
        }
    }

    // Keeps the loop alive for a thread that will call into it later: while a token
    // lives, run_until_complete waits for that thread's calls instead of reporting a
    // deadlock when nothing else can wake the loop (asyncio never reports one; aio does,
    // see the README). Any thread may make one, move it and drop it; it may outlive the
    // loop. Jobs run through run_in_executor keep the loop alive by themselves.
    //
    //   std::thread producer([&, alive = loop.keep_alive()] { ... loop.call_soon_threadsafe(...); });
    class keep_alive_token {
    public:
        keep_alive_token(keep_alive_token&& other) noexcept : box_(std::exchange(other.box_, nullptr)) {}
        keep_alive_token& operator=(keep_alive_token&& other) noexcept {
            if (this != &other) {
                reset();
                box_ = std::exchange(other.box_, nullptr);
            }
            return *this;
        }
        keep_alive_token(const keep_alive_token&) = delete;
        keep_alive_token& operator=(const keep_alive_token&) = delete;
        ~keep_alive_token() { reset(); }
        // Lets go before the token is destroyed.
        void reset() noexcept {
            if (detail::mailbox* b = std::exchange(box_, nullptr)) {
                b->unhold();
                b->release();
            }
        }

    private:
        friend class event_loop;
        explicit keep_alive_token(detail::mailbox* box) noexcept : box_(box) { box_->hold(); }
        detail::mailbox* box_;
    };
    [[nodiscard]] keep_alive_token keep_alive() { return keep_alive_token(core_.share_mailbox()); }

    // co_await loop.run_in_executor(executor, f, args...): f(args...) runs through
    // `executor` (nullptr: the loop's default executor, as asyncio's None), and the
    // awaiting task gets its value (what f returns, by value) or its exception. The
    // job is submitted at once, as asyncio's is; the task returned only waits for it,
    // and can be awaited, gathered or spawned like any other (once). The arguments
    // are copied or moved into the job. Cancelling the awaiting task ends the await
    // at once, with cancelled_error: a job not yet started then never runs, one
    // running runs on to its end and its result is dropped. `executor` must outlive
    // the job. On the loop's thread.
    template <executor E, class F, class... A>
        requires std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>
    task<detail::executor_result_t<F, A...>> run_in_executor(E& executor, F&& f, A&&... args) {
        detail::check_loop_thread(&core_, "aio::event_loop::run_in_executor()");
        using result = detail::executor_result_t<F, A...>;
        return detail::awaiting_call<result>(
            detail::executor_awaiter<result>("aio::event_loop::run_in_executor()", core_, executor, std::forward<F>(f),
                                             std::forward<A>(args)...));
    }
    template <class F, class... A>
        requires std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>
    task<detail::executor_result_t<F, A...>> run_in_executor(std::nullptr_t, F&& f, A&&... args) {
        detail::check_loop_thread(&core_, "aio::event_loop::run_in_executor()");
        return run_in_executor(default_executor(), std::forward<F>(f), std::forward<A>(args)...);
    }

    // The pool behind run_in_executor(nullptr, ...) and aio::to_thread, started on first
    // use: thread_pool::default_max_workers() workers at most. Throws
    // aio::runtime_error once shutdown_default_executor() has been called.
    thread_pool& default_executor() {
        detail::check_loop_thread(&core_, "aio::event_loop::default_executor()");
        if (executor_shut_down_) throw aio::runtime_error("Executor shutdown has been called");
        core_.check_open();
        if (!default_executor_) default_executor_ = std::make_unique<thread_pool>();
        return *default_executor_;
    }

    // asyncio's shutdown_default_executor: refuses new jobs, waits for the running ones
    // up to `timeout` (the loop goes on running meanwhile), then joins the workers and
    // destroys the pool. Past the timeout it reports, through the exception handler,
    // which tasks' jobs are still running, and then waits for them after all: a worker
    // must not outlive its pool. aio::run calls it with the default 300 s.
    // A call made while another waits for the pool waits for it too.
    task<> shutdown_default_executor(std::chrono::nanoseconds timeout = std::chrono::seconds(300)) {
        detail::check_loop_thread(&core_, "aio::event_loop::shutdown_default_executor()");
        executor_shut_down_ = true;  // no new jobs from here on
        while (executor_shutting_down_) co_await sleep(std::chrono::milliseconds(1));  // rare: poll the other call
        if (!default_executor_) co_return;
        executor_shutting_down_ = true;
        struct busy_scope {
            bool& busy;
            ~busy_scope() { busy = false; }
        } busy{executor_shutting_down_};
        thread_pool* pool = default_executor_.get();
        joiner_thread joiner{executor_joiner_};
        detail::executor_awaiter<bool> joining("aio::event_loop::shutdown_default_executor()", core_, joiner,
                                               [pool, timeout] { return pool->join_for(timeout); });
        const bool joined = co_await std::move(joining);
        if (!joined) {
            std::string who;
            for (const std::string& origin : pool->running_origins()) who += (who.empty() ? "" : ", ") + origin;
            const auto seconds = std::chrono::duration<double>(timeout).count();
            core_.report({"The default executor did not finish joining its threads within " + std::to_string(seconds) +
                              " seconds; still running: jobs of " + (who.empty() ? std::string("(none)") : who),
                          nullptr,
                          {}});
            detail::executor_awaiter<void> waiting("aio::event_loop::shutdown_default_executor()", core_, joiner,
                                                   [pool] { pool->shutdown(true); });
            co_await std::move(waiting);
        }
        if (executor_joiner_.joinable()) executor_joiner_.join();
        default_executor_.reset();
    }

    // Replaces the default handler (one line on stderr); an empty function restores it.
    void set_exception_handler(exception_handler handler) { core_.handler = std::move(handler); }
    exception_handler get_exception_handler() const { return core_.handler; }
    void call_exception_handler(const exception_context& context) noexcept { core_.report(context); }
    static void default_exception_handler(const exception_context& context) noexcept {
        detail::print_exception_context(context);
    }

private:
    friend struct detail::loop_access;

    // Runs each job on a thread of its own, one at a time: shutdown_default_executor's
    // wait for the pool, off the loop's thread.
    struct joiner_thread {
        std::thread& thread;
        void submit(job j) {
            if (thread.joinable()) thread.join();
            thread = std::thread(std::move(j));
        }
    };

    template <class F>
    void add_fd_callback(int fd, std::uint32_t direction, F&& f, const char* what) {
        detail::check_loop_thread(&core_, what);
        core_.check_open();
        core_.fds.set_callback(fd, direction, core_.make_callback(std::forward<F>(f)));
    }

    // Waits for the default executor's jobs and workers (and for a shutdown's joiner).
    void release_default_executor() noexcept {
        if (executor_joiner_.joinable()) executor_joiner_.join();
        default_executor_.reset();
    }

    detail::loop_core core_{*this};
    std::unique_ptr<thread_pool> default_executor_;
    std::thread executor_joiner_;
    bool executor_shut_down_ = false;
    bool executor_shutting_down_ = false;  // a shutdown_default_executor() call is waiting for the pool
};

namespace detail {
struct loop_access {
    static loop_core& core(event_loop& loop) noexcept { return loop.core_; }
};
}  // namespace detail

// The loop running on this thread; throws aio::runtime_error when there is none.
inline event_loop& get_running_loop() {
    if (!detail::running_loop) throw aio::runtime_error("no running event loop");
    return detail::running_loop->owner();
}

namespace detail {
// run_until_complete stops the loop once the main task has ended — through the ready
// queue, like any done callback (API rule 9).
struct stop_when_done : done_step {
    stop_when_done(loop_core& loop, task_state& t) : loop_(loop), task_(t) {
        run = [](ready_item* item) noexcept { static_cast<stop_when_done*>(item)->loop_.stopping = true; };
        watch(loop_, task_);
    }
    ~stop_when_done() { unwatch(loop_, task_); }
    stop_when_done(const stop_when_done&) = delete;
    stop_when_done& operator=(const stop_when_done&) = delete;

private:
    loop_core& loop_;
    task_state& task_;
};
}  // namespace detail

namespace detail {
// Runs `loop` until the spawned task `t` has ended (and the iteration it ended in).
inline void run_until_done(loop_core& loop, task_state& t) {
    {
        stop_when_done stopper(loop, t);
        loop.run_until([&] { return loop.stopping; });  // a deadlock is an error here
    }
    if (!t.done()) throw aio::runtime_error("Event loop stopped before the task completed");
}
}  // namespace detail

template <class T>
T event_loop::run_until_complete(task<T> main) {
    core_.check_open();
    if (core_.running) throw aio::runtime_error("This event loop is already running");
    if (detail::running_loop) throw aio::runtime_error("Cannot run the event loop while another loop is running");
    task_handle<T> h = create_task(std::move(main));
    detail::task_state& t = *detail::handle_access::state(h);
    detail::run_until_done(core_, t);
    return detail::task_result<T>(t, t.handle_count() == 1);
}

}  // namespace aio
