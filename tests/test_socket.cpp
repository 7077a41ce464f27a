// aio::socket_address and aio::socket (include/aio/net/socket_address.hpp, socket.hpp):
// parsing and printing addresses, equality, and the socket's ownership of its
// descriptor (moves, close on destruction, release, adopt) and flags. No loop: the
// connections here are made with plain system calls. Every test that opens a
// descriptor checks that none is left open after it.
#include <aio/net/socket.hpp>
#include <aio/net/socket_address.hpp>
#include <aio/os_error.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "support/catch.hpp"
#include "support/descriptors.hpp"

using aio_test::open_descriptors;

namespace {

// The descriptors this process has open (the listing's own is counted every time).
// True when `fd` is not open: fcntl fails with EBADF.
bool is_closed(int fd) {
    const int r = ::fcntl(fd, F_GETFD);
    return r == -1 && errno == EBADF;
}

bool is_non_blocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }
bool is_close_on_exec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

// The what() of the std::invalid_argument that f() throws; nullopt if it throws none.
template <class F>
std::optional<std::string> invalid_argument_from(F f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return std::string(e.what());
    }
    return std::nullopt;
}

// The error code of the aio::os_error that f() throws; nullopt if it throws none.
template <class F>
std::optional<std::error_code> os_error_from(F f, std::string* what = nullptr) {
    try {
        f();
    } catch (const aio::os_error& e) {
        if (what) *what = e.what();
        return e.code();
    }
    return std::nullopt;
}

const sockaddr_in& as_in(const aio::socket_address& a) { return *reinterpret_cast<const sockaddr_in*>(a.data()); }
const sockaddr_in6& as_in6(const aio::socket_address& a) { return *reinterpret_cast<const sockaddr_in6*>(a.data()); }
const sockaddr_un& as_un(const aio::socket_address& a) { return *reinterpret_cast<const sockaddr_un*>(a.data()); }

aio::socket_address loopback(std::uint16_t port = 0) { return aio::socket_address::ip("127.0.0.1", port); }

// A listening socket on loopback, and a client connected to it (non-blocking connect,
// then poll for its end), and the connection the listener accepted.
struct connection {
    aio::socket listener;
    aio::socket client;
    aio::socket accepted;
};

connection connect_on(const aio::socket_address& where) {
    connection c{aio::socket(where.family(), SOCK_STREAM), aio::socket(where.family(), SOCK_STREAM), {}};
    c.listener.bind(where);
    c.listener.listen(1);
    const aio::socket_address to = c.listener.local_address();
    if (::connect(c.client.fd(), to.data(), to.size()) < 0 && errno != EINPROGRESS)
        throw std::system_error(errno, std::generic_category(), "connect()");
    pollfd ends[2] = {{c.client.fd(), POLLOUT, 0}, {c.listener.fd(), POLLIN, 0}};
    for (pollfd& p : ends)
        if (::poll(&p, 1, 5000) != 1) throw std::runtime_error("the connection was not made in 5 s");
    REQUIRE(c.client.option(SOL_SOCKET, SO_ERROR) == 0);
    c.accepted = aio::socket::own(::accept4(c.listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    REQUIRE(c.accepted.is_open());
    return c;
}

bool ipv6_loopback_available() {
    const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const aio::socket_address a = aio::socket_address::ip("::1", 0);
    const bool bound = ::bind(fd, a.data(), a.size()) == 0;
    ::close(fd);
    return bound;
}

}  // namespace

// ===== socket_address

TEST_CASE("socket_address::ip of an IPv4 address gives its family, host, port, printed form and length") {
    const auto a = aio::socket_address::ip("127.0.0.1", 8080);
    REQUIRE(a.family() == AF_INET);
    REQUIRE_FALSE(a.empty());
    REQUIRE(a.host() == "127.0.0.1");
    REQUIRE(a.port() == 8080);
    REQUIRE(a.to_string() == "127.0.0.1:8080");
    REQUIRE(a.size() == sizeof(sockaddr_in));
    REQUIRE(ntohs(as_in(a).sin_port) == 8080);  // in network order underneath
    REQUIRE(as_in(a).sin_addr.s_addr == htonl(INADDR_LOOPBACK));

    const auto any = aio::socket_address::ip("0.0.0.0", 65535);
    REQUIRE(any.to_string() == "0.0.0.0:65535");
    REQUIRE(any.port() == 65535);
}

TEST_CASE("socket_address::ip of an IPv6 address prints it in brackets, in its shortest form") {
    const auto a = aio::socket_address::ip("::1", 443);
    REQUIRE(a.family() == AF_INET6);
    REQUIRE(a.host() == "::1");
    REQUIRE(a.port() == 443);
    REQUIRE(a.to_string() == "[::1]:443");
    REQUIRE(a.size() == sizeof(sockaddr_in6));
    REQUIRE(as_in6(a).sin6_scope_id == 0);

    REQUIRE(aio::socket_address::ip("0:0:0:0:0:0:0:1", 1).host() == "::1");
    REQUIRE(aio::socket_address::ip("2001:DB8:0:0:0:0:0:1", 1).host() == "2001:db8::1");
    const auto mapped = aio::socket_address::ip("::ffff:192.0.2.1", 80);
    REQUIRE(mapped.family() == AF_INET6);  // an IPv4-mapped address stays IPv6
    REQUIRE(mapped.to_string() == "[::ffff:192.0.2.1]:80");
}

TEST_CASE("socket_address::ip takes what follows '%' in an IPv6 address as the interface of its scope, and host() gives it back") {
    const unsigned lo = ::if_nametoindex("lo");
    if (lo == 0) {
        WARN("skipped: no interface named lo");
        return;
    }
    const auto a = aio::socket_address::ip("fe80::1%lo", 22);
    REQUIRE(a.family() == AF_INET6);
    REQUIRE(as_in6(a).sin6_scope_id == lo);
    REQUIRE(a.host() == "fe80::1%lo");  // Python's ('fe80::1%lo', 22, 0, 1)
    REQUIRE(a.to_string() == "[fe80::1%lo]:22");
    REQUIRE(aio::socket_address::ip(a.host(), a.port()) == a);
    REQUIRE(a.port() == 22);
    REQUIRE(a != aio::socket_address::ip("fe80::1", 22));  // the scope is part of the address
}

// "fe80::1%" has an empty scope: not an address (getaddrinfo with AI_NUMERICHOST
// refuses it too), rather than fe80::1 with no scope.
TEST_CASE("socket_address::ip of anything but a numeric address throws std::invalid_argument naming it") {
    for (std::string host : {"localhost", "example.com", "256.0.0.1", "1.2.3", "1.2.3.4.5", "", "::g", "1::2::3",
                             " 127.0.0.1", "127.0.0.1 ", "[::1]", "fe80::1%", "fe80::1%no-such-interface0"}) {
        INFO("host: \"" << host << "\"");
        const auto what = invalid_argument_from([&] { (void)aio::socket_address::ip(host, 80); });
        CHECK(what.has_value());  // each host is checked, whatever the one before did
        if (what) CHECK(what->find("\"" + host + "\"") != std::string::npos);
    }
}

TEST_CASE("socket_address::try_ip gives true and the address, or false and leaves the output as it was") {
    aio::socket_address out = aio::socket_address::unix_path("/untouched");
    REQUIRE(aio::socket_address::try_ip("10.1.2.3", 99, out));
    REQUIRE(out == aio::socket_address::ip("10.1.2.3", 99));
    REQUIRE(aio::socket_address::try_ip("::1", 7, out));
    REQUIRE(out == aio::socket_address::ip("::1", 7));

    const aio::socket_address kept = out;
    REQUIRE_FALSE(aio::socket_address::try_ip("localhost", 80, out));
    REQUIRE_FALSE(aio::socket_address::try_ip("", 80, out));
    REQUIRE_FALSE(aio::socket_address::try_ip("fe80::1%no-such-interface0", 80, out));
    REQUIRE(out == kept);
}

TEST_CASE("socket_address::unix_path of a filesystem path: family, host, printed form, and a length with its NUL") {
    const auto a = aio::socket_address::unix_path("/run/app.sock");
    REQUIRE(a.family() == AF_UNIX);
    REQUIRE(a.host() == "/run/app.sock");
    REQUIRE(a.to_string() == "/run/app.sock");
    REQUIRE(a.port() == 0);
    REQUIRE(a.size() == offsetof(sockaddr_un, sun_path) + std::strlen("/run/app.sock") + 1);
    REQUIRE(std::string_view(as_un(a).sun_path) == "/run/app.sock");
}

TEST_CASE("socket_address::unix_path with a leading NUL is in the abstract namespace: no terminator, the NUL kept in host") {
    const std::string name("\0abstract", 9);
    const auto a = aio::socket_address::unix_path(name);
    REQUIRE(a.family() == AF_UNIX);
    REQUIRE(a.size() == offsetof(sockaddr_un, sun_path) + name.size());
    REQUIRE(a.host() == name);
    REQUIRE(a.host().size() == 9);
    REQUIRE(a != aio::socket_address::unix_path("abstract"));
}

TEST_CASE("socket_address::unix_path refuses an empty path and one too long for sun_path, naming the path") {
    constexpr std::size_t room = sizeof(sockaddr_un{}.sun_path);  // 108 on Linux, a NUL included
    const std::string longest(room - 1, 'p');
    REQUIRE(aio::socket_address::unix_path(longest).host() == longest);

    const std::string too_long(room, 'p');
    const auto what = invalid_argument_from([&] { (void)aio::socket_address::unix_path(too_long); });
    REQUIRE(what.has_value());
    REQUIRE(what->find(too_long) != std::string::npos);
    REQUIRE(what->find(std::to_string(room - 1)) != std::string::npos);

    REQUIRE(invalid_argument_from([] { (void)aio::socket_address::unix_path(""); }).has_value());
}

TEST_CASE("an empty socket_address has no family, an empty host, port 0, and prints as (no address)") {
    const aio::socket_address a;
    REQUIRE(a.empty());
    REQUIRE(a.size() == 0);
    REQUIRE(a.family() == AF_UNSPEC);
    REQUIRE(a.host().empty());
    REQUIRE(a.port() == 0);
    REQUIRE(a.to_string() == "(no address)");
    REQUIRE(a == aio::socket_address());
}

TEST_CASE("socket_addresses are equal when family, address and port are, and unequal when any differs") {
    using aio::socket_address;
    REQUIRE(socket_address::ip("127.0.0.1", 80) == socket_address::ip("127.0.0.1", 80));
    REQUIRE(socket_address::ip("::1", 80) == socket_address::ip("0::1", 80));
    REQUIRE(socket_address::unix_path("/a") == socket_address::unix_path("/a"));

    REQUIRE(socket_address::ip("127.0.0.1", 80) != socket_address::ip("127.0.0.1", 81));
    REQUIRE(socket_address::ip("127.0.0.1", 80) != socket_address::ip("127.0.0.2", 80));
    REQUIRE(socket_address::ip("127.0.0.1", 80) != socket_address::ip("::ffff:127.0.0.1", 80));
    REQUIRE(socket_address::ip("::1", 80) != socket_address::ip("::2", 80));
    REQUIRE(socket_address::unix_path("/a") != socket_address::unix_path("/b"));
    REQUIRE(socket_address::unix_path("/a") != socket_address::unix_path("/ab"));
    REQUIRE(socket_address::unix_path("/a") != socket_address());
}

TEST_CASE("socket_address from a kernel sockaddr keeps it, and refuses one longer than sockaddr_storage") {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(5353);
    in.sin_addr.s_addr = htonl(0xC0000201);  // 192.0.2.1
    const aio::socket_address a(reinterpret_cast<const sockaddr*>(&in), sizeof in);
    REQUIRE(a == aio::socket_address::ip("192.0.2.1", 5353));
    REQUIRE(a.to_string() == "192.0.2.1:5353");

    sockaddr_storage big[2]{};
    REQUIRE(invalid_argument_from([&] {
                (void)aio::socket_address(reinterpret_cast<const sockaddr*>(big), sizeof big[0] + 1);
            }).has_value());
}

// ===== socket

TEST_CASE("a default aio::socket is not open") {
    const aio::socket s;
    REQUIRE_FALSE(s.is_open());
    REQUIRE(s.fd() == -1);
}

TEST_CASE("a new aio::socket is open, non-blocking and close-on-exec") {
    const std::size_t before = open_descriptors();
    for (int family : {AF_INET, AF_INET6, AF_UNIX}) {
        for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
            INFO("family " << family << ", type " << type);
            std::optional<aio::socket> s;
            try {
                s.emplace(family, type);
            } catch (const aio::os_error& e) {
                REQUIRE(family == AF_INET6);  // a kernel without IPv6
                WARN("skipped IPv6: " << e.what());
                continue;
            }
            REQUIRE(s->is_open());
            REQUIRE(is_non_blocking(s->fd()));
            REQUIRE(is_close_on_exec(s->fd()));
        }
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("socket::pair gives two connected Unix sockets, each non-blocking and close-on-exec") {
    const std::size_t before = open_descriptors();
    for (int type : {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET}) {
        INFO("type " << type);
        auto [a, b] = aio::socket::pair(type);
        for (const aio::socket* s : {&a, &b}) {
            REQUIRE(s->is_open());
            REQUIRE(is_non_blocking(s->fd()));
            REQUIRE(is_close_on_exec(s->fd()));
        }
        REQUIRE(a.option(SOL_SOCKET, SO_TYPE) == type);
        REQUIRE(::send(a.fd(), "hi", 2, MSG_NOSIGNAL) == 2);
        char buffer[4];
        REQUIRE(::recv(b.fd(), buffer, sizeof buffer, 0) == 2);
        REQUIRE(std::string_view(buffer, 2) == "hi");
        REQUIRE(a.local_address().family() == AF_UNIX);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("an aio::socket closes its descriptor when it is destroyed") {
    const std::size_t before = open_descriptors();
    int fd = -1;
    {
        aio::socket s(AF_INET, SOCK_STREAM);
        fd = s.fd();
        REQUIRE_FALSE(is_closed(fd));
    }
    REQUIRE(is_closed(fd));
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("moving an aio::socket moves its descriptor; move-assigning closes the one it replaces") {
    const std::size_t before = open_descriptors();
    {
        aio::socket a(AF_INET, SOCK_STREAM);
        const int fd_a = a.fd();
        aio::socket b(std::move(a));
        REQUIRE(b.fd() == fd_a);
        REQUIRE_FALSE(a.is_open());  // NOLINT(bugprone-use-after-move): a moved-from socket is empty
        REQUIRE(a.fd() == -1);

        aio::socket c(AF_INET, SOCK_STREAM);
        const int fd_c = c.fd();
        c = std::move(b);
        REQUIRE(c.fd() == fd_a);
        REQUIRE_FALSE(b.is_open());
        REQUIRE(is_closed(fd_c));
        REQUIRE_FALSE(is_closed(fd_a));

        aio::socket& same = c;
        c = std::move(same);  // onto itself: nothing changes
        REQUIRE(c.fd() == fd_a);
        REQUIRE_FALSE(is_closed(fd_a));

        c = aio::socket();  // an empty socket in its place: the descriptor goes
        REQUIRE(is_closed(fd_a));
        REQUIRE_FALSE(c.is_open());
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("close on an aio::socket may come early, and twice") {
    const std::size_t before = open_descriptors();
    aio::socket s(AF_INET, SOCK_STREAM);
    const int fd = s.fd();
    s.close();
    REQUIRE_FALSE(s.is_open());
    REQUIRE(is_closed(fd));
    s.close();
    REQUIRE(s.fd() == -1);
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("release gives the descriptor up: the socket no longer closes it") {
    const std::size_t before = open_descriptors();
    int fd = -1;
    {
        aio::socket s(AF_INET, SOCK_STREAM);
        const int owned = s.fd();
        fd = s.release();
        REQUIRE(fd == owned);
        REQUIRE_FALSE(s.is_open());
    }
    REQUIRE_FALSE(is_closed(fd));
    REQUIRE(is_non_blocking(fd));
    ::close(fd);
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("socket::adopt owns a blocking descriptor and makes it non-blocking; socket::own leaves its flags") {
    const std::size_t before = open_descriptors();
    {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd >= 0);
        REQUIRE_FALSE(is_non_blocking(fd));
        aio::socket s = aio::socket::adopt(fd);
        REQUIRE(s.fd() == fd);
        REQUIRE(is_non_blocking(fd));

        const int other = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(other >= 0);
        aio::socket t = aio::socket::own(other);
        REQUIRE(t.fd() == other);
        REQUIRE_FALSE(is_non_blocking(other));  // own() trusts the caller
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("socket::adopt of a descriptor that is not open throws aio::os_error with EBADF and owns nothing") {
    const std::size_t before = open_descriptors();
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    ::close(fd);  // a number nothing is open under (this test opens nothing meanwhile)
    const auto code = os_error_from([&] { (void)aio::socket::adopt(fd); });
    REQUIRE(code.has_value());
    REQUIRE(*code == std::errc::bad_file_descriptor);
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("an aio::socket the kernel cannot make throws aio::os_error") {
    const std::size_t before = open_descriptors();
    const auto code = os_error_from([] { aio::socket s(AF_MAX + 1, SOCK_STREAM); });
    REQUIRE(code.has_value());
    REQUIRE(*code == std::errc::address_family_not_supported);
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("bind to a port in use throws aio::os_error naming the address") {
    const std::size_t before = open_descriptors();
    {
        aio::socket first(AF_INET, SOCK_STREAM);
        first.bind(loopback());
        first.listen();
        const aio::socket_address taken = first.local_address();
        REQUIRE(taken.port() != 0);  // the kernel chose one
        REQUIRE(taken.host() == "127.0.0.1");

        aio::socket second(AF_INET, SOCK_STREAM);
        std::string what;
        const auto code = os_error_from([&] { second.bind(taken); }, &what);
        REQUIRE(code.has_value());
        REQUIRE(*code == std::errc::address_in_use);
        REQUIRE(what.find(taken.to_string()) != std::string::npos);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("local_address and peer_address of a TCP connection name its two ends") {
    const std::size_t before = open_descriptors();
    {
        connection c = connect_on(loopback());
        REQUIRE(c.client.peer_address() == c.listener.local_address());
        REQUIRE(c.accepted.peer_address() == c.client.local_address());
        REQUIRE(c.accepted.local_address() == c.listener.local_address());
        REQUIRE(c.client.local_address().host() == "127.0.0.1");
        REQUIRE(c.client.local_address().port() != c.listener.local_address().port());
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("local_address and peer_address name both ends of an IPv6 connection on ::1 (a warning where ::1 cannot be bound)") {
    if (!ipv6_loopback_available()) {
        WARN("skipped: ::1 cannot be bound here");
        return;
    }
    const std::size_t before = open_descriptors();
    {
        connection c = connect_on(aio::socket_address::ip("::1", 0));
        const aio::socket_address server = c.client.peer_address();
        REQUIRE(server.family() == AF_INET6);
        REQUIRE(server.to_string() == "[::1]:" + std::to_string(server.port()));
        REQUIRE(c.accepted.peer_address() == c.client.local_address());
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("local_address of a bound Unix socket is the path it was bound to") {
    const std::size_t before = open_descriptors();
    char dir[] = "/tmp/aio_test_socket_XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string path = std::string(dir) + "/bound.sock";
    {
        aio::socket s(AF_UNIX, SOCK_STREAM);
        s.bind(aio::socket_address::unix_path(path));
        REQUIRE(s.local_address() == aio::socket_address::unix_path(path));
        REQUIRE(s.local_address().host() == path);

        aio::socket abstract(AF_UNIX, SOCK_STREAM);
        const auto name = aio::socket_address::unix_path(std::string("\0aio_test_socket_", 17) + std::to_string(::getpid()));
        abstract.bind(name);
        REQUIRE(abstract.local_address() == name);
    }
    ::unlink(path.c_str());
    ::rmdir(dir);
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("peer_address and shutdown of a socket that is not connected throw aio::os_error with ENOTCONN") {
    const std::size_t before = open_descriptors();
    {
        aio::socket s(AF_INET, SOCK_STREAM);
        const auto peer = os_error_from([&] { (void)s.peer_address(); });
        REQUIRE(peer.has_value());
        REQUIRE(*peer == std::errc::not_connected);
        const auto shut = os_error_from([&] { s.shutdown(SHUT_WR); });
        REQUIRE(shut.has_value());
        REQUIRE(*shut == std::errc::not_connected);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("shutdown(SHUT_WR) on one end of a pair makes the other read EOF, and the other way still works") {
    const std::size_t before = open_descriptors();
    {
        auto [a, b] = aio::socket::pair();
        a.shutdown(SHUT_WR);
        char buffer[4];
        REQUIRE(::recv(b.fd(), buffer, sizeof buffer, 0) == 0);
        REQUIRE(::send(b.fd(), "ok", 2, MSG_NOSIGNAL) == 2);
        REQUIRE(::recv(a.fd(), buffer, sizeof buffer, 0) == 2);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("set_option's value is what option reads back") {
    const std::size_t before = open_descriptors();
    {
        aio::socket s(AF_INET, SOCK_STREAM);
        s.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
        REQUIRE(s.option(SOL_SOCKET, SO_REUSEADDR) != 0);
        s.set_option(SOL_SOCKET, SO_REUSEADDR, 0);
        REQUIRE(s.option(SOL_SOCKET, SO_REUSEADDR) == 0);
        s.set_option(SOL_SOCKET, SO_KEEPALIVE, 1);
        REQUIRE(s.option(SOL_SOCKET, SO_KEEPALIVE) != 0);
        REQUIRE(s.option(SOL_SOCKET, SO_TYPE) == SOCK_STREAM);
        REQUIRE(os_error_from([&] { s.set_option(SOL_SOCKET, -12345, 1); }).has_value());
    }
    REQUIRE(open_descriptors() == before);
}
