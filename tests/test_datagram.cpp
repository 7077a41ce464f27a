// Datagrams: event_loop's sock_recvfrom / sock_recvfrom_into / sock_sendto (CPython's
// test_sock_lowlevel.py test_recvfrom, test_recvfrom_into, test_sendto_blocking, 3.13,
// ported) and aio::create_datagram_endpoint (include/aio/net/datagram.hpp): UDP over
// IPv4 and IPv6 and Unix datagram sockets, connected and not, asyncio's error_received
// as an exception at the next receive, buffered sends and drain(), the socket options,
// closing, cancel safety, and a 100,000-datagram flow counted whole at the receiver.
//
// CPython's run_udp_echo_server is a thread here (a blocking socket echoing until
// "STOP"). Every test counts the process's descriptors before and after (run_checked)
// and every wait is bounded.
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/net/datagram.hpp>
#include <aio/net/socket.hpp>
#include <aio/net/socket_address.hpp>
#include <aio/os_error.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/wait_for.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <any>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
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
#include "support/steps.hpp"

using namespace std::chrono_literals;
using aio_test::expect_throws;
using aio_test::run_checked;

namespace {

aio::socket_address loopback(std::uint16_t port = 0) { return aio::socket_address::ip("127.0.0.1", port); }

bool ipv6_available() {
    const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const aio::socket_address any = aio::socket_address::ip("::1", 0);
    const bool ok = ::bind(fd, any.data(), any.size()) == 0;
    ::close(fd);
    return ok;
}

// CPython's run_udp_echo_server: a thread with a blocking UDP socket that sends every
// datagram back to its sender until one says "STOP" (each wait bounded: 10 s).
class udp_echo_server {
public:
    udp_echo_server() {
        const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket()");
        sock_ = aio::socket::own(fd);
        sock_.bind(loopback());
        address_ = sock_.local_address();
        thread_ = std::thread([this] { serve(); });
    }
    ~udp_echo_server() {
        ::sendto(sock_.fd(), "STOP", 4, 0, address_.data(), address_.size());
        thread_.join();
    }
    const aio::socket_address& address() const { return address_; }

private:
    void serve() {
        std::vector<char> buffer(65536);
        for (;;) {
            pollfd p{sock_.fd(), POLLIN, 0};
            if (::poll(&p, 1, 10000) <= 0) return;
            aio::socket_address from;
            socklen_t length = aio::socket_address::capacity();
            const ssize_t n = ::recvfrom(sock_.fd(), buffer.data(), buffer.size(), 0, from.data(), &length);
            if (n < 0) return;
            from.resize(length);
            if (std::string_view(buffer.data(), static_cast<std::size_t>(n)) == "STOP") return;
            ::sendto(sock_.fd(), buffer.data(), static_cast<std::size_t>(n), 0, from.data(), from.size());
        }
    }
    aio::socket sock_;
    aio::socket_address address_;
    std::thread thread_;
};

// A Linux abstract Unix address, unique to this process and `name`.
aio::socket_address abstract_address(const std::string& name) {
    return aio::socket_address::unix_path(std::string(1, '\0') + "aio-test-datagram-" + std::to_string(::getpid()) + "-" + name);
}

// A port on 127.0.0.1 with nothing listening: bound, then closed.
std::uint16_t closed_udp_port() {
    aio::socket s(AF_INET, SOCK_DGRAM);
    s.bind(loopback());
    return s.local_address().port();
}

// Receives with a bound: a test that would hang fails instead.
aio::task<std::pair<std::string, aio::socket_address>> receive(const aio::datagram_endpoint& e) {
    co_return co_await aio::wait_for(e.recvfrom(), 5s);
}

}  // namespace

// --- the low-level calls: CPython's test_sock_lowlevel ports

TEST_CASE("sock_sendto and sock_recvfrom exchange a datagram with a UDP echo server (CPython's test_recvfrom)") {
    udp_echo_server server;
    auto body = [&]() -> aio::task<> {
        auto& loop = aio::get_running_loop();
        aio::socket sock(AF_INET, SOCK_DGRAM);
        const std::string data(4096, '\x01');
        const std::size_t sent = co_await loop.sock_sendto(sock.fd(), data, server.address());
        REQUIRE(sent == data.size());
        auto [received, from] = co_await loop.sock_recvfrom(sock.fd(), 4096);
        REQUIRE(received == data);
        REQUIRE(from == server.address());
    };
    run_checked(body);
}

TEST_CASE("sock_recvfrom_into fills the buffer, or its first nbytes (CPython's test_recvfrom_into)") {
    udp_echo_server server;
    auto body = [&]() -> aio::task<> {
        auto& loop = aio::get_running_loop();
        aio::socket sock(AF_INET, SOCK_DGRAM);
        const std::string data(4096, '\x01');
        std::vector<char> buffer(4096);
        co_await loop.sock_sendto(sock.fd(), data, server.address());
        auto [n, from] = co_await loop.sock_recvfrom_into(sock.fd(), std::span<char>(buffer));
        REQUIRE(n == 4096);
        REQUIRE(std::string_view(buffer.data(), n) == data);
        REQUIRE(from == server.address());

        std::vector<std::byte> larger(8192, std::byte{0});
        co_await loop.sock_sendto(sock.fd(), data, server.address());
        auto [m, from2] = co_await loop.sock_recvfrom_into(sock.fd(), std::span<std::byte>(larger), 4096);
        REQUIRE(m == 4096);
        REQUIRE(std::memcmp(larger.data(), data.data(), 4096) == 0);
        REQUIRE(larger[4096] == std::byte{0});
        REQUIRE(from2 == server.address());

        bool refused = false;
        try {
            (void)co_await loop.sock_recvfrom_into(sock.fd(), std::span<char>(buffer), 4097);
        } catch (const std::invalid_argument& e) {
            refused = std::string(e.what()).find("nbytes") != std::string::npos;
        }
        REQUIRE(refused);
    };
    run_checked(body);
}

TEST_CASE("sock_sendto waits while the kernel cannot take the datagram, then sends it (CPython's test_sendto_blocking)") {
    // UDP over loopback never blocks a sender; a Unix datagram socket whose receiver's
    // queue is full does (CPython mocks the EAGAIN instead).
    auto body = [&]() -> aio::task<> {
        auto& loop = aio::get_running_loop();
        aio::socket receiver(AF_UNIX, SOCK_DGRAM);
        receiver.bind(abstract_address("blocking-receiver"));
        aio::socket sender(AF_UNIX, SOCK_DGRAM);
        sender.bind(abstract_address("blocking-sender"));
        const aio::socket_address to = receiver.local_address();
        int queued = 0;
        while (queued < 10000 && ::sendto(sender.fd(), "x", 1, MSG_DONTWAIT, to.data(), to.size()) == 1) ++queued;
        REQUIRE(errno == EAGAIN);
        const std::string data(4096, '\x01');
        auto sending = aio::create_task(loop.sock_sendto(sender.fd(), data, to));
        co_await aio::sleep(20ms);
        REQUIRE(!sending.done());  // waiting for room
        for (int i = 0; i < queued; ++i) {
            auto [x, from] = co_await loop.sock_recvfrom(receiver.fd(), 16);
            REQUIRE(x == "x");
        }
        const std::size_t sent = co_await aio::wait_for(sending, 5s);
        REQUIRE(sent == data.size());
        auto [received, from] = co_await loop.sock_recvfrom(receiver.fd(), 4096);
        REQUIRE(received == data);
        REQUIRE(from == sender.local_address());
    };
    run_checked(body);
}

TEST_CASE("a sock_recvfrom cancelled while it waits has taken no datagram") {
    auto body = [&]() -> aio::task<> {
        auto& loop = aio::get_running_loop();
        aio::socket a(AF_INET, SOCK_DGRAM), b(AF_INET, SOCK_DGRAM);
        a.bind(loopback());
        const bool timed_out = co_await expect_throws<aio::timeout_error>(aio::wait_for(loop.sock_recvfrom(a.fd(), 100), 20ms));
        REQUIRE(timed_out);
        co_await loop.sock_sendto(b.fd(), "kept", a.local_address());
        auto [data, from] = co_await loop.sock_recvfrom(a.fd(), 100);
        REQUIRE(data == "kept");
    };
    run_checked(body);
}

// --- endpoints

TEST_CASE("two IPv4 endpoints exchange datagrams with sendto and recvfrom") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        const aio::socket_address server_address = server.local_address();
        REQUIRE(server_address.port() != 0);
        client.sendto("ping", server_address);
        auto [data, from] = co_await receive(server);
        REQUIRE(data == "ping");
        REQUIRE(from == client.local_address());
        server.sendto("pong", from);
        auto [reply, replier] = co_await receive(client);
        REQUIRE(reply == "pong");
        REQUIRE(replier == server_address);
        // An empty datagram is a datagram (asyncio 3.13 sends it).
        client.sendto("", server_address);
        auto [empty, who] = co_await receive(server);
        REQUIRE(empty.empty());
        REQUIRE(who == client.local_address());
        REQUIRE(std::any_cast<aio::socket_address>(server.get_extra_info("sockname")) == server_address);
        REQUIRE(!server.get_extra_info("peername").has_value());
        REQUIRE(std::any_cast<int>(server.get_extra_info("socket")) >= 0);
        REQUIRE(!server.get_extra_info("nonsense").has_value());
        REQUIRE(!server.remote_address());
    };
    run_checked(body);
}

TEST_CASE("two IPv6 endpoints on ::1 exchange datagrams") {
    if (!ipv6_available()) {
        WARN("IPv6 loopback unavailable: skipped");
        return;
    }
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"::1", 0});
        REQUIRE(server.local_address().family() == AF_INET6);
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({}, {"::1", server.local_address().port()});
        client.send("over six");
        auto [data, from] = co_await receive(server);
        REQUIRE(data == "over six");
        REQUIRE(from == client.local_address());
        server.sendto("back", from);
        auto [reply, replier] = co_await receive(client);
        REQUIRE(reply == "back");
        REQUIRE(replier == server.local_address());
    };
    run_checked(body);
}

TEST_CASE("a connected endpoint sends to its remote address and reports it as peername") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        const std::uint16_t port = server.local_address().port();
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({}, {"127.0.0.1", port});
        REQUIRE(client.remote_address() == server.local_address());
        REQUIRE(std::any_cast<aio::socket_address>(client.get_extra_info("peername")) == server.local_address());
        client.send("one");
        client.sendto("two");
        client.sendto("three", server.local_address());  // the remote address itself is allowed
        for (const char* expected : {"one", "two", "three"}) {
            auto [data, from] = co_await receive(server);
            REQUIRE(data == expected);
            REQUIRE(from == client.local_address());
        }
        // A connected socket takes datagrams from its peer only.
        aio::datagram_endpoint stranger = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        stranger.sendto("not for you", client.local_address());
        server.sendto("for you", client.local_address());
        auto [data, from] = co_await receive(client);
        REQUIRE(data == "for you");
    };
    run_checked(body);
}

TEST_CASE("sendto with another address on a connected endpoint throws invalid_argument, as asyncio's ValueError") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({}, {"127.0.0.1", server.local_address().port()});
        std::string message;
        try {
            client.sendto("x", loopback(1));
        } catch (const std::invalid_argument& e) {
            message = e.what();
        }
        REQUIRE(message == "Invalid address: must be None or " + server.local_address().to_string());
        // And an unconnected endpoint needs an address.
        bool refused = false;
        try {
            server.send("nowhere");
        } catch (const std::invalid_argument&) {
            refused = true;
        }
        REQUIRE(refused);
        co_return;
    };
    run_checked(body);
}

TEST_CASE("an ICMP port-unreachable on a connected endpoint reaches the next recvfrom as connection_refused_error, and the endpoint stays usable") {
    auto body = [&]() -> aio::task<> {
        const std::uint16_t port = closed_udp_port();
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({}, {"127.0.0.1", port});
        client.send("anyone?");
        const bool refused = co_await expect_throws<aio::connection_refused_error>(receive(client));
        REQUIRE(refused);
        REQUIRE(!client.is_closing());
        // Someone listens there now: the same endpoint talks to it.
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", port});
        client.send("hello");
        auto [data, from] = co_await receive(server);
        REQUIRE(data == "hello");
        server.sendto("welcome", from);
        auto [reply, replier] = co_await receive(client);
        REQUIRE(reply == "welcome");
    };
    run_checked(body);
}

TEST_CASE("errors take their place among the datagrams: the ones received before the error come first") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        const aio::socket_address server_address = server.local_address();
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({}, {"127.0.0.1", server_address.port()});
        server.sendto("before", client.local_address());
        co_await aio::sleep(10ms);  // taken from the kernel into the queue
        REQUIRE(client.queued() == 1);
        server.close();
        co_await server.wait_closed();
        client.send("to a closed port");
        co_await aio::sleep(10ms);
        auto [first, from] = co_await receive(client);
        REQUIRE(first == "before");
        const bool refused = co_await expect_throws<aio::connection_refused_error>(receive(client));
        REQUIRE(refused);
        REQUIRE(client.queued() == 0);
    };
    run_checked(body);
}

TEST_CASE("datagrams the kernel cannot take are buffered in order, and drain() waits until the buffer is down to the low-water mark") {
    auto body = [&]() -> aio::task<> {
        auto& loop = aio::get_running_loop();
        auto [a, b] = aio::socket::pair(SOCK_DGRAM);
        a.set_option(SOL_SOCKET, SO_SNDBUF, 1);  // the kernel's minimum: a few datagrams
        aio::datagram_endpoint sender = co_await aio::create_datagram_endpoint(std::move(a));
        constexpr int count = 100;
        for (int i = 0; i < count; ++i) sender.send(std::to_string(i) + ":" + std::string(1000, 'd'));
        REQUIRE(sender.get_write_buffer_size() > 64 * 1024);  // paused: over the high-water mark
        REQUIRE(sender.get_write_buffer_limits() == std::pair<std::size_t, std::size_t>(16 * 1024, 64 * 1024));
        auto draining = aio::create_task(sender.drain());
        co_await aio::sleep(10ms);
        REQUIRE(!draining.done());  // nobody reads: the buffer stays full
        for (int i = 0; i < count; ++i) {
            auto [data, from] = co_await aio::wait_for(loop.sock_recvfrom(b.fd(), 2000), 5s);
            REQUIRE(data == std::to_string(i) + ":" + std::string(1000, 'd'));
        }
        co_await aio::wait_for(draining, 5s);
        REQUIRE(sender.get_write_buffer_size() == 0);
        co_await sender.drain();  // nothing queued: returns at once
        // Limits set low: a few datagrams queued are over them.
        sender.set_write_buffer_limits(100);
        REQUIRE(sender.get_write_buffer_limits() == std::pair<std::size_t, std::size_t>(25, 100));
        bool refused = false;
        try {
            sender.set_write_buffer_limits(10, 20);
        } catch (const std::invalid_argument&) {
            refused = true;
        }
        REQUIRE(refused);
    };
    run_checked(body);
}

TEST_CASE("an unconnected Unix endpoint whose peer's queue is full gets its buffered datagrams through") {
    auto body = [&]() -> aio::task<> {
        const aio::socket_address receiver_address = abstract_address("full-receiver");
        aio::datagram_endpoint receiver = co_await aio::create_datagram_endpoint(receiver_address);
        aio::datagram_endpoint sender = co_await aio::create_datagram_endpoint(abstract_address("full-sender"));
        constexpr int count = 60;  // several times net.unix.max_dgram_qlen (10 by default)
        for (int i = 0; i < count; ++i) sender.sendto(std::to_string(i), receiver_address);
        REQUIRE(sender.get_write_buffer_size() > 0);
        // The receiver's queue is bounded by its limit only: it reads on while nobody waits.
        for (int i = 0; i < count; ++i) {
            auto [data, from] = co_await receive(receiver);
            REQUIRE(data == std::to_string(i));
            REQUIRE(from == sender.local_address());
        }
        REQUIRE(sender.get_write_buffer_size() == 0);
    };
    run_checked(body);
}

TEST_CASE("Unix datagram endpoints bound to paths talk, and a stale socket file is replaced") {
    auto body = [&]() -> aio::task<> {
        const std::string dir = "/tmp/aio-test-datagram-" + std::to_string(::getpid());
        ::mkdir(dir.c_str(), 0700);
        const std::string server_path = dir + "/server.sock";
        {
            aio::socket stale(AF_UNIX, SOCK_DGRAM);
            stale.bind(aio::socket_address::unix_path(server_path));  // left behind, as by a crash
        }
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint(aio::socket_address::unix_path(server_path));
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint(aio::socket_address::unix_path(dir + "/client.sock"),
                                                                               aio::socket_address::unix_path(server_path));
        client.send("over a path");
        auto [data, from] = co_await receive(server);
        REQUIRE(data == "over a path");
        REQUIRE(from.host() == dir + "/client.sock");
        server.sendto("and back", from);
        auto [reply, replier] = co_await receive(client);
        REQUIRE(reply == "and back");
        server.close();
        client.close();
        co_await server.wait_closed();
        co_await client.wait_closed();
        ::unlink(server_path.c_str());
        ::unlink((dir + "/client.sock").c_str());
        ::rmdir(dir.c_str());
    };
    run_checked(body);
}

TEST_CASE("reuse_port lets two endpoints bind one port; without it the second bind fails") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_options shared;
        shared.reuse_port = true;
        aio::datagram_endpoint first = co_await aio::create_datagram_endpoint({"127.0.0.1", 0}, {}, shared);
        const std::uint16_t port = first.local_address().port();
        aio::datagram_endpoint second = co_await aio::create_datagram_endpoint({"127.0.0.1", port}, {}, shared);
        REQUIRE(second.local_address().port() == port);
        const int fd = std::any_cast<int>(second.get_extra_info("socket"));
        int on = 0;
        socklen_t length = sizeof on;
        REQUIRE(::getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &length) == 0);
        REQUIRE(on == 1);
        bool in_use = false;
        try {
            (void)co_await aio::create_datagram_endpoint({"127.0.0.1", port});
        } catch (const aio::os_error& e) {
            in_use = e.error_number() == EADDRINUSE;
        }
        REQUIRE(in_use);
    };
    run_checked(body);
}

TEST_CASE("allow_broadcast sets SO_BROADCAST and does not connect to the remote address") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint receiver = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        aio::datagram_options broadcast;
        broadcast.allow_broadcast = true;
        aio::datagram_endpoint sender = co_await aio::create_datagram_endpoint({}, {"127.0.0.1", receiver.local_address().port()}, broadcast);
        auto option = [](const aio::datagram_endpoint& e) {
            int on = 0;
            socklen_t length = sizeof on;
            ::getsockopt(std::any_cast<int>(e.get_extra_info("socket")), SOL_SOCKET, SO_BROADCAST, &on, &length);
            return on;
        };
        REQUIRE(option(sender) == 1);
        REQUIRE(option(receiver) == 0);
        REQUIRE(!sender.get_extra_info("peername").has_value());  // not connected
        REQUIRE(sender.remote_address() == receiver.local_address());
        sender.send("to the remote address, by sendto");
        auto [data, from] = co_await receive(receiver);
        REQUIRE(data == "to the remote address, by sendto");
    };
    run_checked(body);
}

TEST_CASE("create_datagram_endpoint refuses a stream socket, socket options with a socket, and no address without a family") {
    auto body = [&]() -> aio::task<> {
        std::string message;
        try {
            (void)co_await aio::create_datagram_endpoint(aio::socket(AF_INET, SOCK_STREAM));
        } catch (const std::invalid_argument& e) {
            message = e.what();
        }
        REQUIRE(message.find("SOCK_DGRAM socket was expected") != std::string::npos);
        REQUIRE(message.find("SOCK_STREAM") != std::string::npos);

        message.clear();
        aio::datagram_options options;
        options.reuse_port = true;
        try {
            (void)co_await aio::create_datagram_endpoint(aio::socket(AF_INET, SOCK_DGRAM), options);
        } catch (const std::invalid_argument& e) {
            message = e.what();
        }
        REQUIRE(message.find("can not be used when a socket is given") != std::string::npos);

        message.clear();
        try {
            (void)co_await aio::create_datagram_endpoint({}, {});
        } catch (const std::invalid_argument& e) {
            message = e.what();
        }
        REQUIRE(message == "unexpected address family");

        // A family alone makes an unbound socket, bound by its first send.
        aio::datagram_options inet;
        inet.family = AF_INET;
        aio::datagram_endpoint unbound = co_await aio::create_datagram_endpoint({}, {}, inet);
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        unbound.sendto("first", server.local_address());
        auto [data, from] = co_await receive(server);
        REQUIRE(data == "first");
        REQUIRE(from.port() == unbound.local_address().port());
    };
    run_checked(body);
}

TEST_CASE("a host name is resolved, and a family the address does not have is refused") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_options inet;
        inet.family = AF_INET;
        aio::datagram_endpoint e = co_await aio::create_datagram_endpoint({"localhost", 0}, {}, inet);
        REQUIRE(e.local_address().host() == "127.0.0.1");
        aio::datagram_options six;
        six.family = AF_INET6;
        bool refused = false;
        try {
            (void)co_await aio::create_datagram_endpoint(loopback(), {}, six);
        } catch (const std::invalid_argument&) {
            refused = true;
        }
        REQUIRE(refused);
    };
    run_checked(body);
}

TEST_CASE("close stops receiving: queued datagrams can still be taken, then recvfrom throws; wait_closed returns") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        client.sendto("queued", server.local_address());
        co_await aio::sleep(10ms);
        REQUIRE(server.queued() == 1);
        server.close();
        REQUIRE(server.is_closing());
        co_await aio::wait_for(server.wait_closed(), 5s);
        REQUIRE(std::any_cast<int>(server.get_extra_info("socket")) == -1);
        auto [data, from] = co_await receive(server);
        REQUIRE(data == "queued");
        std::string message;
        try {
            (void)co_await server.recvfrom();
        } catch (const aio::runtime_error& e) {
            message = e.what();
        }
        REQUIRE(message.find("is closed") != std::string::npos);
        const bool lost = co_await expect_throws<aio::connection_reset_error>(server.drain());
        REQUIRE(lost);
        server.sendto("dropped", client.local_address());  // after close: dropped, as asyncio drops it
    };
    run_checked(body);
}

TEST_CASE("a recvfrom waiting when the endpoint is closed or aborted is woken with an error") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        auto waiting = aio::create_task(server.recvfrom());
        co_await aio::sleep(5ms);
        REQUIRE(!waiting.done());
        server.abort();
        const bool closed = co_await expect_throws<aio::runtime_error>(aio::wait_for(waiting, 5s));
        REQUIRE(closed);
        co_await server.wait_closed();
    };
    run_checked(body);
}

TEST_CASE("destroying the endpoint closes it; a moved-from endpoint throws invalid_state_error") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint kept;
        {
            aio::datagram_endpoint e = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
            kept = std::move(e);
            bool empty = false;
            try {
                (void)e.local_address();
            } catch (const aio::invalid_state_error&) {
                empty = true;
            }
            REQUIRE(empty);
        }
        REQUIRE(!kept.is_closing());
        const std::size_t open = aio_test::open_descriptors();
        { aio::datagram_endpoint gone = std::move(kept); }
        REQUIRE(aio_test::open_descriptors() == open - 1);
    };
    run_checked(body);
}

TEST_CASE("a recvfrom cancelled while it waits takes no datagram: the next receive gets it") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        const bool timed_out = co_await expect_throws<aio::timeout_error>(aio::wait_for(server.recvfrom(), 10ms));
        REQUIRE(timed_out);
        // Cancelled 0 to 7 iterations after the datagram was sent: before the endpoint
        // has it, after it has woken the waiter but before the waiter ran, and later.
        for (int delay = 0; delay < 8; ++delay) {
            auto waiting = aio::create_task(server.recvfrom());
            co_await aio::sleep(0s);
            const std::string datagram = "survivor " + std::to_string(delay);
            client.sendto(datagram, server.local_address());
            for (int i = 0; i < delay; ++i) co_await aio::sleep(0s);
            const bool was_done = waiting.done();
            waiting.cancel();
            co_await aio_test::settle(waiting);
            if (was_done) {
                auto [data, from] = co_await waiting;
                REQUIRE(data == datagram);
            } else {
                REQUIRE(waiting.cancelled());
                auto [data, from] = co_await receive(server);
                REQUIRE(data == datagram);
            }
        }
    };
    run_checked(body);
}

TEST_CASE("receives that time out over and over while datagrams arrive lose none and repeat none") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        constexpr int count = 300;
        auto sending = [](const aio::datagram_endpoint& c, aio::socket_address to) -> aio::task<> {
            for (int i = 0; i < count; ++i) {
                c.sendto(std::to_string(i), to);
                if (i % 3 == 0) co_await aio::sleep(0s);
            }
        };
        auto sender = aio::create_task(sending(client, server.local_address()));
        int next = 0;
        for (int attempt = 0; attempt < 100000 && next < count; ++attempt) {
            try {
                auto [data, from] = co_await aio::wait_for(server.recvfrom(), 100us);
                REQUIRE(data == std::to_string(next));
                ++next;
            } catch (const aio::timeout_error&) {
            }
        }
        co_await sender;
        REQUIRE(next == count);
    };
    run_checked(body);
}

TEST_CASE("several tasks may wait in recvfrom: each datagram goes to one of them") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        auto first = aio::create_task(server.recvfrom());
        auto second = aio::create_task(server.recvfrom());
        co_await aio::sleep(1ms);
        client.sendto("a", server.local_address());
        client.sendto("b", server.local_address());
        auto [x, from_x] = co_await aio::wait_for(first, 5s);
        auto [y, from_y] = co_await aio::wait_for(second, 5s);
        REQUIRE(x + y == "ab");
    };
    run_checked(body);
}

TEST_CASE("the receive queue is bounded: past queue_limit the endpoint stops taking datagrams until they are received") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_options small;
        small.queue_limit = 1024;
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0}, {}, small);
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        constexpr int count = 40;  // 40 × (100 + 64) bytes: over the limit
        for (int i = 0; i < count; ++i) client.sendto(std::to_string(i) + std::string(100, '.'), server.local_address());
        co_await aio::sleep(20ms);
        REQUIRE(server.queued() < static_cast<std::size_t>(count));  // the rest wait in the kernel
        REQUIRE(server.queued() * (100 + 64) > 1024);
        for (int i = 0; i < count; ++i) {
            auto [data, from] = co_await receive(server);
            REQUIRE(data == std::to_string(i) + std::string(100, '.'));
        }
    };
    run_checked(body);
}

TEST_CASE("100,000 datagrams over loopback, paced by the receiver's count, all arrive in order") {
    auto body = [&]() -> aio::task<> {
        aio::datagram_endpoint server = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
        const int fd = std::any_cast<int>(server.get_extra_info("socket"));
        const int want = 4 << 20;
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
        aio::datagram_endpoint client = co_await aio::create_datagram_endpoint({}, {"127.0.0.1", server.local_address().port()});
        constexpr int total = 100000;
        constexpr int window = 256;  // in flight at most: well within the receive buffer
        int received = 0;
        bool in_order = true;
        auto receiving = [](const aio::datagram_endpoint& s, int& count, bool& ordered) -> aio::task<> {
            while (count < total) {
                auto [data, from] = co_await s.recvfrom();
                std::uint32_t seq = 0;
                std::memcpy(&seq, data.data(), sizeof seq);
                if (data.size() != 64 || seq != static_cast<std::uint32_t>(count)) ordered = false;
                ++count;
            }
        };
        auto receiver = aio::create_task(receiving(server, received, in_order));
        std::string datagram(64, 'u');
        for (int sent = 0; sent < total;) {
            if (sent - received >= window) {
                co_await aio::sleep(0s);
                continue;
            }
            const auto seq = static_cast<std::uint32_t>(sent);
            std::memcpy(datagram.data(), &seq, sizeof seq);
            client.send(datagram);
            ++sent;
            if (sent % 32 == 0) co_await client.drain();
        }
        co_await aio::wait_for(receiver, 30s);
        REQUIRE(received == total);
        REQUIRE(in_order);
    };
    run_checked(body, 60s);
}
