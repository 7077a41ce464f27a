#pragma once
// The event loop proper: ready queue, timer queue, the multiplexer it blocks in, and the
// bookkeeping of the tasks it owns. aio::event_loop is the public face of this class.
//
// One iteration (run_once) follows asyncio's BaseEventLoop._run_once: wait for the
// next timer or I/O only when nothing is ready, move every due timer to the ready
// queue, then run exactly the entries that were queued when the iteration began.

#include <sys/prctl.h>

#include <chrono>
#include <cstdint>
#include <climits>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../exception_context.hpp"
#include "callback_node.hpp"
#include "epoll_poller.hpp"
#include "interrupt.hpp"
#include "ready_queue.hpp"
#include "sleep_node.hpp"
#include "task_state.hpp"
#include "timer_queue.hpp"

namespace aio {
class event_loop;
}

namespace aio::detail {

class loop_core;

// The loop running on this thread, set only while it runs.
inline thread_local loop_core* running_loop = nullptr;

// A duration in nanoseconds, saturated at the int64 range (an hour-long or a
// thousand-year delay must neither overflow nor wrap into the past).
template <class Rep, class Period>
std::int64_t saturating_ns(std::chrono::duration<Rep, Period> d) noexcept {
    const long double ns = std::chrono::duration<long double, std::nano>(d).count();
    if (!(ns < static_cast<long double>(INT64_MAX))) return ns != ns ? 0 : INT64_MAX;
    if (ns <= static_cast<long double>(INT64_MIN)) return INT64_MIN;
    const auto whole = static_cast<std::int64_t>(ns);
    return static_cast<long double>(whole) < ns ? whole + 1 : whole;  // round up: never wake early
}

// now + delay, saturated.
inline std::int64_t deadline_after(std::int64_t now, std::int64_t delay) noexcept {
    if (delay > 0 && now > INT64_MAX - delay) return INT64_MAX;
    return now + delay;
}

inline std::int64_t steady_now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// One line on stderr, written at once so that lines from threads do not interleave.
inline void print_exception_context(const exception_context& context) noexcept {
    try {
        std::string line = "aio: " + context.message;
        if (!context.task_name.empty()) line += " (task '" + context.task_name + "')";
        if (context.exception) {
            try {
                std::rethrow_exception(context.exception);
            } catch (const std::exception& e) {
                line += ": ";
                line += e.what();
            } catch (...) {
                line += ": unknown exception";
            }
        }
        line += '\n';
        std::fputs(line.c_str(), stderr);
    } catch (...) {
        std::fputs("aio: an error occurred and could not be described\n", stderr);
    }
}

void destroy_finished(task_state& t) noexcept;

// The loop's timer entries for the timer queue: a sleep is tracked (its node lives in
// the sleeping frame, which must never be left behind in the queue); a callback is
// not (the queue holds a reference to it, and cancelling it only marks it).
struct loop_timers {
    static bool tracked(std::uintptr_t tagged) noexcept { return tagged & timer_is_sleep; }
    static timer_node* node_of(std::uintptr_t tagged) noexcept {
        return &sleep_node_of(*reinterpret_cast<task_state*>(tagged & ~timer_is_sleep))->timer;
    }
    static bool cancelled(std::uintptr_t tagged) noexcept {
        return reinterpret_cast<callback_node*>(tagged)->cancelled;
    }
    static void forget(std::uintptr_t tagged) noexcept {
        auto* node = reinterpret_cast<callback_node*>(tagged);
        node->in_timers = false;
        node->release();
    }
};

// The error a cancellation raises in task `t`: aio::cancelled_error, carrying the
// message of the cancel(msg) that caused it, if any.
inline cancelled_error cancellation_of(const task_state* t);

class loop_core {
public:
    using exception_handler = std::function<void(event_loop&, const exception_context&)>;

    explicit loop_core(event_loop& owner) : owner_(owner) {}
    ~loop_core() {
        if (!closed) close();
    }
    loop_core(const loop_core&) = delete;
    loop_core& operator=(const loop_core&) = delete;

    // --- scheduling (rule 4: a wake-up appends, nothing resumes inline)

    void schedule(task_state& t) {
        t.run_.awaiting = 0;
        ready.push(entry_of(&t, tag_task));
    }
    void push(ready_item* item) { item->queued_at = ready.push(entry_of(item, tag_item)); }
    void wake(std::uintptr_t entry) {
        if ((entry & tag_mask) == tag_task) schedule(*pointer_of<task_state>(entry));
        else push(pointer_of<ready_item>(entry));
    }
    // Runs `t`'s next step now, as its own ready-queue entry would. For a ready_item
    // queued in a woken task's place that decides, when its turn comes, whether the
    // task resumes or waits again (a queue getter whose item was taken meanwhile).
    void run_step(task_state& t) noexcept {
        t.run_.awaiting = 0;
        run_task(t);
    }
    void withdraw(ready_item* item) noexcept {
        if (item->queued_at == not_queued) return;
        ready.withdraw(item->queued_at, entry_of(item, tag_item));
        item->queued_at = not_queued;
    }

    void check_open() const {
        if (closed) throw aio::runtime_error("Event loop is closed");
    }

    // --- callbacks (call_soon, call_later, call_at)

    // A node for `f`, holding the loop's reference.
    template <class F>
    callback_node* make_callback(F&& f) {
        auto* node = new callback_impl<std::decay_t<F>>(std::forward<F>(f));
        node->loop = this;
        node->item.run = run_callback;
        node->item.discard = discard_callback;
        return node;
    }

    // Files a fresh node as a timer due at `when`; lets go of it if that fails.
    void arm(callback_node* node, std::int64_t when) {
        node->when = when;
        try {
            timers.push(when, reinterpret_cast<std::uintptr_t>(node) | timer_is_callback);
        } catch (...) {
            node->release();
            throw;
        }
        node->in_timers = true;
    }

    // The callback will not run. A timer's entry is left to the timer queue and its
    // callable destroyed by the loop before its next iteration: not here, where the
    // caller may be a method of an object that only the callable keeps alive. A
    // callback already in the ready queue is skipped when its turn comes. No effect
    // once it has run.
    static void cancel(callback_node* node) noexcept {
        if (node->cancelled) return;
        node->cancelled = true;
        if (!node->in_timers) return;
        loop_core& loop = *node->loop;  // set while in_timers
        if (loop.closed) return;        // closing: its timers are being let go of
        loop.timers.cancelled_untracked();  // may sweep it: the caller holds a reference
        if (!node->ops->dispose) return;    // nothing to destroy
        node->add_ref();
        try {
            loop.disposals.push_back(node);
        } catch (...) {
            node->release();  // without memory, the callable goes with the node
        }
    }

    // Destroys the callables of the timers cancelled since the last time.
    void dispose_cancelled() noexcept {
        while (!disposals.empty()) {  // a destructor may cancel more
            callback_node* node = disposals.back();
            disposals.pop_back();
            node->dispose();
            node->release();
        }
    }

    static void run_callback(ready_item* item) noexcept {
        auto* node = callback_node::from_item(item);
        if (node->in_timers) {
            node->in_timers = false;
            node->loop->timers.landed(node->cancelled);
        }
        if (!node->cancelled) {
            try {
                node->ops->invoke(node);
            } catch (...) {
                node->loop->report({"Exception in callback", std::current_exception(), {}});
            }
        }
        // It will never run again: what it captured goes now, even if a handle lives on
        // (a callable holding its own handle would otherwise keep itself alive).
        node->dispose();
        node->release();
    }

    // The loop closed with the node still queued: the loop lets go of it.
    static void discard_callback(ready_item* item) noexcept {
        auto* node = callback_node::from_item(item);
        node->loop = nullptr;
        node->in_timers = false;
        node->dispose();
        node->release();
    }

    // --- tasks

    void spawn(task_state& t, std::string name) {
        check_open();
        if (!name.empty()) t.set_name(std::move(name));
        else t.name_ = next_task_id_++;
        t.spawned_ = true;
        t.started_ = false;
        t.loop_ = this;
        t.run_.resume = t.frame();
        pending.push_back(&t);
        schedule(t);
    }

    // The task's coroutine reached its final suspend point (or was cancelled before
    // it started): wake its waiters in the order they came.
    void finish(task_state& t) noexcept {
        pending.unlink(&t);
        if (!cancel_messages.empty()) [[unlikely]]
            note_cancel_message(t, nullptr);
        while (waiter* w = t.waiters_) {
            unlink_waiter(t.waiters_, w);
            if ((w->entry & tag_mask) == tag_task) {  // an awaiting task will read the result
                t.add_ref();
                w->entry |= waiter::holds_reference;
            }
            wake(w->entry & ~waiter::holds_reference);
        }
    }

    void report_unretrieved(task_state& t) noexcept {
        if (t.status() == task_status::error && !t.retrieved_)
            report({"Task exception was never retrieved", t.error(), t.name()});
    }

    // Removes a sleeping task's timer and wakes the task; false when too late.
    bool cancel_sleep(task_state& t) noexcept {
        sleep_node& s = *sleep_node_of(t);
        if (s.armed()) timers.remove(&s.timer);
        else if (s.timer.slot != sleep_node::queued) return false;
        s.timer.slot = sleep_node::cancelled;
        schedule(t);
        return true;
    }

    // --- running

    void run_forever() {
        run_until([this] { return stopping; });
    }

    // Runs whole iterations until `done()` holds after one.
    template <class Done>
    void run_until(Done done) {
        check_open();
        if (running) throw aio::runtime_error("This event loop is already running");
        if (running_loop) throw aio::runtime_error("Cannot run the event loop while another loop is running");
        // While it runs, the loop's thread asks for timer wake-ups without the
        // kernel's default 50 µs slack (the one-shot timerfd is subject to it on
        // recent kernels); the thread's own setting is restored afterwards.
        struct running_scope {
            loop_core& loop;
            int slack;
            explicit running_scope(loop_core& l) : loop(l), slack(::prctl(PR_GET_TIMERSLACK)) {
                if (slack > 1) ::prctl(PR_SET_TIMERSLACK, 1UL);
                loop.running = true;
                running_loop = &l;
            }
            ~running_scope() {
                loop.running = false;
                loop.stopping = false;
                running_loop = nullptr;
                if (slack > 1) ::prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(slack));
            }
        } scope(*this);
        do run_once();
        while (!done());
    }

    void run_once() {
        if (!disposals.empty()) dispose_cancelled();
        if (ready.empty() && !stopping) {
            timers.tidy();
            if (!timers.empty()) poller.wait(timers.next_deadline(), true);
            else if (poller.can_wake()) poller.wait(epoll_poller::no_deadline, true);
            else
                throw aio::runtime_error(
                    "aio event loop: nothing is ready and nothing can wake the loop "
                    "(every task waits on another: a deadlock)");
        } else if (poller.can_wake()) {
            poller.wait(epoll_poller::no_deadline, false);
        }
        if (sigint_pending && interrupt_target) [[unlikely]]
            interrupt();
        if (!timers.empty()) fire_due_timers();
        // A long batch (timers fired together, a gather's children) reaches memory in
        // no particular order: fetch a few entries ahead to overlap the misses.
        constexpr std::size_t ahead = 16;
        for (std::size_t n = ready.size(); n > 0; --n) {
            std::uintptr_t entry = ready.pop();
            if (n > ahead) __builtin_prefetch(pointer_of<void>(ready.peek(ahead - 1)));
            else if (n > 1) __builtin_prefetch(pointer_of<void>(ready.front()));
            if (entry) dispatch(entry);
        }
    }

    // --- closing

    void close() {
        if (running) throw aio::runtime_error("Cannot close a running event loop");
        if (closed) return;
        dispose_cancelled();
        closed = true;
        // Work that never ran.
        while (!ready.empty()) {
            std::uintptr_t entry = ready.pop();
            if (entry && (entry & tag_mask) == tag_item) {
                auto* item = pointer_of<ready_item>(entry);
                item->queued_at = not_queued;
                if (item->discard) item->discard(item);
            }
        }
        // Timers left: callbacks are dropped; sleeps are disarmed before their frames go.
        timers.clear([](const timer_queue::entry& e) {
            if ((e.tagged & timer_is_sleep) == 0) discard_callback(reinterpret_cast<ready_item*>(e.tagged));
        });
        // Tasks still pending end cancelled; their frames are destroyed now, or when
        // the last handle to them goes if someone still holds one.
        std::vector<task_state*> doomed;
        doomed.reserve(pending.size);
        for (task_state* t = pending.head; t; t = t->next_) doomed.push_back(t);
        for (task_state* t : doomed) {
            pending.unlink(t);
            while (waiter* w = t->waiters_) {  // done callbacks never run; awaiters are doomed too
                unlink_waiter(t->waiters_, w);
                if ((w->entry & tag_mask) == tag_item) {
                    auto* item = pointer_of<ready_item>(w->entry);
                    if (item->discard) item->discard(item);
                }
            }
            t->set_error(std::make_exception_ptr(cancelled_error("the event loop was closed")),
                         task_status::cancelled);
            t->retrieved_ = true;
            t->finished_ = true;
            finished.push_back(t);
            t->add_ref();
        }
        // Let go of those only the loop holds; their frames may hold the last handle to
        // others, so go round until nothing changes.
        for (bool progress = true; progress;) {
            progress = false;
            std::erase_if(doomed, [&](task_state* t) {
                if (t->refs_ != 1) return false;
                t->release();
                progress = true;
                return true;
            });
        }
        // The rest are held by handles: their own (a frame holding a handle to itself),
        // each other's, or the user's. Destroy their frames all the same; a task that a
        // handle still refers to lives on as a zombie (see task_state::zombie_handover).
        for (task_state* t : doomed) {
            finished.unlink(t);
            --t->refs_;  // the loop's; someone else holds one
            t->zombie_ = 1;
            t->frame_size_ = 0;
            t->frame().destroy();
        }
        // What outlives the loop forgets it.
        for (task_state* t = finished.head; t;) {
            task_state* next = t->next_;
            t->loop_ = nullptr;
            t->prev_ = t->next_ = nullptr;
            t = next;
        }
        finished = {};
    }

    // --- errors

    void report(const exception_context& context) noexcept {
        if (!handler) {
            print_exception_context(context);
            return;
        }
        try {
            // Call a copy: a handler may replace itself (a one-shot handler), which
            // destroys the function that is running, captures and all.
            const exception_handler call = handler;
            call(owner_, context);
        } catch (...) {
            print_exception_context({"Unhandled error in exception handler", std::current_exception(), {}});
            print_exception_context(context);
        }
    }

    event_loop& owner() const noexcept { return owner_; }

    using timer_queue = basic_timer_queue<loop_timers>;

    ready_queue ready;
    timer_queue timers;
    epoll_poller poller;
    task_list pending;   // in creation order: all_tasks(), shutdown
    task_list finished;  // done, still referenced by a handle
    task_state* current = nullptr;
    task_state* interrupt_target = nullptr;  // aio::run's main task, cancelled by Ctrl-C
    // Cancelled timers whose callables are still to be destroyed (see cancel()).
    std::vector<callback_node*> disposals;
    // The messages of pending cancel(msg) requests, by task (few, and usually none).
    std::vector<std::pair<const task_state*, std::string>> cancel_messages;

    // Records cancel(msg)'s message for `t`; a cancel() without one forgets it, as in
    // asyncio. The message is best effort: without memory for it, it is dropped.
    void note_cancel_message(const task_state& t, const std::string* message) noexcept {
        auto it = cancel_messages.begin();
        while (it != cancel_messages.end() && it->first != &t) ++it;
        if (!message || message->empty()) {
            if (it != cancel_messages.end()) cancel_messages.erase(it);
            return;
        }
        try {
            if (it != cancel_messages.end()) it->second = *message;
            else cancel_messages.emplace_back(&t, *message);
        } catch (...) {
        }
    }
    // The message of the cancellation delivered to `t` (empty: none).
    std::string cancel_message(const task_state& t) const {
        for (const auto& [task, message] : cancel_messages)
            if (task == &t) return message;
        return {};
    }
    exception_handler handler;
    bool running = false;
    bool stopping = false;
    bool closed = false;

private:
    void interrupt() noexcept {
        sigint_pending = 0;
        if (!interrupt_target->done()) interrupt_target->cancel();
    }

    void fire_due_timers() {
        timers.pop_due(
            steady_now_ns(), [this](std::size_t n) { ready.reserve(n); },
            [this](const timer_queue::entry& due) noexcept {
                const std::uintptr_t tagged = due.tagged;
                if (tagged & timer_is_sleep) {
                    auto* t = reinterpret_cast<task_state*>(tagged & ~timer_is_sleep);
                    sleep_node_of(*t)->timer.slot = sleep_node::queued;
                    ready.push(entry_of(t, tag_sleep));
                } else {
                    // The node's address is its item's: queued without touching the
                    // node, which runs (or, cancelled, is skipped) in its turn.
                    ready.push(entry_of(reinterpret_cast<ready_item*>(tagged), tag_item));
                }
            });
    }

    void dispatch(std::uintptr_t entry) noexcept {
        switch (entry & tag_mask) {
        case tag_task:
            run_task(*pointer_of<task_state>(entry));
            break;
        case tag_sleep: {
            // rule 6: the timer's callback completes the sleep, which wakes the task —
            // unless cancel() got there first (and already woke it).
            task_state& t = *pointer_of<task_state>(entry);
            if (t.run_.awaiting & awaiting_sleep) {
                sleep_node_of(t)->timer.slot = sleep_node::fired;
                schedule(t);
            }
            break;
        }
        default: {
            auto* item = pointer_of<ready_item>(entry);
            item->queued_at = not_queued;
            item->run(item);
        }
        }
    }

    void run_task(task_state& t) noexcept {
        if (!t.started_) {
            t.started_ = true;
            if (t.must_cancel_) {  // cancelled before its first step: the body never runs
                t.must_cancel_ = false;
                t.set_error(std::make_exception_ptr(cancellation_of(&t)), task_status::cancelled);
                finish(t);
                reap(t);
                return;
            }
        }
        current = &t;
        t.run_.resume.resume();
        current = nullptr;
        if (t.done()) reap(t);
    }

    // After the last step: the loop lets go of the task.
    void reap(task_state& t) noexcept {
        t.finished_ = true;
        finished.push_back(&t);
        if (t.refs_ == 0) destroy_finished(t);
    }


    event_loop& owner_;
    std::uint64_t next_task_id_ = 1;
};

// Destroys a finished task's frame. Destroying a frame can drop the last handle to
// another finished task (a chain of a hundred thousand tasks each holding the
// previous one's handle, say): those wait in a list instead of recursing.
inline void destroy_finished(task_state& t) noexcept {
    struct destruction {
        task_state* waiting = nullptr;
        bool active = false;
    };
    thread_local destruction d;
    if (t.loop_) {
        t.loop_->finished.unlink(&t);
        t.loop_->report_unretrieved(t);
    } else if (t.status() == task_status::error && !t.retrieved_) {
        print_exception_context({"Task exception was never retrieved", t.error(), t.name()});
    }
    if (d.active) {
        t.next_ = d.waiting;
        d.waiting = &t;
        return;
    }
    d.active = true;
    t.frame().destroy();
    while (task_state* next = d.waiting) {
        d.waiting = next->next_;
        next->frame().destroy();
    }
    d.active = false;
}

inline void task_state::release() noexcept {
    if (this == zombie_being_destroyed) [[unlikely]] {  // a handle among its frame's parameters
        --handover().refs;
        return;
    }
    if (--refs_ != 0 || !finished_) return;
    if (!zombie_) return destroy_finished(*this);
    if (frame_size_ == 0) return;  // its frame is being destroyed right now
    void* frame = reinterpret_cast<char*>(this) - frame_offset_;
    const std::size_t size = frame_size_;
    this->~task_state();
    deallocate_block(frame, size);
}

// cancel() without recursion. A task awaiting a task passes the cancellation down
// (rule 8), and a task awaiting a gather passes it to every child, depth first and in
// order, as asyncio's recursive cancel() does. The walk follows a chain of awaited
// tasks in a loop (Floyd's two pointers stop a cycle of tasks that await each other),
// and keeps the groups it is inside on a stack linked through the groups themselves:
// it allocates nothing however deep the nesting. Where it comes back into a group it
// is inside, the tasks await each other in a cycle (a deadlock): they all stay marked.
class cancel_walk {
public:
    // `message`: cancel(msg)'s message, given to every task the walk reaches.
    explicit cancel_walk(const std::string* message = nullptr) noexcept : message_(message) {}

    // Cancels `t`, which has not ended, and what it awaits.
    void from_task(task_state* t) noexcept {
        chain(t);
        drain();
    }
    // Cancels what `hook` stands for; true when the cancellation was delivered.
    bool from_hook(cancel_hook* hook) noexcept {
        if (!enter(hook)) return false;
        drain();
        return true;
    }

private:
    // From `t` down the chain of tasks awaiting tasks, to what the last one awaits.
    void chain(task_state* t) noexcept {
        task_state* slow = t;
        for (bool advance_slow = false;; advance_slow = !advance_slow) {
            if (t->cancels_ < (1u << 13) - 1) ++t->cancels_;
            if (loop_core* loop = t->loop(); loop && (message_ || !loop->cancel_messages.empty())) [[unlikely]]
                loop->note_cancel_message(*t, message_);
            const std::uintptr_t a = t->run_.awaiting;
            if (a == 0) break;
            if (a & awaiting_sleep) {
                if (t->loop_->cancel_sleep(*t)) return;
                break;
            }
            auto* hook = reinterpret_cast<cancel_hook*>(a);
            task_state* next = hook->awaited_task;
            if (!next) {
                if (enter(hook)) return;
                break;
            }
            if (next->done()) break;  // it has ended: its wake-up is already queued
            if (advance_slow) slow = reinterpret_cast<cancel_hook*>(slow->run_.awaiting)->awaited_task;
            t = next;
            if (t == slow) break;  // a cycle
        }
        t->must_cancel_ = true;  // delivered at its next resumption
    }

    // Cancels a hook; a group that takes the cancellation is pushed, its children to
    // be visited by drain().
    bool enter(cancel_hook* hook) noexcept {
        cancel_group* g = hook->awaited_group;
        if (!g) return hook->cancel(hook);
        if (g->walking || !hook->cancel(hook)) return false;
        g->walking = true;
        g->walk_next = 0;
        g->walk_parent = top_;
        top_ = g;
        return true;
    }

    void drain() noexcept {
        while (cancel_group* g = top_) {
            if (g->walk_next == g->children) {
                g->walking = false;
                top_ = g->walk_parent;
                continue;
            }
            task_state* child = g->child(*g, g->walk_next++);
            if (child && !child->done()) chain(child);
        }
    }

    cancel_group* top_ = nullptr;
    const std::string* message_;
};

inline bool task_state::cancel(const std::string* message) noexcept {
    if (done()) return false;
    cancel_walk(message).from_task(this);
    return true;
}

// The task running now, if an aio task is running on this thread.
inline task_state* current_task_state() noexcept {
    return running_loop ? running_loop->current : nullptr;
}

// For an awaiter about to suspend: the running task, or a clear error.
inline task_state& suspending_task(const char* what) {
    task_state* t = current_task_state();
    if (!t) throw aio::runtime_error(std::string(what) + " must be awaited inside a task run by an aio event loop");
    return *t;
}

inline cancelled_error cancellation_of(const task_state* t) {
    loop_core* loop = t ? t->loop() : nullptr;
    if (!loop || loop->cancel_messages.empty()) return cancelled_error();
    return cancelled_error(loop->cancel_message(*t));
}

// Delivers a cancel() that arrived while the task was ready to run (asyncio's
// _must_cancel): the awaiter that resumes throws instead of returning.
inline void throw_if_cancel_pending(task_state* t) {
    if (t && t->must_cancel_) {
        t->must_cancel_ = false;
        throw cancellation_of(t);
    }
}

}  // namespace aio::detail

namespace aio::detail {
// The running loop, or a clear error naming the operation that needed one.
inline loop_core* running_loop_or_throw(const char* what) {
    if (!running_loop) throw aio::runtime_error(std::string(what) + " needs a running event loop");
    return running_loop;
}
}  // namespace aio::detail
