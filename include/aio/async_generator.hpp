#pragma once
// aio::async_generator<T>: asyncio's async generator (`async def g(): ... yield x`).
//
// The body may co_await anything an aio task may await (sleep, lazy tasks, task
// handles, gather, ...) and `co_yield` values convertible to T. It is consumed one
// value at a time, by either of
//
//     while (auto x = co_await gen.next()) use(*x);          // std::optional<T>
//     for (auto it = co_await gen.begin(); it != gen.end(); co_await ++it) use(*it);
//
// Like a lazy aio::task, a generator is lazy (calling the function runs nothing until
// the first next() or begin()) and runs inline in the task that consumes it: a step
// (next(), begin(), ++it) resumes the body right there, and is not a suspension
// point by itself. If the body yields without awaiting, the consumer goes on without
// suspending; if the body awaits something that suspends, the consuming task is
// suspended on it — the body's awaits are the consuming task's awaits, in asyncio's
// scheduling order — and the consumer resumes when the body yields or ends.
//
// Cancellation: cancelling the consuming task while the body is suspended on an
// await delivers aio::cancelled_error at that co_await in the body, as for any await
// of the task; if the body lets it through, the step rethrows it to the consumer.
//
// Ends and errors: a step returns an empty optional (or the iterator reaches end())
// when the body returns; an exception that escapes the body is rethrown by the step.
// Either way the generator is then finished: a further step throws
// aio::invalid_state_error, as does a step on a moved-from generator or a step while
// another step of the same generator is still pending (two tasks sharing one
// generator). The error is thrown at the co_await, before anything runs.
//
// Lifetime: the generator is move-only and owns the body's frame. Destroying it
// destroys the frame wherever the body stands — not started, at a co_yield, or
// finished — so a consumer that stops early (break, return, an exception) destroys
// the body's locals then, in reverse order, as Python's aclose() would run its
// finally blocks (but without resuming the body: no co_await in a destructor). It
// must not be destroyed while one of its steps is pending, except together with the
// consuming task's frame (a loop closing with the task pending).
//
// Values: next() moves the yielded value out into its std::optional<T>; an iterator
// refers to the value where the body left it, valid until the next step or the
// generator's destruction. T must be an object type: to yield references, yield
// pointers or std::reference_wrapper.

#include <coroutine>
#include <cstddef>
#include <iterator>
#include <optional>
#include <type_traits>
#include <utility>

#include "detail/async_generator.hpp"

namespace aio {

template <class T>
class [[nodiscard]] async_generator {
    static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                  "aio::async_generator<T>: T must be a non-const object type (yield a pointer or "
                  "std::reference_wrapper for references)");

public:
    using promise_type = detail::generator_promise<T>;
    using value_type = T;

    async_generator() noexcept = default;
    async_generator(async_generator&& other) noexcept : frame_(std::exchange(other.frame_, {})) {}
    async_generator& operator=(async_generator&& other) noexcept {
        if (this != &other) {
            if (frame_) frame_.destroy();
            frame_ = std::exchange(other.frame_, {});
        }
        return *this;
    }
    ~async_generator() {
        if (frame_) frame_.destroy();
    }

    // False for a default-constructed or moved-from generator.
    bool valid() const noexcept { return static_cast<bool>(frame_); }
    explicit operator bool() const noexcept { return valid(); }

    // co_await gen.next(): the next value, or an empty optional at the end (asyncio's
    // `await anext(gen)`, with the end as a value rather than StopAsyncIteration).
    class next_awaiter : public detail::generator_step<T> {
    public:
        explicit next_awaiter(typename detail::generator_step<T>::frame_type frame) noexcept
            : detail::generator_step<T>(frame, "next()") {}
        std::optional<T> await_resume() {
            if (!this->finish()) return std::nullopt;
            std::optional<T>& held = this->frame_.promise().value_;
            std::optional<T> value(std::in_place, std::move(*held));
            held.reset();
            return value;
        }
    };
    next_awaiter next() noexcept { return next_awaiter{frame_}; }

    // An input iterator over the values, advanced with `co_await ++it`; it equals end()
    // once the generator has ended (or thrown).
    class iterator;
    class advance_awaiter : public detail::generator_step<T> {
    public:
        explicit advance_awaiter(iterator& it) noexcept : detail::generator_step<T>(it.frame_, "iterator::operator++()"), it_(it) {}
        iterator& await_resume() {
            this->finish();
            return it_;
        }

    private:
        iterator& it_;
    };

    class iterator {
    public:
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using reference = T&;
        using pointer = T*;

        iterator() noexcept = default;

        // The current value, valid until the next step. Not at end().
        T& operator*() const noexcept { return *frame_.promise().value_; }
        T* operator->() const noexcept { return std::addressof(**this); }

        // co_await ++it: resumes the body until its next value or its end.
        advance_awaiter operator++() noexcept { return advance_awaiter{*this}; }

        friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
            return !it.frame_ || it.frame_.promise().state_ == detail::generator_state::finished;
        }

    private:
        friend class async_generator;
        explicit iterator(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}
        std::coroutine_handle<promise_type> frame_;
    };

    // co_await gen.begin(): runs the body to its first value not yet consumed (the
    // first one, on a fresh generator), and returns an iterator to it, or end().
    class begin_awaiter : public detail::generator_step<T> {
    public:
        explicit begin_awaiter(typename detail::generator_step<T>::frame_type frame) noexcept
            : detail::generator_step<T>(frame, "begin()") {}
        iterator await_resume() {
            this->finish();
            return iterator{this->frame_};
        }
    };
    begin_awaiter begin() noexcept { return begin_awaiter{frame_}; }
    std::default_sentinel_t end() const noexcept { return std::default_sentinel; }

private:
    friend promise_type;
    explicit async_generator(std::coroutine_handle<promise_type> frame) noexcept : frame_(frame) {}

    std::coroutine_handle<promise_type> frame_;
};

namespace detail {
template <class T>
async_generator<T> generator_promise<T>::get_return_object() noexcept {
    return async_generator<T>{std::coroutine_handle<generator_promise<T>>::from_promise(*this)};
}
}  // namespace detail

}  // namespace aio
