// Thread ownership in include/aio/detail/thread_check.hpp: a loop's objects used from another thread while it runs give a clear error.

#include <aio/create_task.hpp>
#include <aio/detail/thread_check.hpp>
#include <aio/errors.hpp>
#include <aio/event.hpp>
#include <aio/event_loop.hpp>
#include <aio/lock.hpp>
#include <aio/queue.hpp>
#include <aio/semaphore.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "support/catch.hpp"

using namespace std::chrono_literals;

namespace {

std::size_t open_descriptors() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// Runs `body` in a child process; returns what it wrote to stderr, and whether it
// ended by SIGABRT. The child is reaped and no descriptor is left behind.
std::pair<std::string, bool> in_child(const std::function<void()>& body) {
    const std::size_t descriptors = open_descriptors();
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    std::fflush(nullptr);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        std::signal(SIGABRT, SIG_DFL);  // not the test framework's handler
        dup2(fds[1], STDERR_FILENO);
        if (FILE* null = std::freopen("/dev/null", "w", stdout); !null) _exit(2);
        close(fds[0]);
        body();
        _exit(0);
    }
    close(fds[1]);
    std::string err;
    char buffer[4096];
    for (ssize_t n; (n = read(fds[0], buffer, sizeof buffer)) > 0;) err.append(buffer, static_cast<std::size_t>(n));
    close(fds[0]);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(open_descriptors() == descriptors);
    return {err, WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT};
}

}  // namespace

#if AIO_DEBUG

namespace {

// Runs `loop` on a thread of its own until stop(): its main task naps a millisecond at
// a time, so that the loop is running (and mostly asleep in its poller) meanwhile.
class loop_thread {
public:
    explicit loop_thread(aio::event_loop& loop, std::function<aio::task<>()> setup = {})
        : loop_(loop), thread_([this, setup = std::move(setup)] {
              auto main = [&]() -> aio::task<> {
                  if (setup) co_await setup();
                  while (!stop_) co_await aio::sleep(1ms);
              };
              loop_.run_until_complete(main());
          }) {
        auto& core = aio::detail::loop_access::core(loop_);
        while (!core.running_elsewhere()) std::this_thread::yield();
    }
    ~loop_thread() {
        stop_ = true;
        thread_.join();
    }

private:
    aio::event_loop& loop_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

aio::task<> nothing() { co_return; }
aio::task<> acquires(aio::lock& l) { co_await l.acquire(); }
aio::task<> acquires(aio::semaphore& s) { co_await s.acquire(); }
aio::task<> gets(aio::queue<int>& q) { (void)co_await q.get(); }
aio::task<> waits(aio::event& ev) { co_await ev.wait(); }
aio::task<> sleeps() { co_await aio::sleep(1h); }

}  // namespace

TEST_CASE("call_soon, call_later and create_task from another thread than the running loop's throw aio::runtime_error") {
    aio::event_loop loop;
    {
        loop_thread runner(loop);
        REQUIRE_THROWS_WITH(loop.call_soon([] {}), Catch::Contains("aio::event_loop::call_soon() called from a thread "
                                                                   "other than the one running its event loop"));
        REQUIRE_THROWS_AS(loop.call_later(1s, [] {}), aio::runtime_error);
        REQUIRE_THROWS_AS(loop.create_task(nothing()), aio::runtime_error);
    }
    // Once the loop has stopped, any thread may use it again (as before it ran).
    loop.call_soon([] {});
    REQUIRE(loop.run_until_complete([]() -> aio::task<int> { co_return 5; }()) == 5);
}

TEST_CASE("releasing a lock or semaphore, or putting to a queue, that a running loop's tasks wait on, from another thread, throws") {
    aio::event_loop loop;
    aio::lock l;
    aio::semaphore s(0);
    aio::queue<int> q;
    aio::task_handle<> holder, sem_waiter, getter;
    std::atomic<bool> waiting{false};
    {
        loop_thread runner(loop, [&]() -> aio::task<> {
            co_await l.acquire();  // held by the loop's task: another waits on it below
            holder = aio::create_task(acquires(l));
            sem_waiter = aio::create_task(acquires(s));
            getter = aio::create_task(gets(q));
            co_await aio::sleep(0s);  // they have run their first step: all three wait now
            waiting = true;
        });
        while (!waiting) std::this_thread::yield();
        REQUIRE_THROWS_WITH(l.release(), Catch::Contains("aio::lock::release() called from a thread other"));
        REQUIRE_THROWS_WITH(s.release(), Catch::Contains("aio::semaphore::release() called from a thread other"));
        REQUIRE_THROWS_WITH(q.put_nowait(1), Catch::Contains("aio queue put_nowait() called from a thread other"));
    }
    // Back on a thread of its own choosing, the loop finishes the waiters.
    auto finish = [&]() -> aio::task<> {
        l.release();
        s.release();
        q.put_nowait(1);
        co_await holder;
        co_await sem_waiter;
        co_await getter;
    };
    loop.run_until_complete(finish());
    REQUIRE(holder.done());
    REQUIRE(getter.done());
}

TEST_CASE("copying or dropping a task handle on another thread than its running loop's aborts with a clear message") {
    auto [err, aborted] = in_child([] {
        aio::event_loop loop;
        aio::task_handle<> h;
        std::atomic<bool> ready{false};
        {
            loop_thread runner(loop, [&]() -> aio::task<> {
                h = aio::create_task(sleeps());
                ready = true;
                co_return;
            });
            while (!ready) std::this_thread::yield();
            aio::task_handle<> copy = h;  // aborts here
        }
    });
    REQUIRE(aborted);
    REQUIRE_THAT(err, Catch::Contains("aio: copying an aio::task_handle called from a thread other than the one "
                                      "running its event loop"));
}

TEST_CASE("setting an event that a running loop's tasks wait on, from another thread, aborts with a clear message") {
    auto [err, aborted] = in_child([] {
        aio::event_loop loop;
        aio::event ev;
        std::atomic<bool> ready{false};
        {
            loop_thread runner(loop, [&]() -> aio::task<> {
                aio::create_task(waits(ev));
                co_await aio::sleep(0s);
                ready = true;
            });
            while (!ready) std::this_thread::yield();
            ev.set();  // aborts here (set() is noexcept)
        }
    });
    REQUIRE(aborted);
    REQUIRE_THAT(err, Catch::Contains("aio: aio::event::set() called from a thread other"));
}

#endif  // AIO_DEBUG

TEST_CASE("destroying a loop from inside its own run aborts with a clear message instead of reaching std::terminate") {
    auto [err, aborted] = in_child([] {
        auto* loop = new aio::event_loop;
        loop->call_soon([loop] { delete loop; });
        loop->run_forever();
    });
    REQUIRE(aborted);
    REQUIRE_THAT(err, Catch::Contains("aio: an event_loop was destroyed while it was running"));
    REQUIRE_THAT(err, !Catch::Contains("terminate"));
}
