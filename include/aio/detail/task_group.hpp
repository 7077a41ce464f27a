#pragma once
// The machinery behind aio::task_group (see task_group.hpp for the contract): the
// group's children, its errors, and the steps of leaving it, after CPython's
// asyncio.TaskGroup.
//
// Each child is a task the group holds a reference to. The group waits in the child's
// waiter list through a task_group_child node, registered when the child is created,
// so it comes before any other waiter (asyncio's add_done_callback in create_task).
// When the child ends, the node runs as the group's done step through the ready queue
// (rule 4); the step that sees the last child go wakes the parent if it waits in
// the exit (rule 4 again: asyncio's future that the parent awaits).

#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../errors.hpp"
#include "../exception_group.hpp"
#include "done_step.hpp"
#include "intrusive_list.hpp"
#include "loop_core.hpp"
#include "ready_queue.hpp"
#include "suspension.hpp"
#include "task_state.hpp"

namespace aio::detail {

class task_group_core;

// One running child of a group. Heap-allocated by create_task and freed by the
// group's done step for that child (or by the group, if the loop closes first).
struct task_group_child : done_step {
    task_state* task = nullptr;  // holds a reference until the done step has read it
    task_group_core* group = nullptr;
    list_links<task_group_child> links;  // the group's running children, in creation order
};

inline bool is_cancellation(const std::exception_ptr& e) noexcept {
    if (!e) return false;
    try {
        std::rethrow_exception(e);
    } catch (const cancelled_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

class task_group_core : private cancel_hook {
public:
    // `parent` is the task running the group's body: the one the group cancels when a
    // child fails, and the one that waits for the children in the exit.
    task_group_core(loop_core& loop, task_state& parent) noexcept : loop_(&loop), parent_(&parent) {
        cancel = on_cancel;
    }
    task_group_core(const task_group_core&) = delete;
    task_group_core& operator=(const task_group_core&) = delete;

    // Normally every child has ended by now. Children are left only when the loop
    // closes while the parent waits (close() destroys the parent's frame, this group
    // with it): let go of them without running anything.
    ~task_group_core() {
        if (waiting_ && !loop_->closed) forget_hook(parent_, *this);
        while (task_group_child* c = children_.front()) {
            unlink(c);
            c->unwatch(*loop_, *c->task);
            c->task->release();
            delete c;
        }
    }

    loop_core& loop() const noexcept { return *loop_; }

    // asyncio's checks in TaskGroup.create_task, with its messages.
    void check_can_spawn() const {
        if (exiting_ && count_ == 0) throw aio::runtime_error("TaskGroup " + repr() + " is finished");
        if (aborting_) throw aio::runtime_error("TaskGroup " + repr() + " is shutting down");
    }

    // Takes `child`, a task just created (not started), into the group.
    void adopt(std::unique_ptr<task_group_child> node, task_state& child) noexcept {
        task_group_child* c = node.release();
        c->run = on_child_done;
        c->task = &child;
        c->group = this;
        child.add_ref();
        children_.push_back(c);
        ++count_;
        c->watch(*loop_, child);  // not started: it cannot have ended
    }

    // --- leaving the group: begin_exit, then wait while has_children(), then end_exit

    // The body has ended, with `body_error` or normally. A body that failed, or was
    // cancelled, cancels the children (unless a child's failure did already).
    void begin_exit(const std::exception_ptr& body_error) {
        exiting_ = true;
        if (is_cancellation(body_error)) propagate_cancellation_ = body_error;
        if (body_error && !aborting_) abort();
    }

    bool has_children() const noexcept { return count_ != 0; }

    // Suspends the parent until the last child's done step has run. Resumed through
    // the ready queue by that step; cancelling the parent resumes it (also through
    // the queue) with aio::cancelled_error, which the caller passes to
    // wait_cancelled() before waiting again.
    class exit_awaiter {
    public:
        explicit exit_awaiter(task_group_core& g) noexcept : g_(g) {}
        bool await_ready() const noexcept { return g_.count_ == 0; }
        void await_suspend(std::coroutine_handle<> h) noexcept { g_.suspend(h); }
        void await_resume() { g_.resumed(); }

    private:
        task_group_core& g_;
    };
    exit_awaiter wait_children() noexcept { return exit_awaiter(*this); }

    // The parent was cancelled while it waited for the children. A cancellation the
    // group did not cause itself (it is not shutting down yet) is an outside one: it
    // cancels the children and is rethrown at the end.
    void wait_cancelled(std::exception_ptr e) noexcept {
        if (!aborting_) {
            propagate_cancellation_ = std::move(e);
            abort();
        }
    }

    // Every child has ended. Throws what leaving the group raises: aio::cancelled_error
    // if the parent was cancelled from outside and nothing failed, otherwise an
    // aio::exception_group of the children's errors (then the body's), if any.
    void end_exit(const std::exception_ptr& body_error) {
        // Take back the cancellation of the parent that the group requested itself. If
        // none remains, the parent's cancelled_error was the group's own doing.
        if (parent_cancel_requested_ && parent_->uncancel() == 0) propagate_cancellation_ = nullptr;
        // Errors take priority over a cancellation.
        if (propagate_cancellation_ && errors_.empty()) std::rethrow_exception(propagate_cancellation_);
        if (body_error && !is_cancellation(body_error)) errors_.push_back(body_error);
        if (errors_.empty()) return;
        // The parent is also being cancelled from outside, and that cancellation was
        // spent on the group's wait: request it again so that it is delivered at the
        // parent's next suspension, keeping cancelling() where it was (as CPython 3.13).
        if (parent_->cancelling() > 0) {
            parent_->uncancel();
            parent_->cancel();
        }
        throw exception_group("unhandled errors in a TaskGroup", std::move(errors_));
    }

private:
    // asyncio's TaskGroup.__repr__, for the misuse messages.
    std::string repr() const {
        std::string info;
        if (count_ != 0) info += " tasks=" + std::to_string(count_);
        if (!errors_.empty()) info += " errors=" + std::to_string(errors_.size());
        info += aborting_ ? " cancelling" : " entered";
        return "<TaskGroup" + info + ">";
    }

    void unlink(task_group_child* c) noexcept {
        children_.unlink(c);
        --count_;
    }

    // Cancels every running child, in creation order. (asyncio keeps its tasks in a
    // set, so its order is the set's.)
    void abort() noexcept {
        aborting_ = true;
        for (task_group_child* c = children_.front(); c; c = children_.next(c))
            if (!c->task->done()) c->task->cancel();
    }

    void suspend(std::coroutine_handle<> h) noexcept {
        waiting_ = true;
        detail::suspend(*parent_, h, *this);
    }

    void resumed() {
        // Cancelled while waiting, or after the last child's step had woken the parent.
        detail::resumed(parent_, std::exchange(wait_cancelled_, false));
    }

    void cancel_wait() noexcept {
        waiting_ = false;
        wait_cancelled_ = true;
        loop_->schedule(*parent_);
    }

    // Cancelling the parent while it waits in the exit (asyncio cancels the future
    // it awaits): the parent resumes with cancelled_error; the children are not
    // touched here (wait_cancelled decides).
    static bool on_cancel(cancel_hook* hook) noexcept {
        auto& g = static_cast<task_group_core&>(*hook);
        if (!g.waiting_) return false;
        g.cancel_wait();
        return true;
    }

    // A child has ended (asyncio's TaskGroup._on_task_done).
    static void on_child_done(ready_item* item) noexcept {
        auto* c = static_cast<task_group_child*>(item);
        task_group_core& g = *c->group;
        task_state* child = c->task;
        g.unlink(c);
        delete c;
        if (g.waiting_ && g.count_ == 0) {
            g.waiting_ = false;
            g.loop_->schedule(*g.parent_);
        }
        if (child->status() == task_status::error) {
            child->mark_retrieved();
            try {
                g.errors_.push_back(child->error());
            } catch (...) {  // out of memory: the error must not vanish silently
                g.loop_->report({"aio::task_group could not keep a child's error", child->error(), child->name()});
            }
            // The first failure cancels the other children and the parent, whatever it
            // awaits in the body; end_exit takes the parent's cancellation back.
            if (!g.aborting_ && !g.parent_cancel_requested_) {
                g.abort();
                g.parent_cancel_requested_ = true;
                g.parent_->cancel();
            }
        }
        child->release();  // last: it may destroy the child's frame
    }

    loop_core* loop_;
    task_state* parent_;
    intrusive_list<task_group_child, &task_group_child::links> children_;
    std::size_t count_ = 0;
    std::vector<std::exception_ptr> errors_;      // in the order the children failed
    std::exception_ptr propagate_cancellation_;  // an outside cancellation to rethrow
    bool exiting_ = false;                       // the body has ended
    bool aborting_ = false;                      // shutting down: the children were cancelled
    bool parent_cancel_requested_ = false;       // the group cancelled the parent itself
    bool waiting_ = false;                       // the parent is suspended in the exit
    bool wait_cancelled_ = false;                // ... and was cancelled there
};

}  // namespace aio::detail
