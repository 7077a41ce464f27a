#pragma once
// aio::event_loop: asyncio's event loop — one thread, a FIFO ready queue, a timer
// queue and an epoll multiplexer (see detail/loop_core.hpp for the iteration).
//
// Most programs never touch it: aio::run creates one, runs the main task and closes
// it. aio::get_running_loop() reaches the loop from inside a task.

#include <chrono>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/callback_node.hpp"
#include "detail/done_step.hpp"
#include "detail/loop_core.hpp"
#include "detail/thread_check.hpp"
#include "errors.hpp"
#include "exception_context.hpp"
#include "handle.hpp"
#include "task.hpp"
#include "task_handle.hpp"

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
    ~event_loop() = default;
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
    void stop() noexcept { core_.stopping = true; }

    // Cancels what never ran and destroys the frame of every task still pending (or
    // leaves it to the last handle that refers to it). Throws while running.
    void close() { core_.close(); }

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

    // Replaces the default handler (one line on stderr); an empty function restores it.
    void set_exception_handler(exception_handler handler) { core_.handler = std::move(handler); }
    exception_handler get_exception_handler() const { return core_.handler; }
    void call_exception_handler(const exception_context& context) noexcept { core_.report(context); }
    static void default_exception_handler(const exception_context& context) noexcept {
        detail::print_exception_context(context);
    }

private:
    friend struct detail::loop_access;
    detail::loop_core core_{*this};
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
