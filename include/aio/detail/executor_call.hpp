#pragma once
// The machinery behind run_in_executor and to_thread: a call that runs on an
// executor's thread and hands its value or exception back to the loop.
//
// One allocation holds it all: the callable and its arguments, the result, the job
// node the executor runs and the inbox node the worker posts back. Who touches what:
//   - the worker: the callable and the result, then posts the node (after which it
//     touches nothing of the call; it releases the mailbox reference it posted
//     through);
//   - the loop thread: everything else — whether someone still awaits the result, and
//     the node's step, which delivers the result or, with nobody awaiting, frees it.
// The post is the one hand-over, so the loop reads the result only after the worker
// wrote it (the inbox's compare-and-swap and exchange order them).
//
// The call is freed exactly once, by whichever side lets go of it last: it holds two
// references, the worker's (carried by the posted node to the loop) and the loop
// thread's (the awaiter's, until it has taken the result or gone away). When the loop
// has closed before the worker could post, the worker drops its reference itself.

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <new>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "../errors.hpp"
#include "../executor.hpp"
#include "block_cache.hpp"
#include "cancellation.hpp"
#include "loop_core.hpp"
#include "mailbox.hpp"
#include "suspension.hpp"
#include "../task.hpp"

namespace aio::detail {

template <class R>
class executor_awaiter;

// What the awaiter sees of a call, whatever the callable.
template <class R>
struct executor_call_base : job_node, inbox_node {
    using value_type = std::conditional_t<std::is_void_v<R>, std::monostate, R>;

    // The worker's side.
    template <class Body>
    void finish_with(Body&& body) noexcept {
        try {
            if constexpr (std::is_void_v<R>) {
                body();
                ::new (static_cast<void*>(&value_)) value_type();
            } else {
                ::new (static_cast<void*>(&value_)) value_type(body());
            }
            has_value_ = true;
        } catch (...) {
            error_ = std::current_exception();
        }
    }
    void fail_with(std::exception_ptr e) noexcept { error_ = std::move(e); }

    // Hands the call back to the loop; `this` may be gone when it returns.
    void post_back() noexcept {
        mailbox* box = std::exchange(box_, nullptr);
        if (!box->post(this)) release();  // the loop has closed: its node will never run
        box->release();
    }

    // Any thread: drops one of the two references.
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(this);
    }

    // The loop's side.
    value_type take() {
        if (!has_value_) std::rethrow_exception(error_);
        return std::move(value_);
    }

    // Whether the job may still start. Cancelling an await whose job is still queued
    // keeps it from running, as asyncio's pool skips a cancelled future; once it runs,
    // it runs to its end.
    enum : std::uint8_t { queued, running, abandoned };
    bool claim() noexcept {  // the worker, before it runs the callable
        std::uint8_t expected = queued;
        return phase_.compare_exchange_strong(expected, running, std::memory_order_acq_rel);
    }
    void abandon() noexcept {  // the loop thread, when nobody awaits the result any more
        std::uint8_t expected = queued;
        phase_.compare_exchange_strong(expected, abandoned, std::memory_order_acq_rel);
    }

    void (*destroy)(executor_call_base*) noexcept = nullptr;
    std::atomic<int> refs_{2};                  // the worker's (then its node's) and the awaiter's
    std::atomic<std::uint8_t> phase_{queued};
    mailbox* box_ = nullptr;                    // the worker's until it posts
    loop_core* loop_ = nullptr;                 // loop thread
    executor_awaiter<R>* awaiter_ = nullptr;    // loop thread; null once nobody awaits
    bool delivered_ = false;                    // loop thread: the result is in
    bool has_value_ = false;
    std::exception_ptr error_;
    union {
        value_type value_;
    };

protected:
    executor_call_base() noexcept {}
    ~executor_call_base() {
        if (has_value_) value_.~value_type();
    }
};

template <class R, class F, class... A>
struct executor_call final : executor_call_base<R> {
    static void* operator new(std::size_t size) { return allocate_block(size); }
    static void operator delete(void* p, std::size_t size) noexcept { deallocate_block(p, size); }

    template <class G, class... B>
    explicit executor_call(G&& g, B&&... args) : fn_(std::forward<G>(g)), args_(std::forward<B>(args)...) {
        this->job_node::run = [](job_node* n) noexcept {
            auto& self = *static_cast<executor_call*>(n);
            if (self.claim()) self.finish_with([&]() -> R { return std::apply(std::move(self.fn_), std::move(self.args_)); });
            self.post_back();  // run or skipped: the node goes back, for the loop to count it
        };
        this->job_node::drop = [](job_node* n) noexcept {
            auto& self = *static_cast<executor_call*>(n);
            self.fail_with(std::make_exception_ptr(aio::runtime_error("the executor dropped the job without running it")));
            self.post_back();
        };
        this->destroy = [](executor_call_base<R>* c) noexcept { delete static_cast<executor_call*>(c); };
    }

    F fn_;
    std::tuple<A...> args_;
};

// The awaitable run_in_executor and to_thread return. The call is submitted when the
// awaitable is made (asyncio's run_in_executor starts the job at once); awaiting it
// suspends the task until the result is back.
//
// Resumption: the node's step, on the loop thread, in the iteration after the worker
// posted it, schedules the task (rule 4). Cancellation: the hook lets go of the call at
// once — the task resumes with cancelled_error — and a job still queued will not run;
// one already running runs on to its end on its worker, and its result is freed when it
// comes back. Once the result is in and the task woken, the hook is too late: the
// cancellation is then thrown when the task resumes, at this same await (asyncio's
// _must_cancel), and the result is freed with the awaiter. Dropping the awaitable
// without awaiting it lets go of the call the same way.
template <class R>
class [[nodiscard]] executor_awaiter : cancel_hook {
public:
    using call = executor_call_base<R>;

    // `what` names the operation in errors ("aio::to_thread()").
    template <class E, class F, class... A>
    executor_awaiter(const char* what, loop_core& loop, E& executor, F&& f, A&&... args) : what_(what) {
        cancel = on_cancel;
        using impl = executor_call<R, std::decay_t<F>, std::decay_t<A>...>;
        loop.check_open();
        auto* c = new impl(std::forward<F>(f), std::forward<A>(args)...);
        static_cast<inbox_node*>(c)->run = on_back;
        c->discard = on_discarded;
        c->loop_ = &loop;
        c->awaiter_ = this;
        if (loop.current) c->origin = loop.current->name();
        c->box_ = loop.share_mailbox();
        loop.keep_alive();
        try {
            executor.submit(job(c));  // on failure the job is dropped: its node comes back
        } catch (...) {
            c->awaiter_ = nullptr;  // ...and is freed there; the error is the caller's
            c->release();
            throw;
        }
        call_ = c;
    }
    executor_awaiter(executor_awaiter&& other) noexcept
        : cancel_hook(other), call_(std::exchange(other.call_, nullptr)), what_(other.what_) {
        if (call_) call_->awaiter_ = this;
    }
    executor_awaiter(const executor_awaiter&) = delete;
    executor_awaiter& operator=(const executor_awaiter&) = delete;
    ~executor_awaiter() {
        forget_hook(task_, *this);
        let_go();
    }

    bool await_ready() const noexcept { return call_ && call_->delivered_; }
    void await_suspend(std::coroutine_handle<> h) {
        task_state& t = suspending_task(what_);
        if (!call_) throw invalid_state_error(std::string(what_) + ": the result was already awaited");
        task_ = &t;
        suspend(t, h, *this);
    }
    auto await_resume() {
        resumed(task_, cancelled_);
        if (!call_) throw invalid_state_error(std::string(what_) + ": the result was already awaited");
        struct freed {
            executor_awaiter& a;
            ~freed() { a.let_go(); }
        } free_after{*this};
        if constexpr (std::is_void_v<R>) call_->take();
        else return call_->take();
    }

private:
    // The node's step: the result is in.
    static void on_back(ready_item* item) noexcept {
        auto* c = static_cast<call*>(static_cast<inbox_node*>(item));
        c->loop_->let_go();
        if (executor_awaiter* a = c->awaiter_) {
            c->delivered_ = true;
            if (a->task_) c->loop_->schedule(*a->task_);
        }
        c->release();  // the node's; the awaiter still holds its own
    }
    // The loop closed with the node still queued: the awaiting frame, if any, dies
    // later in the same close().
    static void on_discarded(ready_item* item) noexcept {
        auto* c = static_cast<call*>(static_cast<inbox_node*>(item));
        if (executor_awaiter* a = c->awaiter_) {
            a->call_ = nullptr;
            c->awaiter_ = nullptr;
            c->release();
        }
        c->release();
    }
    static bool on_cancel(cancel_hook* hook) noexcept {
        auto& a = static_cast<executor_awaiter&>(*hook);
        if (!a.call_ || a.call_->delivered_) return false;  // the wake-up is queued: too late
        a.let_go();
        a.cancelled_ = true;
        core_of(a.task_->loop())->schedule(*a.task_);
        return true;
    }

    // Drops the awaiter's reference: the call goes now if its result is in, or when
    // its node comes back.
    void let_go() noexcept {
        call* c = std::exchange(call_, nullptr);
        if (!c) return;
        c->awaiter_ = nullptr;
        c->abandon();
        c->release();
    }

    call* call_ = nullptr;
    const char* what_;
    task_state* task_ = nullptr;
    bool cancelled_ = false;
};

// run_in_executor's task: the job was submitted when the awaiter was made; the task
// only waits for it, so that it can be gathered, spawned or given a time limit.
template <class R>
task<R> awaiting_call(executor_awaiter<R> call) {  // NOLINT: by value, moved into the frame
    if constexpr (std::is_void_v<R>) co_await std::move(call);
    else co_return co_await std::move(call);
}

// What f(args...) gives back through an executor: by value, void as void.
template <class F, class... A>
using executor_result_t = std::conditional_t<std::is_void_v<std::invoke_result_t<std::decay_t<F>, std::decay_t<A>...>>, void,
                                             std::decay_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<A>...>>>;

}  // namespace aio::detail
