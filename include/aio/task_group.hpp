#pragma once
// aio::task_group: asyncio.TaskGroup — a scope that owns the tasks spawned in it.
//
//   co_await aio::task_group::run([&](aio::task_group& g) -> aio::task<> {
//       auto a = g.create_task(fetch("a"));
//       g.create_task(fetch("b"), "fetch-b");
//       co_await aio::sleep(1s);      // the body runs alongside its children
//       co_return;
//   });                               // here every child has ended
//
// The body is a coroutine callable as body(g) returning an aio::task<T>; run()
// returns a task<T> that, awaited, runs the body inline in the awaiting task (the
// group's parent, asyncio's "async with" body), then waits until every child has
// ended — including children spawned, through the group, while it waits — and returns
// the body's value. A group exists only inside run(), so it cannot be entered twice
// or used before it is entered.
//
// Failure: the first child to fail with an exception other than aio::cancelled_error
// cancels every other child and the parent, wherever the body is suspended (the body
// gets aio::cancelled_error). When everything has ended, run() throws an
// aio::exception_group holding every child's error in the order the children failed,
// then the body's own error if it failed with something other than a cancellation.
// Cancelled children are not errors. A child's error is retrieved by the group: the
// loop does not report it.
//
// Cancellation: the group takes back (uncancel()) the cancellation of the parent it
// requested itself, so only a cancellation from outside reaches the caller: it
// cancels the children and, once they have ended, run() throws aio::cancelled_error —
// unless a child failed, in which case the aio::exception_group takes priority and the
// outside cancellation stays requested (cancelling() > 0), delivered at the parent's
// next suspension (as CPython 3.13; 3.12 lost it).
//
// Spawning: g.create_task() starts the child like aio::create_task (first step at the
// back of the ready queue). It throws aio::runtime_error once the group is shutting
// down after a failure or a cancellation ("TaskGroup <...> is shutting down"), and
// once the body has ended and the last child is gone ("TaskGroup <...> is finished").
//
// Resumption: the parent leaving the group is woken through the ready queue by the
// done step of the last child (rule 4), one iteration after that child's last step, as
// in asyncio. A group with no running child returns without suspending.
//
// Lifetime: run() takes the body by value and keeps it in its own frame until the
// body's task has ended, so a capturing lambda is safe even as a temporary. `g` and
// every child handle's task live until run() returns; do not keep `g` beyond the body
// (a child may use it: the group outlives its children). GCC 12 destroys a lambda
// temporary twice when it appears in a co_await expression and captures by value
// something with a destructor: with by-value captures, name the body first and pass
// it with std::move (capturing by reference, as above, is safe).
//
// Allocation: run()'s frame and the body's; one node per child besides the child's
// frame; the list of errors.

#include <concepts>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/loop_core.hpp"
#include "detail/task_group.hpp"
#include "errors.hpp"
#include "event_loop.hpp"
#include "exception_group.hpp"
#include "task.hpp"
#include "task_handle.hpp"

namespace aio {

namespace detail {
// What a group's body returns: an aio::task<T>, whose T run() returns.
template <class R>
struct group_body_result {
    static constexpr bool is_task = false;
    using type = void;
};
template <class T>
struct group_body_result<task<T>> {
    static constexpr bool is_task = true;
    using type = T;
};
template <class F, class G>
using group_body_value_t = typename group_body_result<std::invoke_result_t<F&, G&>>::type;
}  // namespace detail

class task_group {
public:
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;

    // Runs body(group) in the awaiting task, then waits for the group's children; see
    // the top of this header. Returns the body's value.
    template <class F>
        requires std::invocable<F&, task_group&>
    static task<detail::group_body_value_t<F, task_group>> run(F body) {
        static_assert(detail::group_body_result<std::invoke_result_t<F&, task_group&>>::is_task,
                      "the body of aio::task_group::run() is called as body(aio::task_group&) and must "
                      "return an aio::task<T>");
        using value_type = detail::group_body_value_t<F, task_group>;

        detail::task_state* parent = detail::current_task_state();
        if (!parent)
            throw aio::runtime_error("aio::task_group::run() must be awaited inside a task run by an aio event loop");
        task_group g(*detail::running_loop, *parent);

        // The body's exception is kept, not rethrown: the children are waited for first.
        std::exception_ptr body_error;
        [[maybe_unused]] std::conditional_t<std::is_void_v<value_type>, bool, std::optional<value_type>> value{};
        try {
            if constexpr (std::is_void_v<value_type>) co_await std::invoke(body, g);
            else value.emplace(co_await std::invoke(body, g));
        } catch (...) {
            body_error = std::current_exception();
        }

        g.core_.begin_exit(body_error);
        while (g.core_.has_children()) {
            try {
                co_await g.core_.wait_children();
            } catch (const cancelled_error&) {
                g.core_.wait_cancelled(std::current_exception());
            }
        }
        g.core_.end_exit(body_error);  // throws the group's outcome, if any
        // end_exit returns only when the body returned normally.
        if constexpr (!std::is_void_v<value_type>) co_return std::move(*value);
    }

    // Spawns `t` in the group, like aio::create_task, and returns its handle. Throws
    // aio::runtime_error when the group is shutting down or finished (see above); `t`
    // is then destroyed without running.
    template <class T>
    task_handle<T> create_task(task<T> t, std::string name = {}) {
        core_.check_can_spawn();
        auto node = std::make_unique<detail::task_group_child>();
        task_handle<T> h = core_.loop().owner().create_task(std::move(t), std::move(name));
        core_.adopt(std::move(node), *detail::handle_access::state(h));
        return h;
    }

private:
    task_group(detail::loop_core& loop, detail::task_state& parent) noexcept : core_(loop, parent) {}

    detail::task_group_core core_;
};

}  // namespace aio
