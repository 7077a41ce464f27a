#pragma once
// The state every aio coroutine frame carries: the promise's non-template part.
//
// A task's state lives inside its own coroutine frame, so create_task allocates
// nothing beyond the frame. The layout is packed to 64 bytes: a sleeping task costs
// one frame and a heap slot. Fields used only while the task is pending share
// storage with the result, which exists only once it is done.
//
// Where the rest lives: what a task waits on and how cancel() reaches it,
// cancel_hook.hpp and cancellation.hpp; its waiters, waiter.hpp; how its frame is
// destroyed, frame_destruction.hpp, and outlived by handles, zombie.hpp.

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "cancel_hook.hpp"
#include "intrusive_list.hpp"
#include "waiter.hpp"

namespace aio::detail {

class scheduler;
class loop_core;
class cancel_walk;
struct final_awaiter;
struct sleep_node;
template <class>
class promise_base;

enum class task_status : std::uint8_t { pending, value, error, cancelled };

// The members below are the narrow interface awaitables, handles and primitives use.
// The fields are private: the machinery that owns a task's life (the scheduler and the
// loop, the suspension protocol, the cancel walk, the frame's end) is befriended by
// name at the end of the class, so no other code can set the run state by hand.
class task_state {
public:
    task_state() noexcept : run_{} {}
    ~task_state();  // see zombie.hpp

    // Called by the frame's operator delete: keeps the memory if it is a zombie's that
    // a handle still refers to (see zombie.hpp).
    static bool keep_as_zombie(void* frame, std::size_t size) noexcept;
    task_state(const task_state&) = delete;
    task_state& operator=(const task_state&) = delete;

    // --- the outcome
    task_status status() const noexcept { return static_cast<task_status>(status_); }
    bool done() const noexcept { return status_ != 0; }
    bool has_error() const noexcept {
        return status() == task_status::error || status() == task_status::cancelled;
    }
    const std::exception_ptr& error() const noexcept { return error_; }

    void set_value() noexcept { status_ = static_cast<std::uint8_t>(task_status::value); }
    void set_error(std::exception_ptr e, task_status s) noexcept {
        ::new (static_cast<void*>(&error_)) std::exception_ptr(std::move(e));
        status_ = static_cast<std::uint8_t>(s);
    }

    // Someone looked at the error: its end reports nothing (asyncio's
    // "exception was never retrieved").
    void mark_retrieved() noexcept { retrieved_ = true; }
    bool retrieved() const noexcept { return retrieved_; }

    // Rethrows the error of a task that ended with one, marking it retrieved. A
    // cancelled task's own cancelled_error (carrying its cancel(msg) message) goes to
    // the first reader only; later readers get a bare aio::cancelled_error, as asyncio's
    // _make_cancelled_error hands the saved exception out once. (Without memory for
    // the bare one, the original is kept.)
    [[noreturn]] void rethrow_error();  // cancellation.hpp

    // A move-only result can be moved out once.
    bool value_taken() const noexcept { return value_taken_; }
    void mark_value_taken() noexcept { value_taken_ = true; }

    // --- identity
    // The frame this state lives in (the promise sits at a fixed offset in it).
    std::coroutine_handle<> frame() const noexcept {
        return std::coroutine_handle<>::from_address(
            const_cast<char*>(reinterpret_cast<const char*>(this)) - frame_offset_);
    }
    void set_frame(void* frame_address) {
        auto offset = reinterpret_cast<char*>(this) - static_cast<char*>(frame_address);
        frame_offset_ = static_cast<std::uint8_t>(offset);
        if (offset < 0 || offset != frame_offset_)
            throw std::logic_error("aio: unsupported coroutine frame layout");
    }

    std::string name() const {
        return named_ ? *name_string() : "Task-" + std::to_string(name_);
    }
    void set_name(std::string name) {
        if (named_) {
            *name_string() = std::move(name);
        } else {
            name_ = reinterpret_cast<std::uintptr_t>(new std::string(std::move(name)));
            named_ = true;
        }
    }

    // --- ownership
    // The loop a spawned task belongs to; null once that loop has closed.
    scheduler* loop() const noexcept { return zombie_ ? nullptr : loop_; }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept;  // frame_destruction.hpp
    // How many task handles refer to it: a result may be moved out to the only one.
    std::uint32_t handle_count() const noexcept { return refs_; }

    // --- cancellation (cancellation.hpp)
    bool cancel(const std::string* message = nullptr) noexcept;  // message: cancel(msg)
    int cancelling() const noexcept { return cancels_; }
    int uncancel() noexcept {
        if (cancels_ > 0 && --cancels_ == 0) must_cancel_ = false;
        return cancels_;
    }

    // --- who waits for it to end: awaiters and done steps, woken by the scheduler
    waiter_list& waiters() noexcept { return waiters_; }

    // --- a lazy task (aio::task), started inline by the task that awaits it
    bool started() const noexcept { return started_; }
    // Runs its first step now (`self` is its frame(), which the awaiter holds); when it
    // suspends, it resumes `parent` as it ends.
    void start_inline(std::coroutine_handle<> parent, std::coroutine_handle<> self) {
        started_ = true;
        continuation_ = parent;
        inline_start_ = true;
        self.resume();
        inline_start_ = false;
    }

private:
    std::string* name_string() const noexcept { return reinterpret_cast<std::string*>(name_); }

    // --- pending: where to resume and what the task is suspended on | done: the error
    struct run_state {
        std::coroutine_handle<> resume;  // the innermost suspended frame
        std::uintptr_t awaiting;         // a cancel_hook*, or a sleep_node* tagged awaiting_sleep; 0 when none
    };
    union {
        run_state run_;
        std::exception_ptr error_;
    };
    // --- a lazy task resumes its awaiter inline; a spawned task belongs to a loop
    union {
        std::coroutine_handle<> continuation_;
        scheduler* loop_;         // null once the loop has closed
        std::size_t frame_size_;  // a zombie's: what to free when its last handle goes
    };
    waiter_list waiters_;
    list_links<task_state> tasks_;  // in the loop's list of pending (then finished) tasks
    std::uintptr_t name_ = 0;  // the task number, or a std::string* when named_
    std::uint32_t refs_ = 0;   // task handles
    std::uint16_t cancels_ : 12 = 0;     // cancel() requests (asyncio's cancelling())
    // A cancellation reached what the task awaits (a timer, a task, a group) and has not
    // been thrown yet: its message is fixed, as asyncio's cancelled future keeps the
    // first cancel(msg)'s message whatever later cancel() calls say.
    std::uint16_t cancel_fixed_ : 1 = 0;
    std::uint16_t zombie_ : 1 = 0;       // see zombie_handover
    std::uint16_t value_taken_ : 1 = 0;  // a move-only result was moved out
    std::uint16_t finished_ : 1 = 0;     // past its last step: handles may now destroy it
    std::uint8_t frame_offset_ = 0;
    std::uint8_t status_ : 2 = 0;
    bool spawned_ : 1 = false;       // owned by a loop (create_task), not awaited inline
    bool started_ : 1 = false;       // resumed at least once
    bool must_cancel_ : 1 = false;   // throw cancelled_error at the next resumption
    bool retrieved_ : 1 = false;     // someone looked at the error
    bool named_ : 1 = false;
    bool inline_start_ : 1 = false;  // being started by its awaiter's await_suspend

    // The machinery that owns a task's life, each in its own file.
    friend struct task_list;                  // the loop's task lists (below)
    friend class scheduler;                   // scheduling and a task's end (scheduler.hpp)
    friend class loop_core;                   // running, closing (loop_core.hpp, loop_close.hpp)
    friend class cancel_walk;                 // how cancel() travels (cancellation.hpp)
    friend struct final_awaiter;              // a frame's last step (promise.hpp)
    template <class>
    friend class promise_base;
    friend void destroy_finished(task_state&) noexcept;  // frame_destruction.hpp
    // The suspension protocol (suspension.hpp, cancellation.hpp, sleep_node.hpp).
    friend void suspend(task_state&, std::coroutine_handle<>, cancel_hook&) noexcept;
    friend bool cancel_pending(const task_state*) noexcept;
    friend void forget_hook(task_state*, cancel_hook&) noexcept;
    friend void suspend_sleeping(task_state&, std::coroutine_handle<>, sleep_node&, std::int64_t);
    friend void throw_if_cancel_pending(task_state*);
    friend void throw_pending_cancellation(task_state*);
    friend sleep_node* sleep_node_of(const task_state&) noexcept;
};

static_assert(sizeof(task_state) == 64, "task_state is packed to one cache line");

// The loop's list of tasks, in creation order.
struct task_list {
    intrusive_list<task_state, &task_state::tasks_> list;
    std::size_t size = 0;

    task_state* front() const noexcept { return list.front(); }
    task_state* next(const task_state* t) const noexcept { return list.next(t); }
    void push_back(task_state* t) noexcept {
        list.push_back(t);
        ++size;
    }
    void unlink(task_state* t) noexcept {
        list.unlink(t);
        --size;
    }
};

}  // namespace aio::detail

#include "zombie.hpp"
