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

enum class task_status : std::uint8_t { pending, value, error, cancelled };

struct task_state {
    task_state() noexcept : run_{} {}
    ~task_state();  // see zombie.hpp

    // Called by the frame's operator delete: keeps the memory if it is a zombie's that
    // a handle still refers to (see zombie.hpp).
    static bool keep_as_zombie(void* frame, std::size_t size) noexcept;
    task_state(const task_state&) = delete;
    task_state& operator=(const task_state&) = delete;

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

    // The loop a spawned task belongs to; null once that loop has closed.
    scheduler* loop() const noexcept { return zombie_ ? nullptr : loop_; }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept;                                      // frame_destruction.hpp
    bool cancel(const std::string* message = nullptr) noexcept;  // cancellation.hpp; message: cancel(msg)
    int uncancel() noexcept {
        if (cancels_ > 0 && --cancels_ == 0) must_cancel_ = false;
        return cancels_;
    }

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

private:
    std::string* name_string() const noexcept { return reinterpret_cast<std::string*>(name_); }
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
