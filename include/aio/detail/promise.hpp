#pragma once
// The promise of aio::task<T>: task_state plus the result's storage.

#include <coroutine>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "../errors.hpp"
#include "block_cache.hpp"
#include "scheduler.hpp"
#include "task_state.hpp"

namespace aio {
template <class T>
class task;
}

namespace aio::detail {

// Resumption at the end of a task:
// - a lazy task started inline by its awaiter's await_suspend returns there
//   (the awaiter sees it done and does not suspend: no stack growth in a long run of
//   synchronous completions, even where the compiler emits no tail calls);
// - a lazy task that had suspended transfers symmetrically to its awaiter;
// - a spawned task wakes its waiters through the loop and returns to the loop, which
//   destroys the frame once no handle refers to it. One that was cancelled during
//   its last step, and returned without suspending again, ends cancelled rather than
//   with its value (asyncio's Task.__step: StopIteration while _must_cancel).
struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
        Promise& t = h.promise();
        if (t.spawned_) {
            if (t.must_cancel_) [[unlikely]] {
                t.must_cancel_ = false;
                t.cancel_value();
            }
            if (t.loop_) t.loop_->finish(t);
            return std::noop_coroutine();
        }
        if (t.inline_start_) return std::noop_coroutine();
        return t.continuation_;
    }
    void await_resume() const noexcept {}
};

template <class T>
class promise_base : public task_state {
public:
    // Frames come from the thread's block cache (see block_cache.hpp).
    [[gnu::always_inline]] static void* operator new(std::size_t size) { return allocate_block(size); }
    [[gnu::always_inline]] static void operator delete(void* frame, std::size_t size) noexcept {
        if (!task_state::keep_as_zombie(frame, size)) deallocate_block(frame, size);
    }

    std::suspend_always initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }

    void unhandled_exception() noexcept {
        std::exception_ptr e = std::current_exception();
        task_status kind = task_status::error;
        // A spawned task that lets cancelled_error escape ends cancelled, not failed.
        if (spawned_) {
            try {
                std::rethrow_exception(e);
            } catch (const cancelled_error&) {
                kind = task_status::cancelled;
            } catch (...) {
            }
        }
        set_error(std::move(e), kind);
    }

protected:
    // Replaces the task's value by cancelled_error (its storage is the caller's to end).
    void end_cancelled() noexcept {
        set_error(std::make_exception_ptr(cancellation_of(this)), task_status::cancelled);
    }
};

template <class T>
class promise final : public promise_base<T> {
public:
    promise() noexcept {}
    ~promise() {
        if (this->status() == task_status::value) value_.~T();
    }

    task<T> get_return_object();

    template <class U = T>
        requires std::is_constructible_v<T, U&&>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        ::new (static_cast<void*>(std::addressof(value_))) T(std::forward<U>(value));
        this->set_value();
    }

    T& value() noexcept { return value_; }

    // A local's destructor threw after co_return: the value it returned is dropped.
    void unhandled_exception() noexcept {
        if (this->status() == task_status::value) value_.~T();
        promise_base<T>::unhandled_exception();
    }

    // See final_awaiter: a value becomes cancelled_error; an error stays.
    void cancel_value() noexcept {
        if (this->status() != task_status::value) return;
        value_.~T();
        this->end_cancelled();
    }

private:
    union {
        T value_;
    };
};

template <>
class promise<void> final : public promise_base<void> {
public:
    task<void> get_return_object();
    void return_void() noexcept { set_value(); }

    void cancel_value() noexcept {
        if (status() == task_status::value) end_cancelled();
    }
};

}  // namespace aio::detail
