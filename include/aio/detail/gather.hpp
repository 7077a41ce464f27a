#pragma once
// The machinery behind aio::gather (see gather.hpp for the contract).
//
// Each child is a task; gather waits in each child's waiter list through a slot.
// When a child ends, its slot runs as a done callback through the ready queue
// (rule 7); the last one — or the first failure — completes the gather, which
// wakes the awaiting task (rule 4).

#include <array>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../errors.hpp"
#include "../event_loop.hpp"
#include "../outcome.hpp"
#include "../return_exceptions.hpp"
#include "../task.hpp"
#include "../task_handle.hpp"
#include "done_step.hpp"
#include "loop_core.hpp"
#include "suspension.hpp"
#include "task_state.hpp"

namespace aio::detail {

// A child's share of the gather: 32 bytes. Its waiter sits in the child's waiter list
// with the gather as its done notifier (waiter.hpp), so the child's end is counted as it
// happens, and the gather queues one step — when the last child has ended, or the first
// has failed — in which it completes, where asyncio's gather would run that child's done
// callback.
struct gather_slot {
    waiter link;                  // in the child's waiters while it runs; entry: the gather
    task_state* child = nullptr;  // holds a reference
};
static_assert(sizeof(gather_slot) == 32);

struct gather_state : cancel_hook, cancel_group, done_notifier {
    gather_state(loop_core& l, gather_slot* s, std::size_t n, bool keep_exceptions) noexcept
        : loop(&l), slots(s), count(n), remaining(n), return_exceptions(keep_exceptions), done(n == 0) {
        cancel = on_cancel;
        notify = on_child_done;
        awaited_group = this;
        child = [](const cancel_group& g, std::size_t i) noexcept {
            return static_cast<const gather_state&>(g).slots[i].child;
        };
        children = n;
        completion.owner = this;
        completion.run = on_decided;
    }

    // Takes over one reference to `child`. A child that has ended already is counted
    // now, as asyncio schedules a done callback added to a finished future.
    void attach(gather_slot& slot, task_state* child) {
        slot.child = child;
        if (child->done()) {
            on_child_done(this, &slot.link);
            return;
        }
        slot.link.entry = entry_of(static_cast<done_notifier*>(this), tag_notify);
        child->waiters().push_back(&slot.link);
    }

    // Lets go of every child, finished or not; the ones still running carry on, and
    // their errors count as retrieved (asyncio's gather retrieves them too).
    void detach_all() noexcept {
        loop->withdraw(&completion);
        for (std::size_t i = 0; i < count; ++i) {
            gather_slot& slot = slots[i];
            task_state* child = slot.child;
            if (!child) continue;
            if (slot.link.linked()) {  // still running
                child->waiters().unlink(&slot.link);
                child->mark_retrieved();
            }
            slot.child = nullptr;
            child->release();
        }
    }

    // A gather may move before it is awaited (into a coroutine frame: a gather of
    // gathers, wait_for): aio::invalid_state_error once it is awaited.
    void check_movable() const {
        if (awaiting || consumed) [[unlikely]]
            misuse("an aio::gather cannot be moved once it has been awaited");
    }

    // Takes over `from`'s progress and children (from has passed check_movable()).
    // `same_slots`: the slots stay where they are (a range gather's, on the heap): only
    // the notifier their waiters name changes. Otherwise each of this state's slots takes
    // the place of `from`'s in the child's waiter list; a queued completion step keeps
    // its place in the ready queue.
    void take_over(gather_state& from, bool same_slots) noexcept {
        remaining = from.remaining;
        error = std::move(from.error);
        done = from.done;
        decided = from.decided;
        cancel_requested = from.cancel_requested;
        loop->requeue_in_place(&from.completion, &completion);
        const std::uintptr_t entry = entry_of(static_cast<done_notifier*>(this), tag_notify);
        for (std::size_t i = 0; i < count; ++i) {
            gather_slot& slot = slots[i];
            if (same_slots) {
                if (slot.link.linked()) slot.link.entry = entry;
                continue;
            }
            gather_slot& old = from.slots[i];
            slot.child = std::exchange(old.child, nullptr);
            if (slot.child && old.link.linked()) {
                slot.link.entry = entry;
                slot.child->waiters().replace(&old.link, &slot.link);
            }
        }
        from.count = 0;
        from.children = 0;
        from.slots = nullptr;
    }

    // One task awaits a gather, once: a second awaiter (while the first waits, or
    // after it has had the result) gets aio::invalid_state_error.
    bool ready() const {
        if (awaiting || consumed) [[unlikely]]
            misuse(consumed ? "an aio::gather can be awaited only once"
                            : "an aio::gather can be awaited only once: another task is awaiting it");
        return done;
    }

    void suspend(std::coroutine_handle<> h) {
        task_state& t = suspending_task("aio::gather()");
        awaiting = &t;
        detail::suspend(t, h, *this);
    }

    void check_result() {
        consumed = true;
        resumed(awaiting);
        if (error) std::rethrow_exception(error);
    }

    // The gather is going away. A task other than its owner may still be suspended on
    // it (the owner cannot be, unless its loop is closing): it can never be resumed
    // now, since resuming would read the dead gather, but it must not keep a dangling
    // hook that cancel() would follow. It stays suspended until its loop closes.
    void forget_awaiter() noexcept {
        if (awaiting && !consumed && !loop->closed) forget_hook(awaiting, *this);
    }

    loop_core* loop;
    gather_slot* slots;
    std::size_t count;
    std::size_t remaining;
    task_state* awaiting = nullptr;
    std::exception_ptr error;
    bool return_exceptions;
    bool done;
    bool decided = false;  // the last child has ended, or one failed: the completion step is queued
    bool cancel_requested = false;
    bool consumed = false;

private:
    struct completion_step : ready_item {
        gather_state* owner = nullptr;
    };
    completion_step completion;

    // A child has ended (its task is finishing now). Only counts and keeps errors: what
    // the awaiting task can see changes in the completion step.
    static void on_child_done(done_notifier* n, waiter* w) noexcept {
        auto& g = static_cast<gather_state&>(*n);
        task_state& child = *reinterpret_cast<gather_slot*>(w)->child;
        --g.remaining;
        if (g.decided) {
            child.mark_retrieved();
            return;
        }
        if (!g.return_exceptions && child.has_error()) {  // the first failure ends the gather
            child.mark_retrieved();
            g.error = child.error();
            g.decide();
        } else if (g.remaining == 0) {
            g.decide();
        }
    }

    void decide() noexcept {
        decided = true;
        loop->push(&completion);
    }

    // Where asyncio's gather runs the done callback of the child that ends it.
    static void on_decided(ready_item* item) noexcept {
        gather_state& g = *static_cast<completion_step*>(item)->owner;
        if (!g.error && g.cancel_requested) {
            try {
                g.error = std::make_exception_ptr(cancellation_of(g.awaiting));
            } catch (...) {
                g.error = std::current_exception();
            }
        }
        g.done = true;
        if (g.awaiting) g.loop->schedule(*g.awaiting);
    }

    [[noreturn, gnu::cold, gnu::noinline]] static void misuse(const char* what) { throw invalid_state_error(what); }

    // Cancelling the awaiting task cancels every child (rule 8). This only says whether
    // the cancellation reaches the gather — it does while a child has not ended, as in
    // asyncio's _GatheringFuture.cancel() — and remembers it; cancel_walk goes on to
    // cancel each child.
    static bool on_cancel(cancel_hook* hook) noexcept {
        auto& g = *static_cast<gather_state*>(hook);
        if (g.done) return false;
        for (std::size_t i = 0; i < g.count; ++i)
            if (g.slots[i].child && !g.slots[i].child->done()) {
                g.cancel_requested = true;
                return true;
            }
        return false;
    }
};

// --- what a child argument may be, and the value it contributes

template <class A>
struct gather_child;
template <class T>
struct gather_child<task<T>> {
    using value_type = T;
    static constexpr bool shared = false;
    static task_state* adopt(loop_core& loop, task<T>&& t) {
        task_handle<T> h = loop.owner().create_task(std::move(t));
        task_state* state = handle_access::state(h);
        state->add_ref();
        return state;
    }
};
template <class T>
struct gather_child<task_handle<T>> {
    using value_type = T;
    static constexpr bool shared = true;
    static task_state* adopt(loop_core& loop, const task_handle<T>& h) {
        task_state* state = handle_access::state(h);
        if (!state) throw invalid_state_error("aio::gather() of an empty task_handle");
        if (!state->done() && state->loop() != &loop)
            throw aio::runtime_error("aio::gather() of a task of another event loop");
        state->add_ref();
        return state;
    }
};

// A lazy task or a gather is moved in (an rvalue); a handle may be shared.
template <class A>
concept gatherable = requires { typename gather_child<std::remove_cvref_t<A>>::value_type; } &&
                     (gather_child<std::remove_cvref_t<A>>::shared || std::is_rvalue_reference_v<A&&>);

template <class A>
using gather_value_t = typename gather_child<std::remove_cvref_t<A>>::value_type;

// A sized range of gatherable children; lazy tasks are moved out of it, so a range of
// them must be an rvalue (`gather(std::move(tasks))`).
template <class R>
concept gatherable_range =
    std::ranges::forward_range<R> && std::ranges::sized_range<R> &&
    requires { typename gather_child<std::ranges::range_value_t<R>>::value_type; } &&
    (!std::is_same_v<std::ranges::range_value_t<R>,
                     task<typename gather_child<std::ranges::range_value_t<R>>::value_type>> ||
     (std::is_rvalue_reference_v<R&&> && !std::is_const_v<std::remove_reference_t<R>>));

template <class R>
using gather_range_value_t = typename gather_child<std::ranges::range_value_t<R>>::value_type;

template <class T>
using slot_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// One child's share of the result. Moves the value out when gather holds the only
// reference to the child; copies it when someone else holds a handle too.
template <class T, bool KeepExceptions>
auto child_result(task_state& child) {
    if constexpr (KeepExceptions) {
        if (child.has_error()) {
            child.mark_retrieved();
            return outcome<T>(child.error());
        }
        if constexpr (std::is_void_v<T>) return outcome<T>(std::monostate{});
        else return outcome<T>(task_result<T>(child, child.handle_count() == 1));
    } else {
        if constexpr (std::is_void_v<T>) return std::monostate{};
        else return task_result<T>(child, child.handle_count() == 1);
    }
}

template <bool KeepExceptions, class... T>
class [[nodiscard]] gather_awaitable {
public:
    template <class... A>
    explicit gather_awaitable(loop_core& loop, A&&... children)
        : state_(loop, slots_.data(), sizeof...(T), KeepExceptions) {
        std::size_t i = 0;
        try {
            (state_.attach(slots_[i++], gather_child<std::remove_cvref_t<A>>::adopt(loop, std::forward<A>(children))),
             ...);
        } catch (...) {
            state_.detach_all();
            throw;
        }
    }
    // Before it is awaited (aio::invalid_state_error after): the children follow.
    gather_awaitable(gather_awaitable&& other)
        : state_((other.state_.check_movable(), *other.state_.loop), slots_.data(), sizeof...(T), KeepExceptions) {
        state_.take_over(other.state_, false);
    }
    gather_awaitable(const gather_awaitable&) = delete;
    gather_awaitable& operator=(const gather_awaitable&) = delete;
    ~gather_awaitable() {
        state_.forget_awaiter();
        state_.detach_all();
    }

    bool await_ready() const { return state_.ready(); }
    void await_suspend(std::coroutine_handle<> h) { state_.suspend(h); }
    auto await_resume() {
        state_.check_result();
        return collect(std::index_sequence_for<T...>{});
    }

private:
    template <std::size_t... I>
    auto collect(std::index_sequence<I...>) {
        return std::tuple{child_result<T, KeepExceptions>(*slots_[I].child)...};
    }

    std::array<gather_slot, sizeof...(T)> slots_;
    gather_state state_;
};

template <bool KeepExceptions, class T>
class [[nodiscard]] gather_range_awaitable {
public:
    template <class R>
    gather_range_awaitable(loop_core& loop, R&& children)
        : slots_(std::make_unique<gather_slot[]>(std::ranges::size(children))),
          state_(loop, slots_.get(), std::ranges::size(children), KeepExceptions) {
        using child = gather_child<std::ranges::range_value_t<R>>;
        try {
            std::size_t i = 0;
            for (auto&& c : children) {  // a lazy task is moved out; a handle is shared
                if constexpr (std::is_rvalue_reference_v<R&&>) state_.attach(slots_[i++], child::adopt(loop, std::move(c)));
                else state_.attach(slots_[i++], child::adopt(loop, c));
            }
        } catch (...) {
            state_.detach_all();
            throw;
        }
    }
    // Before it is awaited (aio::invalid_state_error after): the children follow.
    gather_range_awaitable(gather_range_awaitable&& other)
        : slots_((other.state_.check_movable(), std::move(other.slots_))),
          state_(*other.state_.loop, slots_.get(), other.state_.count, KeepExceptions) {
        state_.take_over(other.state_, true);
    }
    gather_range_awaitable(const gather_range_awaitable&) = delete;
    gather_range_awaitable& operator=(const gather_range_awaitable&) = delete;
    ~gather_range_awaitable() {
        state_.forget_awaiter();
        state_.detach_all();
    }

    bool await_ready() const { return state_.ready(); }
    void await_suspend(std::coroutine_handle<> h) { state_.suspend(h); }
    auto await_resume() {
        state_.check_result();
        using value = decltype(child_result<T, KeepExceptions>(std::declval<task_state&>()));
        std::vector<value> results;
        results.reserve(state_.count);
        for (std::size_t i = 0; i < state_.count; ++i)
            results.push_back(child_result<T, KeepExceptions>(*slots_[i].child));
        return results;
    }

private:
    std::unique_ptr<gather_slot[]> slots_;
    gather_state state_;
};

// --- a gather as a child of a gather (asyncio's gather(gather(a, b), c))
//
// The inner gather is moved into a task that awaits it: its result (a tuple or a
// vector) is the outer gather's slot, and cancelling the outer gather cancels that task,
// which cancels the inner gather's children (rule 8).

template <class R, class G>
task<R> awaiting_gather(G inner) {
    co_return co_await inner;
}

template <class G>
struct gather_child_gather {
    using value_type = decltype(std::declval<G&>().await_resume());
    static constexpr bool shared = false;
    static task_state* adopt(loop_core& loop, G&& inner) {
        task_handle<value_type> h = loop.owner().create_task(awaiting_gather<value_type, G>(std::move(inner)));
        task_state* state = handle_access::state(h);
        state->add_ref();
        return state;
    }
};
template <bool KeepExceptions, class... T>
struct gather_child<gather_awaitable<KeepExceptions, T...>> : gather_child_gather<gather_awaitable<KeepExceptions, T...>> {};
template <bool KeepExceptions, class T>
struct gather_child<gather_range_awaitable<KeepExceptions, T>> : gather_child_gather<gather_range_awaitable<KeepExceptions, T>> {};

}  // namespace aio::detail
