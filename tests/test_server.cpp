// Servers (include/aio/net/server.hpp): CPython's Lib/test/test_asyncio/test_server.py
// (3.13) ported, with test_events.py's create_server tests of SO_REUSEPORT, an address
// in use and a dual-stack wildcard; then what aio promises beyond them: serve_forever
// closing the server when cancelled, a failing handler reported while the server goes
// on, two hundred clients at once, and running out of descriptors at accept.
//
// Clients are aio streams, or a thread with blocking calls where CPython's test uses
// one. Every test runs on a fresh loop, bounded in time, and counts the process's
// descriptors before and after; every connection is on loopback. No co_await appears
// inside a REQUIRE: Catch2 repeats the expression in a short-circuited condition, and
// g++ 12 evaluates an await there all the same — each is awaited into a local first.
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event.hpp>
#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
#include <aio/gather.hpp>
#include <aio/net/server.hpp>
#include <aio/net/socket.hpp>
#include <aio/net/socket_address.hpp>
#include <aio/net/stream_reader.hpp>
#include <aio/net/stream_writer.hpp>
#include <aio/net/streams.hpp>
#include <aio/os_error.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/wait_for.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/descriptors.hpp"
#include "support/handlers.hpp"
#include "support/net_run.hpp"
#include "support/threads.hpp"

using namespace std::chrono_literals;
using aio_test::expect_throws;
using aio_test::thrown_what;

using aio_test::open_descriptors;
using aio_test::reports;
using aio_test::run_checked;

namespace {

// The exceptions of `reports` (support/net_run.hpp) are looked into only after the
// test (errno_of, what_of): under RLIMIT_NOFILE, UBSan's check of a polymorphic call
// needs a descriptor it cannot get.

// The errno of an aio::os_error, 0 for anything else.
int errno_of(const std::exception_ptr& e) {
    try {
        if (e) std::rethrow_exception(e);
    } catch (const aio::os_error& error) {
        return error.error_number();
    } catch (...) {
    }
    return 0;
}

std::string what_of(const std::exception_ptr& e) {
    try {
        if (e) std::rethrow_exception(e);
    } catch (const std::exception& error) {
        return error.what();
    } catch (...) {
    }
    return {};
}

std::uint16_t port_of(const aio::server& s) { return s.sockets().at(0).port(); }

// --- handlers

// CPython's serve in TestServer2: read to EOF, then close.
aio::task<> read_then_close(aio::stream_reader r, aio::stream_writer w) {
    try {
        (void)co_await r.read();
    } catch (const std::exception&) {
    }
    w.close();
    co_await w.wait_closed();
}

// Echoes one line, then closes.
aio::task<> echo_line(aio::stream_reader r, aio::stream_writer w) {
    try {
        const std::string line = co_await r.readline();
        w.write(line);
        co_await w.drain();
    } catch (const std::exception&) {
    }
    w.close();
    co_await w.wait_closed();
}

// A client of echo_line: sends `line`, gives back what came back.
aio::task<std::string> echo_client(std::string host, std::uint16_t port, std::string line) {
    aio::stream_pair s = co_await aio::open_connection(host, port);
    s.second.write(line);
    std::string back = co_await aio::wait_for(s.first.readline(), 5s);
    s.second.close();
    co_await aio::wait_for(s.second.wait_closed(), 5s);
    co_return back;
}

// --- blocking clients, on a thread

aio::socket blocking_socket(int family) {
    const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket()");
    return aio::socket::own(fd);
}

bool send_all_blocking(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// CPython's client in BaseStartServer: connect, send `hello`, receive one byte. Every
// call gives up after two seconds; `got` is the byte, if one came.
void hello_client(const aio::socket_address& to, const std::string& hello, std::optional<char>& got) {
    aio::socket s = blocking_socket(to.family());
    const timeval two{2, 0};
    ::setsockopt(s.fd(), SOL_SOCKET, SO_RCVTIMEO, &two, sizeof two);
    ::setsockopt(s.fd(), SOL_SOCKET, SO_SNDTIMEO, &two, sizeof two);
    if (::connect(s.fd(), to.data(), to.size()) < 0) return;
    if (!send_all_blocking(s.fd(), hello)) return;
    char c = 0;
    if (::recv(s.fd(), &c, 1, MSG_WAITALL) == 1) got = c;
}

// A directory made for one test, removed with what is in it.
class temp_dir {
public:
    temp_dir() {
        char name[] = "/tmp/aio_test_server_XXXXXX";
        if (!::mkdtemp(name)) throw std::system_error(errno, std::generic_category(), "mkdtemp()");
        path_ = name;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

private:
    std::string path_;
};

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// Opens a gate when it goes, so that a thread waiting at it is never left there.
struct opens_on_exit {
    aio_test::gate& g;
    ~opens_on_exit() { g.open(); }
};

}  // namespace

// ===== test_server.py

TEST_CASE("a server started with start_serving=false serves from serve_forever, which its handler cancels, leaving the server closed") {
    reports seen;
    const std::string hello = std::string(5 * 1024, '1') + "\n";
    std::optional<char> client_got;
    bool main_cancelled = false;
    auto body = [&]() -> aio::task<> {
        seen.listen();
        aio::task_handle<void> main_task;
        auto serve = [&](aio::stream_reader r, aio::stream_writer w) -> aio::task<> {
            (void)co_await r.readline();
            main_task.cancel();
            w.write("1");
            w.close();
            co_await w.wait_closed();
        };
        aio::server_options options;
        options.start_serving = false;
        aio::server srv = co_await aio::start_server(serve, "127.0.0.1", 0, options);
        REQUIRE_FALSE(srv.is_serving());
        const aio::socket_address address = srv.sockets().at(0);
        auto main_body = [&]() -> aio::task<> { co_await srv.serve_forever(); };
        main_task = aio::create_task(main_body());
        std::atomic<bool> client_done{false};
        std::jthread client([&] {
            hello_client(address, hello, client_got);
            client_done = true;
        });
        main_cancelled = co_await expect_throws<aio::cancelled_error>(aio::wait_for(main_task, 5s));
        for (int i = 0; i < 500 && !client_done; ++i) co_await aio::sleep(10ms);
        REQUIRE(srv.sockets().empty());
        REQUIRE_FALSE(srv.is_serving());
        const std::optional<std::string> what = co_await thrown_what<aio::runtime_error>(srv.serve_forever());
        REQUIRE(what.has_value());
        REQUIRE(what->find("is closed") != std::string::npos);
    };
    run_checked(body);
    REQUIRE(main_cancelled);
    REQUIRE(client_got == '1');
    REQUIRE(seen.messages.empty());
}

TEST_CASE("a Unix server serves once start_serving is called, and serve_forever, cancelled by its handler, leaves it closed") {
    reports seen;
    temp_dir dir;
    const std::string path = dir.file("server.sock");
    const std::string hello = std::string(5 * 1024, '1') + "\n";
    std::optional<char> client_got;
    bool main_cancelled = false;
    aio_test::gate started;
    auto body = [&]() -> aio::task<> {
        seen.listen();
        opens_on_exit let_client_go{started};
        aio::task_handle<void> main_task;
        auto serve = [&](aio::stream_reader r, aio::stream_writer w) -> aio::task<> {
            (void)co_await r.readline();
            main_task.cancel();
            w.write("1");
            w.close();
            co_await w.wait_closed();
        };
        aio::server_options options;
        options.start_serving = false;
        aio::server srv = co_await aio::start_unix_server(serve, path, options);
        auto main_body = [&]() -> aio::task<> {
            REQUIRE_FALSE(srv.is_serving());
            srv.start_serving();
            REQUIRE(srv.is_serving());
            started.open();
            co_await srv.serve_forever();
        };
        main_task = aio::create_task(main_body());
        std::atomic<bool> client_done{false};
        std::jthread client([&] {
            started.wait();
            hello_client(aio::socket_address::unix_path(path), hello, client_got);
            client_done = true;
        });
        main_cancelled = co_await expect_throws<aio::cancelled_error>(aio::wait_for(main_task, 5s));
        for (int i = 0; i < 500 && !client_done; ++i) co_await aio::sleep(10ms);
        REQUIRE(srv.sockets().empty());
        REQUIRE_FALSE(srv.is_serving());
        REQUIRE_FALSE(exists(path));
        const std::optional<std::string> what = co_await thrown_what<aio::runtime_error>(srv.serve_forever());
        REQUIRE(what.has_value());
        REQUIRE(what->find("is closed") != std::string::npos);
    };
    run_checked(body);
    REQUIRE(main_cancelled);
    REQUIRE(client_got == '1');
    REQUIRE(seen.messages.empty());
}

TEST_CASE("wait_closed waits until the server is closed and its last connection has ended") {
    auto body = []() -> aio::task<> {
        aio::server srv = co_await aio::start_server(read_then_close, "127.0.0.1", 0);
        // No connection, not closed: it waits.
        auto task1 = aio::create_task(srv.wait_closed());
        co_await aio::sleep(0s);
        REQUIRE_FALSE(task1.done());
        // A connection, not closed: it waits.
        aio::stream_pair s = co_await aio::open_connection("127.0.0.1", port_of(srv));
        auto task2 = aio::create_task(srv.wait_closed());
        co_await aio::sleep(0s);
        REQUIRE_FALSE(task1.done());
        REQUIRE_FALSE(task2.done());
        // A connection, closed: it waits.
        srv.close();
        co_await aio::sleep(0s);
        auto task3 = aio::create_task(srv.wait_closed());
        co_await aio::sleep(0s);
        REQUIRE_FALSE(task1.done());
        REQUIRE_FALSE(task2.done());
        REQUIRE_FALSE(task3.done());
        // No connection, closed: they return.
        s.second.close();
        co_await aio::wait_for(s.second.wait_closed(), 2s);
        co_await aio::wait_for(task1, 2s);
        co_await aio::wait_for(task2, 2s);
        co_await aio::wait_for(task3, 2s);
        auto at_once = aio::create_task(srv.wait_closed());
        co_await aio::sleep(0s);
        REQUIRE(at_once.done());
    };
    run_checked(body);
}

TEST_CASE("wait_closed returns when the server and its last connection close in the same iteration") {
    auto body = []() -> aio::task<> {
        aio::server srv = co_await aio::start_server(read_then_close, "127.0.0.1", 0);
        auto waiting = aio::create_task(srv.wait_closed());
        co_await aio::sleep(0s);
        REQUIRE_FALSE(waiting.done());
        aio::stream_pair s = co_await aio::open_connection("127.0.0.1", port_of(srv));
        auto& loop = aio::get_running_loop();
        (void)loop.call_soon([&] { srv.close(); });
        (void)loop.call_soon([&] { s.second.close(); });
        co_await aio::wait_for(srv.wait_closed(), 2s);
        co_await aio::wait_for(waiting, 2s);
    };
    run_checked(body);
}

TEST_CASE("close_clients closes every connection, and wait_closed returns") {
    auto body = []() -> aio::task<> {
        aio::server srv = co_await aio::start_server(read_then_close, "127.0.0.1", 0);
        aio::stream_pair s = co_await aio::open_connection("127.0.0.1", port_of(srv));
        auto waiting = aio::create_task(srv.wait_closed());
        co_await aio::sleep(0s);
        REQUIRE_FALSE(waiting.done());
        srv.close();
        srv.close_clients();
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        REQUIRE(waiting.done());
        const std::string got = co_await aio::wait_for(s.first.read(), 2s);  // the server's side closed
        REQUIRE(got == "");
        s.second.close();
    };
    run_checked(body);
}

TEST_CASE("abort_clients drops connections with output still queued, and wait_closed returns") {
    auto body = []() -> aio::task<> {
        struct slot {
            aio::stream_reader reader;
            aio::stream_writer writer;
            aio::event arrived;
        };
        auto server_side = std::make_shared<slot>();
        auto serve = [server_side](aio::stream_reader r, aio::stream_writer w) -> aio::task<> {
            server_side->reader = r;
            server_side->writer = w;
            server_side->arrived.set();
            co_await w.wait_closed();
        };
        aio::server srv = co_await aio::start_server(serve, "127.0.0.1", 0);
        aio::connection_options small;
        small.limit = 4096;
        aio::stream_pair c = co_await aio::open_connection("127.0.0.1", port_of(srv), small);
        co_await aio::wait_for(server_side->arrived.wait(), 2s);
        const aio::stream_writer& s_wr = server_side->writer;

        // Small socket buffers, to fill them reliably.
        const int s_sock = std::any_cast<int>(s_wr.get_extra_info("socket"));
        const int c_sock = std::any_cast<int>(c.second.get_extra_info("socket"));
        const int size = 65536;
        REQUIRE(::setsockopt(s_sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
        REQUIRE(::setsockopt(c_sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) == 0);

        // The client's reading pauses: more than twice its limit arrives.
        s_wr.write(std::string(4096, 'a'));
        s_wr.write(std::string(4096, 'a'));
        s_wr.write(std::string(4096, 'a'));
        co_await aio::sleep(10ms);

        // The server's writer queues once the kernel takes no more.
        int c_bufsize = 0, s_bufsize = 0;
        socklen_t length = sizeof c_bufsize;
        REQUIRE(::getsockopt(c_sock, SOL_SOCKET, SO_RCVBUF, &c_bufsize, &length) == 0);
        length = sizeof s_bufsize;
        REQUIRE(::getsockopt(s_sock, SOL_SOCKET, SO_SNDBUF, &s_bufsize, &length) == 0);
        for (int i = 0; i < 10; ++i) {
            s_wr.write(std::string(static_cast<std::size_t>(c_bufsize), 'a'));
            s_wr.write(std::string(static_cast<std::size_t>(s_bufsize), 'a'));
            if (s_wr.get_write_buffer_size() > 0) break;
        }
        REQUIRE(s_wr.get_write_buffer_size() != 0);

        auto waiting = aio::create_task(srv.wait_closed());
        co_await aio::sleep(0s);
        REQUIRE_FALSE(waiting.done());
        srv.close();
        srv.abort_clients();
        co_await aio::sleep(0s);
        co_await aio::sleep(0s);
        REQUIRE(waiting.done());
        REQUIRE(s_wr.is_closing());
        REQUIRE(s_wr.get_write_buffer_size() == 0);  // what was queued is dropped
        c.second.close();
    };
    run_checked(body);
}

TEST_CASE("a Unix server removes its socket file when it closes") {
    temp_dir dir;
    const std::string path = dir.file("cleanup.sock");
    auto body = [&]() -> aio::task<> {
        aio::server srv = co_await aio::start_unix_server(read_then_close, path);
        REQUIRE(exists(path));
        srv.close();
        REQUIRE_FALSE(exists(path));
    };
    run_checked(body);
}

TEST_CASE("a Unix server whose socket file someone else removed closes without complaint") {
    reports seen;
    temp_dir dir;
    const std::string path = dir.file("gone.sock");
    auto body = [&]() -> aio::task<> {
        seen.listen();
        aio::server srv = co_await aio::start_unix_server(read_then_close, path);
        REQUIRE(::unlink(path.c_str()) == 0);
        srv.close();
        co_await aio::wait_for(srv.wait_closed(), 2s);
    };
    run_checked(body);
    REQUIRE(seen.messages.empty());
}

TEST_CASE("a Unix server leaves alone a socket file that replaced its own") {
    temp_dir dir;
    const std::string path = dir.file("replaced.sock");
    auto body = [&]() -> aio::task<> {
        aio::server srv = co_await aio::start_unix_server(read_then_close, path);
        REQUIRE(::unlink(path.c_str()) == 0);
        aio::socket other(AF_UNIX, SOCK_STREAM);
        other.bind(aio::socket_address::unix_path(path));
        srv.close();
        REQUIRE(exists(path));
        co_return;
    };
    run_checked(body);
}

TEST_CASE("start_unix_server replaces a stale socket file left at its path") {
    temp_dir dir;
    const std::string path = dir.file("stale.sock");
    {
        aio::socket stale(AF_UNIX, SOCK_STREAM);
        stale.bind(aio::socket_address::unix_path(path));
    }  // closed, its file left behind
    REQUIRE(exists(path));
    auto body = [&]() -> aio::task<> {
        aio::server srv = co_await aio::start_unix_server(echo_line, path);
        aio::stream_pair s = co_await aio::open_unix_connection(path);
        s.second.write("hi\n");
        const std::string back = co_await aio::wait_for(s.first.readline(), 2s);
        REQUIRE(back == "hi\n");
        s.second.close();
        co_await aio::wait_for(s.second.wait_closed(), 2s);
        srv.close();
        co_await aio::wait_for(srv.wait_closed(), 2s);
    };
    run_checked(body);
}

// ===== test_events.py: create_server

TEST_CASE("reuse_port sets SO_REUSEPORT, and two servers with it share one port") {
    auto body = []() -> aio::task<> {
        aio::server plain = co_await aio::start_server(echo_line, "127.0.0.1", 0);
        {
            int value = -1;
            socklen_t length = sizeof value;
            REQUIRE(::getsockopt(plain.descriptors().at(0), SOL_SOCKET, SO_REUSEPORT, &value, &length) == 0);
            REQUIRE(value == 0);
        }
        aio::server_options options;
        options.reuse_port = true;
        aio::server first = co_await aio::start_server(echo_line, "127.0.0.1", 0, options);
        {
            int value = 0;
            socklen_t length = sizeof value;
            REQUIRE(::getsockopt(first.descriptors().at(0), SOL_SOCKET, SO_REUSEPORT, &value, &length) == 0);
            REQUIRE(value != 0);
        }
        const std::uint16_t port = port_of(first);
        aio::server second = co_await aio::start_server(echo_line, "127.0.0.1", port, options);
        REQUIRE(port_of(second) == port);
        for (int i = 0; i < 8; ++i) {
            const std::string line = "line " + std::to_string(i) + "\n";
            const std::string back = co_await echo_client("127.0.0.1", port, line);
            REQUIRE(back == line);
        }
        plain.close();
        first.close();
        second.close();
        co_await aio::wait_for(plain.wait_closed(), 2s);
        co_await aio::wait_for(first.wait_closed(), 2s);
        co_await aio::wait_for(second.wait_closed(), 2s);
    };
    run_checked(body);
}

TEST_CASE("start_server on an address in use throws aio::os_error with EADDRINUSE, naming the address") {
    auto body = []() -> aio::task<> {
        aio::server srv = co_await aio::start_server(echo_line, "127.0.0.1", 0);
        const std::uint16_t port = port_of(srv);
        int err = 0;
        std::string what;
        try {
            (void)co_await aio::start_server(echo_line, "127.0.0.1", port);
        } catch (const aio::os_error& e) {
            err = e.error_number();
            what = e.what();
        }
        REQUIRE(err == EADDRINUSE);
        REQUIRE(what.find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
        srv.close();
    };
    run_checked(body);
}

TEST_CASE("start_server on host \"\" listens on both 0.0.0.0 and :: and serves over IPv4 and IPv6") {
    {
        aio::socket probe(AF_INET6, SOCK_STREAM);
        if (::bind(probe.fd(), aio::socket_address::ip("::1", 0).data(), aio::socket_address::ip("::1", 0).size()) < 0) {
            WARN("IPv6 is not available here (cannot bind ::1): skipped");
            return;
        }
    }
    std::set<int> families;
    int v6only = -1;
    std::string v4_back, v6_back;
    auto body = [&]() -> aio::task<> {
        std::optional<aio::server> srv;
        std::uint16_t port = 0;
        for (int attempt = 0; attempt < 5 && !srv; ++attempt) {
            {  // a port free on both families, now
                aio::socket finder(AF_INET6, SOCK_STREAM);
                finder.set_option(IPPROTO_IPV6, IPV6_V6ONLY, 0);
                finder.bind(aio::socket_address::ip("::", 0));
                port = finder.local_address().port();
            }
            try {
                srv.emplace(co_await aio::start_server(echo_line, "", port));
            } catch (const aio::os_error& e) {
                if (e.error_number() != EADDRINUSE) throw;
            }
        }
        REQUIRE(srv.has_value());
        for (const aio::socket_address& a : srv->sockets()) {
            families.insert(a.family());
            REQUIRE(a.port() == port);
        }
        const std::vector<aio::socket_address> addresses = srv->sockets();
        const std::vector<int> fds = srv->descriptors();
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (addresses[i].family() != AF_INET6) continue;
            socklen_t length = sizeof v6only;
            REQUIRE(::getsockopt(fds[i], IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &length) == 0);
        }
        v4_back = co_await echo_client("127.0.0.1", port, "over IPv4\n");
        v6_back = co_await echo_client("::1", port, "over IPv6\n");
        srv->close();
        co_await aio::wait_for(srv->wait_closed(), 2s);
    };
    run_checked(body);
    REQUIRE(families == std::set<int>{AF_INET, AF_INET6});
    REQUIRE(v6only == 1);  // each family its own socket
    REQUIRE(v4_back == "over IPv4\n");
    REQUIRE(v6_back == "over IPv6\n");
}

// ===== beyond CPython's tests

TEST_CASE("serve_forever ends cancelled when its task is cancelled, and closes the server") {
    auto body = []() -> aio::task<> {
        aio::server srv = co_await aio::start_server(echo_line, "127.0.0.1", 0);
        const std::uint16_t port = port_of(srv);
        auto serving = aio::create_task(srv.serve_forever());
        co_await aio::sleep(1ms);
        REQUIRE_FALSE(serving.done());
        REQUIRE(srv.is_serving());
        const std::string back = co_await echo_client("127.0.0.1", port, "still here\n");
        REQUIRE(back == "still here\n");
        serving.cancel();
        const bool cancelled = co_await expect_throws<aio::cancelled_error>(aio::wait_for(serving, 2s));
        REQUIRE(cancelled);
        REQUIRE(serving.cancelled());
        REQUIRE_FALSE(srv.is_serving());
        REQUIRE(srv.sockets().empty());
        const bool refused = co_await expect_throws<aio::connection_refused_error>(aio::open_connection("127.0.0.1", port));
        REQUIRE(refused);
        co_await aio::wait_for(srv.wait_closed(), 2s);
    };
    run_checked(body);
}

TEST_CASE("an exception escaping the handler is reported as \"Unhandled exception in client_connected_cb\", and the server keeps serving") {
    reports seen;
    int calls = 0;
    std::string first_got = "unset", second_got;
    auto body = [&]() -> aio::task<> {
        seen.listen();
        auto handler = [&](aio::stream_reader r, aio::stream_writer w) -> aio::task<> {
            if (++calls == 1) throw std::runtime_error("boom");
            co_await echo_line(std::move(r), std::move(w));
        };
        aio::server srv = co_await aio::start_server(handler, "127.0.0.1", 0);
        {
            aio::stream_pair s = co_await aio::open_connection("127.0.0.1", port_of(srv));
            first_got = co_await aio::wait_for(s.first.read(), 2s);  // the failed handler's stream closed
            s.second.close();
            co_await aio::wait_for(s.second.wait_closed(), 2s);
        }
        second_got = co_await echo_client("127.0.0.1", port_of(srv), "again\n");
        srv.close();
        co_await aio::wait_for(srv.wait_closed(), 2s);
    };
    run_checked(body);
    REQUIRE(calls == 2);
    REQUIRE(first_got == "");
    REQUIRE(second_got == "again\n");
    REQUIRE(seen.messages == std::vector<std::string>{"Unhandled exception in client_connected_cb"});
    REQUIRE(seen.errors.size() == 1);
    REQUIRE(what_of(seen.errors[0]) == "boom");
}

TEST_CASE("200 clients at once each get their own line echoed") {
    constexpr int clients = 200;
    std::vector<std::string> backs;
    reports seen;
    auto body = [&]() -> aio::task<> {
        seen.listen();
        aio::server srv = co_await aio::start_server(echo_line, "127.0.0.1", 0);
        std::vector<aio::task<std::string>> all;
        for (int i = 0; i < clients; ++i) all.push_back(echo_client("127.0.0.1", port_of(srv), "client " + std::to_string(i) + "\n"));
        backs = co_await aio::gather(std::move(all));
        srv.close();
        co_await aio::wait_for(srv.wait_closed(), 5s);
    };
    run_checked(body, 20s);
    REQUIRE(backs.size() == static_cast<std::size_t>(clients));
    for (int i = 0; i < clients; ++i) REQUIRE(backs[static_cast<std::size_t>(i)] == "client " + std::to_string(i) + "\n");
    REQUIRE(seen.messages.empty());
}

TEST_CASE("start_server refuses a limit of 0 and an empty handler with std::invalid_argument") {
    auto body = []() -> aio::task<> {
        aio::server_options options;
        options.limit = 0;
        std::optional<std::string> what = co_await thrown_what<std::invalid_argument>(aio::start_server(echo_line, "127.0.0.1", 0, options));
        REQUIRE(what == "Limit cannot be <= 0");
        what = co_await thrown_what<std::invalid_argument>(aio::start_unix_server(echo_line, "/tmp/never-bound.sock", options));
        REQUIRE(what == "Limit cannot be <= 0");
        const aio::client_connected_handler empty;
        what = co_await thrown_what<std::invalid_argument>(aio::start_server(empty, "127.0.0.1", 0));
        REQUIRE(what.has_value());
    };
    run_checked(body);
}

TEST_CASE("start_server on a socket the caller bound listens on it, serves, and closes it with the server") {
    auto body = []() -> aio::task<> {
        aio::socket mine(AF_INET, SOCK_STREAM);
        mine.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
        mine.bind(aio::socket_address::ip("127.0.0.1", 0));
        const aio::socket_address where = mine.local_address();
        const int fd = mine.fd();
        aio::server srv = co_await aio::start_server(echo_line, std::move(mine));
        REQUIRE(srv.is_serving());
        REQUIRE(srv.sockets() == std::vector<aio::socket_address>{where});
        const std::string back = co_await echo_client("127.0.0.1", where.port(), "mine\n");
        REQUIRE(back == "mine\n");
        srv.close();
        co_await aio::wait_for(srv.wait_closed(), 2s);
        REQUIRE(::fcntl(fd, F_GETFD) == -1);  // the server closed it
    };
    run_checked(body);
}

TEST_CASE("start_server on a Unix socket the caller bound serves over it") {
    temp_dir dir;
    const std::string path = dir.file("mine.sock");
    auto body = [&]() -> aio::task<> {
        aio::socket mine(AF_UNIX, SOCK_STREAM);
        mine.bind(aio::socket_address::unix_path(path));
        aio::server srv = co_await aio::start_server(echo_line, std::move(mine), {.start_serving = false});
        REQUIRE_FALSE(srv.is_serving());
        srv.start_serving();
        aio::stream_pair s = co_await aio::open_unix_connection(path);
        s.second.write("over unix\n");
        const std::string back = co_await aio::wait_for(s.first.readline(), 2s);
        REQUIRE(back == "over unix\n");
        s.second.close();
        co_await aio::wait_for(s.second.wait_closed(), 2s);
        srv.close();
        co_await aio::wait_for(srv.wait_closed(), 2s);
    };
    run_checked(body);
}

TEST_CASE("start_server refuses a closed socket and one that is not SOCK_STREAM with std::invalid_argument") {
    auto body = []() -> aio::task<> {
        std::optional<std::string> what = co_await thrown_what<std::invalid_argument>(aio::start_server(echo_line, aio::socket{}));
        REQUIRE(what == "aio::start_server: the socket is closed");
        aio::socket datagram(AF_INET, SOCK_DGRAM);
        what = co_await thrown_what<std::invalid_argument>(aio::start_server(echo_line, std::move(datagram)));
        REQUIRE(what == "aio::start_server: a SOCK_STREAM socket is required");
        aio::socket stream(AF_INET, SOCK_STREAM);
        aio::server_options options;
        options.limit = 0;
        what = co_await thrown_what<std::invalid_argument>(aio::start_server(echo_line, std::move(stream), options));
        REQUIRE(what == "Limit cannot be <= 0");
    };
    run_checked(body);
}

namespace {

// The child's side of the test below: 0 when the server reported EMFILE at accept and
// then accepted every connection once descriptors were freed; otherwise the number of
// the step that went wrong. Not Catch2: this runs in a forked process.
int accept_through_emfile() {
    constexpr std::size_t clients = 8;
    constexpr rlim_t headroom = 3;  // descriptors the server may still open
    int failed_step = 0;
    reports seen;
    auto body = [&]() -> aio::task<> {
        seen.listen();
        std::size_t accepted = 0, ended = 0;
        auto handler = [&](aio::stream_reader r, aio::stream_writer w) -> aio::task<> {
            ++accepted;
            try {
                (void)co_await r.read();  // until its client goes
            } catch (const std::exception&) {
            }
            w.close();
            co_await w.wait_closed();
            ++ended;
        };
        aio::server srv = co_await aio::start_server(handler, "127.0.0.1", 0);
        const aio::socket_address to = srv.sockets().at(0);
        // The clients' sockets come first; then the process may open only a few more.
        std::vector<aio::socket> socks;
        for (std::size_t i = 0; i < clients; ++i) socks.push_back(blocking_socket(AF_INET));
        int highest = 0;
        for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
            highest = std::max(highest, std::atoi(e.path().filename().c_str()));
        // UBSan checks a polymorphic call against a cache of the types it has seen, and
        // on a miss needs a descriptor to probe memory: the calls that making and
        // reporting the EMFILE error will make are made once now, while one is free.
        try {
            aio::detail::throw_os_error(EMFILE, "warming the sanitizer's type cache");
        } catch (const aio::os_error& e) {
            if (e.error_number() != EMFILE || std::string(e.what()).empty()) failed_step = 13;
        }
        rlimit limit{};
        ::getrlimit(RLIMIT_NOFILE, &limit);
        const rlimit saved = limit;
        limit.rlim_cur = static_cast<rlim_t>(highest) + 1 + headroom;
        if (::setrlimit(RLIMIT_NOFILE, &limit) < 0) {
            failed_step = 1;
            co_return;
        }
        // Numbers below the highest may be free too: fill every one, then free exactly
        // `headroom` of them.
        std::vector<int> fillers;
        for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
        if (errno != EMFILE || fillers.size() < headroom) {
            failed_step = 11;
            co_return;
        }
        for (rlim_t i = 0; i < headroom; ++i) {
            ::close(fillers.back());
            fillers.pop_back();
        }
        // Connecting needs no new descriptor; the kernel queues what the server does
        // not accept.
        for (aio::socket& s : socks)
            if (::connect(s.fd(), to.data(), to.size()) < 0) {
                failed_step = 2;
                co_return;
            }
        std::size_t reports_seen = 0, closed = 0;
        for (int round = 0; round < 10 && accepted < clients; ++round) {
            // Until every connection is in, or accept fails again.
            for (int i = 0; i < 400 && accepted < clients && seen.messages.size() == reports_seen; ++i) co_await aio::sleep(5ms);
            if (seen.messages.size() > reports_seen) {
                for (std::size_t k = reports_seen; k < seen.messages.size(); ++k)
                    if (seen.messages[k] != "Error on a listening socket of aio::server") {
                        failed_step = 3;
                        co_return;
                    }
                reports_seen = seen.messages.size();
                if (srv.is_serving()) {  // it stops accepting for a while
                    failed_step = 4;
                    co_return;
                }
            } else if (accepted < clients) {
                failed_step = 5;  // neither a connection nor a report
                co_return;
            }
            // Free the descriptors of the connections accepted so far: accept takes
            // them in the order they connected.
            for (; closed < accepted; ++closed) socks[closed].close();
            for (int i = 0; i < 400 && ended < closed; ++i) co_await aio::sleep(5ms);
            if (ended < closed) {
                failed_step = 7;
                co_return;
            }
        }
        if (accepted < clients) {  // ten rounds, and still not all in
            failed_step = 6;
            co_return;
        }
        if (reports_seen == 0) {  // the limit was never reached
            failed_step = 8;
            co_return;
        }
        if (!srv.is_serving()) {
            failed_step = 9;
            co_return;
        }
        for (; closed < clients; ++closed) socks[closed].close();
        for (int i = 0; i < 400 && ended < clients; ++i) co_await aio::sleep(5ms);
        for (int fd : fillers) ::close(fd);
        ::setrlimit(RLIMIT_NOFILE, &saved);
        for (const std::exception_ptr& e : seen.errors)
            if (errno_of(e) != EMFILE) failed_step = 12;
        srv.close();
        co_await aio::wait_for(srv.wait_closed(), 2s);
        if (ended != clients) failed_step = 10;
    };
    try {
        aio_test::run_bounded(body, 20s);
    } catch (...) {
        return 20;
    }
    return failed_step;
}

}  // namespace

TEST_CASE("out of descriptors at accept, the server reports EMFILE through the exception handler and accepts again once descriptors are freed") {
    const std::size_t before = open_descriptors();
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::alarm(30);  // a child that hangs is killed
        ::_exit(accept_through_emfile());
    }
    int status = 0;
    pid_t waited;
    do {
        waited = ::waitpid(child, &status, 0);
    } while (waited < 0 && errno == EINTR);
    REQUIRE(waited == child);
    INFO("the child's status: " << status);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    REQUIRE(open_descriptors() == before);
}
