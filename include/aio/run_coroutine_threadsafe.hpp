#pragma once
// aio::run_coroutine_threadsafe and aio::run_on: hand a task to a loop that runs on
// another thread.
//
//   // from any thread, to a loop running (run_forever) on its own thread:
//   aio::concurrent_future<int> f = aio::run_coroutine_threadsafe(compute(), loop);
//   int n = f.result();
//
//   // from a task of one loop, to another loop, without blocking either:
//   int m = co_await aio::run_on(other_loop, compute());
//
// The task is posted through the loop's inbox (call_soon_threadsafe) and spawned there;
// its value, exception or cancellation completes the future, as asyncio's
// _chain_future does. Cancelling the future cancels the task on its loop (through the
// inbox); a future cancelled before the task started keeps it from starting. A loop
// that closes first cancels the future. Throws aio::runtime_error when the loop is
// closed already.
//
// The lazy task moves to the other thread: whatever it refers to must be safe to use
// there, and its frame is freed there.

#include <exception>
#include <memory>
#include <new>
#include <utility>

#include "concurrent_future.hpp"
#include "detail/loop_core.hpp"
#include "detail/mailbox.hpp"
#include "detail/posted_call.hpp"
#include "errors.hpp"
#include "event_loop.hpp"
#include "task.hpp"
#include "wrap_future.hpp"

namespace aio {

namespace detail {

// The spawned task: runs `body`, then completes the future with what it gave.
template <class T>
task<> complete_future(task<T> body, std::shared_ptr<future_state<T>> s) {
    // On every way out — the frame destroyed by its loop's close included — the task
    // stops being the future's runner, and a future still pending is cancelled.
    struct runner_scope {
        future_state<T>& s;
        explicit runner_scope(future_state<T>& state) : s(state) { s.runner = running_loop->current; }
        ~runner_scope() {
            s.runner = nullptr;
            s.cancel();
        }
    } scope(*s);
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(body);
            s->set_value(true);
        } else {
            s->set_value(co_await std::move(body));
        }
    } catch (const cancelled_error&) {
        s->cancel();
        throw;  // the task ends cancelled
    } catch (...) {
        s->set_error(std::current_exception());  // retrieved: the future has it
    }
}

// Holds one reference to a mailbox; copies hold one each (for std::function).
class mailbox_ref {
public:
    explicit mailbox_ref(mailbox* m) noexcept : m_(m) {}
    mailbox_ref(const mailbox_ref& o) noexcept : m_(o.m_) { m_->add_ref(); }
    mailbox_ref& operator=(const mailbox_ref&) = delete;
    ~mailbox_ref() { m_->release(); }
    mailbox& operator*() const noexcept { return *m_; }

private:
    mailbox* m_;
};

// What call_soon_threadsafe runs on the target loop. Destroyed without running (the
// loop closed first), it cancels the future.
template <class T>
struct start_on_loop {
    task<T> body;
    std::shared_ptr<future_state<T>> state;
    event_loop* loop;

    start_on_loop(task<T> b, std::shared_ptr<future_state<T>> s, event_loop& l)
        : body(std::move(b)), state(std::move(s)), loop(&l) {}
    start_on_loop(start_on_loop&&) noexcept = default;
    ~start_on_loop() {
        if (state) state->cancel();
    }

    void operator()() {
        if (state->cancel_requested()) return;  // cancelled before it could start (the destructor is a no-op then)
        loop->create_task(complete_future<T>(std::move(body), state));
        state.reset();  // the task completes it now; if create_task threw, the destructor cancels it
    }
};

}  // namespace detail

template <class T>
concurrent_future<T> run_coroutine_threadsafe(task<T> t, event_loop& loop) {
    detail::loop_core& core = detail::loop_access::core(loop);
    auto state = std::make_shared<detail::future_state<T>>();
    state->completing_loop = &core;
    // Cancelling the future cancels the task, on its loop's thread: the posted call
    // finds the task through the state, if it still runs.
    state->on_cancel = [box = detail::mailbox_ref(core.share_mailbox()), core = &core, weak = std::weak_ptr(state)] {
        auto cancel_runner = [weak] {
            if (auto s = weak.lock(); s && s->runner) s->runner->cancel();
        };
        // (Without memory for the call, the task runs on; the future is cancelled all the
        // same. cancel() may be called from a destructor: nothing may escape.)
        auto* node = new (std::nothrow) detail::posted_call<decltype(cancel_runner)>(core, std::move(cancel_runner));
        if (node && !(*box).post(node)) delete node;  // the loop has closed: its task is gone
    };
    loop.call_soon_threadsafe(detail::start_on_loop<T>(std::move(t), state, loop));
    return detail::future_access<T>::make(std::move(state));
}

// co_await aio::run_on(loop, t): runs `t` on `loop` (running on another thread) and
// awaits its result here, without blocking this loop. Cancelling the awaiting task
// cancels `t` on its loop.
template <class T>
task<T> run_on(event_loop& loop, task<T> t) {
    co_return co_await wrap_future(run_coroutine_threadsafe(std::move(t), loop));
}

}  // namespace aio
