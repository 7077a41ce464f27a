#pragma once
// aio::task<T>: the return type of an aio coroutine — asyncio's `async def`.
//
// A task is lazy: calling the coroutine function creates the frame and runs
// nothing. `co_await f()` runs the child inline in the awaiting task (no trip through
// the loop, not a suspension point by itself) and returns its value or rethrows its
// exception. To run it concurrently instead, hand it to aio::create_task.
//
// A task is move-only and owns its frame: destroying an un-awaited task destroys the
// frame without running it.

#include <coroutine>
#include <exception>
#include <type_traits>
#include <utility>

#include "detail/promise.hpp"
#include "errors.hpp"

namespace aio {

class event_loop;

template <class T = void>
class [[nodiscard]] task {
    static_assert(!std::is_reference_v<T>, "aio::task<T&> is not supported: return a pointer or a value");

public:
    using promise_type = detail::promise<T>;
    using value_type = T;

    task() noexcept = default;
    task(task&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            if (frame_) frame_.destroy();
            frame_ = std::exchange(other.frame_, {});
        }
        return *this;
    }
    ~task() {
        if (frame_) frame_.destroy();
    }

    // False for a default-constructed or moved-from task.
    bool valid() const noexcept { return static_cast<bool>(frame_); }
    explicit operator bool() const noexcept { return valid(); }

    // Awaiting runs the task to completion inline, once.
    class awaiter {
    public:
        explicit awaiter(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}

        bool await_ready() const {
            if (!frame_ || frame_.promise().started()) [[unlikely]]
                misuse(frame_ ? "an aio::task can be awaited only once" : "co_await on an empty or moved-from aio::task");
            return false;
        }

        // Starts the child right here. If it finishes without suspending, the awaiter
        // does not suspend either; otherwise the child resumes it when it ends.
        bool await_suspend(std::coroutine_handle<> parent) {
            promise_type& child = frame_.promise();
            child.start_inline(parent, frame_);
            return !child.done();
        }

        T await_resume() {
            promise_type& child = frame_.promise();
            if (child.has_error()) std::rethrow_exception(child.error());
            if constexpr (!std::is_void_v<T>) return std::move(child.value());
        }

    private:
        [[noreturn, gnu::cold, gnu::noinline]] static void misuse(const char* what) { throw invalid_state_error(what); }

        std::coroutine_handle<promise_type> frame_;
    };

    awaiter operator co_await() const& noexcept { return awaiter{frame_}; }

private:
    friend class event_loop;
    friend promise_type;
    explicit task(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}

    // For create_task: the loop takes the frame over.
    promise_type& detach_for_spawn() {
        if (!frame_) throw invalid_state_error("create_task() of an empty or moved-from aio::task");
        if (frame_.promise().started()) throw invalid_state_error("create_task() of an aio::task that was already awaited");
        return frame_.promise();
    }
    void release() noexcept { frame_ = {}; }

    std::coroutine_handle<promise_type> frame_;
};

namespace detail {
template <class T>
task<T> promise<T>::get_return_object() {
    auto frame = std::coroutine_handle<promise<T>>::from_promise(*this);
    this->set_frame(frame.address());
    return task<T>{frame};
}
inline task<void> promise<void>::get_return_object() {
    auto frame = std::coroutine_handle<promise<void>>::from_promise(*this);
    this->set_frame(frame.address());
    return task<void>{frame};
}
}  // namespace detail

}  // namespace aio
