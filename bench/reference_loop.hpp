#pragma once
// A bare reference event loop: the yardstick for the fresh-process benchmarks
// (bench/cold_reference.cpp, run by bench/cold_start.py). NOT part of aio and not
// meant for use: it answers "what does this design — one thread, lazy coroutine
// tasks, a FIFO ready queue, a timer heap — cost at its barest?".
//
// What it is: a std::vector ready queue of coroutine handles (an iteration runs
// what was queued when it began), a std::priority_queue of (deadline, handle) timers
// on steady_clock, a lazy task<T> whose end resumes its awaiter by symmetric
// transfer, sleep(d), gather over a std::vector<task<T>> joined by a counter, spawn,
// and run(main).
//
// What it is not: no cancellation, no task names or handles, no I/O (it waits for
// a timer with sleep_until), no exception handler (a spawned task's result and
// exception are dropped), no frame cache, no thread checks. One loop per thread,
// reachable only while run() runs it.

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <queue>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace reference {

using clock = std::chrono::steady_clock;

class loop {
public:
    loop() = default;
    loop(const loop&) = delete;
    loop& operator=(const loop&) = delete;
    ~loop() {  // spawned frames die with the loop, wherever they stand
        for (std::coroutine_handle<> h : spawned_) h.destroy();
    }

    void schedule(std::coroutine_handle<> h) { ready_.push_back(h); }
    void call_at(clock::time_point when, std::coroutine_handle<> h) { timers_.push({when, h}); }
    void adopt(std::coroutine_handle<> h) { spawned_.push_back(h); }

    // Runs iterations until done() holds: due timers join the back of the ready
    // queue, then everything queued so far runs once (what it queues waits for the
    // next iteration). With nothing ready, it sleeps until the first deadline.
    template <class Done>
    void run_until(Done done) {
        std::vector<std::coroutine_handle<>> batch;
        while (!done()) {
            if (!timers_.empty()) {
                if (ready_.empty()) std::this_thread::sleep_until(timers_.top().when);
                const clock::time_point now = clock::now();
                for (; !timers_.empty() && timers_.top().when <= now; timers_.pop()) ready_.push_back(timers_.top().h);
            }
            if (ready_.empty()) {
                if (timers_.empty()) throw std::logic_error("reference::loop: nothing can run, nothing will wake");
                continue;  // woken early: sleep again
            }
            batch.swap(ready_);
            for (std::coroutine_handle<> h : batch) h.resume();
            batch.clear();
        }
    }

private:
    struct timer {
        clock::time_point when;
        std::coroutine_handle<> h;
    };
    struct later {  // the earliest deadline on top
        bool operator()(const timer& a, const timer& b) const noexcept { return a.when > b.when; }
    };
    std::vector<std::coroutine_handle<>> ready_;
    std::priority_queue<timer, std::vector<timer>, later> timers_;
    std::vector<std::coroutine_handle<>> spawned_;
};

inline thread_local loop* running_loop = nullptr;

template <class T>
class task;

namespace detail {
struct promise_base {
    std::coroutine_handle<> continuation;  // resumed when the task ends, if set
    std::size_t* outstanding = nullptr;    // a gather's count: only its last child resumes the awaiter
    std::exception_ptr error;

    std::suspend_always initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept {
        struct final_awaiter {
            promise_base& p;
            bool await_ready() noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<>) noexcept {
                if (p.outstanding && --*p.outstanding != 0) return std::noop_coroutine();
                return p.continuation ? p.continuation : std::noop_coroutine();
            }
            void await_resume() noexcept {}
        };
        return final_awaiter{*this};
    }
    void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct promise : promise_base {
    std::optional<T> value;
    task<T> get_return_object() { return task<T>(std::coroutine_handle<promise>::from_promise(*this)); }
    void return_value(T v) { value.emplace(std::move(v)); }
    T result() {
        if (error) std::rethrow_exception(error);
        return std::move(*value);
    }
};

template <>
struct promise<void> : promise_base {
    task<void> get_return_object();
    void return_void() noexcept {}
    void result() const {
        if (error) std::rethrow_exception(error);
    }
};
}  // namespace detail

// Lazy: calling the coroutine runs nothing. co_await starts it inline and resumes
// the awaiter by symmetric transfer when it ends. Owns its frame.
template <class T = void>
class [[nodiscard]] task {
public:
    using promise_type = detail::promise<T>;

    explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
    task(task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
    task& operator=(task&&) = delete;
    ~task() {
        if (h_) h_.destroy();
    }

    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
        h_.promise().continuation = awaiter;
        return h_;
    }
    T await_resume() { return h_.promise().result(); }

    std::coroutine_handle<promise_type> frame() const noexcept { return h_; }
    std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, {}); }

private:
    std::coroutine_handle<promise_type> h_;
};

inline task<void> detail::promise<void>::get_return_object() {
    return task<void>(std::coroutine_handle<promise>::from_promise(*this));
}

// co_await sleep(d): the task resumes in the first iteration after its deadline.
struct sleep_awaitable {
    clock::duration delay;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { running_loop->call_at(clock::now() + delay, h); }
    void await_resume() const noexcept {}
};

template <class Rep, class Period>
sleep_awaitable sleep(std::chrono::duration<Rep, Period> d) {
    return {std::chrono::duration_cast<clock::duration>(d)};
}

// co_await gather(std::move(children)): every child is queued; the last one to end
// resumes the awaiter by symmetric transfer (aio and asyncio go through the ready
// queue instead); the results come in order, or the first error, once all have ended.
template <class T>
class [[nodiscard]] gather_awaitable {
public:
    explicit gather_awaitable(std::vector<task<T>> children)
        : children_(std::move(children)), outstanding_(children_.size()) {}

    bool await_ready() const noexcept { return children_.empty(); }
    void await_suspend(std::coroutine_handle<> awaiter) {
        for (task<T>& child : children_) {
            child.frame().promise().continuation = awaiter;
            child.frame().promise().outstanding = &outstanding_;
            running_loop->schedule(child.frame());
        }
    }
    std::vector<T> await_resume() {
        std::vector<T> results;
        results.reserve(children_.size());
        for (task<T>& child : children_) results.push_back(child.frame().promise().result());
        return results;
    }

private:
    std::vector<task<T>> children_;
    std::size_t outstanding_;
};

template <class T>
gather_awaitable<T> gather(std::vector<task<T>> children) {
    return gather_awaitable<T>(std::move(children));
}

// Queues `t` on the running loop, which owns its frame from now on.
template <class T>
void spawn(task<T> t) {
    std::coroutine_handle<> h = t.release();
    running_loop->adopt(h);
    running_loop->schedule(h);
}

// Runs `main` on a fresh loop until it ends; returns its value or rethrows. Tasks
// still pending then are destroyed with the loop, without being resumed.
template <class T>
T run(task<T> main) {
    loop l;
    struct running_scope {
        explicit running_scope(loop& running) { running_loop = &running; }
        ~running_scope() { running_loop = nullptr; }
    } scope(l);
    l.schedule(main.frame());
    l.run_until([&] { return main.frame().done(); });
    return main.frame().promise().result();
}

}  // namespace reference
