#pragma once
// aio::thread_pool: asyncio's ThreadPoolExecutor — the default executor of every loop
// (aio::to_thread), and an aio::executor for run_in_executor.
//
// Workers are started as jobs arrive, one whenever no worker is idle, up to
// max_workers(); jobs wait in one FIFO queue. shutdown() refuses new jobs, lets the
// queued ones run, and with `wait` joins the workers; join_for() does the same within
// a time limit; the destructor waits, so no worker outlives the pool. Any thread may
// submit; shutting down and destroying belong to a thread that is not a worker of
// this pool (a worker would wait for itself).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "executor.hpp"

namespace aio {

class thread_pool {
public:
    // asyncio's default: min(32, cores + 4).
    static std::size_t default_max_workers() noexcept {
        return std::min<std::size_t>(32, std::max(1u, std::thread::hardware_concurrency()) + 4);
    }

    explicit thread_pool(std::size_t max_workers = default_max_workers()) : max_workers_(max_workers) {
        if (max_workers == 0) throw std::invalid_argument("aio::thread_pool: max_workers must be greater than 0");
    }
    // Waits for the workers (from one of them, that would wait forever: std::terminate).
    ~thread_pool() { shutdown(true); }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    // Any thread. Throws aio::runtime_error after shutdown() (the job is then dropped),
    // or std::system_error if no worker could be started at all.
    void submit(job j) {
        std::unique_lock lock(mutex_);
        if (shut_down_) throw aio::runtime_error("cannot schedule new jobs after aio::thread_pool::shutdown()");
        queue_.push_back(std::move(j));
        queued_.store(queue_.size(), std::memory_order_release);
        if (idle_ >= queue_.size() || workers_.size() >= max_workers_) {
            // A spinning worker sees the job by itself; only a sleeping one needs waking.
            const bool wake = sleeping_ != 0;
            lock.unlock();
            if (wake) wake_.notify_one();
            return;
        }
        try {
            busy_.emplace_back();
            workers_.emplace_back([this, id = workers_.size()] { work(id); });
            ++live_;
        } catch (...) {  // std::system_error, or no memory for the thread
            busy_.resize(workers_.size());
            if (workers_.empty()) {  // nobody would ever run it
                queue_.pop_back();
                throw;
            }
        }
    }

    // Refuses new jobs; the queued ones still run. With `wait`, returns once every
    // worker has finished (and been joined). Idempotent.
    void shutdown(bool wait = true) {
        if (wait) check_not_own_worker("shutdown");
        std::vector<std::thread> workers;
        {
            std::lock_guard lock(mutex_);
            shut_down_ = true;
            stopping_.store(true, std::memory_order_relaxed);
            if (wait) workers.swap(workers_);
        }
        wake_.notify_all();
        if (!wait) return;
        for (std::thread& w : workers) w.join();
        // Another caller may have taken the workers to join: wait until they are done.
        std::unique_lock lock(mutex_);
        finished_.wait(lock, [this] { return live_ == 0; });
    }

    // shutdown(true) within `timeout`: true when every worker has finished (and been
    // joined); false when some job was still queued or running at the deadline (the
    // workers then carry on; join them with shutdown(true) or the destructor).
    bool join_for(std::chrono::nanoseconds timeout) {
        check_not_own_worker("join_for");
        std::vector<std::thread> workers;
        {
            std::unique_lock lock(mutex_);
            shut_down_ = true;
            stopping_.store(true, std::memory_order_relaxed);
            wake_.notify_all();
            // Saturated: a timeout of nanoseconds::max() must not overflow into the past.
            const auto now = std::chrono::steady_clock::now();
            const auto left = std::chrono::steady_clock::time_point::max() - now;
            const auto deadline = timeout >= left ? std::chrono::steady_clock::time_point::max()
                                                  : now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
            if (!finished_.wait_until(lock, deadline, [this] { return live_ == 0; })) return false;
            workers.swap(workers_);
        }
        for (std::thread& w : workers) w.join();
        return true;
    }

    // Who submitted the jobs running now (job::origin()).
    std::vector<std::string> running_origins() const {
        std::lock_guard lock(mutex_);
        std::vector<std::string> origins;
        for (const auto& [running, origin] : busy_)
            if (running) origins.push_back(origin.empty() ? std::string("(unknown)") : origin);
        return origins;
    }

    std::size_t max_workers() const noexcept { return max_workers_; }
    // Jobs queued or running now.
    std::size_t pending() const {
        std::lock_guard lock(mutex_);
        return queue_.size() + running_;
    }

private:
    // An idle worker spins this long before it sleeps. A task that awaits jobs one after
    // another submits the next within microseconds of the last result, and a sleeping
    // worker costs a wake-up on every job (a futex, and on a virtual machine an idle
    // CPU's exit: 5 to 25 us here). The spin is bounded, so an idle pool burns at most
    // this much CPU per worker after its last job.
    static constexpr std::chrono::microseconds spin_before_sleep{50};

    // The pool whose worker this thread is, if any.
    static thread_pool*& own_pool() noexcept {
        static thread_local thread_pool* pool = nullptr;
        return pool;
    }
    void check_not_own_worker(const char* what) const {
        if (own_pool() == this)
            throw aio::runtime_error(std::string("aio::thread_pool::") + what +
                                     "() called from one of the pool's own workers: it would wait for itself");
    }

    void work(std::size_t id) {
        own_pool() = this;
        std::unique_lock lock(mutex_);
        for (;;) {
            if (queue_.empty() && !shut_down_) {
                ++idle_;
                lock.unlock();
                const auto until = std::chrono::steady_clock::now() + spin_before_sleep;
                while (queued_.load(std::memory_order_acquire) == 0 && !stopping_.load(std::memory_order_relaxed) &&
                       std::chrono::steady_clock::now() < until)
                    relax();
                lock.lock();
                ++sleeping_;
                wake_.wait(lock, [this] { return !queue_.empty() || shut_down_; });
                --sleeping_;
                --idle_;
            }
            if (queue_.empty()) {  // shut down, nothing left to run
                if (--live_ == 0) finished_.notify_all();
                return;
            }
            job j = std::move(queue_.front());
            queue_.pop_front();
            queued_.store(queue_.size(), std::memory_order_relaxed);
            ++running_;
            busy_[id] = {true, j.origin()};
            lock.unlock();
            std::move(j)();
            lock.lock();
            --running_;
            busy_[id].first = false;
        }
    }

    static void relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#else
        std::this_thread::yield();
#endif
    }

    const std::size_t max_workers_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable finished_;  // the last worker has exited
    std::vector<std::pair<bool, std::string>> busy_;  // per worker: running a job, whose
    std::size_t live_ = 0;  // workers started and not yet exited
    std::deque<job> queue_;
    std::vector<std::thread> workers_;
    std::atomic<std::size_t> queued_{0};  // queue_.size(), for spinning workers to read without the lock
    std::atomic<bool> stopping_{false};   // shut_down_, likewise
    std::size_t idle_ = 0;     // workers waiting for a job, spinning or asleep
    std::size_t sleeping_ = 0;  // of those, the ones asleep on wake_
    std::size_t running_ = 0;
    bool shut_down_ = false;
};

}  // namespace aio
