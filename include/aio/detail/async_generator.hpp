#pragma once
// The machinery of aio::async_generator<T>: its promise, and the step that next(),
// begin() and ++it share (resume the body until its next co_yield or its end).
//
// The body runs inline in the consuming task, as a lazy aio::task does: the step
// resumes the body from inside its await_suspend, and the body comes back to the
// consumer at its next co_yield or at its end:
// - if it gets there without suspending, it returns into that await_suspend, which
//   then does not suspend the consumer either: a long run of synchronous yields
//   never grows the stack, even where the compiler emits no tail calls;
// - if it suspends on the way (a sleep, a task, a gather...), that await is the
//   consuming task's await: the loop resumes the body's frame when it completes, and
//   cancel() reaches it as it reaches any await of the task. When the body then
//   yields or ends, it transfers symmetrically to the consumer.

#include <concepts>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "../errors.hpp"
#include "block_cache.hpp"

namespace aio {
template <class T>
class async_generator;
}

namespace aio::detail {

// Where a generator is in its life. A step goes created|suspended -> running ->
// yielded|returned|failed; the awaiter that started it then reports the outcome and
// leaves it suspended (a value) or finished (the end, or the exception).
enum class generator_state : std::uint8_t {
    created,    // nothing has run yet
    suspended,  // at a co_yield, its value reported
    running,    // a step is in progress: the body runs or awaits something
    yielded,    // reached a co_yield; the step's awaiter has yet to take the value
    returned,   // ran off its end; the step's awaiter has yet to report the end
    failed,     // threw; the step's awaiter has yet to rethrow
    finished,   // the end or the exception was reported: no further step
};

// Back to the consumer, at a co_yield and at the final suspend point: return into the
// await_suspend that started this step, or, if the body suspended since, resume the
// consumer by symmetric transfer.
struct generator_handoff {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> body) noexcept {
        auto& p = body.promise();
        if (p.inline_step_) return std::noop_coroutine();
        return p.consumer_;
    }
    void await_resume() const noexcept {}
};

class generator_promise_base {
public:
    // Frames come from the thread's block cache, as tasks' frames do.
    static void* operator new(std::size_t size) { return allocate_block(size); }
    static void operator delete(void* frame, std::size_t size) noexcept { deallocate_block(frame, size); }

    std::suspend_always initial_suspend() const noexcept { return {}; }
    generator_handoff final_suspend() const noexcept { return {}; }

    void return_void() noexcept { state_ = generator_state::returned; }
    void unhandled_exception() noexcept {
        error_ = std::current_exception();
        state_ = generator_state::failed;
    }

    std::coroutine_handle<> consumer_;  // the frame awaiting the current step
    std::exception_ptr error_;          // while failed
    generator_state state_ = generator_state::created;
    bool inline_step_ = false;  // the body runs inside the step's await_suspend
};

template <class T>
class generator_promise final : public generator_promise_base {
public:
    async_generator<T> get_return_object() noexcept;

    // `co_yield v`: v converts to T. The value lives here until the consumer's next
    // step (next() moves it out at once; an iterator reads it in place).
    template <class U = T>
        requires std::convertible_to<U&&, T>
    generator_handoff yield_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        value_.emplace(std::forward<U>(value));
        state_ = generator_state::yielded;
        return {};
    }

    std::optional<T> value_;
};

// One step of a generator, awaited by next(), begin() or ++it (`operation` names it in
// misuse errors). The awaiter types derived from it add await_resume, which calls
// finish() and returns what the operation returns.
template <class T>
class generator_step {
public:
    using frame_type = std::coroutine_handle<generator_promise<T>>;

    generator_step(frame_type frame, const char* operation) noexcept : frame_(frame), operation_(operation) {}

    // Misuse is reported here, before anything runs.
    bool await_ready() const {
        if (!frame_) [[unlikely]]
            misuse(operation_, " on an empty or moved-from aio::async_generator");
        switch (frame_.promise().state_) {
        case generator_state::created:
        case generator_state::suspended:
            return false;
        case generator_state::finished:
            misuse(operation_, " on an aio::async_generator that has already finished "
                               "(its end or its exception was already reported)");
        default:
            misuse(operation_, " on an aio::async_generator whose previous step is still pending "
                               "(a generator runs one step at a time)");
        }
    }

    // Resumes the body here; suspends the consumer only if the body suspended on an
    // await before its next co_yield or its end.
    bool await_suspend(std::coroutine_handle<> consumer) noexcept {
        generator_promise<T>& p = frame_.promise();
        p.value_.reset();  // the previous value, which an iterator may have left in place
        p.state_ = generator_state::running;
        p.consumer_ = consumer;
        p.inline_step_ = true;
        frame_.resume();
        p.inline_step_ = false;
        return p.state_ == generator_state::running;
    }

protected:
    // Reports the step's outcome: true when it yielded a value (now in the promise),
    // false at the end; rethrows the body's exception. After the end or an exception
    // the generator is finished.
    bool finish() {
        generator_promise<T>& p = frame_.promise();
        switch (p.state_) {
        case generator_state::yielded:
            p.state_ = generator_state::suspended;
            return true;
        case generator_state::failed:
            p.state_ = generator_state::finished;
            std::rethrow_exception(std::exchange(p.error_, nullptr));
        default:  // returned
            p.state_ = generator_state::finished;
            return false;
        }
    }

    frame_type frame_;

private:
    [[noreturn, gnu::cold, gnu::noinline]] static void misuse(const char* operation, const char* what) {
        throw invalid_state_error(std::string("aio::async_generator::") + operation + what);
    }

    const char* operation_;
};

}  // namespace aio::detail
