#pragma once
// The state every aio coroutine frame carries: the promise's non-template part.
//
// A task's state lives inside its own coroutine frame, so create_task allocates
// nothing beyond the frame. The layout is packed to 64 bytes: a sleeping task costs
// one frame and a heap slot. Fields used only while the task is pending share
// storage with the result, which exists only once it is done.

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

namespace aio::detail {

class loop_core;

// A node in a task's list of waiters. When the task finishes, each waiter's `entry`
// (a tagged ready-queue entry) is appended to the ready queue, oldest waiter first.
//
// A waiter holds no reference to the task while it waits: the loop owns a pending
// task, and tasks that wait on each other must not keep each other alive (close()
// could not free a deadlocked pair). When the task finishes, it hands each waiting
// task a reference (marked in `entry`) that keeps the result readable until the
// awaiter is gone.
struct waiter {
    static constexpr std::uintptr_t holds_reference = 4;

    waiter* prev = nullptr;
    waiter* next = nullptr;
    std::uintptr_t entry = 0;

    bool linked() const noexcept { return prev != nullptr; }
    bool holds_ref() const noexcept { return (entry & holds_reference) != 0; }
};

// Circular, doubly linked: `head` is the oldest waiter, head->prev the newest.
inline void push_waiter(waiter*& head, waiter* w) noexcept {
    if (!head) {
        w->prev = w->next = w;
        head = w;
        return;
    }
    waiter* tail = head->prev;
    w->prev = tail;
    w->next = head;
    tail->next = w;
    head->prev = w;
}

inline void unlink_waiter(waiter*& head, waiter* w) noexcept {
    if (w->next == w) {
        head = nullptr;
    } else {
        w->prev->next = w->next;
        w->next->prev = w->prev;
        if (head == w) head = w->next;
    }
    w->prev = w->next = nullptr;
}

// A group of tasks awaited together (gather). cancel() visits the children itself,
// one after the other and depth first, as asyncio's recursive cancel() does, but it
// keeps its place in each group here rather than on the stack: groups may nest a
// hundred thousand deep, or await each other in a cycle.
struct task_state;
struct cancel_group {
    task_state* (*child)(const cancel_group&, std::size_t) noexcept = nullptr;  // the i-th; may be null
    std::size_t children = 0;
    // The walk's bookkeeping, meaningful only while `walking`.
    cancel_group* walk_parent = nullptr;  // the group the walk returns to after this one
    std::size_t walk_next = 0;            // the next child to visit
    bool walking = false;                 // on the walk's path: reaching it again is a cycle
};

// What a suspended task is waiting on, so that cancel() can reach it. `cancel`
// returns true when the cancellation was delivered: the waiter will be woken.
struct cancel_hook {
    bool (*cancel)(cancel_hook*) noexcept = nullptr;
    // Set when what is awaited is another task: cancel() follows such chains itself,
    // without recursion (a chain may be long, or a cycle of deadlocked tasks).
    task_state* awaited_task = nullptr;
    // Set when what is awaited is a group: `cancel` then only says whether the
    // cancellation reaches the group (and marks it cancelled); cancel() itself goes on
    // to cancel each child.
    cancel_group* awaited_group = nullptr;
};
enum : std::uintptr_t { awaiting_hook = 0, awaiting_sleep = 1 };

enum class task_status : std::uint8_t { pending, value, error, cancelled };

// The zombie (see task_state::zombie_handover) whose frame this thread is destroying,
// from its promise's destruction to the frame's deallocation. The frame's parameters
// are destroyed in between: a handle among them must count down the handover, not
// touch the task_state that is already gone.
inline thread_local task_state* zombie_being_destroyed = nullptr;

struct task_state {
    task_state() noexcept : run_{} {}
    ~task_state() {
        if (zombie_ && refs_ > 0) {  // handles outlive the frame: keep what they read
            zombie_handover& z = handover();
            z.frame = const_cast<char*>(reinterpret_cast<const char*>(this)) - frame_offset_;
            z.refs = refs_;
            z.name = name_;
            z.named = named_;
            z.frame_offset = frame_offset_;
            z.error = std::move(error_);
            error_.~exception_ptr();
            zombie_being_destroyed = this;
            return;
        }
        if (has_error()) error_.~exception_ptr();
        if (named_) delete name_string();
    }

    // A pending task whose frame close() had to destroy while handles still refer to
    // it (its frame held a handle to itself, or tasks held each other's): the frame's
    // memory stays, holding a bare cancelled task_state, until the last handle goes.
    struct zombie_handover {
        void* frame = nullptr;
        std::uint32_t refs = 0;
        std::uintptr_t name = 0;
        bool named = false;
        std::uint8_t frame_offset = 0;
        std::exception_ptr error;
    };
    static zombie_handover& handover() noexcept {
        thread_local zombie_handover z;
        return z;
    }
    // Called by the frame's operator delete: keeps the memory if it is a zombie's that
    // a handle still refers to.
    static bool keep_as_zombie(void* frame, std::size_t size) noexcept {
        if (!zombie_being_destroyed) return false;
        zombie_handover& z = handover();
        if (z.frame != frame) return false;
        zombie_being_destroyed = nullptr;
        if (z.refs == 0) {  // the last handles were among the frame's parameters
            if (z.named) delete reinterpret_cast<std::string*>(z.name);
            z = {};
            return false;
        }
        auto* t = ::new (static_cast<char*>(frame) + z.frame_offset) task_state;
        t->set_error(std::move(z.error), task_status::cancelled);
        t->refs_ = z.refs;
        t->name_ = z.name;
        t->named_ = z.named;
        t->frame_offset_ = z.frame_offset;
        t->frame_size_ = size;
        t->spawned_ = t->started_ = t->retrieved_ = true;
        t->finished_ = 1;
        t->zombie_ = 1;
        z = {};
        return true;
    }
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
    loop_core* loop() const noexcept { return zombie_ ? nullptr : loop_; }

    void add_ref() noexcept { ++refs_; }
    // Defined by loop_core: these reach the loop.
    void release() noexcept;
    bool cancel(const std::string* message = nullptr) noexcept;  // message: cancel(msg)
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
        loop_core* loop_;          // null once the loop has closed
        std::size_t frame_size_;  // a zombie's: what to free when its last handle goes
    };
    waiter* waiters_ = nullptr;
    task_state* prev_ = nullptr;  // the loop's list of pending (then finished) tasks
    task_state* next_ = nullptr;
    std::uintptr_t name_ = 0;  // the task number, or a std::string* when named_
    std::uint32_t refs_ = 0;   // task handles
    std::uint16_t cancels_ : 13 = 0;     // cancel() requests (asyncio's cancelling())
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

// The loop's intrusive list of tasks, in creation order.
struct task_list {
    task_state* head = nullptr;
    task_state* tail = nullptr;
    std::size_t size = 0;

    void push_back(task_state* t) noexcept {
        t->prev_ = tail;
        t->next_ = nullptr;
        (tail ? tail->next_ : head) = t;
        tail = t;
        ++size;
    }
    void unlink(task_state* t) noexcept {
        (t->prev_ ? t->prev_->next_ : head) = t->next_;
        (t->next_ ? t->next_->prev_ : tail) = t->prev_;
        t->prev_ = t->next_ = nullptr;
        --size;
    }
};

}  // namespace aio::detail
