#pragma once
// A lazy task that refers to something living only as long as the expression that made
// it (a temporary awaitable kept by reference, a timeout scope): it can be awaited only
// as an rvalue, so `co_await aio::wait_for(q.get(), 1s)` compiles and
// `auto w = aio::wait_for(q.get(), 1s); co_await w;` — a use after the temporary's end —
// does not. It cannot be moved either, so it cannot be stored, nor handed to
// create_task or gather.

#include <utility>

#include "../task.hpp"

namespace aio::detail {

template <class T>
class [[nodiscard]] await_now {
public:
    explicit await_now(task<T> t) noexcept : task_(std::move(t)) {}
    await_now(const await_now&) = delete;
    await_now& operator=(const await_now&) = delete;

    auto operator co_await() && noexcept { return task_.operator co_await(); }
    // Awaiting a named one could outlive what it refers to: co_await the call itself.
    void operator co_await() & = delete;

private:
    task<T> task_;
};

}  // namespace aio::detail
