#pragma once
// aio::job and aio::executor: what event_loop::run_in_executor hands work to.
//
// An executor is anything with `submit(aio::job)`: aio::thread_pool is one; a
// program's own pool becomes one with a member that forwards the job. A job is a
// move-only unit of work to be run once, on any thread:
//
//   std::move(j)();   // runs it (noexcept: its outcome goes back to whoever awaits it)
//
// An executor that drops a job without running it (it shut down, its queue was
// cleared) just destroys it: the task awaiting it then gets aio::runtime_error rather
// than waiting forever.

#include <string>
#include <utility>

namespace aio {

namespace detail {
// The type-erased part of a job (detail/executor_call.hpp has the one kind aio makes).
struct job_node {
    void (*run)(job_node*) noexcept = nullptr;   // on the executor's thread, once
    void (*drop)(job_node*) noexcept = nullptr;  // destroyed without running
    std::string origin;                          // who submitted it: a task's name
};
}  // namespace detail

class job {
public:
    job() noexcept = default;
    explicit job(detail::job_node* node) noexcept : node_(node) {}
    job(job&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}
    job& operator=(job&& other) noexcept {
        if (this != &other) {
            reset();
            node_ = std::exchange(other.node_, nullptr);
        }
        return *this;
    }
    job(const job&) = delete;
    job& operator=(const job&) = delete;
    ~job() { reset(); }

    explicit operator bool() const noexcept { return node_ != nullptr; }
    // Who submitted it (the awaiting task's name), for reports; empty when unknown.
    const std::string& origin() const noexcept {
        static const std::string none;
        return node_ ? node_->origin : none;
    }

    // Runs the work; the job is empty afterwards.
    void operator()() && noexcept {
        if (detail::job_node* n = std::exchange(node_, nullptr)) n->run(n);
    }

private:
    void reset() noexcept {
        if (detail::job_node* n = std::exchange(node_, nullptr)) n->drop(n);
    }

    detail::job_node* node_ = nullptr;
};

// What run_in_executor accepts: submit(job) takes the job over (or throws, leaving
// it to be dropped).
template <class E>
concept executor = requires(E& e, job j) { e.submit(std::move(j)); };

}  // namespace aio
