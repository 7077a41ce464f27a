// The transport under every stream (include/aio/net/detail/stream_transport.hpp) and
// the server's accepting, as CPython's Lib/test/test_asyncio/test_selector_events.py
// (3.13) tests _SelectorSocketTransport and _accept_connection: partial writes, a
// write behind queued output, write_eof with and without output queued, an EOF and a
// reset from the peer, reading paused and resumed, and a listener with more
// connections waiting than its backlog. CPython drives mocked sockets; here every
// stream is over a real socket (one end of a Unix socket pair, or TCP on 127.0.0.1)
// made a stream by open_connection(socket), and its peer is a plain socket the test
// reads and writes itself. add_reader's cases (test_add_reader_existing,
// test_remove_reader_read_write) are in test_detail_fd_registry.cpp.
//
// Every test runs on a fresh loop, bounded in time, and counts the process's
// descriptors before and after. No co_await appears inside a REQUIRE (g++ 12 would
// evaluate it twice): each is awaited into a local first.
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/net/readiness.hpp>
#include <aio/net/server.hpp>
#include <aio/net/socket.hpp>
#include <aio/net/socket_address.hpp>
#include <aio/net/stream_errors.hpp>
#include <aio/net/stream_reader.hpp>
#include <aio/net/stream_writer.hpp>
#include <aio/net/streams.hpp>
#include <aio/os_error.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/wait_for.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <any>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/handlers.hpp"
#include "support/net_run.hpp"

using namespace std::chrono_literals;
using aio_test::expect_throws;
using aio_test::reports;
using aio_test::run_checked;

namespace {

// `n` bytes whose value depends on their position (period 251, a prime that divides
// no buffer size): a lost, repeated or reordered chunk shows.
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 251);
    return s;
}

// A stream over one end of a connection; the test holds the other end.
struct stream_and_peer {
    aio::stream_reader reader;
    aio::stream_writer writer;
    aio::socket peer;
};

aio::task<stream_and_peer> over_socket_pair(aio::connection_options options = {}) {
    auto [mine, theirs] = aio::socket::pair();
    aio::stream_pair s = co_await aio::open_connection(std::move(mine), options);
    co_return stream_and_peer{std::move(s.first), std::move(s.second), std::move(theirs)};
}

aio::task<stream_and_peer> over_tcp() {
    aio::socket listener(AF_INET, SOCK_STREAM);
    listener.bind(aio::socket_address::ip("127.0.0.1", 0));
    listener.listen(1);
    aio::socket client(AF_INET, SOCK_STREAM);
    aio::event_loop& loop = aio::get_running_loop();
    co_await loop.sock_connect(client.fd(), listener.local_address());
    auto accepted = co_await loop.sock_accept(listener.fd());
    aio::stream_pair s = co_await aio::open_connection(std::move(client));
    co_return stream_and_peer{std::move(s.first), std::move(s.second), std::move(accepted.first)};
}

void set_int_option(int fd, int level, int name, int value) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) throw std::system_error(errno, std::generic_category(), "setsockopt");
}

int fd_of(const aio::stream_writer& w) { return std::any_cast<int>(w.get_extra_info("socket")); }

// What the peer's end holds or will receive, read with the loop's sock_recv until
// `n` bytes or the end of the stream.
aio::task<std::string> receive(aio::socket& peer, std::size_t n) {
    std::string got;
    while (got.size() < n) {
        const std::string piece = co_await aio::get_running_loop().sock_recv(peer.fd(), n - got.size());
        if (piece.empty()) break;
        got += piece;
    }
    co_return got;
}

// Bytes waiting in a socket's receive queue (what nobody has read yet).
int unread(int fd) {
    int n = 0;
    REQUIRE(::ioctl(fd, FIONREAD, &n) == 0);
    return n;
}

}  // namespace

// ===== writing

// test_write_partial: the kernel takes part of a write; the rest is queued, and sent as
// the socket becomes writable.
TEST_CASE("a write the kernel takes only part of queues the rest, which follows in order once the peer reads") {
    auto body = []() -> aio::task<> {
        stream_and_peer s = co_await over_socket_pair();
        set_int_option(fd_of(s.writer), SOL_SOCKET, SO_SNDBUF, 4096);
        const std::string data = pattern(1 << 20);
        s.writer.write(data);
        const std::size_t queued = s.writer.get_write_buffer_size();
        REQUIRE(queued > 0);            // not all of it went...
        REQUIRE(queued < data.size());  // ...but some did, at once
        const std::string got = co_await aio::wait_for(receive(s.peer, data.size()), 5s);
        REQUIRE(got == data);
        co_await aio::wait_for(s.writer.drain(), 2s);
        REQUIRE(s.writer.get_write_buffer_size() == 0);
        s.writer.close();
        co_await aio::wait_for(s.writer.wait_closed(), 2s);
    };
    run_checked(body);
}

// test_write_partial_none and test_write_tryagain: with output queued (the kernel is
// full), a write is not tried: it goes behind, whole.
TEST_CASE("a write while output is queued goes behind it whole, and everything arrives in the order written") {
    auto body = []() -> aio::task<> {
        stream_and_peer s = co_await over_socket_pair();
        set_int_option(fd_of(s.writer), SOL_SOCKET, SO_SNDBUF, 4096);
        std::string sent;
        for (int i = 0; s.writer.get_write_buffer_size() == 0; ++i) {  // until the kernel is full
            const std::string piece = pattern(4096).substr(static_cast<std::size_t>(i % 7));
            s.writer.write(piece);
            sent += piece;
        }
        const std::size_t queued = s.writer.get_write_buffer_size();
        s.writer.write("tail");
        sent += "tail";
        REQUIRE(s.writer.get_write_buffer_size() == queued + 4);
        const std::string got = co_await aio::wait_for(receive(s.peer, sent.size()), 5s);
        REQUIRE(got == sent);
        s.writer.close();
        co_await aio::wait_for(s.writer.wait_closed(), 2s);
    };
    run_checked(body);
}

// test_write_eof: nothing queued, so the writing side shuts at once.
TEST_CASE("write_eof with nothing queued shuts the writing side at once: the peer reads EOF, and the stream still reads") {
    auto body = []() -> aio::task<> {
        stream_and_peer s = co_await over_tcp();
        REQUIRE(s.writer.can_write_eof());
        s.writer.write("last words");
        s.writer.write_eof();
        const std::string got = co_await aio::wait_for(receive(s.peer, 1000), 2s);
        REQUIRE(got == "last words");  // then the end of the stream: receive stopped at it
        REQUIRE_FALSE(s.writer.is_closing());
        REQUIRE(::send(s.peer.fd(), "reply", 5, MSG_NOSIGNAL) == 5);
        const std::string reply = co_await aio::wait_for(s.reader.readexactly(5), 2s);
        REQUIRE(reply == "reply");
        s.writer.close();
        co_await aio::wait_for(s.writer.wait_closed(), 2s);
    };
    run_checked(body);
}

// test_write_eof_buffer: output queued, so the EOF waits until it has gone.
TEST_CASE("write_eof with output queued sends all of it first, then the EOF; a write after write_eof throws runtime_error") {
    auto body = []() -> aio::task<> {
        stream_and_peer s = co_await over_socket_pair();
        set_int_option(fd_of(s.writer), SOL_SOCKET, SO_SNDBUF, 4096);
        const std::string data = pattern(256 << 10);
        s.writer.write(data);
        REQUIRE(s.writer.get_write_buffer_size() > 0);
        s.writer.write_eof();
        REQUIRE(unread(s.peer.fd()) < static_cast<int>(data.size()));
        std::optional<std::string> what;
        try {
            s.writer.write("more");
        } catch (const aio::runtime_error& e) {
            what = e.what();
        }
        REQUIRE(what == "Cannot call write() after write_eof()");
        const std::string got = co_await aio::wait_for(receive(s.peer, data.size() + 1), 5s);
        REQUIRE(got == data);  // all of it, then EOF (nothing after)
        s.writer.write_eof();  // a second one changes nothing
        s.writer.close();
        co_await aio::wait_for(s.writer.wait_closed(), 2s);
    };
    run_checked(body);
}

// test_write_eof_after_close: nothing happens.
TEST_CASE("write_eof after close does nothing") {
    auto body = []() -> aio::task<> {
        stream_and_peer s = co_await over_socket_pair();
        s.writer.close();
        s.writer.write_eof();
        co_await aio::wait_for(s.writer.wait_closed(), 2s);
        s.writer.write_eof();
        const std::string got = co_await aio::wait_for(receive(s.peer, 10), 2s);
        REQUIRE(got.empty());  // closed: the peer sees the end, nothing more
    };
    run_checked(body);
}

// ===== reading

// test_read_ready_eof and test_read_ready_eof_keep_open: the protocol's eof_received
// keeps the transport open (a half-close), so the stream can still answer.
TEST_CASE("an EOF from the peer ends reading — read gives what came, then an empty string, at_eof — and the stream can still write") {
    auto body = []() -> aio::task<> {
        stream_and_peer s = co_await over_tcp();
        REQUIRE(::send(s.peer.fd(), "question", 8, MSG_NOSIGNAL) == 8);
        s.peer.shutdown(SHUT_WR);
        const std::string all = co_await aio::wait_for(s.reader.read(), 2s);
        REQUIRE(all == "question");
        REQUIRE(s.reader.at_eof());
        const std::string more = co_await aio::wait_for(s.reader.read(), 2s);
        REQUIRE(more.empty());
        REQUIRE_FALSE(s.writer.is_closing());
        s.writer.write("answer");
        co_await aio::wait_for(s.writer.drain(), 2s);
        const std::string got = co_await aio::wait_for(receive(s.peer, 6), 2s);
        REQUIRE(got == "answer");
        s.writer.close();
        co_await aio::wait_for(s.writer.wait_closed(), 2s);
    };
    run_checked(body);
}

// test_read_ready_conn_reset: the reset fails the read and closes the transport.
TEST_CASE("a reset from the peer fails the waiting read with connection_reset_error and closes the transport; drain raises too") {
    reports seen;
    auto body = [&]() -> aio::task<> {
        seen.listen();
        stream_and_peer s = co_await over_tcp();
        auto read_task = aio::create_task(s.reader.read(100));
        co_await aio::sleep(0s);  // it waits
        const linger reset_at_close{1, 0};
        REQUIRE(::setsockopt(s.peer.fd(), SOL_SOCKET, SO_LINGER, &reset_at_close, sizeof reset_at_close) == 0);
        s.peer.close();  // an RST
        const bool reset = co_await expect_throws<aio::connection_reset_error>(aio::wait_for(read_task, 2s));
        REQUIRE(reset);
        REQUIRE(s.writer.is_closing());
        const bool drain_raises = co_await expect_throws<aio::connection_error>(s.writer.drain());
        REQUIRE(drain_raises);
        co_await aio::wait_for(s.writer.wait_closed(), 2s);
    };
    run_checked(body);
    REQUIRE(seen.messages.empty());  // an error of the connection, not of the loop
}

// test_pause_resume_reading: past twice the limit the transport stops taking bytes in
// (they wait in the kernel), and a read that brings the buffer down resumes it.
TEST_CASE("past twice the limit the transport stops reading, leaving the rest in the kernel, and resumes as the reader takes bytes") {
    auto body = []() -> aio::task<> {
        constexpr std::size_t limit = 1024;
        stream_and_peer s = co_await over_socket_pair({.limit = limit});
        const std::string data = pattern(1 << 20);  // more than the kernel holds
        auto sending = aio::create_task(aio::get_running_loop().sock_sendall(s.peer.fd(), data));
        const std::string first = co_await aio::wait_for(s.reader.readexactly(1), 2s);
        co_await aio::sleep(20ms);  // the transport has taken in what it will
        REQUIRE(unread(fd_of(s.writer)) > 0);  // paused: the kernel holds the rest
        REQUIRE_FALSE(sending.done());
        std::string got = first;
        while (got.size() < data.size()) {
            const std::string piece = co_await aio::wait_for(s.reader.read(static_cast<std::ptrdiff_t>(limit)), 2s);
            REQUIRE_FALSE(piece.empty());
            got += piece;
        }
        co_await aio::wait_for(sending, 2s);
        REQUIRE(got == data);
        REQUIRE(unread(fd_of(s.writer)) == 0);
        s.writer.close();
        co_await aio::wait_for(s.writer.wait_closed(), 2s);
    };
    run_checked(body);
}

// ===== accepting

// test_accept_connection_multiple: one readiness, more connections waiting than the
// backlog: the first `backlog` are taken, and the step queues itself again for the
// rest without waiting for another connection to arrive.
TEST_CASE("a listener with more connections waiting than its backlog accepts them all from one readiness") {
    reports seen;
    auto body = [&]() -> aio::task<> {
        seen.listen();
        constexpr int backlog = 4;
        constexpr int clients = backlog + 1;  // what Linux queues for listen(backlog)
        int served = 0;
        aio::event all_served;
        auto handler = [&](aio::stream_reader, aio::stream_writer w) -> aio::task<> {
            if (++served == clients) all_served.set();
            w.close();
            co_return;
        };
        aio::server srv = co_await aio::start_server(handler, "127.0.0.1", 0, {.backlog = backlog, .start_serving = false});
        const aio::socket_address at = srv.sockets().at(0);
        std::vector<aio::socket> waiting;
        for (int i = 0; i < clients; ++i) {  // each handshake ends in the kernel's accept queue
            const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            REQUIRE(fd >= 0);
            waiting.push_back(aio::socket::own(fd));
            REQUIRE(::connect(fd, at.data(), at.size()) == 0);
        }
        srv.start_serving();
        co_await aio::wait_for(all_served.wait(), 2s);
        REQUIRE(served == clients);
        srv.close();
        co_await aio::wait_for(srv.wait_closed(), 2s);
    };
    run_checked(body);
    REQUIRE(seen.messages.empty());
}

// ===== pipes (asyncio's _UnixReadPipeTransport and _UnixWritePipeTransport)
//
// A subprocess's stdin, stdout and stderr are pipes; the same transport carries them.

namespace {

struct pipe_ends {
    aio::socket read_end;
    aio::socket write_end;
};

pipe_ends make_pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
    return {aio::socket::own(fds[0]), aio::socket::own(fds[1])};
}

}  // namespace

TEST_CASE("a pipe's read end reads what the writer wrote, in order, and then EOF when the writer closes") {
    auto body = []() -> aio::task<> {
        pipe_ends p = make_pipe();
        auto [reader, unused] = aio::detail::make_stream(std::move(p.read_end), aio::detail::stream_transport::default_limit);
        const std::string data = pattern(200'000);  // more than a pipe holds at once
        std::size_t written = 0;
        std::string got;
        while (written < data.size()) {
            const ssize_t n = ::write(p.write_end.fd(), data.data() + written, data.size() - written);
            if (n > 0) written += static_cast<std::size_t>(n);
            const std::string piece = co_await aio::wait_for(reader.read(65536), 2s);
            got += piece;
        }
        p.write_end.close();
        for (;;) {
            const std::string piece = co_await aio::wait_for(reader.read(65536), 2s);
            if (piece.empty()) break;
            got += piece;
        }
        REQUIRE(got == data);
        REQUIRE(reader.at_eof());
    };
    run_checked(body);
}

TEST_CASE("a pipe's write end sends through write and drain, and write_eof closes it: the reader sees EOF") {
    auto body = []() -> aio::task<> {
        pipe_ends p = make_pipe();
        auto [unused, writer] = aio::detail::make_stream(std::move(p.write_end), aio::detail::stream_transport::default_limit);
        REQUIRE(writer.can_write_eof());
        const std::string data = pattern(1 << 20);  // the kernel holds 64 KiB: the rest queues
        writer.write(data);
        REQUIRE(writer.get_write_buffer_size() > 0);
        writer.write_eof();
        std::string got;
        char buffer[65536];
        for (;;) {
            const ssize_t n = ::read(p.read_end.fd(), buffer, sizeof buffer);
            if (n == 0) break;
            if (n > 0) got.append(buffer, static_cast<std::size_t>(n));
            else co_await aio::wait_for(aio::wait_readable(p.read_end.fd()), 2s);
        }
        REQUIRE(got == data);
        co_await aio::wait_for(writer.wait_closed(), 2s);
        REQUIRE(writer.is_closing());
    };
    run_checked(body);
}

TEST_CASE("writing to a pipe whose reader has gone fails drain with broken_pipe_error, and no SIGPIPE ends the process") {
    REQUIRE(::signal(SIGPIPE, SIG_DFL) != SIG_ERR);  // a SIGPIPE would end the test program
    auto body = []() -> aio::task<> {
        pipe_ends p = make_pipe();
        auto [unused, writer] = aio::detail::make_stream(std::move(p.write_end), aio::detail::stream_transport::default_limit);
        p.read_end.close();
        writer.write(pattern(100));
        const bool broken = co_await expect_throws<aio::broken_pipe_error>(writer.drain());
        REQUIRE(broken);
        writer.write("dropped");  // asyncio drops writes after the loss
        co_await aio::wait_for(writer.wait_closed(), 2s);
    };
    run_checked(body);
    sigset_t pending;
    REQUIRE(::sigpending(&pending) == 0);
    REQUIRE_FALSE(sigismember(&pending, SIGPIPE));
}

TEST_CASE("a pipe's write end closes quietly when its reader closes with nothing queued") {
    auto body = []() -> aio::task<> {
        pipe_ends p = make_pipe();
        auto [unused, writer] = aio::detail::make_stream(std::move(p.write_end), aio::detail::stream_transport::default_limit);
        writer.write("taken");
        p.read_end.close();
        co_await aio::wait_for(writer.wait_closed(), 2s);
        REQUIRE(writer.is_closing());
        const bool lost = co_await expect_throws<aio::connection_reset_error>(writer.drain());  // "Connection lost"
        REQUIRE(lost);
    };
    run_checked(body);
}
