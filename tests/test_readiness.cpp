// aio::wait_readable / aio::wait_writable (include/aio/net/readiness.hpp, on the loop's
// descriptor table, detail/fd_registry.hpp): who wakes the waiter and when, waiting
// several at once, cancellation, the descriptors the kernel cannot watch, hang-ups, and
// what a loop closing under a waiter leaves behind (nothing).
//
// Each trace test carries the asyncio program it mirrors, with a wait_readable made of
// add_reader and a future (asyncio has none of its own); the expected lines are what
// CPython 3.11 printed for it. Every test also checks that the loop's table and epoll
// hold nothing once the waits are over, and that no descriptor is left open.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/net/readiness.hpp>
#include <aio/net/socket.hpp>
#include <aio/os_error.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/wait_for.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "support/catch.hpp"
#include "support/descriptors.hpp"
#include "support/counted.hpp"
#include "support/handlers.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::expect_throws;
using aio_test::log_cancel;
using aio_test::trace;
using lines = std::vector<std::string>;

using aio_test::open_descriptors;

namespace {

// The running loop's descriptor table and epoll registrations.
std::size_t entries() { return aio::detail::loop_access::core(aio::get_running_loop()).fds.size(); }
std::size_t registrations() {
    return aio::detail::loop_access::core(aio::get_running_loop()).multiplexer.registrations();
}

// A pipe, both ends non-blocking; the ends still open are closed with it.
struct pipe_pair {
    int read_end = -1;
    int write_end = -1;
    pipe_pair() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    ~pipe_pair() { close(); }
    void close() {
        close_read();
        close_write();
    }
    void close_read() {
        if (read_end >= 0) ::close(read_end);
        read_end = -1;
    }
    void close_write() {
        if (write_end >= 0) ::close(write_end);
        write_end = -1;
    }
};

// The number of a descriptor just closed: not open until something opens another.
int closed_descriptor() {
    pipe_pair p;
    return p.read_end;
}

void send_byte(int fd, char c = 'x') { REQUIRE(::send(fd, &c, 1, MSG_NOSIGNAL) == 1); }

}  // namespace

TEST_CASE("wait_readable returns once another task has written to the descriptor") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        auto writer = [&]() -> aio::task<> {
            co_await aio::sleep(10ms);
            log("write");
            send_byte(b, 'q');
        };
        auto program = [&]() -> aio::task<> {
            auto h = aio::create_task(writer());
            log("wait");
            co_await aio::wait_readable(a);
            log("readable");
            char c = 0;
            REQUIRE(::recv(a, &c, 1, 0) == 1);
            REQUIRE(c == 'q');
            co_await h;
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"wait", "write", "readable"});
    }
    REQUIRE(open_descriptors() == before);
}

// import asyncio, socket
// log = []
// async def wait_readable(fd):
//     loop = asyncio.get_running_loop()
//     fut = loop.create_future()
//     loop.add_reader(fd, fut.set_result, None)
//     try:
//         await fut
//     finally:
//         loop.remove_reader(fd)
// async def main():
//     loop = asyncio.get_running_loop()
//     a, b = socket.socketpair()
//     def write():
//         b.send(b"x")
//         log.append("wrote")
//         loop.call_soon(log.append, "soon 1")
//         loop.call_soon(lambda: loop.call_soon(log.append, "soon 2"))
//     loop.call_soon(write)
//     await wait_readable(a.fileno())
//     log.append("woke")
//     a.close()
//     b.close()
// asyncio.run(main())
// print(log)
//
// The callback that writes runs in one iteration; the next one's poll sees the socket
// readable and queues its step behind "soon 1" (queued before the poll); the step wakes
// the task, which runs in the iteration after, behind "soon 2".
TEST_CASE("a wake-up comes through the ready queue, in the iteration after the poll that saw the descriptor ready, as in asyncio") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        auto program = [&]() -> aio::task<> {
            auto& loop = aio::get_running_loop();
            (void)loop.call_soon([&] {
                send_byte(b);
                log("wrote");
                (void)loop.call_soon([&] { log("soon 1"); });
                (void)loop.call_soon([&] { (void)loop.call_soon([&] { log("soon 2"); }); });
            });
            co_await aio::wait_readable(a);
            log("woke");
        };
        aio::run(program());
        REQUIRE(log.events == lines{"wrote", "soon 1", "soon 2", "woke"});
    }
    REQUIRE(open_descriptors() == before);
}

// import asyncio, socket
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def wait_writable(fd):
//     loop = asyncio.get_running_loop()
//     fut = loop.create_future()
//     loop.add_writer(fd, fut.set_result, None)
//     try:
//         await fut
//     finally:
//         loop.remove_writer(fd)
// async def main():
//     a, b = socket.socketpair()
//     t = asyncio.create_task(ticker(3))
//     await wait_writable(a.fileno())
//     log.append("writable")
//     await t
//     a.close()
//     b.close()
// asyncio.run(main())
// print(log)
TEST_CASE("wait_writable on a fresh socket is woken by the next iteration's poll and resumes in the one after, as in asyncio") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        trace log;
        auto ticker = [&](int n) -> aio::task<> {
            for (int i = 0; i < n; ++i) {
                log("tick" + std::to_string(i));
                co_await aio::sleep(0s);
            }
        };
        auto program = [&]() -> aio::task<> {
            auto t = aio::create_task(ticker(3));
            co_await aio::wait_writable(a);
            log("writable");
            co_await t;
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"tick0", "tick1", "writable", "tick2"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("wait_readable on a descriptor with data already there still yields once, and a second wait returns too") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        send_byte(b);
        trace log;
        auto sibling = [&]() -> aio::task<> {
            log("sibling");
            co_return;
        };
        auto program = [&]() -> aio::task<> {
            auto h = aio::create_task(sibling());
            co_await aio::wait_readable(a);  // never returns at once: the poll says so first
            log("readable");
            co_await aio::wait_readable(a);  // level-triggered: the byte is still there
            log("still readable");
            co_await h;
        };
        aio::run(program());
        REQUIRE(log.events == lines{"sibling", "readable", "still readable"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("every task waiting on the same descriptor is woken by one write, in waiting order; the descriptor is registered once") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        auto waiter = [&](std::string name) -> aio::task<> {
            co_await aio::wait_readable(a);
            log(name + " woke");
        };
        auto program = [&]() -> aio::task<> {
            std::vector<aio::task_handle<>> ts;
            for (int i = 0; i < 3; ++i) ts.push_back(aio::create_task(waiter("w" + std::to_string(i))));
            co_await aio::sleep(0s);
            REQUIRE(entries() == 1);
            REQUIRE(registrations() == 1);
            co_await aio::sleep(0s);
            REQUIRE(log.events.empty());
            send_byte(b);
            for (auto& h : ts) co_await h;
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"w0 woke", "w1 woke", "w2 woke"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("ten thousand tasks waiting on one descriptor are all woken by one write") {
    constexpr int n = 10000;
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        int woke = 0;
        auto waiter = [&]() -> aio::task<> {
            co_await aio::wait_readable(a);
            ++woke;
        };
        auto program = [&]() -> aio::task<> {
            std::vector<aio::task_handle<>> ts;
            ts.reserve(n);
            for (int i = 0; i < n; ++i) ts.push_back(aio::create_task(waiter()));
            co_await aio::sleep(0s);
            REQUIRE(registrations() == 1);
            send_byte(b);
            for (auto& h : ts) co_await h;
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        REQUIRE(woke == n);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("tasks waiting on different descriptors each have an entry, and each is woken by its own") {
    const std::size_t before = open_descriptors();
    {
        std::vector<std::pair<aio::socket, aio::socket>> pairs;
        for (int i = 0; i < 3; ++i) pairs.push_back(aio::socket::pair());
        trace log;
        auto waiter = [&](int i) -> aio::task<> {
            co_await aio::wait_readable(pairs[static_cast<std::size_t>(i)].first.fd());
            log("w" + std::to_string(i) + " woke");
        };
        auto program = [&]() -> aio::task<> {
            std::vector<aio::task_handle<>> ts;
            for (int i = 0; i < 3; ++i) ts.push_back(aio::create_task(waiter(i)));
            co_await aio::sleep(0s);
            REQUIRE(entries() == 3);
            REQUIRE(registrations() == 3);
            // Each within a time limit: a wake-up that goes astray fails the test, not hangs it.
            send_byte(pairs[1].second.fd());
            co_await aio::wait_for(ts[1], 10s);
            REQUIRE(entries() == 2);
            REQUIRE(registrations() == 2);
            send_byte(pairs[2].second.fd());
            co_await aio::wait_for(ts[2], 10s);
            send_byte(pairs[0].second.fd());
            co_await aio::wait_for(ts[0], 10s);
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"w1 woke", "w2 woke", "w0 woke"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a reader and a writer waiting on the same descriptor share its entry, and each is woken by its own direction") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        auto reader = [&]() -> aio::task<> {
            co_await aio::wait_readable(a);
            log("readable");
        };
        auto writer = [&]() -> aio::task<> {
            co_await aio::wait_writable(a);
            log("writable");
        };
        auto program = [&]() -> aio::task<> {
            auto r = aio::create_task(reader());
            auto w = aio::create_task(writer());
            co_await aio::sleep(0s);
            REQUIRE(entries() == 1);
            REQUIRE(registrations() == 1);
            co_await w;
            REQUIRE(log.events == lines{"writable"});
            REQUIRE_FALSE(r.done());
            REQUIRE(entries() == 1);  // the reader still waits: the entry stays, watching one direction
            REQUIRE(registrations() == 1);
            co_await aio::sleep(0s);
            co_await aio::sleep(0s);
            REQUIRE_FALSE(r.done());  // writable all along, but not readable
            send_byte(b);
            co_await r;
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"writable", "readable"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("cancelling a task waiting in wait_readable unregisters the descriptor at once and ends the wait with cancelled_error") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        trace log;
        auto waiter = [&]() -> aio::task<> {
            co_await log_cancel(log, "waiter cancelled", aio::wait_readable(a));
            log("waiter woke");
        };
        auto program = [&]() -> aio::task<> {
            auto h = aio::create_task(waiter());
            co_await aio::sleep(0s);
            REQUIRE(entries() == 1);
            REQUIRE(registrations() == 1);
            REQUIRE(h.cancel());
            REQUIRE(entries() == 0);  // at once, not when the task next runs
            REQUIRE(registrations() == 0);
            const bool cancelled = co_await expect_throws<aio::cancelled_error>(h);
            REQUIRE(cancelled);
            REQUIRE(h.cancelled());
        };
        aio::run(program());
        REQUIRE(log.events == lines{"waiter cancelled"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("cancelling a task waiting in wait_writable for room unregisters the descriptor at once") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        const char chunk[4096] = {};
        while (::send(a, chunk, sizeof chunk, MSG_NOSIGNAL) > 0) {
        }
        REQUIRE(errno == EAGAIN);
        trace log;
        auto waiter = [&]() -> aio::task<> { co_await log_cancel(log, "waiter cancelled", aio::wait_writable(a)); };
        auto program = [&]() -> aio::task<> {
            auto h = aio::create_task(waiter());
            co_await aio::sleep(0s);
            co_await aio::sleep(0s);
            REQUIRE_FALSE(h.done());  // the buffer is full: not writable
            REQUIRE(registrations() == 1);
            REQUIRE(h.cancel());
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
            const bool cancelled = co_await expect_throws<aio::cancelled_error>(h);
            REQUIRE(cancelled);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"waiter cancelled"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("wait_for's timeout cancels a wait_readable: the wait sees cancelled_error, the caller timeout_error, and nothing stays registered") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        auto wait = [&]() -> aio::task<> { co_await log_cancel(log, "wait cancelled", aio::wait_readable(a)); };
        auto program = [&]() -> aio::task<> {
            const bool timed_out = co_await expect_throws<aio::timeout_error>(aio::wait_for(wait(), 10ms));
            REQUIRE(timed_out);
            log("timed out");
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
            // The awaitable itself, without a task around it.
            const bool timed_out_again = co_await expect_throws<aio::timeout_error>(aio::wait_for(aio::wait_readable(a), 10ms));
            REQUIRE(timed_out_again);
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
            // And one that is woken in time returns normally.
            send_byte(b);
            co_await aio::wait_for(aio::wait_readable(a), 10s);
            log("readable in time");
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"wait cancelled", "timed out", "readable in time"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a wait_readable reached with a cancellation already due ends at once with cancelled_error, leaving nothing registered") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        auto program = [&]() -> aio::task<bool> {
            auto self = aio::current_task();
            self.cancel();
            const bool cancelled = co_await expect_throws<aio::cancelled_error>(aio::wait_readable(a));
            self.uncancel();
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
            co_return cancelled;
        };
        REQUIRE(aio::run(program()));
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("cancelling one of two tasks waiting on a descriptor leaves the other waiting and the descriptor registered") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        auto waiter = [&](std::string name) -> aio::task<> {
            co_await log_cancel(log, name + " cancelled", aio::wait_readable(a));
            log(name + " woke");
        };
        auto program = [&]() -> aio::task<> {
            auto first = aio::create_task(waiter("first"));
            auto second = aio::create_task(waiter("second"));
            co_await aio::sleep(0s);
            REQUIRE(first.cancel());
            REQUIRE(entries() == 1);
            REQUIRE(registrations() == 1);
            const bool cancelled = co_await expect_throws<aio::cancelled_error>(first);
            REQUIRE(cancelled);
            send_byte(b);
            co_await second;
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"first cancelled", "second woke"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a cancel that comes after the wake-up was queued still ends the wait with cancelled_error, as a task's _must_cancel does") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        auto waiter = [&]() -> aio::task<> {
            co_await log_cancel(log, "waiter cancelled", aio::wait_readable(a));
            log("waiter woke");
        };
        auto program = [&]() -> aio::task<> {
            auto& loop = aio::get_running_loop();
            auto h = aio::create_task(waiter());
            co_await aio::sleep(0s);
            // The descriptor's step wakes its waiting tasks first, then runs its reader
            // callback: the cancel comes after the wake-up, in the same step.
            loop.add_reader(a, [&] {
                log(h.cancel() ? "cancel accepted" : "cancel refused");
                loop.remove_reader(a);
            });
            send_byte(b);
            const bool cancelled = co_await expect_throws<aio::cancelled_error>(h);
            REQUIRE(cancelled);
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"cancel accepted", "waiter cancelled"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("wait_readable and wait_writable on a closed descriptor, or on -1, throw aio::os_error with EBADF without suspending") {
    const std::size_t before = open_descriptors();
    {
        trace log;
        auto sibling = [&]() -> aio::task<> {
            log("sibling");
            co_return;
        };
        auto errno_of = [&](aio::readiness_awaitable wait) -> aio::task<int> {
            try {
                co_await std::move(wait);
            } catch (const aio::os_error& e) {
                REQUIRE(e.code() == std::errc::bad_file_descriptor);
                co_return e.error_number();
            }
            co_return 0;
        };
        auto program = [&]() -> aio::task<> {
            auto h = aio::create_task(sibling());
            const int closed = closed_descriptor();
            for (int fd : {closed, -1}) {
                log("readable " + std::to_string(co_await errno_of(aio::wait_readable(fd)) == EBADF));
                log("writable " + std::to_string(co_await errno_of(aio::wait_writable(fd)) == EBADF));
            }
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
            co_await h;
        };
        aio::run(program());
        // All four before the sibling's first step: none of them suspended.
        REQUIRE(log.events == lines{"readable 1", "writable 1", "readable 1", "writable 1", "sibling"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("wait_readable on a regular file throws aio::os_error with EPERM, as epoll refuses one, and leaves no entry") {
    const std::size_t before = open_descriptors();
    {
        char path[] = "/tmp/aio_test_readiness_XXXXXX";
        const int file = ::mkstemp(path);
        REQUIRE(file >= 0);
        ::unlink(path);
        auto program = [&]() -> aio::task<> {
            int readable = 0, writable = 0;
            try {
                co_await aio::wait_readable(file);
            } catch (const aio::os_error& e) {
                readable = e.error_number();
            }
            try {
                co_await aio::wait_writable(file);
            } catch (const aio::os_error& e) {
                writable = e.error_number();
                REQUIRE(e.code() == std::errc::operation_not_permitted);
            }
            REQUIRE(readable == EPERM);
            REQUIRE(writable == EPERM);
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        ::close(file);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a wait that fails beside a task waiting on another descriptor leaves that task and its entry alone") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        auto reader = [&]() -> aio::task<> {
            co_await aio::wait_readable(a);
            log("readable");
        };
        auto program = [&]() -> aio::task<> {
            auto r = aio::create_task(reader());
            co_await aio::sleep(0s);
            REQUIRE(entries() == 1);
            REQUIRE(registrations() == 1);
            int err = 0;
            try {
                co_await aio::wait_readable(closed_descriptor());
            } catch (const aio::os_error& e) {
                err = e.error_number();
            }
            REQUIRE(err == EBADF);
            REQUIRE(entries() == 1);
            REQUIRE(registrations() == 1);
            send_byte(b);
            co_await aio::wait_for(r, 10s);  // a wake-up lost fails the test, not hangs it
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"readable"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a peer that closes its end wakes wait_readable, and the read then sees the end of the stream") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        auto closer = [&]() -> aio::task<> {
            co_await aio::sleep(5ms);
            sockets.second.close();
        };
        auto program = [&]() -> aio::task<> {
            auto h = aio::create_task(closer());
            co_await aio::wait_readable(a);
            char c;
            REQUIRE(::recv(a, &c, 1, 0) == 0);
            co_await h;
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("closing a pipe's write end wakes wait_readable on its read end (a hang-up)") {
    const std::size_t before = open_descriptors();
    {
        pipe_pair p;
        auto closer = [&]() -> aio::task<> {
            co_await aio::sleep(5ms);
            p.close_write();
        };
        auto program = [&]() -> aio::task<> {
            auto h = aio::create_task(closer());
            co_await aio::wait_readable(p.read_end);
            char c;
            REQUIRE(::read(p.read_end, &c, 1) == 0);
            co_await h;
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a task waiting in wait_writable for room is woken when the peer closes, and the send then fails with EPIPE") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        const char chunk[4096] = {};
        while (::send(a, chunk, sizeof chunk, MSG_NOSIGNAL) > 0) {
        }
        REQUIRE(errno == EAGAIN);
        auto closer = [&]() -> aio::task<> {
            co_await aio::sleep(5ms);
            sockets.second.close();
        };
        auto program = [&]() -> aio::task<> {
            auto h = aio::create_task(closer());
            co_await aio::wait_writable(a);
            REQUIRE(::send(a, chunk, 1, MSG_NOSIGNAL) < 0);
            REQUIRE(errno == EPIPE);
            co_await h;
            REQUIRE(entries() == 0);
            REQUIRE(registrations() == 0);
        };
        aio::run(program());
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a loop closed while a task waits on a descriptor unregisters it, and the task ends cancelled with its frame destroyed") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        auto waiter = [&]() -> aio::task<> {
            aio_test::counted in_frame;
            co_await aio::wait_writable(sockets.second.fd());  // writable: woken, then waits again
            co_await aio::wait_readable(a);
        };
        aio::event_loop loop;
        auto& core = aio::detail::loop_access::core(loop);
        auto h = loop.create_task(waiter());
        loop.run_until_complete([]() -> aio::task<> {
            for (int i = 0; i < 4; ++i) co_await aio::sleep(0s);
        }());
        REQUIRE_FALSE(h.done());
        REQUIRE(core.fds.size() == 1);
        REQUIRE(core.multiplexer.registrations() == 1);
        REQUIRE(aio_test::counted::alive() == 1);
        loop.close();
        REQUIRE(h.cancelled());
        REQUIRE(aio_test::counted::alive() == 0);
        REQUIRE(core.fds.size() == 0);
        REQUIRE(core.multiplexer.registrations() == 0);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a loop destroyed without close while tasks wait on a descriptor frees their frames and closes its own descriptors") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        auto waiter = [&]() -> aio::task<> {
            aio_test::counted in_frame;
            co_await aio::wait_readable(a);
        };
        {
            aio::event_loop loop;
            (void)loop.create_task(waiter());
            (void)loop.create_task(waiter());
            loop.run_until_complete([]() -> aio::task<> { co_await aio::sleep(0s); }());
            REQUIRE(aio_test::counted::alive() == 2);
        }
        REQUIRE(aio_test::counted::alive() == 0);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("aio::run cancels a task still waiting on a descriptor when main ends, and leaves nothing registered") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        trace log;
        std::size_t left_entries = 99, left_registrations = 99;
        auto waiter = [&]() -> aio::task<> { co_await log_cancel(log, "waiter cancelled", aio::wait_readable(a)); };
        auto program = [&]() -> aio::task<> {
            auto h = aio::create_task(waiter());
            co_await aio::sleep(0s);
            REQUIRE(entries() == 1);
            h.add_done_callback([&](const aio::task_handle<>&) {
                left_entries = entries();
                left_registrations = registrations();
            });
        };
        aio::run(program());
        REQUIRE(log.events == lines{"waiter cancelled"});
        REQUIRE(left_entries == 0);
        REQUIRE(left_registrations == 0);
    }
    REQUIRE(open_descriptors() == before);
}
