#pragma once
// Helpers for tests that involve other threads: a gate a thread waits at until the
// test opens it, and a bounded poll for a condition another thread makes true. Both
// give up after a while, so that a failing test ends instead of hanging.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace aio_test {

// Stays shut until open(); a wait gives up after a minute.
class gate {
public:
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        cv_.notify_all();
    }
    void wait() {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, std::chrono::seconds(60), [&] { return open_; });
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
};

// Polls `done` every millisecond for up to ten seconds; its last answer.
template <class P>
bool eventually(P done) {
    for (int i = 0; i < 10'000; ++i) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return done();
}

}  // namespace aio_test
