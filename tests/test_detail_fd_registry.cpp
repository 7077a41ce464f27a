// The loop's descriptor table (include/aio/detail/fd_registry.hpp, fd_events.hpp) through
// event_loop::add_reader / add_writer / remove_reader / remove_writer: level-triggered
// callbacks run through the ready queue, one callback a descriptor and direction, the
// lifetime of the callables (a callback that removes or replaces itself), errors, a
// descriptor number reused, stale kernel events, and what closing the loop releases.
//
// The CPython ports name the test of Lib/test/test_asyncio/test_selector_events.py they
// follow; those check calls on a mocked selector, these the behaviour the calls make.
// Each trace test carries the asyncio program it mirrors; the expected lines are what
// CPython 3.11 printed for it.

#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
#include <aio/net/socket.hpp>
#include <aio/os_error.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/descriptors.hpp"
#include "support/counted.hpp"
#include "support/steps.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::ticker;
using aio_test::trace;
using aio_test::yes_no;
using lines = std::vector<std::string>;

using aio_test::open_descriptors;

namespace {

// A loop's descriptor table and epoll registrations.
std::size_t entries(aio::event_loop& loop) { return aio::detail::loop_access::core(loop).fds.size(); }
std::size_t registrations(aio::event_loop& loop) {
    return aio::detail::loop_access::core(loop).multiplexer.registrations();
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
        if (read_end >= 0) ::close(read_end);
        if (write_end >= 0) ::close(write_end);
        read_end = write_end = -1;
    }
};

// The number of a descriptor just closed: not open until something opens another.
int closed_descriptor() {
    pipe_pair p;
    return p.read_end;
}

void send_bytes(int fd, const std::string& bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

// `n` loop iterations.
aio::task<> iterations(int n) {
    for (int i = 0; i < n; ++i) co_await aio::sleep(0s);
}

}  // namespace

// import asyncio, socket
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     loop = asyncio.get_running_loop()
//     a, b = socket.socketpair()
//     a.setblocking(False)
//     b.send(b"abc")
//     loop.add_reader(a.fileno(), lambda: log.append("read " + a.recv(1).decode()))
//     await ticker(5)
//     log.append(f"removed {loop.remove_reader(a.fileno())}")
//     log.append(f"removed {loop.remove_reader(a.fileno())}")
//     a.close()
//     b.close()
// asyncio.run(main())
// print(log)
TEST_CASE("add_reader runs its callback in every iteration while the descriptor is readable, and no more once it is drained, as in asyncio") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        std::size_t entries_while_drained = 0, registrations_while_drained = 0;
        auto program = [&]() -> aio::task<> {
            auto& loop = aio::get_running_loop();
            send_bytes(b, "abc");
            loop.add_reader(a, [&] {
                char c = '?';
                REQUIRE(::recv(a, &c, 1, 0) == 1);
                log(std::string("read ") + c);
            });
            co_await ticker(log, 5);
            entries_while_drained = entries(loop);  // drained: still registered, not called
            registrations_while_drained = registrations(loop);
            log("removed " + yes_no(loop.remove_reader(a)));
            log("removed " + yes_no(loop.remove_reader(a)));
            REQUIRE(entries(loop) == 0);
            REQUIRE(registrations(loop) == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"tick0", "tick1", "read a", "tick2", "read b", "tick3", "read c", "tick4",
                                    "removed True", "removed False"});
        REQUIRE(entries_while_drained == 1);
        REQUIRE(registrations_while_drained == 1);
    }
    REQUIRE(open_descriptors() == before);
}

// import asyncio, socket
// log = []
// async def main():
//     loop = asyncio.get_running_loop()
//     a, b = socket.socketpair()
//     done = loop.create_future()
//     def write():
//         b.send(b"x")
//         log.append("wrote")
//         loop.call_soon(log.append, "soon")
//     def on_readable():
//         log.append("reader")
//         loop.remove_reader(a.fileno())
//         done.set_result(None)
//     loop.call_soon(write)
//     loop.add_reader(a.fileno(), on_readable)
//     await done
//     a.close()
//     b.close()
// asyncio.run(main())
// print(log)
TEST_CASE("a reader callback runs through the ready queue, behind the callbacks queued before the poll that saw it ready, as in asyncio") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        auto program = [&]() -> aio::task<> {
            auto& loop = aio::get_running_loop();
            bool done = false;
            (void)loop.call_soon([&] {
                send_bytes(b, "x");
                log("wrote");
                (void)loop.call_soon([&] { log("soon"); });
            });
            loop.add_reader(a, [&] {
                log("reader");
                loop.remove_reader(a);
                done = true;
            });
            while (!done) co_await aio::sleep(0s);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"wrote", "soon", "reader"});
    }
    REQUIRE(open_descriptors() == before);
}

// CPython's test_add_reader_existing: a reader added where there is one replaces it (the
// old handle is cancelled), the registration is modified, not made again, and the
// writer stays.
TEST_CASE("add_reader where there is a reader replaces it: the old callable is destroyed at once, the writer stays, the registration is kept") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        send_bytes(b, "x");  // readable, and writable all along
        trace log;
        aio::event_loop loop;
        auto old_token = std::make_shared<int>(1);
        std::weak_ptr<int> old_alive = old_token;
        loop.add_writer(a, [&log, c = aio_test::counted()] { log("writer"); });
        loop.add_reader(a, [&log, t = std::move(old_token)] { log("old reader"); });
        REQUIRE(entries(loop) == 1);
        REQUIRE(registrations(loop) == 1);
        loop.add_reader(a, [&log, c = aio_test::counted()] { log("new reader"); });
        REQUIRE(old_alive.expired());  // replaced: gone before the loop runs again
        REQUIRE(entries(loop) == 1);
        REQUIRE(registrations(loop) == 1);
        REQUIRE(aio_test::counted::alive() == 2);
        loop.run_until_complete(iterations(1));
        // Each event runs the reader, then the writer; the old reader never again.
        REQUIRE_FALSE(log.events.empty());
        REQUIRE(log.events.size() % 2 == 0);
        for (std::size_t i = 0; i < log.events.size(); ++i) REQUIRE(log.events[i] == (i % 2 == 0 ? "new reader" : "writer"));
        REQUIRE(loop.remove_reader(a));
        REQUIRE(loop.remove_writer(a));
        REQUIRE(aio_test::counted::alive() == 0);
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
    }
    REQUIRE(open_descriptors() == before);
}

// CPython's test_remove_reader_read_write and test_remove_writer_read_write: removing
// one direction of a descriptor watched in both modifies the registration to the other
// and keeps its callback.
TEST_CASE("remove_reader keeps the writer of the same descriptor, and remove_writer the reader") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        send_bytes(b, "x");  // readable and writable; nobody reads
        aio::event_loop loop;
        int reads = 0, writes = 0;

        loop.add_reader(a, [&] { ++reads; });
        loop.add_writer(a, [&] { ++writes; });
        loop.run_until_complete(iterations(1));
        REQUIRE(reads > 0);
        REQUIRE(writes > 0);
        REQUIRE(loop.remove_reader(a));
        REQUIRE(entries(loop) == 1);
        REQUIRE(registrations(loop) == 1);
        const int reads_then = reads, writes_before = writes;
        loop.run_until_complete(iterations(3));
        REQUIRE(reads == reads_then);  // readable all along, but no longer watched for it
        REQUIRE(writes > writes_before);

        const int writes_then = writes;
        loop.add_reader(a, [&] { ++reads; });
        REQUIRE(loop.remove_writer(a));
        REQUIRE(entries(loop) == 1);
        REQUIRE(registrations(loop) == 1);
        loop.run_until_complete(iterations(3));
        REQUIRE(writes == writes_then);
        REQUIRE(reads > reads_then);
        REQUIRE(loop.remove_reader(a));
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("remove_reader and remove_writer return false where there is nothing to remove") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        aio::event_loop loop;
        REQUIRE_FALSE(loop.remove_reader(a));  // never watched
        REQUIRE_FALSE(loop.remove_writer(a));
        REQUIRE_FALSE(loop.remove_reader(-1));
        REQUIRE_FALSE(loop.remove_writer(1 << 20));  // beyond the table
        int writes = 0;
        loop.add_writer(a, [&] { ++writes; });
        REQUIRE_FALSE(loop.remove_reader(a));  // it has a writer only, which stays
        REQUIRE(entries(loop) == 1);
        loop.run_until_complete(iterations(1));
        REQUIRE(writes > 0);
        REQUIRE(loop.remove_writer(a));
        REQUIRE_FALSE(loop.remove_writer(a));  // and once removed, it is gone
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("two descriptors watched at once each run their own callback") {
    const std::size_t before = open_descriptors();
    {
        auto first = aio::socket::pair();
        auto second = aio::socket::pair();
        int firsts = 0, seconds = 0;
        aio::event_loop loop;
        loop.add_reader(first.first.fd(), [&] { ++firsts; });
        loop.add_reader(second.first.fd(), [&] { ++seconds; });
        REQUIRE(entries(loop) == 2);
        REQUIRE(registrations(loop) == 2);
        send_bytes(first.second.fd(), "x");
        loop.run_until_complete(iterations(1));
        REQUIRE(firsts > 0);
        REQUIRE(seconds == 0);
        REQUIRE(loop.remove_reader(first.first.fd()));
        const int firsts_then = firsts;
        send_bytes(second.second.fd(), "x");
        loop.run_until_complete(iterations(1));
        REQUIRE(firsts == firsts_then);
        REQUIRE(seconds > 0);
        REQUIRE(loop.remove_reader(second.first.fd()));
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a callback that removes itself finishes with its captures intact, which are destroyed once it returns") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        send_bytes(b, "x");  // stays readable: only the removal stops the calls
        aio::event_loop loop;
        int calls = 0;
        int alive_after_removal = -1;
        bool removed = false;
        auto token = std::make_shared<std::string>("captured");
        std::weak_ptr<std::string> token_alive = token;
        loop.add_reader(a, [&, c = aio_test::counted(7), t = std::move(token)] {
            ++calls;
            removed = loop.remove_reader(a);
            alive_after_removal = aio_test::counted::alive();
            REQUIRE(c.value == 7);  // read after the removal: still alive
            REQUIRE(*t == "captured");
        });
        loop.run_until_complete(iterations(3));
        REQUIRE(calls == 1);
        REQUIRE(removed);
        REQUIRE(alive_after_removal == 1);
        REQUIRE(aio_test::counted::alive() == 0);
        REQUIRE(token_alive.expired());
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
    }
    REQUIRE(open_descriptors() == before);
}

// import asyncio, socket
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     loop = asyncio.get_running_loop()
//     a, b = socket.socketpair()
//     b.send(b"x")
//     def second():
//         log.append("second")
//     def first():
//         log.append("first")
//         loop.add_reader(a.fileno(), second)
//     loop.add_reader(a.fileno(), first)
//     await ticker(4)
//     log.append(f"removed {loop.remove_reader(a.fileno())}")
//     a.close()
//     b.close()
// asyncio.run(main())
// print(log)
TEST_CASE("a callback that replaces itself runs to its end with its captures intact, and its replacement runs from the next iteration, as in asyncio") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        bool intact = false;
        auto program = [&]() -> aio::task<> {
            auto& loop = aio::get_running_loop();
            send_bytes(b, "x");
            loop.add_reader(a, [&, c = aio_test::counted(3)] {
                log("first");
                loop.add_reader(a, [&] { log("second"); });
                intact = c.value == 3 && aio_test::counted::alive() == 1;
            });
            co_await ticker(log, 4);
            REQUIRE(aio_test::counted::alive() == 0);  // the first went once it had returned
            log("removed " + yes_no(loop.remove_reader(a)));
            REQUIRE(entries(loop) == 0);
            REQUIRE(registrations(loop) == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"tick0", "tick1", "first", "tick2", "second", "tick3", "second", "removed True"});
        REQUIRE(intact);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a callback that removes itself and then adds another in its place keeps the descriptor watched for the new one") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        send_bytes(b, "x");
        aio::event_loop loop;
        int firsts = 0, seconds = 0;
        std::size_t registrations_between = 99;
        loop.add_reader(a, [&, c = aio_test::counted()] {
            ++firsts;
            REQUIRE(loop.remove_reader(a));
            registrations_between = registrations(loop);
            loop.add_reader(a, [&] { ++seconds; });
        });
        loop.run_until_complete(iterations(2));
        REQUIRE(registrations_between == 0);  // nothing watched it for a moment
        REQUIRE(firsts == 1);
        REQUIRE(seconds > 0);
        REQUIRE(aio_test::counted::alive() == 0);
        REQUIRE(entries(loop) == 1);
        REQUIRE(registrations(loop) == 1);
        REQUIRE(loop.remove_reader(a));
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
    }
    REQUIRE(open_descriptors() == before);
}

// import asyncio, socket
// log = []
// async def main():
//     loop = asyncio.get_running_loop()
//     a, b = socket.socketpair()
//     b.send(b"x")
//     def on_readable():
//         log.append("reader")
//         log.append(f"writer removed {loop.remove_writer(a.fileno())}")
//         loop.remove_reader(a.fileno())
//     loop.add_reader(a.fileno(), on_readable)
//     loop.add_writer(a.fileno(), lambda: log.append("writer"))
//     for _ in range(3):
//         await asyncio.sleep(0)
//     a.close()
//     b.close()
// asyncio.run(main())
// print(log)
TEST_CASE("a reader callback that removes the writer of its descriptor keeps it from running in the same event, as in asyncio") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        trace log;
        auto program = [&]() -> aio::task<> {
            auto& loop = aio::get_running_loop();
            send_bytes(b, "x");
            loop.add_reader(a, [&] {
                log("reader");
                log("writer removed " + yes_no(loop.remove_writer(a)));
                loop.remove_reader(a);
            });
            loop.add_writer(a, [&] { log("writer"); });
            co_await iterations(3);
            REQUIRE(entries(loop) == 0);
            REQUIRE(registrations(loop) == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"reader", "writer removed True"});
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a callback that removes another descriptor's reader, whose event is queued behind it, keeps that one from running") {
    const std::size_t before = open_descriptors();
    {
        auto first = aio::socket::pair();
        auto second = aio::socket::pair();
        const int a = first.first.fd(), c = second.first.fd();
        send_bytes(first.second.fd(), "x");
        send_bytes(second.second.fd(), "x");
        aio::event_loop loop;
        int calls = 0;
        // Whichever runs first removes both; the other's queued event must come to nothing.
        auto both_go = [&] {
            ++calls;
            loop.remove_reader(a);
            loop.remove_reader(c);
        };
        loop.add_reader(a, both_go);
        loop.add_reader(c, both_go);
        loop.run_until_complete(iterations(3));
        REQUIRE(calls == 1);
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
    }
    REQUIRE(open_descriptors() == before);
}

// import asyncio, socket
// log = []
// async def ticker(n):
//     for i in range(n):
//         log.append(f"tick{i}")
//         await asyncio.sleep(0)
// async def main():
//     loop = asyncio.get_running_loop()
//     loop.set_exception_handler(lambda loop, context: log.append(f"handler {context['exception']}"))
//     a, b = socket.socketpair()
//     def on_writable():
//         log.append("writer")
//         raise RuntimeError("boom")
//     loop.add_writer(a.fileno(), on_writable)
//     await ticker(3)
//     log.append(f"removed {loop.remove_writer(a.fileno())}")
//     a.close()
//     b.close()
// asyncio.run(main())
// print(log)
TEST_CASE("an exception from a callback goes to the exception handler as an 'Exception in callback', and the callback stays registered, as in asyncio") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        trace log;
        std::vector<std::string> messages;
        auto program = [&]() -> aio::task<> {
            auto& loop = aio::get_running_loop();
            loop.set_exception_handler([&](aio::event_loop&, const aio::exception_context& context) {
                messages.push_back(context.message);
                try {
                    std::rethrow_exception(context.exception);
                } catch (const std::exception& e) {
                    log(std::string("handler ") + e.what());
                }
            });
            loop.add_writer(a, [&] {
                log("writer");
                throw std::runtime_error("boom");
            });
            co_await ticker(log, 3);
            log("removed " + yes_no(loop.remove_writer(a)));
            REQUIRE(entries(loop) == 0);
            REQUIRE(registrations(loop) == 0);
        };
        aio::run(program());
        REQUIRE(log.events == lines{"tick0", "tick1", "writer", "handler boom", "tick2", "writer", "handler boom",
                                    "removed True"});
        REQUIRE(messages.size() == 2);
        for (const std::string& m : messages) REQUIRE(m == "Exception in callback");
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("add_reader and add_writer on a closed descriptor throw aio::os_error with EBADF, leave no entry and destroy the callable") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        aio::event_loop loop;
        const int closed = closed_descriptor();
        for (int fd : {closed, -1}) {
            int reader_errno = 0, writer_errno = 0;
            try {
                loop.add_reader(fd, [c = aio_test::counted()] {});
            } catch (const aio::os_error& e) {
                reader_errno = e.error_number();
            }
            try {
                loop.add_writer(fd, [c = aio_test::counted()] {});
            } catch (const aio::os_error& e) {
                writer_errno = e.error_number();
            }
            REQUIRE(reader_errno == EBADF);
            REQUIRE(writer_errno == EBADF);
            REQUIRE(aio_test::counted::alive() == 0);
            REQUIRE(entries(loop) == 0);
            REQUIRE(registrations(loop) == 0);
            REQUIRE_FALSE(loop.remove_reader(fd));
        }
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("add_reader on a regular file throws aio::os_error with EPERM, as epoll refuses one, and leaves no entry") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        char path[] = "/tmp/aio_test_fd_registry_XXXXXX";
        const int file = ::mkstemp(path);
        REQUIRE(file >= 0);
        ::unlink(path);
        aio::event_loop loop;
        int err = 0;
        try {
            loop.add_reader(file, [c = aio_test::counted()] {});
        } catch (const aio::os_error& e) {
            err = e.error_number();
        }
        REQUIRE(err == EPERM);
        REQUIRE(aio_test::counted::alive() == 0);
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
        ::close(file);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a failed add_writer beside a registered reader of another descriptor leaves that reader watched") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        aio::event_loop loop;
        int reads = 0;
        loop.add_reader(a, [&] { ++reads; });
        const int closed = closed_descriptor();
        REQUIRE_THROWS_AS(loop.add_writer(closed, [] {}), aio::os_error);
        REQUIRE(entries(loop) == 1);
        REQUIRE(registrations(loop) == 1);
        send_bytes(b, "x");
        loop.run_until_complete(iterations(1));
        REQUIRE(reads > 0);
        REQUIRE(loop.remove_reader(a));
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a callback that removes itself, closes its descriptor and adds a reader for it again gets os_error, and its event ends safely") {
    // The failed add finds the entry of the event that is running (kept, with nothing
    // wanted, until the event ends): it must leave it to the event to free.
    const std::size_t before = open_descriptors();
    {
        aio::event_loop loop;
        auto p = std::make_unique<pipe_pair>();
        REQUIRE(::write(p->write_end, "x", 1) == 1);
        const int fd = p->read_end;
        int err = 0, calls = 0;
        loop.add_reader(fd, [&] {
            ++calls;
            loop.remove_reader(fd);
            ::close(fd);
            p->read_end = -1;
            try {
                loop.add_reader(fd, [] {});
            } catch (const aio::os_error& e) {
                err = e.error_number();
            }
        });
        loop.run_until_complete(iterations(2));
        REQUIRE(calls == 1);
        REQUIRE(err == EBADF);
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a descriptor closed while its reader is registered can still be removed, and one opened under the same number is watched afresh") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        aio::event_loop loop;
        int olds = 0, news = 0;
        auto old_pipe = std::make_unique<pipe_pair>();
        const int number = old_pipe->read_end;
        loop.add_reader(number, [&olds, c = aio_test::counted()] { ++olds; });
        REQUIRE(registrations(loop) == 1);
        old_pipe.reset();  // closed under the loop: epoll drops it by itself
        REQUIRE(loop.remove_reader(number));
        REQUIRE(aio_test::counted::alive() == 0);
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);

        pipe_pair fresh;
        REQUIRE(fresh.read_end == number);  // the lowest free number: the same one
        loop.add_reader(fresh.read_end, [&] { ++news; });
        REQUIRE(registrations(loop) == 1);
        REQUIRE(::write(fresh.write_end, "x", 1) == 1);
        loop.run_until_complete(iterations(1));
        REQUIRE(olds == 0);
        REQUIRE(news > 0);
        REQUIRE(loop.remove_reader(fresh.read_end));
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("events the kernel still reports for a removed registration, its file kept open by a dup, reach nobody") {
    // epoll watches the open file, not the number: closing a descriptor that a dup keeps
    // open leaves its registration in the kernel, where remove_reader's EPOLL_CTL_DEL
    // cannot reach it (the number is closed), and the kernel goes on reporting it under
    // the old token.
    const std::size_t before = open_descriptors();
    {
        aio::event_loop loop;
        int olds = 0, news = 0;
        auto old_pipe = std::make_unique<pipe_pair>();
        REQUIRE(::write(old_pipe->write_end, "x", 1) == 1);  // readable from now on
        const int number = old_pipe->read_end;
        const int duplicate = ::dup(number);
        REQUIRE(duplicate >= 0);
        loop.add_reader(number, [&] { ++olds; });
        ::close(number);
        old_pipe->read_end = -1;
        REQUIRE(loop.remove_reader(number));
        REQUIRE(registrations(loop) == 0);

        auto sockets = aio::socket::pair();  // takes the number again, and the freed slot
        const int a = sockets.first.fd(), b = sockets.second.fd();
        REQUIRE(a == number);
        loop.add_reader(a, [&] { ++news; });
        loop.run_until_complete(iterations(3));
        REQUIRE(olds == 0);  // the old file is reported ready, and dropped
        REQUIRE(news == 0);
        send_bytes(b, "x");
        loop.run_until_complete(iterations(1));
        REQUIRE(olds == 0);
        REQUIRE(news > 0);
        REQUIRE(loop.remove_reader(a));
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
        ::close(duplicate);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("add_reader and add_writer on a closed loop throw aio::runtime_error and keep nothing") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        aio::event_loop loop;
        loop.close();
        REQUIRE_THROWS_AS(loop.add_reader(a, [c = aio_test::counted()] {}), aio::runtime_error);
        REQUIRE_THROWS_AS(loop.add_writer(a, [c = aio_test::counted()] {}), aio::runtime_error);
        REQUIRE(aio_test::counted::alive() == 0);
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
        REQUIRE_FALSE(loop.remove_reader(a));
        REQUIRE_FALSE(loop.remove_writer(a));
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("closing the loop destroys every reader and writer callable exactly once and unregisters their descriptors") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        std::vector<std::pair<aio::socket, aio::socket>> pairs;
        for (int i = 0; i < 3; ++i) pairs.push_back(aio::socket::pair());
        aio::event_loop loop;
        int calls = 0;
        for (auto& p : pairs) {
            loop.add_reader(p.first.fd(), [&calls, c = aio_test::counted()] { ++calls; });
            loop.add_writer(p.first.fd(), [&calls, c = aio_test::counted()] { ++calls; });
        }
        loop.add_writer(pairs[0].second.fd(), [&calls, c = aio_test::counted()] { ++calls; });
        REQUIRE(aio_test::counted::alive() == 7);
        REQUIRE(entries(loop) == 4);
        REQUIRE(registrations(loop) == 4);
        loop.run_until_complete(iterations(1));
        REQUIRE(calls > 0);
        loop.close();
        REQUIRE(aio_test::counted::alive() == 0);
        REQUIRE(entries(loop) == 0);
        REQUIRE(registrations(loop) == 0);
        REQUIRE_FALSE(loop.remove_reader(pairs[0].first.fd()));
    }
    REQUIRE(aio_test::counted::constructed == aio_test::counted::destroyed);
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a loop destroyed with callbacks registered destroys their callables once, without a close") {
    aio_test::counted::reset();
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd();
        {
            aio::event_loop loop;
            loop.add_reader(a, [c = aio_test::counted()] {});
            loop.add_writer(a, [c = aio_test::counted()] {});
            REQUIRE(aio_test::counted::alive() == 2);
        }
        REQUIRE(aio_test::counted::alive() == 0);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("add_reader takes a move-only callable, and a callback added before the loop runs is called once it does") {
    const std::size_t before = open_descriptors();
    {
        auto sockets = aio::socket::pair();
        const int a = sockets.first.fd(), b = sockets.second.fd();
        send_bytes(b, "x");
        aio::event_loop loop;
        int seen = 0;
        loop.add_reader(a, [&seen, p = std::make_unique<int>(5)] { seen = *p; });
        loop.run_until_complete(iterations(1));
        REQUIRE(seen == 5);
        REQUIRE(loop.remove_reader(a));
    }
    REQUIRE(open_descriptors() == before);
}
