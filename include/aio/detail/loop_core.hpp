#pragma once
// The event loop proper: the scheduler (ready queue, tasks) plus timers, the poller it
// blocks in, the inbox other threads post to, and the count of what can still wake
// it. aio::event_loop is the public face of this class.
//
// One iteration (run_once) follows asyncio's BaseEventLoop._run_once: wait for the
// next timer or I/O only when nothing is ready, queue what the poller and the inbox
// report, move every due timer to the ready queue, then run exactly the entries that
// were queued when the iteration began.
//
// The class is declared here; its members are defined by concept: callbacks.hpp
// (call_soon, call_later), loop_close.hpp (close), frame_destruction.hpp (how a
// finished task's frame dies) and cancellation.hpp (the cancel walk).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../exception_context.hpp"
#include "callback_node.hpp"
#include "clock.hpp"
#include "exception_report.hpp"
#include "inbox.hpp"
#include "mailbox.hpp"
#include "fd_registry.hpp"
#include "io_node.hpp"
#include "poller.hpp"
#include "ready_queue.hpp"
#include "scheduler.hpp"
#include "signals.hpp"
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

// Cache-line aligned: the loop's hot fields (the ready queue, the current task, the
// running thread that every thread check reads) then sit at the same offsets within
// lines wherever the loop lives; unaligned, uncontended lock round trips measured 11 %
// slower at the same instruction count.
class alignas(64) loop_core : public scheduler {
public:
    using exception_handler = std::function<void(event_loop&, const exception_context&)>;
    using timer_queue = basic_timer_queue<loop_timers>;

    // `clock`: null for the steady clock, or a manual clock the loop reads instead
    // (and moves forward to the next timer whenever it would wait for one).
    explicit loop_core(event_loop& owner, manual_clock* clock = nullptr)
        : clock_(clock), mailbox_(mailbox::create(multiplexer.wake_fd())), owner_(owner) {
        batch_.run = run_batch;
        batch_.discard = discard_batch;
    }
    ~loop_core() {
        if (running) [[unlikely]] {
            // Unwinding the loop's own run() from here would touch the dead loop.
            std::fputs("aio: an event_loop was destroyed while it was running (from inside its own run); "
                       "destroy it after run_until_complete() or run_forever() has returned\n",
                       stderr);
            std::abort();
        }
        if (!closed) close();
        mailbox_->release();
    }
    loop_core(const loop_core&) = delete;
    loop_core& operator=(const loop_core&) = delete;

    // --- time: every read of the clock in aio comes here

    std::int64_t now() const noexcept { return clock_.now(); }
    manual_clock* manual() const noexcept { return clock_.manual(); }

    // --- callbacks (call_soon, call_later, call_at): callbacks.hpp

    template <class F>
    callback_node* make_callback(F&& f);
    void arm(callback_node* node, std::int64_t when);
    static void cancel(callback_node* node) noexcept;
    void dispose_cancelled() noexcept;
    static void run_callback(ready_item* item) noexcept;
    static void discard_callback(ready_item* item) noexcept;

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

    // Runs `t`'s next step now, as its own ready-queue entry would. For a ready_item
    // queued in a woken task's place that decides, when its turn comes, whether the
    // task resumes or waits again (a queue getter whose item was taken meanwhile).
    void run_step(task_state& t) noexcept {
        t.run_.awaiting = 0;
        run_task(t);
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

    // --- what can still wake the loop besides its ready queue and timers
    //
    // run_until_complete() reports a deadlock when nothing is ready, no timer is armed
    // and this count is zero: registered descriptors, jobs running on other threads,
    // pending cross-thread calls and keep-alive tokens all count (libuv's ref/unref).

    // From the loop's thread.
    void keep_alive() noexcept { ++wake_sources_; }
    void let_go() noexcept { --wake_sources_; }
    // From any thread, the mailbox's holds (mailbox.hpp): a thread that will post.

    bool can_be_woken() const noexcept {
        return wake_sources_ != 0 || multiplexer.registrations() != 0 || mailbox_->held() || !mailbox_->box.empty() ||
               signals.can_wake();
    }

    // --- descriptors: the poller reports them with their node, which the loop queues

    void add_io(int fd, io_node* node, std::uint32_t interest) { multiplexer.add(fd, node, interest); }
    int modify_io(int fd, io_node* node, std::uint32_t interest) noexcept { return multiplexer.modify(fd, node, interest); }
    void remove_io(int fd, io_node* node) noexcept {
        multiplexer.remove(fd, node);
        withdraw(node);
    }

    // --- other threads

    // Any thread: the node runs on the loop's thread, in the iteration after it
    // arrives (see inbox.hpp). The loop is woken if it may be asleep. False once the
    // loop has closed: the node is still the caller's.
    bool post(inbox_node* node) noexcept { return mailbox_->post(node); }

    // What a job or a future on another thread holds to post back (mailbox.hpp): one
    // reference, the caller's to release.
    mailbox* share_mailbox() noexcept {
        mailbox_->add_ref();
        return mailbox_;
    }

    // --- running

    // Until stop(). Blocks whenever nothing is ready: another thread may always post.
    void run_forever() {
        run_until([this] { return stopping; }, false);
    }

    // Runs whole iterations until `done()` holds after one. With `deadlock_is_error`,
    // an iteration that would wait with nothing able to wake it throws.
    template <class Done>
    void run_until(Done done, bool deadlock_is_error = true) {
        check_open();
        if (running) throw aio::runtime_error("This event loop is already running");
        if (running_loop) throw aio::runtime_error("Cannot run the event loop while another loop is running");
        struct running_scope {
            loop_core& loop;
            poller::running_guard exact_timers;
            explicit running_scope(loop_core& l) : loop(l) {
                loop.running = true;
                loop.running_thread_.store(std::this_thread::get_id(), std::memory_order_relaxed);
                running_loop = &l;
            }
            ~running_scope() {
                loop.running = false;
                loop.stopping = false;
                loop.running_thread_.store(std::thread::id(), std::memory_order_relaxed);
                running_loop = nullptr;
            }
        } scope(*this);
        do run_once(deadlock_is_error);
        while (!done());
    }

    void run_once(bool deadlock_is_error = true) {
        if (!disposals.empty()) dispose_cancelled();
        ++unpolled_;
        if (ready.empty() && !stopping) {
            timers.tidy();
            if (!timers.empty()) block(timers.next_deadline());
            else if (!deadlock_is_error || can_be_woken()) block(poller::no_deadline);
            else
                throw aio::runtime_error(
                    "aio event loop: nothing is ready and nothing can wake the loop "
                    "(every task waits on another: a deadlock)");
        } else if (multiplexer.registrations() != 0 && (unpolled_ >= busy_poll_interval || fds.size() != 0)) {
            // With work queued, asyncio polls without waiting in every iteration. aio
            // does so while a descriptor is watched level-triggered (add_reader, the
            // sock_* calls), whose callbacks and wake-ups come in asyncio's exact
            // iterations. Streams and servers alone are edge-triggered: what the last
            // poll queued is mostly their readers' tasks, and a poll in the next
            // iteration would find little new, so a busy loop polls every
            // busy_poll_interval iterations (tokio: every 61 task polls), taking more
            // events with each epoll_wait — an echo server's polls per request fall by
            // half. I/O waits at most that many iterations longer; it is never starved.
            poll(poller::no_deadline, false);
        }
        if (!mailbox_->box.empty()) [[unlikely]]
            take_posted();
        if (signals.pending.load(std::memory_order_relaxed)) [[unlikely]]
            signals.take_pending();  // signal_events.hpp
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

    // --- closing: loop_close.hpp

    void close();

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

    timer_queue timers;
    poller multiplexer;
    fd_registry fds{*this};  // descriptors watched level-triggered (after the poller: goes first)
    io_owner_list io_owners;  // transports and servers, told when the loop closes
    signal_registry signals{*this, multiplexer.waker()};  // add_signal_handler (signals.hpp)
    // Cancelled timers whose callables are still to be destroyed (see cancel()).
    std::vector<callback_node*> disposals;
    exception_handler handler;
    std::atomic<bool> running{false};  // atomic for is_running() from another thread
    bool stopping = false;

private:
    // The paths run_once takes only now and then are kept out of line, so that the
    // loop's common path (run what is ready) stays small.

    // Waits for the next deadline (no_deadline: for I/O or a wake-up only).
    [[gnu::noinline]] void block(std::int64_t deadline) {
        if (manual_clock* m = clock_.manual(); m && deadline != poller::no_deadline) [[unlikely]] {
            // Simulated time jumps to the timer instead of waiting — unless another
            // thread still has work for the loop (a job, a keep-alive): that comes first,
            // in real time, with the simulated clock standing still.
            if (wake_sources_ == 0 && !mailbox_->held()) {
                m->advance_to(deadline);
                if (multiplexer.registrations() != 0) poll(poller::no_deadline, false);
                return;
            }
            deadline = poller::no_deadline;
        }
        if (!mailbox_->box.prepare_to_sleep()) {  // something was posted meanwhile
            if (multiplexer.registrations() != 0) poll(poller::no_deadline, false);
            return;
        }
        try {
            poll(deadline, true);
        } catch (...) {
            mailbox_->box.woke();
            throw;
        }
        mailbox_->box.woke();
    }

    [[gnu::noinline]] void poll(std::int64_t deadline, bool wait) {
        unpolled_ = 0;
        multiplexer.wait(
            deadline, wait, [this](std::size_t n) { ready.reserve(n); },
            [this](io_node* node, std::uint32_t events) noexcept {
                node->events |= events;
                if (node->queued_at == not_queued) node->queued_at = ready.push(entry_of<ready_item>(node, tag_item));
            });
    }

    // Closing: what was posted is discarded, and later posts are refused.
    template <class Discard>
    void close_mailbox(Discard discard) noexcept {
        mailbox_->box.close([&](inbox_node* node) noexcept { discard(node); });
    }

    // What other threads posted arrives as one batch: one ready-queue entry that runs
    // the nodes in the order they were posted. They would have taken consecutive
    // places in the queue anyway (appended together, here), so the order is the same
    // as one entry each, at a fraction of the cost.
    struct posted_batch : ready_item {
        inbox_node* head = nullptr;
        inbox_node* tail = nullptr;

        void append(inbox_node* node) noexcept {
            if (tail) tail->next_posted = node;
            else head = node;
            tail = node;
        }
        template <class Each>
        void take_each(Each each) noexcept {
            inbox_node* node = std::exchange(head, nullptr);
            tail = nullptr;
            while (node) {
                inbox_node* next = std::exchange(node->next_posted, nullptr);
                each(node);
                node = next;
            }
        }
    };

    [[gnu::noinline]] void take_posted() {
        // The batch ran in the iteration it was queued in: it is empty now.
        mailbox_->box.drain([this](std::size_t) { ready.reserve(1); }, [this](inbox_node* node) noexcept { batch_.append(node); });
        if (batch_.head) push(&batch_);
    }
    static void run_batch(ready_item* item) noexcept {
        static_cast<posted_batch*>(item)->take_each([](inbox_node* node) noexcept { node->run(node); });
    }
    static void discard_batch(ready_item* item) noexcept {
        static_cast<posted_batch*>(item)->take_each([](inbox_node* node) noexcept {
            if (node->discard) node->discard(node);
        });
    }

    void fire_due_timers() {
        timers.pop_due(
            now(), [this](std::size_t n) { ready.reserve(n); },
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
        t.cancel_fixed_ = false;  // whatever cancellation was delivered is thrown in this step
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

    loop_clock clock_;
    mailbox* mailbox_;
    posted_batch batch_;
    std::size_t wake_sources_ = 0;
    std::uint32_t unpolled_ = 0;  // iterations since the last poll
    static constexpr std::uint32_t busy_poll_interval = 4;
    event_loop& owner_;
    std::uint64_t next_task_id_ = 1;
};

// The loop's `scheduler` is always a loop_core.
inline loop_core* core_of(scheduler* s) noexcept { return static_cast<loop_core*>(s); }

// The time on the running loop's clock, or on the steady clock outside a loop.
inline std::int64_t loop_now() noexcept { return running_loop ? running_loop->now() : steady_now_ns(); }

// The running loop, or a clear error naming the operation that needed one.
inline loop_core* running_loop_or_throw(const char* what) {
    if (!running_loop) throw aio::runtime_error(std::string(what) + " needs a running event loop");
    return running_loop;
}

}  // namespace aio::detail

#include "callbacks.hpp"
#include "cancellation.hpp"
#include "fd_events.hpp"
#include "frame_destruction.hpp"
#include "loop_close.hpp"
#include "signal_events.hpp"
